//! Off-screen surfaces (`QXL_CMD_SURFACE`) and writing surfaces back into guest memory.
//!
//! Surfaces are drawn in Rust-owned framebuffers; `update_area` copies the requested
//! area back into the guest's surface memory, which is what QEMU and the guest read.

use super::guest_damage::GuestDamage;
use crate::canvas::framebuffer::{Framebuffer, MAX_DIMENSION};
use crate::geometry::Area;
use crate::qxl::draw::{Brush, Op};
use crate::qxl::guest;
use crate::qxl::image::{fmt as image_fmt, Image, Pixels};
use crate::qxl::memslot::{MemError, MemSlots};

/// `SPICE_SURFACE_FMT_*` the canvas handles.
pub(crate) mod format {
    pub(crate) const XRGB32: u32 = 32;
    pub(crate) const ARGB32: u32 = 96;
    pub(crate) const RGB555: u32 = 16;
    pub(crate) const RGB565: u32 = 80;
}

/// Most host memory one worker spends on guest surfaces besides the primary: the
/// off-screen surfaces it keeps plus the copies one drawing takes of surfaces it reads.
/// The C server draws surfaces in guest memory; we copy them, so a guest creating
/// surfaces (many over the same guest memory) must meet a bound. 256 MiB holds the
/// whole video memory of QEMU's default qxl (64 MiB) several times over.
pub(crate) const MAX_SURFACE_BYTES: usize = 256 << 20;

/// Where a surface lives in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuestSurface {
    pub width: u32,
    pub height: u32,
    pub stride: i32,
    pub format: u32,
    pub mem: u64,
    pub group: u32,
}

impl GuestSurface {
    fn bytes_per_pixel(&self) -> Option<u64> {
        match self.format {
            format::XRGB32 | format::ARGB32 => Some(4),
            format::RGB555 | format::RGB565 => Some(2),
            _ => None,
        }
    }

    /// Address of row `y` (a negative stride stores rows bottom-up).
    fn row_address(&self, y: u32) -> u64 {
        let pitch = u64::from(self.stride.unsigned_abs());
        let index = if self.stride < 0 {
            u64::from(self.height - 1 - y)
        } else {
            u64::from(y)
        };
        self.mem + index * pitch
    }

    pub(crate) fn is_16bit(&self) -> bool {
        matches!(self.format, format::RGB555 | format::RGB565)
    }

    /// Copies `area` of `fb` into the guest's memory for this surface.
    pub(crate) fn write_back(
        &self,
        slots: &MemSlots,
        fb: &Framebuffer,
        area: Area,
    ) -> Result<(), MemError> {
        let Some(bpp) = self.bytes_per_pixel() else {
            return Ok(());
        };
        let area =
            area.intersect(&fb.bounds())
                .intersect(&Area::new(0, 0, self.width, self.height));
        if area.is_empty() || u64::from(self.stride.unsigned_abs()) < u64::from(self.width) * bpp {
            return Ok(());
        }
        let pixels = fb.read(area);
        let row = area.width() as usize * 4;
        for (i, line) in pixels.chunks(row).enumerate() {
            let address = self.row_address(area.top + i as u32) + u64::from(area.left) * bpp;
            let bytes: Vec<u8> = if self.is_16bit() {
                line.chunks(4)
                    .flat_map(|p| {
                        let v = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                        pack16(self.format, v).to_le_bytes()
                    })
                    .collect()
            } else {
                line.to_vec()
            };
            guest::write_bytes(slots, self.group, address, &bytes)?;
        }
        Ok(())
    }

