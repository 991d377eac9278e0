//! A guest drawing re-encoded as the display message that carries it (`draw_fill`,
//! `draw_opaque`, … `draw_composite`, `copy_bits` in `spice.proto`), so the client draws
//! it itself instead of receiving its pixels.
//!
//! Layout rules (spice.proto marshalling): pointer fields (`Image *`, `Path *`,
//! `String *`) are u32 offsets from the start of the message body, with the pointed-to
//! data appended after the fixed part; `@ptr_array` elements (path segments, glyphs) are
//! written inline one after another. Every image travels as a 32-bit bitmap (xRGB, or
//! premultiplied ARGB when it has alpha), raw or LZ4: the client never sees the guest's
//! 1/4/8/16/24 bpp formats, some of which its canvas cannot read (1/4 bpp LE).

use crate::geometry::Rect;
use crate::proto::display::{
    BITMAP_FLAGS_TOP_DOWN, BITMAP_FMT_32BIT, BITMAP_FMT_RGBA, IMAGE_TYPE_BITMAP, IMAGE_TYPE_LZ4,
    ROPD_OP_PUT,
};
use crate::proto::msg::display as m;
use crate::proto::outgoing::ServerMessage;
use crate::proto::wire::Writer;
use crate::qxl::draw::{line_flags, Brush, Draw, Glyph, Op, PathSeg, Source};
use crate::qxl::image::{fmt, Image, Pixels};
use std::sync::atomic::{AtomicU64, Ordering};

/// `SPICE_STRING_FLAGS_RASTER_A1/A4/A8`.
const STRING_RASTER_A1: u8 = 1;
const STRING_RASTER_A4: u8 = 2;
const STRING_RASTER_A8: u8 = 4;
/// `SPICE_PATH_BEGIN | SPICE_PATH_END`.
/// `SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA`.
const ALPHA_SRC_HAS_ALPHA: u8 = 2;
/// `SPICE_COMPOSITE_HAS_MASK`, `_HAS_SRC_TRANSFORM`, `_HAS_MASK_TRANSFORM`.
const COMPOSITE_HAS_MASK: u32 = 1 << 19;
const COMPOSITE_HAS_SRC_TRANSFORM: u32 = 1 << 20;
const COMPOSITE_HAS_MASK_TRANSFORM: u32 = 1 << 21;
/// Images up to this many bytes go raw; larger ones LZ4-compressed.
const RAW_IMAGE_MAX: usize = 2048;

/// A drawing encoded as its display message: `encode` below chooses the type and writes
/// the body together, so the two always match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DrawMessage {
    pub msg_type: u16,
    pub body: Vec<u8>,
    /// The images at the end of `body` (raw or LZ4, as any client may receive them when
    /// it has the LZ4 cap), with their pixels so that each client can get them in its own
    /// codec (`with_images`).
    pub images: Vec<DrawImage>,
}

/// One image of a drawing's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DrawImage {
    /// Where in the body the u32 pointer to it is, and where its bytes (descriptor and
    /// data) are.
    pointer_at: usize,
    bytes: std::ops::Range<usize>,
    pub id: u64,
    pub width: u32,
    pub height: u32,
    /// Premultiplied ARGB (else xRGB).
    pub alpha: bool,
    /// Top-down rows, 0xAARRGGBB.
    pub pixels: Vec<u32>,
    /// Its bytes in the body are LZ4 (which only clients with the cap decode).
    pub lz4: bool,
    /// The client's canvas may draw the message without decoding it (a text's back
    /// brush): it must not go GLZ, whose later images would wait for it forever.
    pub maybe_undecoded: bool,
}

impl DrawImage {
    /// Bytes it takes in the message.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len()
    }
}

impl DrawMessage {
    /// It carries LZ4 bytes that `with_images` cannot replace: only clients with the
    /// LZ4 cap may be sent it.
    pub(crate) fn needs_lz4(&self) -> bool {
        self.images.iter().any(|i| i.lz4) && !self.images_replaceable()
    }