    /// Reads the guest's current pixels (a surface created over existing data, or the
    /// primary read back), 16-bit ones widened as pixman reads them.
    pub(crate) fn read_into(&self, slots: &MemSlots, fb: &mut Framebuffer) -> Result<(), MemError> {
        let Some(bpp) = self.bytes_per_pixel() else {
            return Ok(());
        };
        let row = self.width as usize * bpp as usize;
        for y in 0..self.height {
            let line = guest::read_bytes(slots, self.group, self.row_address(y), row)?;
            let line = if self.is_16bit() {
                line.chunks(2)
                    .flat_map(|p| {
                        stored16(self.format, u16::from_le_bytes([p[0], p[1]])).to_le_bytes()
                    })
                    .collect()
            } else if fb.alpha {
                line
            } else {
                line.chunks(4)
                    .flat_map(|p| {
                        (u32::from_le_bytes([p[0], p[1], p[2], p[3]]) & 0x00ff_ffff).to_le_bytes()
                    })
                    .collect()
            };
            fb.blit(
                Area::new(0, y, self.width, y + 1),
                &line,
                self.width as usize * 4,
            );
        }
        Ok(())
    }

    /// Zeroes the surface's memory, as spice-server does for a surface created without
    /// `KEEP_DATA`.
    fn clear(&self, slots: &MemSlots) -> Result<(), MemError> {
        let Some(bpp) = self.bytes_per_pixel() else {
            return Ok(());
        };
        // Whole rows, padding included (spice-server clears height * |stride| bytes).
        let zeros = vec![
            0u8;
            (self.stride.unsigned_abs() as usize)
                .max(self.width as usize * bpp as usize)
        ];
        (0..self.height)
            .try_for_each(|y| guest::write_bytes(slots, self.group, self.row_address(y), &zeros))
    }
}

/// A 16-bit pixel (`SPICE_SURFACE_FMT_16_555` or `_565`) widened to xRGB as pixman reads it
/// (each channel's high bits repeated into its low bits).
pub(crate) fn expand16(fmt: u32, v: u16) -> u32 {
    let v = u32::from(v);
    let (r, g, b) = if fmt == format::RGB565 {
        let (r, g, b) = ((v >> 11) & 0x1f, (v >> 5) & 0x3f, v & 0x1f);
        (
            (r << 3) | (r >> 2),
            (g << 2) | (g >> 4),
            (b << 3) | (b >> 2),
        )
    } else {
        let (r, g, b) = ((v >> 10) & 0x1f, (v >> 5) & 0x1f, v & 0x1f);
        (
            (r << 3) | (r >> 2),
            (g << 3) | (g >> 2),
            (b << 3) | (b >> 2),
        )
    };
    r << 16 | g << 8 | b
}

/// A 16-bit pixel as a 16-bit surface's framebuffer holds it: widened, and for 555 the
/// unused top bit kept in bit 24 (spice-common fills and rops write it as the guest gave it).
pub(crate) fn stored16(fmt: u32, v: u16) -> u32 {
    let x = if fmt == format::RGB555 {
        u32::from(v >> 15) << 24
    } else {
        0
    };
    expand16(fmt, v) | x
}