    /// The images sit one after another at the end of the body, after every pointer to
    /// them, so each can be swapped for another coding.
    fn images_replaceable(&self) -> bool {
        let Some(first) = self.images.first() else {
            return false;
        };
        self.images
            .windows(2)
            .all(|pair| pair[0].bytes.end == pair[1].bytes.start)
            && self.images.last().map(|i| i.bytes.end) == Some(self.body.len())
            && self
                .images
                .iter()
                .all(|i| i.pointer_at + 4 <= first.bytes.start)
    }

    /// The message with each image's bytes (descriptor and data) replaced by what
    /// `encode` returns for it (`None` keeps them), its pointer moved to match.
    pub(crate) fn with_images(
        &self,
        mut encode: impl FnMut(&DrawImage) -> Option<Vec<u8>>,
    ) -> Option<DrawMessage> {
        if !self.images_replaceable() {
            return None;
        }
        let first = self.images.first()?;
        let mut w = Writer::default();
        w.bytes(&self.body[..first.bytes.start]);
        let mut images = Vec::with_capacity(self.images.len());
        for image in &self.images {
            let start = w.len();
            w.patch_u32(image.pointer_at, start as u32);
            match encode(image) {
                Some(bytes) => w.bytes(&bytes),
                None => w.bytes(&self.body[image.bytes.clone()]),
            };
            images.push(DrawImage {
                bytes: start..w.len(),
                ..image.clone()
            });
        }
        Some(DrawMessage {
            msg_type: self.msg_type,
            body: w.into_inner(),
            images,
        })
    }
}

#[cfg(test)]
impl DrawMessage {
    /// A message with one LZ4 image, replaceable or not (its pointer after its bytes).
    pub(crate) fn with_one_lz4_image(msg_type: u16, replaceable: bool) -> DrawMessage {
        let (pointer_at, bytes) = if replaceable { (0, 4..12) } else { (8, 0..8) };
        DrawMessage {
            msg_type,
            body: vec![0; 12],
            images: vec![DrawImage {
                pointer_at,
                bytes,
                id: 1,
                width: 1,
                height: 1,
                alpha: false,
                pixels: vec![0],
                lz4: true,
                maybe_undecoded: false,
            }],
        }
    }
}

impl ServerMessage for DrawMessage {
    fn msg_type(&self) -> u16 {
        self.msg_type
    }

    fn encode_body(&self, w: &mut Writer) {
        w.bytes(&self.body);
    }
}

/// Why a drawing is sent as pixels rather than as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotForwardable {
    /// The drawing has a mask (the client's canvas reads masks only as 1 bpp bitmaps,
    /// which the parsed drawing no longer holds).
    Mask,
    /// It reads another surface the client does not hold.
    SurfaceSource,
    /// A rop3 code spice-common's canvas does not implement (it aborts on those).
    Rop3Code,
    /// A dashed stroke or text with a raster operation the client's canvas draws
    /// differently from the server's (or refuses).
    Style,
    /// Nothing to draw.
    Nop,
}

static NEXT_IMAGE_ID: AtomicU64 = AtomicU64::new(1);

/// Encodes `draw` (on the client's surface `surface_id`) as its display message.
pub(crate) fn encode(surface_id: u32, draw: &Draw) -> Result<DrawMessage, NotForwardable> {
    let mut e = Encoder::default();
    e.base(surface_id, draw);
    let msg_type = match &draw.op {
        Op::Nop => return Err(NotForwardable::Nop),
        Op::Fill { brush, rop, mask } => {
            no_mask(mask)?;
            e.brush(brush)?;
            e.w.u16(*rop);
            e.no_qmask();
            m::DRAW_FILL
        }
        Op::Opaque {
            src,
            brush,
            rop,
            mask,
        } => {
            no_mask(mask)?;
            e.source(src, &draw.bbox)?;
            e.brush(brush)?;
            e.w.u16(*rop).u8(src.scale_mode);
            e.no_qmask();
            m::DRAW_OPAQUE
        }
        Op::Copy { src, rop, mask } | Op::Blend { src, rop, mask } => {
            no_mask(mask)?;
            e.source(src, &draw.bbox)?;
            e.w.u16(*rop).u8(src.scale_mode);
            e.no_qmask();
            if matches!(draw.op, Op::Copy { .. }) {
                m::DRAW_COPY
            } else {
                m::DRAW_BLEND
            }
        }
        Op::Blackness { mask } | Op::Whiteness { mask } | Op::Invers { mask } => {
            no_mask(mask)?;
            e.no_qmask();
            match draw.op {
                Op::Blackness { .. } => m::DRAW_BLACKNESS,
                Op::Whiteness { .. } => m::DRAW_WHITENESS,
                _ => m::DRAW_INVERS,
            }
        }
        Op::CopyBits { x, y } => {
            e.w.i32(*x).i32(*y);
            m::COPY_BITS
        }
        Op::Rop3 {
            src,
            brush,
            rop3,
            mask,
        } => {
            no_mask(mask)?;
            if !client_implements_rop3(*rop3) {
                return Err(NotForwardable::Rop3Code);
            }
            e.source(src, &draw.bbox)?;
            e.brush(brush)?;
            e.w.u8(*rop3).u8(src.scale_mode);
            e.no_qmask();
            m::DRAW_ROP3
        }
        Op::Stroke {
            path,
            brush,
            fore_mode,
            back_mode,
            attr_flags,
            style,
            ..
        } => {
            // What our canvas refuses, the client's would abort or hang on.
            if !crate::canvas::stroke_is_drawable(path, *attr_flags, style) {
                return Err(NotForwardable::Style);
            }
            let styled = attr_flags & line_flags::STYLED != 0;
            let path_at = e.pointer();
            e.w.u8(*attr_flags);
            let style_at = styled.then(|| {
                e.w.u8(style.len() as u8);
                e.pointer()
            });
            e.brush(brush)?;
            e.w.u16(*fore_mode).u16(*back_mode);
            e.set_pointer(path_at);
            e.path(path);
            if let Some(at) = style_at {
                e.set_pointer(at);
                for &s in style {
                    e.w.i32(s);
                }
            }
            m::DRAW_STROKE
        }
        Op::Text {
            glyphs,
            glyph_bpp,
            back_area,
            fore,
            back,
            fore_mode,
            back_mode,
        } => {
            // The client's canvas gives up (aborts) on a string without glyphs and on a
            // back area with any fore_mode but PUT; it reads 8-bit glyphs one row late,
            // past each glyph's data into whatever its own copy of the message holds
            // there (not what spice-server's copy, which we render, holds): those go as
            // pixels.
            let has_back = back_area.top != back_area.bottom && back_area.left != back_area.right;
            if glyphs.is_empty() || (has_back && *fore_mode != ROPD_OP_PUT) || *glyph_bpp == 8 {
                return Err(NotForwardable::Style);
            }
            let string = e.pointer();
            // An inverted back area fills nothing, but the client's canvas hands it to
            // pixman, which logs it as a bug: it goes as an empty one (the fore_mode
            // check above already keeps the drawings it would change).
            let inverted = back_area.right < back_area.left || back_area.bottom < back_area.top;
            let sent_back = if inverted {
                Rect::default()
            } else {
                *back_area
            };
            rect(&mut e.w, &sent_back);
            e.brush(fore)?;
            // spice-common decodes the back brush only where the back area meets the
            // drawing's region.
            e.skippable_brush(back)?;
            e.w.u16(*fore_mode).u16(*back_mode);
            e.set_pointer(string);
            e.string(glyphs, *glyph_bpp)?;
            m::DRAW_TEXT
        }
        Op::Transparent { src, color } => {
            e.source(src, &draw.bbox)?;
            e.w.u32(*color).u32(*color);
            m::DRAW_TRANSPARENT
        }
        Op::AlphaBlend {
            src,
            alpha,
            src_has_alpha,
            ..
        } => {
            let flags = if *src_has_alpha {
                ALPHA_SRC_HAS_ALPHA
            } else {
                0
            };
            e.w.u8(flags).u8(*alpha);
            e.source(src, &draw.bbox)?;
            m::DRAW_ALPHA_BLEND
        }
        Op::Composite {
            flags,
            src,
            mask,
            src_origin,
            mask_origin,
            src_transform,
            mask_transform,
        } => {
            let Image::Pixels(pixels) = src else {
                return Err(NotForwardable::SurfaceSource);
            };
            let mask = match mask {
                Some(Image::Pixels(m)) => Some(m),
                Some(Image::Surface(_)) => return Err(NotForwardable::SurfaceSource),
                None => None,
            };
            let mut wire_flags = flags
                & !(COMPOSITE_HAS_MASK
                    | COMPOSITE_HAS_SRC_TRANSFORM
                    | COMPOSITE_HAS_MASK_TRANSFORM);
            if mask.is_some() {
                wire_flags |= COMPOSITE_HAS_MASK;
            }
            if src_transform.is_some() {
                wire_flags |= COMPOSITE_HAS_SRC_TRANSFORM;
            }
            let mask_transform = mask_transform.filter(|_| mask.is_some());
            if mask_transform.is_some() {
                wire_flags |= COMPOSITE_HAS_MASK_TRANSFORM;
            }
            e.w.u32(wire_flags);
            let image = e.pointer();
            let mask_image = mask.map(|_| e.pointer());
            for t in [src_transform, &mask_transform].into_iter().flatten() {
                t.iter().for_each(|v| {
                    e.w.i32(*v);
                });
            }
            e.w.u16(src_origin.0 as i16 as u16)
                .u16(src_origin.1 as i16 as u16);
            e.w.u16(mask_origin.0 as i16 as u16)
                .u16(mask_origin.1 as i16 as u16);
            e.queue_image(image, &as_composited(pixels), None);
            if let (Some(at), Some(m)) = (mask_image, mask) {
                e.queue_image(at, &as_composited(m), None);
            }
            m::DRAW_COMPOSITE
        }
    };
    e.flush_images();
    Ok(DrawMessage {
        msg_type,
        body: e.w.into_inner(),
        images: e.written,
    })
}