/// A framebuffer pixel narrowed to a 16-bit format (the low bits of each channel dropped;
/// 555's top bit from bit 24).
pub(crate) fn pack16(fmt: u32, v: u32) -> u16 {
    let (r, g, b) = ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
    let p = if fmt == format::RGB565 {
        (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
    } else {
        (v >> 24 & 1) << 15 | (r >> 3) << 10 | (g >> 3) << 5 | b >> 3
    };
    p as u16
}

pub(crate) struct OffScreen {
    pub fb: Framebuffer,
    pub guest: GuestSurface,
    /// Drawn since the guest's memory was last updated.
    pub dirty: GuestDamage,
}

/// The off-screen surfaces of one QXL device (id 0, the primary, lives in the screen).
pub(crate) struct Surfaces {
    list: Vec<Option<OffScreen>>,
    bytes: usize,
    /// Most bytes for surfaces and the copies of one drawing (`MAX_SURFACE_BYTES`).
    budget: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SurfaceError {
    BadId(u32),
    BadSize,
    TooMuchMemory,
    /// The host refused the allocation.
    OutOfMemory,
    Memory(MemError),
}

impl std::fmt::Display for SurfaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SurfaceError::BadId(id) => write!(f, "surface id {id} out of range"),
            SurfaceError::BadSize => write!(f, "bad surface size or stride"),
            SurfaceError::TooMuchMemory => write!(f, "off-screen surfaces over their budget"),
            SurfaceError::OutOfMemory => write!(f, "no host memory for it"),
            SurfaceError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl Surfaces {
    pub(crate) fn new(count: u32) -> Surfaces {
        let count = count.clamp(1, 4096) as usize;
        Surfaces {
            list: (0..count).map(|_| None).collect(),
            bytes: 0,
            budget: MAX_SURFACE_BYTES,
        }
    }

    pub(crate) fn create(
        &mut self,
        id: u32,
        guest: GuestSurface,
        keep_data: bool,
        slots: &MemSlots,
    ) -> Result<(), SurfaceError> {
        if id == 0 || id as usize >= self.list.len() {
            return Err(SurfaceError::BadId(id));
        }
        self.destroy(id);
        let (w, h) = (guest.width, guest.height);
        if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(SurfaceError::BadSize);
        }
        // Counted before anything is allocated.
        if self.bytes + Framebuffer::bytes_for(w, h) > self.budget {
            return Err(SurfaceError::TooMuchMemory);
        }
        let mut fb = Framebuffer::new(w, h).ok_or(SurfaceError::OutOfMemory)?;
        // Every top byte is kept: an ARGB surface's alpha (pixman's a8r8g8b8), an xRGB
        // surface's X byte (spice-common writes it, and reads it as alpha for
        // SRC_SURFACE_HAS_ALPHA), 555's top bit (in bit 24).
        fb.alpha = !matches!(guest.format, format::RGB565);
        fb.argb = guest.format == format::ARGB32;
        fb.rgb_bits = match guest.format {
            format::RGB565 => Some([5, 6, 5]),
            format::RGB555 => Some([5, 5, 5]),
            _ => None,
        };
        let bpp = if matches!(guest.format, format::RGB555 | format::RGB565) {
            2
        } else {
            4
        };
        if u64::from(guest.stride.unsigned_abs()) < u64::from(guest.width) * bpp {
            return Err(SurfaceError::BadSize);
        }
        let mut surface = OffScreen {
            fb,
            guest,
            dirty: Default::default(),
        };
        // Validates the whole surface memory once; keeps what the guest put there
        // (KEEP_DATA) or clears it as spice-server does.
        let last = guest.row_address(if guest.stride < 0 {
            0
        } else {
            guest.height - 1
        });
        let first = guest.row_address(if guest.stride < 0 {
            guest.height - 1
        } else {
            0
        });
        slots
            .translate(
                guest.group,
                first.min(last),
                u64::from(guest.stride.unsigned_abs()) * u64::from(guest.height),
            )
            .map_err(SurfaceError::Memory)?;
        if keep_data {
            guest.read_into(slots, &mut surface.fb)
        } else {
            guest.clear(slots)
        }
        .map_err(SurfaceError::Memory)?;
        self.bytes += surface.fb.pixels().len();
        self.list[id as usize] = Some(surface);
        Ok(())
    }

    pub(crate) fn destroy(&mut self, id: u32) {
        if let Some(Some(s)) = self.list.get_mut(id as usize).map(Option::take) {
            self.bytes -= s.fb.pixels().len();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.list.iter_mut().for_each(|s| *s = None);
        self.bytes = 0;
    }

    pub(crate) fn get(&self, id: u32) -> Option<&OffScreen> {
        self.list.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut OffScreen> {
        self.list.get_mut(id as usize)?.as_mut()
    }

    pub(crate) fn count(&self) -> u32 {
        self.list.len() as u32
    }

    /// Host bytes a drawing may still spend on copies of surfaces it reads.
    pub(crate) fn room(&self) -> usize {
        self.budget.saturating_sub(self.bytes)
    }

    #[cfg(test)]
    pub(crate) fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }
}

/// A framebuffer's pixels as a canvas source; None when the host has no memory for the
/// copy.
/// With `alpha` (an ARGB surface, or an xRGB one read by a drawing flagged
/// `SRC_SURFACE_HAS_ALPHA`, whose X byte spice-common then reads as alpha) the top byte is
/// alpha; otherwise the pixels are opaque.
pub(crate) fn pixels_of(fb: &Framebuffer, alpha: bool) -> Option<Pixels> {
    let opaque = if alpha { 0 } else { 0xff00_0000 };
    let mut data = Vec::new();
    data.try_reserve_exact(fb.pixels().len() / 4).ok()?;
    data.extend(
        fb.pixels()
            .chunks(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) | opaque),
    );
    Some(Pixels {
        width: fb.width,
        height: fb.height,
        data,
        alpha,
        format: if alpha { 9 } else { 8 },
    })
}

/// The solid brush colours of a drawing (fills, opaque and rop3 brushes, strokes, text).
fn solid_colors_mut(op: &mut Op) -> Vec<&mut u32> {
    fn solid(b: &mut Brush) -> Option<&mut u32> {
        match b {
            Brush::Solid(c) => Some(c),
            _ => None,
        }
    }
    match op {
        Op::Fill { brush, .. }
        | Op::Opaque { brush, .. }
        | Op::Rop3 { brush, .. }
        | Op::Stroke { brush, .. } => solid(brush).into_iter().collect(),
        Op::Text { fore, back, .. } => solid(fore).into_iter().chain(solid(back)).collect(),
        _ => Vec::new(),
    }
}

/// `QXL_COMMAND_FLAG_COMPAT_16BPP` (an old driver in a 16-bit mode): solid colours and
/// palettes come as x1r5g5b5 and are widened to xRGB, as spice-server's parser does.
pub(crate) fn widen_compat16(op: &mut Op) {
    for c in solid_colors_mut(op) {
        *c = expand16(format::RGB555, *c as u16);
    }
    for image in op.images_mut() {
        if let Image::Pixels(p) = image {
            if is_paletted(p.format) {
                p.data
                    .iter_mut()
                    .for_each(|v| *v = 0xff00_0000 | expand16(format::RGB555, *v as u16));
            }
        }
    }
}

/// A drawing on a 16-bit surface: spice-common fills with the brush colour's low 16 bits
/// as a pixel of the surface's format; here that pixel is widened as pixman reads it.
/// Images are converted to the surface's format, which has no X bit (0 on 555).
pub(crate) fn prepare_for_16(op: &mut Op, fmt: u32) {
    for c in solid_colors_mut(op) {
        *c = stored16(fmt, *c as u16);
    }
    let blend = matches!(op, Op::AlphaBlend { .. });
    let composite = matches!(op, Op::Composite { .. });
    for image in op.images_mut() {
        if let Image::Pixels(p) = image {
            if composite {
                // spice-common converts a COMPOSITE source or mask to the surface's own
                // format (pixman SRC): opaque, each channel truncated; A8 has no colour.
                let a8 = p.format == image_fmt::BIT8_A;
                p.data.iter_mut().for_each(|v| {
                    let narrowed = if a8 { 0 } else { pack16(fmt, *v & 0x00ff_ffff) };
                    *v = 0xff00_0000 | expand16(fmt, narrowed);
                });
                p.format = image_fmt::BIT32;
                p.alpha = false;
            } else if is_paletted(p.format) {
                // spice-common takes a palette's entries as pixels of the 16-bit
                // surface (x1r5g5b5, its top bit included).
                let x = if blend { 0xff00_0000 } else { 0 };
                p.data
                    .iter_mut()
                    .for_each(|v| *v = x | stored16(format::RGB555, *v as u16));
            } else if !blend {
                p.data.iter_mut().for_each(|v| *v &= 0x00ff_ffff);
            }
        }
    }
}

fn is_paletted(f: u8) -> bool {
    matches!(
        f,
        image_fmt::BIT1_LE
            | image_fmt::BIT1_BE
            | image_fmt::BIT4_LE
            | image_fmt::BIT4_BE
            | image_fmt::BIT8
    )
}

/// What a 16-bit surface keeps of `area` after a drawing: each pixel narrowed to the
/// format and widened back, so the next drawing reads what pixman would. Blends go
/// through pixman, which stores 555's top bit as 0.
pub(crate) fn quantize16(fb: &mut Framebuffer, fmt: u32, area: Area, op: &Op) {
    // A COMPOSITE that pixman reduces to DST (its images are opaque here, converted to
    // the surface's format; so is the surface) does not touch the copy of the box, whose
    // 555 top bits go back as they were.
    let leaves_dest =
        |flags: u32| matches!(flags & 0xff, 0x02 | 0x04 | 0x06 | 0x0a | 0x0d | 0x12 | 0x22);
    let blended = match op {
        Op::AlphaBlend { .. } => true,
        Op::Composite { flags, .. } => !leaves_dest(*flags),
        _ => false,
    };
    let x_mask = if blended { 0x00ff_ffff } else { u32::MAX };
    let area = area.intersect(&fb.bounds());
    let stride = fb.stride();
    let pixels = fb.pixels_mut();
    for y in area.top..area.bottom {
        let row = y as usize * stride;
        for x in area.left..area.right {
            let o = row + x as usize * 4;
            let v = u32::from_le_bytes([pixels[o], pixels[o + 1], pixels[o + 2], pixels[o + 3]]);
            let kept = stored16(fmt, pack16(fmt, v & x_mask));
            pixels[o..o + 4].copy_from_slice(&kept.to_le_bytes());
        }
    }
}

/// A drawing on a 32-bit surface: spice-common converts a source without alpha to
/// x8r8g8b8 and blits its bits as they are, so the X byte (0 as drivers send it) lands in
/// the alpha channel or X byte; the decoder made it 0xff.
pub(crate) fn sources_onto_alpha(op: &mut Op) {
    for image in op.images_mut() {
        if let Image::Pixels(p) = image {
            // 16-bit bitmaps go through pixman (x1r5g5b5 to x8r8g8b8), which sets it.
            if !p.alpha && p.format != image_fmt::BIT16 {
                p.data.iter_mut().for_each(|v| *v &= 0x00ff_ffff);
            }
        }
    }
}

/// After an ALPHA_BLEND on an xRGB surface spice-common clears the X bytes of the whole
/// box (not only the clip) when pixman left 0xff in its first pixel (`clear_dest_alpha`).
pub(crate) fn clear_dest_alpha(fb: &mut Framebuffer, bbox: &crate::geometry::Rect) {
    let Some(b) = bbox.clamped() else {
        return;
    };
    let b = b.intersect(&fb.bounds());
    if b.is_empty() {
        return;
    }
    let stride = fb.stride();
    let first = b.top as usize * stride + b.left as usize * 4;
    if fb.pixels()[first + 3] != 0xff {
        return;
    }
    let pixels = fb.pixels_mut();
    for y in b.top..b.bottom {
        for x in b.left..b.right {
            pixels[y as usize * stride + x as usize * 4 + 3] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::{self, NoSurfaces};
    use crate::geometry::Rect;
    use crate::qxl::draw::{Draw, Source};

    fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
        Rect {
            top,
            left,
            bottom,
            right,
        }
    }

    fn draw(bbox: Rect, op: Op) -> Draw {
        Draw {
            surface_id: 1,
            depends_on: vec![],
            bbox,
            clip: None,
            op,
        }
    }

    fn px(fb: &Framebuffer, x: u32, y: u32) -> u32 {
        let o = y as usize * fb.stride() + x as usize * 4;
        let p = fb.pixels();
        u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]])
    }

    fn pixels(format: u8, alpha: bool, data: Vec<u32>) -> Pixels {
        Pixels {
            width: data.len() as u32,
            height: 1,
            data,
            alpha,
            format,
        }
    }

    #[test]
    fn sixteen_bit_pixels_widen_as_pixman_reads_them() {
        // 565 white and a mid green; 555 keeps its top bit in bit 24.
        assert_eq!(expand16(format::RGB565, 0xffff), 0x00ff_ffff);
        assert_eq!(expand16(format::RGB565, 0x0400), 0x0000_8200);
        assert_eq!(stored16(format::RGB555, 0x8000 | 0x001f), 0x0100_00ff);
        assert_eq!(stored16(format::RGB565, 0x8000), 0x0084_0000);
        for v in [0u16, 1, 0x7fff, 0x8000, 0xabcd, 0xffff] {
            assert_eq!(pack16(format::RGB555, stored16(format::RGB555, v)), v);
            assert_eq!(pack16(format::RGB565, stored16(format::RGB565, v)), v);
        }
    }

    #[test]
    fn a_16_bit_surface_takes_the_brush_colour_in_its_format() {
        // spice-common fills with the colour's low 16 bits as a pixel: 0x12345678 on 565
        // is the pixel 0x5678 (r 10, g 51, b 24: 0x52, 0xcf, 0xc6 widened).
        let mut op = Op::Fill {
            brush: Brush::Solid(0x1234_5678),
            rop: 8,
            mask: None,
        };
        prepare_for_16(&mut op, format::RGB565);
        assert_eq!(
            op,
            Op::Fill {
                brush: Brush::Solid(0x0052_cfc6),
                rop: 8,
                mask: None,
            }
        );
    }

    #[test]
    fn compat_16bpp_widens_colours_and_palettes_from_555() {
        let mut op = Op::Fill {
            brush: Brush::Solid(0x7c00),
            rop: 8,
            mask: None,
        };
        widen_compat16(&mut op);
        assert!(matches!(
            op,
            Op::Fill {
                brush: Brush::Solid(0x00ff_0000),
                ..
            }
        ));
        let mut op = Op::Copy {
            src: Source {
                image: Image::Pixels(pixels(image_fmt::BIT8, false, vec![0xff00_001f])),
                area: rect(0, 0, 1, 1),
                scale_mode: 1,
            },
            rop: 8,
            mask: None,
        };
        widen_compat16(&mut op);
        let Op::Copy { src, .. } = &op else {
            unreachable!()
        };
        assert_eq!(
            src.image,
            Image::Pixels(pixels(image_fmt::BIT8, false, vec![0xff00_00ff]))
        );
    }

    #[test]
    fn an_argb_surface_keeps_alpha_and_blends_rgba_without_the_flag() {
        let mut fb = Framebuffer::new(2, 1).unwrap();
        fb.alpha = true;
        let fill = draw(
            rect(0, 0, 2, 1),
            Op::Fill {
                brush: Brush::Solid(0x8011_2233),
                rop: 8,
                mask: None,
            },
        );
        canvas::render(&mut fb, &fill, &NoSurfaces);
        assert_eq!(px(&fb, 0, 0), 0x8011_2233);
        // An RGBA bitmap half transparent, blended without SRC_SURFACE_HAS_ALPHA: its
        // alpha still counts (spice-common reads the bitmap as a8r8g8b8).
        let blend = draw(
            rect(0, 0, 1, 1),
            Op::AlphaBlend {
                src: Source {
                    image: Image::Pixels(pixels(image_fmt::RGBA, true, vec![0x8080_0000])),
                    area: rect(0, 0, 1, 1),
                    scale_mode: 1,
                },
                alpha: 255,
                src_has_alpha: false,
                dest_has_alpha: false,
            },
        );
        canvas::render(&mut fb, &blend, &NoSurfaces);
        // colour: 0x80 + 0x11 * 127/255; alpha: 0x80 + 0x80 * 127/255
        assert_eq!(px(&fb, 0, 0), 0xc088_1119);
    }

    #[test]
    fn clear_dest_alpha_clears_the_whole_box_only_after_an_opaque_first_pixel() {
        let mut fb = Framebuffer::new(3, 1).unwrap();
        fb.pixels_mut()
            .copy_from_slice(&[1, 2, 3, 0xff, 4, 5, 6, 0x10, 7, 8, 9, 0xff]);
        clear_dest_alpha(&mut fb, &rect(1, 0, 3, 1));
        assert_eq!(
            px(&fb, 1, 0),
            0x1006_0504,
            "first pixel of the box not opaque"
        );
        clear_dest_alpha(&mut fb, &rect(0, 0, 2, 1));
        assert_eq!((px(&fb, 0, 0), px(&fb, 1, 0)), (0x0003_0201, 0x0006_0504));
        assert_eq!(px(&fb, 2, 0), 0xff09_0807, "outside the box");
    }

    #[test]
    fn sources_on_32_bit_surfaces_bring_their_x_byte() {
        let mut op = Op::Copy {
            src: Source {
                image: Image::Pixels(pixels(image_fmt::BIT32, false, vec![0xff12_3456])),
                area: rect(0, 0, 1, 1),
                scale_mode: 1,
            },
            rop: 8,
            mask: None,
        };
        sources_onto_alpha(&mut op);
        let Op::Copy { src, .. } = &op else {
            unreachable!()
        };
        assert_eq!(
            src.image,
            Image::Pixels(pixels(image_fmt::BIT32, false, vec![0x0012_3456]))
        );
        // 16-bit bitmaps reach the surface through pixman's conversion: opaque.
        let mut op = Op::Copy {
            src: Source {
                image: Image::Pixels(pixels(image_fmt::BIT16, false, vec![0xff12_3456])),
                area: rect(0, 0, 1, 1),
                scale_mode: 1,
            },
            rop: 8,
            mask: None,
        };
        let before = op.clone();
        sources_onto_alpha(&mut op);
        assert_eq!(op, before);
    }

    #[test]
    fn composite_images_on_a_16_bit_surface_become_opaque_in_its_format() {
        let mut op = Op::Composite {
            flags: 3,
            src: Image::Pixels(pixels(image_fmt::RGBA, true, vec![0x80ff_8844])),
            mask: Some(Image::Pixels(pixels(
                image_fmt::BIT8_A,
                true,
                vec![0x4000_0000],
            ))),
            src_origin: (0, 0),
            mask_origin: (0, 0),
            src_transform: None,
            mask_transform: None,
        };
        prepare_for_16(&mut op, format::RGB565);
        let Op::Composite { src, mask, .. } = &op else {
            unreachable!()
        };
        // 0xff8844 truncated to 565 (31, 34, 8) and read back by pixman: ff, 8a, 42.
        let Image::Pixels(s) = src else { panic!() };
        assert_eq!((s.data[0], s.alpha), (0xffff_8a42, false));
        let Some(Image::Pixels(m)) = mask else {
            panic!()
        };
        assert_eq!((m.data[0], m.alpha), (0xff00_0000, false));
    }

    #[test]
    fn a_composite_reduced_to_dst_keeps_the_555_top_bit() {
        let composite = |flags| Op::Composite {
            flags,
            src: Image::Pixels(pixels(image_fmt::BIT32, false, vec![0])),
            mask: None,
            src_origin: (0, 0),
            mask_origin: (0, 0),
            src_transform: None,
            mask_transform: None,
        };
        for (flags, kept) in [(0x06, true), (0x02, true), (0x03, false)] {
            let mut fb = Framebuffer::new(1, 1).unwrap();
            fb.alpha = true;
            fb.pixels_mut()
                .copy_from_slice(&stored16(format::RGB555, 0x8000 | 0x1f).to_le_bytes());
            let all = fb.bounds();
            quantize16(&mut fb, format::RGB555, all, &composite(flags));
            assert_eq!(fb.pixels()[3] == 1, kept, "op {flags:#x}");
        }
    }

    #[test]
    fn surface_pixels_are_opaque_unless_read_with_alpha() {
        let mut fb = Framebuffer::new(1, 1).unwrap();
        fb.pixels_mut().copy_from_slice(&[1, 2, 3, 0x40]);
        assert_eq!(pixels_of(&fb, false).unwrap().data, vec![0xff03_0201]);
        let with = pixels_of(&fb, true).unwrap();
        assert!(with.alpha);
        assert_eq!(with.data, vec![0x4003_0201]);
    }
}