/// A composite source or mask as the client's canvas will see it: an A8 bitmap becomes
/// x8r8g8b8, opaque black (sent as it is, it would arrive as RGBA and keep its alpha).
fn as_composited(pixels: &Pixels) -> std::borrow::Cow<'_, Pixels> {
    if pixels.format != fmt::BIT8_A {
        return std::borrow::Cow::Borrowed(pixels);
    }
    std::borrow::Cow::Owned(Pixels {
        data: vec![0xff00_0000; pixels.data.len()],
        alpha: false,
        format: fmt::BIT32,
        ..pixels.clone()
    })
}

/// spice-common's rop3 table covers exactly the codes that depend on all three of
/// pattern, source and destination; the others (expressible as a ROPD) abort its canvas.
pub(crate) fn client_implements_rop3(code: u8) -> bool {
    let depends_on_dest = (code ^ (code >> 1)) & 0x55 != 0;
    let depends_on_source = (code ^ (code >> 2)) & 0x33 != 0;
    let depends_on_pattern = (code ^ (code >> 4)) & 0x0f != 0;
    depends_on_dest && depends_on_source && depends_on_pattern
}

fn no_mask<T>(mask: &Option<T>) -> Result<(), NotForwardable> {
    match mask {
        Some(_) => Err(NotForwardable::Mask),
        None => Ok(()),
    }
}

fn rect(w: &mut Writer, r: &Rect) {
    w.i32(r.top).i32(r.left).i32(r.bottom).i32(r.right);
}

/// An image whose bytes go after the fixed part, and where its pointer is.
struct PendingImage {
    pointer_at: usize,
    pixels: Vec<u32>,
    width: u32,
    height: u32,
    alpha: bool,
    maybe_undecoded: bool,
}

#[derive(Default)]
struct Encoder {
    w: Writer,
    images: Vec<PendingImage>,
    written: Vec<DrawImage>,
}

impl Encoder {
    fn base(&mut self, surface_id: u32, draw: &Draw) {
        self.w.u32(surface_id);
        rect(&mut self.w, &draw.bbox);
        match &draw.clip {
            None => {
                self.w.u8(0);
            }
            Some(rects) => {
                self.w.u8(1).u32(rects.len() as u32);
                rects.iter().for_each(|r| rect(&mut self.w, r));
            }
        }
    }

    /// Writes a placeholder pointer; returns where it is.
    fn pointer(&mut self) -> usize {
        let at = self.w.len();
        self.w.u32(0);
        at
    }

    /// Points the pointer at `at` to what is written next.
    fn set_pointer(&mut self, at: usize) {
        let here = self.w.len() as u32;
        self.w.patch_u32(at, here);
    }

    fn no_qmask(&mut self) {
        self.w.u8(0).i32(0).i32(0).u32(0);
    }

    /// `Image *src_bitmap; Rect src_area`: an unscaled source is cropped to the part the
    /// drawing reads (a scaled one is not: interpolation reads pixels around the area).
    fn source(&mut self, src: &Source, dest: &Rect) -> Result<(), NotForwardable> {
        let Image::Pixels(pixels) = &src.image else {
            return Err(NotForwardable::SurfaceSource);
        };
        let at = self.pointer();
        let a = &src.area;
        let crop = (a.left >= 0
            && a.top >= 0
            && a.right as u32 <= pixels.width
            && a.bottom as u32 <= pixels.height
            && a.left < a.right
            && a.top < a.bottom
            && a.right - a.left == dest.right - dest.left
            && a.bottom - a.top == dest.bottom - dest.top)
            .then_some(*a);
        match crop {
            Some(area) => {
                rect(
                    &mut self.w,
                    &Rect {
                        top: 0,
                        left: 0,
                        bottom: area.bottom - area.top,
                        right: area.right - area.left,
                    },
                );
                self.queue_image(at, pixels, Some(area));
            }
            None => {
                rect(&mut self.w, a);
                self.queue_image(at, pixels, None);
            }
        }
        Ok(())
    }

    fn brush(&mut self, brush: &Brush) -> Result<(), NotForwardable> {
        self.brush_decoded_or_not(brush, false)
    }

    /// A brush the client's canvas may leave undecoded (see `DrawImage`).
    fn skippable_brush(&mut self, brush: &Brush) -> Result<(), NotForwardable> {
        self.brush_decoded_or_not(brush, true)
    }

    fn brush_decoded_or_not(
        &mut self,
        brush: &Brush,
        maybe_undecoded: bool,
    ) -> Result<(), NotForwardable> {
        match brush {
            Brush::None => {
                self.w.u8(0);
            }
            Brush::Solid(color) => {
                self.w.u8(1).u32(*color);
            }
            Brush::Pattern { image, x, y } => {
                let Image::Pixels(pixels) = image else {
                    return Err(NotForwardable::SurfaceSource);
                };
                self.w.u8(2);
                let at = self.pointer();
                self.w.i32(*x).i32(*y);
                self.queue_image(at, pixels, None);
                if let Some(image) = self.images.last_mut() {
                    image.maybe_undecoded = maybe_undecoded;
                }
            }
        }
        Ok(())
    }

    fn queue_image(&mut self, pointer_at: usize, pixels: &Pixels, crop: Option<Rect>) {
        let (data, width, height) = match crop {
            Some(a) => {
                let (w, h) = ((a.right - a.left) as u32, (a.bottom - a.top) as u32);
                let mut out = Vec::with_capacity(w as usize * h as usize);
                for y in a.top as u32..a.bottom as u32 {
                    let start = (y * pixels.width + a.left as u32) as usize;
                    out.extend_from_slice(&pixels.data[start..start + w as usize]);
                }
                (out, w, h)
            }
            None => (pixels.data.clone(), pixels.width, pixels.height),
        };
        self.images.push(PendingImage {
            pointer_at,
            pixels: data,
            width,
            height,
            alpha: pixels.alpha,
            maybe_undecoded: false,
        });
    }

    fn flush_images(&mut self) {
        for image in std::mem::take(&mut self.images) {
            self.set_pointer(image.pointer_at);
            let start = self.w.len();
            let (id, lz4) = self.write_image(&image);
            self.written.push(DrawImage {
                pointer_at: image.pointer_at,
                bytes: start..self.w.len(),
                id,
                width: image.width,
                height: image.height,
                alpha: image.alpha,
                pixels: image.pixels,
                lz4,
                maybe_undecoded: image.maybe_undecoded,
            });
        }
    }

    /// Image descriptor + 32-bit bitmap (raw) or LZ4 data; returns the image's id and
    /// whether it went LZ4.
    fn write_image(&mut self, image: &PendingImage) -> (u64, bool) {
        let format = if image.alpha {
            BITMAP_FMT_RGBA
        } else {
            BITMAP_FMT_32BIT
        };
        let bytes: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
        let id = NEXT_IMAGE_ID.fetch_add(1, Ordering::Relaxed);
        self.w.u64(id);
        if bytes.len() <= RAW_IMAGE_MAX {
            self.w
                .u8(IMAGE_TYPE_BITMAP)
                .u8(0)
                .u32(image.width)
                .u32(image.height);
            self.w.u8(format).u8(BITMAP_FLAGS_TOP_DOWN);
            self.w
                .u32(image.width)
                .u32(image.height)
                .u32(image.width * 4)
                .u32(0);
            self.w.bytes(&bytes);
            (id, false)
        } else {
            let block = lz4_flex::block::compress(&bytes);
            self.w
                .u8(IMAGE_TYPE_LZ4)
                .u8(0)
                .u32(image.width)
                .u32(image.height);
            self.w.u32(block.len() as u32 + 6).u8(1).u8(format);
            self.w
                .bytes(&(block.len() as u32).to_be_bytes())
                .bytes(&block);
            (id, true)
        }
    }

    /// `Path`: u32 segment count, then each segment inline: u8 flags, u32 point count,
    /// points as 28.4 fixed (x, y), as the guest sent them.
    fn path(&mut self, path: &[PathSeg]) {
        self.w.u32(path.len() as u32);
        for seg in path {
            self.w.u8(seg.flags as u8).u32(seg.points.len() as u32);
            for &(x, y) in &seg.points {
                self.w.i32(x).i32(y);
            }
        }
    }

    /// `String`: u16 glyph count, u8 raster flags, then each glyph inline: render_pos,
    /// glyph_origin (Points), u16 width, u16 height, rows of `bpp`-bit coverage. The
    /// parsed coverage is bottom-up (as spice's canvas reads the rows); the wire keeps the
    /// guest's order.
    fn string(&mut self, glyphs: &[Glyph], bpp: u8) -> Result<(), NotForwardable> {
        let flags = match bpp {
            1 => STRING_RASTER_A1,
            4 => STRING_RASTER_A4,
            8 => STRING_RASTER_A8,
            _ => return Err(NotForwardable::Style),
        };
        self.w.u16(glyphs.len() as u16).u8(flags);
        for g in glyphs {
            self.w.i32(g.x).i32(g.y).i32(0).i32(0);
            self.w.u16(g.width as u16).u16(g.height as u16);
            let w = g.width as usize;
            let row_bytes = (w * bpp as usize).div_ceil(8);
            for y in (0..g.height as usize).rev() {
                let coverage = &g.coverage[y * w..(y + 1) * w];
                let mut row = vec![0u8; row_bytes];
                for (x, &c) in coverage.iter().enumerate() {
                    match bpp {
                        1 => row[x / 8] |= u8::from(c != 0) << (7 - x % 8),
                        4 => row[x / 2] |= (c >> 4) << (4 * (1 - x % 2)),
                        _ => row[x] = c,
                    }
                }
                self.w.bytes(&row);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
