//! `QXLDrawable` (native and compat) parsed into an owned, validated drawing operation.

use super::command::{GuestMemory, ParseError};
use super::image::{
    guest_bitmap, parse_image, read_chunks, u16_at, u32_at, u64_at, GuestBitmap, Image, Pixels,
};
use crate::geometry::Rect;

const NATIVE_SIZE: usize = 191;
/// `SPICE_IMAGE_SCALE_MODE_NEAREST`: spice-common scales alpha blends and transparent
/// copies this way whatever the drawing says.
const SCALE_NEAREST: u8 = 1;
const COMPAT_SIZE: usize = 128;
/// Most clip rectangles / path points / glyphs accepted in one drawable.
const MAX_ITEMS: u32 = 65536;
/// Largest glyph string accepted, in bytes.
const MAX_STRING_BYTES: usize = 1 << 20;
/// Largest glyph accepted, in pixels.
const MAX_GLYPH_PIXELS: u32 = 1 << 16;

/// `QXL_DRAW_*`.
pub(crate) mod kind {
    pub(crate) const NOP: u8 = 0;
    pub(crate) const FILL: u8 = 1;
    pub(crate) const OPAQUE: u8 = 2;
    pub(crate) const COPY: u8 = 3;
    pub(crate) const COPY_BITS: u8 = 4;
    pub(crate) const BLEND: u8 = 5;
    pub(crate) const BLACKNESS: u8 = 6;
    pub(crate) const WHITENESS: u8 = 7;
    pub(crate) const INVERS: u8 = 8;
    pub(crate) const ROP3: u8 = 9;
    pub(crate) const STROKE: u8 = 10;
    pub(crate) const TEXT: u8 = 11;
    pub(crate) const TRANSPARENT: u8 = 12;
    pub(crate) const ALPHA_BLEND: u8 = 13;
    pub(crate) const COMPOSITE: u8 = 14;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Brush {
    None,
    Solid(u32),
    Pattern { image: Image, x: i32, y: i32 },
}

/// A 1-bpp mask (`QXLQMask`): where it is 0 (1 when inverted) nothing is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mask {
    pub invert: bool,
    pub x: i32,
    pub y: i32,
    pub bits: Pixels,
}

/// A source image and the part of it to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub image: Image,
    pub area: Rect,
    /// `SPICE_IMAGE_SCALE_MODE_*` when `area` and the destination differ in size.
    pub scale_mode: u8,
}

/// `SPICE_PATH_*` flags of a path segment.
pub(crate) mod path_flags {
    pub(crate) const BEGIN: u32 = 1;
    pub(crate) const END: u32 = 2;
    pub(crate) const CLOSE: u32 = 8;
    pub(crate) const BEZIER: u32 = 16;
}

/// `SPICE_LINE_FLAGS_*`.
pub(crate) mod line_flags {
    pub(crate) const START_WITH_GAP: u8 = 1 << 2;
    pub(crate) const STYLED: u8 = 1 << 3;
}

/// One segment of a stroke's path: `SPICE_PATH_*` flags and 28.4 fixed-point points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathSeg {
    pub flags: u32,
    pub points: Vec<(i32, i32)>,
}

/// One glyph of a text string, as the canvas's coverage mask (0..=255 per pixel; 1-bit
/// glyphs 0 or 255, 4-bit ones v << 4), rows bottom-up as the canvas reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glyph {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub coverage: Vec<u8>,
    /// 8-bit glyphs only: the row spice-common's canvas shows on top. It reads an 8-bit
    /// glyph's rows one row late (its top row is the `width` bytes after the glyph's
    /// data, its data's first row is never shown): these are those bytes as spice-server
    /// lays the string out (the next glyphs' headers and data; 0 for its unset padding
    /// and past the string's end, where it reads whatever the heap holds).
    pub a8_top: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Nop,
    Fill {
        brush: Brush,
        rop: u16,
        mask: Option<Mask>,
    },
    Opaque {
        src: Source,
        brush: Brush,
        rop: u16,
        mask: Option<Mask>,
    },
    Copy {
        src: Source,
        rop: u16,
        mask: Option<Mask>,
    },
    Blend {
        src: Source,
        rop: u16,
        mask: Option<Mask>,
    },
    Blackness {
        mask: Option<Mask>,
    },
    Whiteness {
        mask: Option<Mask>,
    },
    Invers {
        mask: Option<Mask>,
    },
    CopyBits {
        x: i32,
        y: i32,
    },
    Rop3 {
        src: Source,
        brush: Brush,
        rop3: u8,
        mask: Option<Mask>,
    },
    Stroke {
        /// The guest's path segments as it sent them (28.4 fixed point).
        path: Vec<PathSeg>,
        brush: Brush,
        fore_mode: u16,
        back_mode: u16,
        width: i32,
        /// `SPICE_LINE_FLAGS_*` (STYLED, START_WITH_GAP).
        attr_flags: u8,
        /// Dash lengths (28.4 fixed point) when STYLED.
        style: Vec<i32>,
    },
    Text {
        glyphs: Vec<Glyph>,
        /// Bits per coverage value in the guest's string: 1, 4 or 8.
        glyph_bpp: u8,
        back_area: Rect,
        fore: Brush,
        back: Brush,
        fore_mode: u16,
        back_mode: u16,
    },
    Transparent {
        src: Source,
        color: u32,
    },
    AlphaBlend {
        src: Source,
        alpha: u8,
        src_has_alpha: bool,
        /// `SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA`: an xRGB destination's X byte is alpha, and
        /// spice-common leaves the blended alpha there (no `clear_dest_alpha`).
        dest_has_alpha: bool,
    },
    Composite {
        flags: u32,
        src: Image,
        mask: Option<Image>,
        src_origin: (i32, i32),
        mask_origin: (i32, i32),
        /// 16.16 affine transforms (t00 t01 t02 t10 t11 t12) applied to sample positions.
        src_transform: Option<[i32; 6]>,
        mask_transform: Option<[i32; 6]>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draw {
    pub surface_id: u32,
    /// Surfaces the drawing reads (`surfaces_dest`, -1 = unused).
    pub depends_on: Vec<u32>,
    pub bbox: Rect,
    /// `None`: no clip; otherwise draw only inside these rectangles.
    pub clip: Option<Vec<Rect>>,
    pub op: Op,
}

fn rect_at(b: &[u8], o: usize) -> Rect {
    Rect {
        top: u32_at(b, o) as i32,
        left: u32_at(b, o + 4) as i32,
        bottom: u32_at(b, o + 8) as i32,
        right: u32_at(b, o + 12) as i32,
    }
}

/// `area` is a non-empty rectangle inside `image` (surfaces are checked when resolved).
pub(crate) fn area_fits(area: &Rect, image: &Image) -> bool {
    let ordered =
        area.left >= 0 && area.top >= 0 && area.left < area.right && area.top < area.bottom;
    match image {
        Image::Pixels(p) => {
            ordered && area.right as u32 <= p.width && area.bottom as u32 <= p.height
        }
        Image::Surface(_) => ordered,
    }
}

struct Parser<'a> {
    mem: &'a dyn GuestMemory,
    group: u32,
}

impl Parser<'_> {
    /// `QXLBrush`: u32 type, then a 16-byte union (u32 colour | u64 pattern image,
    /// i32 x, i32 y): 20 bytes.
    fn brush(&self, b: &[u8], o: usize) -> Result<Brush, ParseError> {
        Ok(match u32_at(b, o) {
            0 => Brush::None,
            1 => Brush::Solid(u32_at(b, o + 4)),
            2 => Brush::Pattern {
                image: parse_image(self.mem, self.group, u64_at(b, o + 4))?,
                x: u32_at(b, o + 12) as i32,
                y: u32_at(b, o + 16) as i32,
            },
            _ => return Err(ParseError::Invalid("brush type")),
        })
    }

    fn mask(&self, b: &[u8], o: usize) -> Result<Option<Mask>, ParseError> {
        let address = u64_at(b, o + 9);
        if address == 0 {
            return Ok(None);
        }
        let Image::Pixels(bits) = parse_image(self.mem, self.group, address)? else {
            return Err(ParseError::Unsupported("surface as a mask"));
        };
        Ok(Some(Mask {
            invert: b[o] & 1 != 0,
            x: u32_at(b, o + 1) as i32,
            y: u32_at(b, o + 5) as i32,
            bits,
        }))
    }

    /// A source image and its area, which must lie inside the image (spice-server drops
    /// the drawing otherwise).
    fn source(
        &self,
        b: &[u8],
        image_at: usize,
        area_at: usize,
        scale_mode: u8,
    ) -> Result<Source, ParseError> {
        let image = parse_image(self.mem, self.group, u64_at(b, image_at))?;
        let area = rect_at(b, area_at);
        if !area_fits(&area, &image) {
            return Err(ParseError::Invalid("source area outside its image"));
        }
        Ok(Source {
            image,
            area,
            scale_mode,
        })
    }

    /// A source whose area may reach past its image (ALPHA_BLEND: the C server accepts any
    /// area and pixman reads transparent pixels outside the image).
    fn source_any_area(
        &self,
        b: &[u8],
        image_at: usize,
        area_at: usize,
        scale_mode: u8,
    ) -> Result<Source, ParseError> {
        Ok(Source {
            image: parse_image(self.mem, self.group, u64_at(b, image_at))?,
            area: rect_at(b, area_at),
            scale_mode,
        })
    }

    fn clip(&self, b: &[u8], o: usize) -> Result<Option<Vec<Rect>>, ParseError> {
        if u32_at(b, o) == 0 {
            return Ok(None);
        }
        let address = u64_at(b, o + 4);
        let head = self.mem.read(self.group, address, 4)?;
        let n = u32_at(&head, 0);
        if n > MAX_ITEMS {
            return Err(ParseError::Invalid("clip rectangle count"));
        }
        let raw = read_chunks(self.mem, self.group, address + 4, n as usize * 16)?;
        Ok(Some(
            (0..n as usize).map(|i| rect_at(&raw, 16 * i)).collect(),
        ))
    }

    /// The path's segments as the guest wrote them (spice-server reads a segment while
    /// more than its 8-byte header remains).
    fn path(&self, address: u64) -> Result<Vec<PathSeg>, ParseError> {
        let head = self.mem.read(self.group, address, 4)?;
        let size = u32_at(&head, 0) as usize;
        if size > (MAX_ITEMS as usize) * 8 {
            return Err(ParseError::Invalid("path size"));
        }
        let raw = read_chunks(self.mem, self.group, address + 4, size)?;
        let mut segments = vec![];
        let mut at = 0;
        while at + 8 < raw.len() {
            let flags = u32_at(&raw, at);
            let count = u32_at(&raw, at + 4) as usize;
            at += 8;
            if count > MAX_ITEMS as usize || at + count * 8 > raw.len() {
                return Err(ParseError::Invalid("path segment"));
            }
            let points = (0..count)
                .map(|i| {
                    (
                        u32_at(&raw, at + 8 * i) as i32,
                        u32_at(&raw, at + 8 * i + 4) as i32,
                    )
                })
                .collect();
            at += count * 8;
            segments.push(PathSeg { flags, points });
        }
        Ok(segments)
    }

    /// A styled line's dash lengths (28.4 fixed point).
    fn style(&self, b: &[u8], attr: usize) -> Result<Vec<i32>, ParseError> {
        if b[attr] & line_flags::STYLED == 0 {
            return Ok(vec![]);
        }
        let n = usize::from(b[attr + 3]);
        let address = u64_at(b, attr + 12);
        if n == 0 || address == 0 {
            return Err(ParseError::Invalid("line style"));
        }
        let raw = self.mem.read(self.group, address, n * 4)?;
        Ok((0..n).map(|i| u32_at(&raw, 4 * i) as i32).collect())
    }

    fn glyphs(&self, address: u64) -> Result<(Vec<Glyph>, u8), ParseError> {
        let head = self.mem.read(self.group, address, 8)?;
        let size = u32_at(&head, 0) as usize;
        let (count, flags) = (u16_at(&head, 4), u16_at(&head, 6));
        if size > MAX_STRING_BYTES {
            return Err(ParseError::Invalid("string size"));
        }
        let raw = read_chunks(self.mem, self.group, address + 8, size)?;
        let bpp = match flags & 0x7 {
            1 => 1,
            2 => 4,
            4 => 8,
            _ => return Err(ParseError::Unsupported("glyph format")),
        };
        let mut glyphs = Vec::with_capacity(usize::from(count));
        // spice-server's copy of the string (8-bit glyphs read past their data into it).
        let mut layout: Vec<u8> = vec![];
        let mut data_ends = vec![];
        let mut at = 0;
        for _ in 0..count {
            if at + 20 > raw.len() {
                return Err(ParseError::Invalid("glyph"));
            }
            let (rx, ry) = (u32_at(&raw, at) as i32, u32_at(&raw, at + 4) as i32);
            let (ox, oy) = (u32_at(&raw, at + 8) as i32, u32_at(&raw, at + 12) as i32);
            let (w, h) = (
                u32::from(u16_at(&raw, at + 16)),
                u32::from(u16_at(&raw, at + 18)),
            );
            if w * h > MAX_GLYPH_PIXELS {
                return Err(ParseError::Invalid("glyph size"));
            }
            at += 20;
            let row = (w as usize * bpp).div_ceil(8);
            let len = row * h as usize;
            let data = raw
                .get(at..at + len)
                .ok_or(ParseError::Invalid("glyph data"))?;
            if bpp == 8 {
                layout.extend_from_slice(&raw[at - 20..at + len]);
                data_ends.push(layout.len());
                layout.resize(layout.len().next_multiple_of(4), 0);
            }
            at += len;
            let mut coverage = Vec::with_capacity(w as usize * h as usize);
            // spice's canvas draws glyph rows bottom-up whatever the flags say.
            for y in (0..h as usize).rev() {
                let r = &data[y * row..(y + 1) * row];
                let w = w as usize;
                match bpp {
                    // Eight pixels a byte: one branch per byte, not per pixel.
                    1 => r.iter().enumerate().for_each(|(i, &byte)| {
                        let n = (w - 8 * i).min(8);
                        coverage.extend((0..n).map(|b| 255 * ((byte >> (7 - b)) & 1)));
                    }),
                    // spice-common's mask keeps a 4-bit value v as v << 4.
                    4 => coverage.extend((0..w).map(|x| (r[x / 2] << (4 * (x % 2))) & 0xf0)),
                    _ => coverage.extend_from_slice(&r[..w]),
                }
            }
            glyphs.push(Glyph {
                x: rx + ox,
                y: ry + oy,
                width: w,
                height: h,
                coverage,
                a8_top: vec![],
            });
        }
        for (g, end) in glyphs.iter_mut().zip(data_ends) {
            let w = g.width as usize;
            g.a8_top = (end..end + w)
                .map(|i| layout.get(i).copied().unwrap_or(0))
                .collect();
        }
        Ok((glyphs, bpp as u8))
    }
}

/// The fields every drawable starts with (native or compat layout), and where its clip
/// and its type's own fields lie in `bytes`.
struct Header {
    bytes: Vec<u8>,
    compat: bool,
    draw_type: u8,
    surface_id: u32,
    bbox: Rect,
    clip_at: usize,
    body_at: usize,
}

fn read_header(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    compat: bool,
) -> Result<Header, ParseError> {
    let bytes = mem.read(
        group,
        address,
        if compat { COMPAT_SIZE } else { NATIVE_SIZE },
    )?;
    let (draw_type, surface_id, bbox_at, clip_at, body_at) = if compat {
        (bytes[9], 0, 28, 44, 60)
    } else {
        (bytes[13], u32_at(&bytes, 8), 31, 47, 123)
    };
    Ok(Header {
        bbox: rect_at(&bytes, bbox_at),
        bytes,
        compat,
        draw_type,
        surface_id,
        clip_at,
        body_at,
    })
}

impl Header {
    /// The surfaces the drawing reads (none in the compat layout).
    fn depends_on(&self) -> Vec<u32> {
        if self.compat {
            return vec![];
        }
        (0..3)
            .map(|i| u32_at(&self.bytes, 63 + 4 * i) as i32)
            .filter(|&s| s != -1)
            .map(|s| s as u32)
            .collect()
    }
}

/// Parses the drawable of a DRAW command. `compat`: `QXL_COMMAND_FLAG_COMPAT` (old
/// drivers' layout: no surface ids, alpha blend without flags).
pub(crate) fn parse(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    compat: bool,
) -> Result<Draw, ParseError> {
    let p = Parser { mem, group };
    let header = read_header(mem, group, address, compat)?;
    let depends_on = header.depends_on();
    let Header {
        bytes: b,
        draw_type,
        surface_id,
        bbox,
        clip_at,
        body_at: u,
        ..
    } = header;
    let clip = p.clip(&b, clip_at)?;
    let op = match draw_type {
        kind::NOP => Op::Nop,
        kind::FILL => Op::Fill {
            brush: p.brush(&b, u)?,
            rop: u16_at(&b, u + 20),
            mask: p.mask(&b, u + 22)?,
        },
        kind::OPAQUE => Op::Opaque {
            src: p.source(&b, u, u + 8, b[u + 46])?,
            brush: p.brush(&b, u + 24)?,
            rop: u16_at(&b, u + 44),
            mask: p.mask(&b, u + 47)?,
        },
        kind::COPY | kind::BLEND => {
            let (src, rop, mask) = (
                p.source(&b, u, u + 8, b[u + 26])?,
                u16_at(&b, u + 24),
                p.mask(&b, u + 27)?,
            );
            if draw_type == kind::COPY {
                Op::Copy { src, rop, mask }
            } else {
                Op::Blend { src, rop, mask }
            }
        }
        kind::BLACKNESS => Op::Blackness {
            mask: p.mask(&b, u)?,
        },
        kind::WHITENESS => Op::Whiteness {
            mask: p.mask(&b, u)?,
        },
        kind::INVERS => Op::Invers {
            mask: p.mask(&b, u)?,
        },
        kind::COPY_BITS => Op::CopyBits {
            x: u32_at(&b, u) as i32,
            y: u32_at(&b, u + 4) as i32,
        },
        kind::ROP3 => Op::Rop3 {
            src: p.source(&b, u, u + 8, b[u + 45])?,
            brush: pattern_origin_before(p.brush(&b, u + 24)?, &bbox),
            rop3: b[u + 44],
            mask: p.mask(&b, u + 46)?,
        },
        kind::STROKE => Op::Stroke {
            path: p.path(u64_at(&b, u))?,
            width: u32_at(&b, u + 12) as i32,
            attr_flags: b[u + 8],
            style: p.style(&b, u + 8)?,
            brush: p.brush(&b, u + 28)?,
            fore_mode: u16_at(&b, u + 48),
            back_mode: u16_at(&b, u + 50),
        },
        kind::TEXT => {
            let (glyphs, glyph_bpp) = p.glyphs(u64_at(&b, u))?;
            Op::Text {
                glyphs,
                glyph_bpp,
                back_area: rect_at(&b, u + 8),
                fore: p.brush(&b, u + 24)?,
                back: p.brush(&b, u + 44)?,
                fore_mode: u16_at(&b, u + 64),
                back_mode: u16_at(&b, u + 66),
            }
        }
        kind::TRANSPARENT => Op::Transparent {
            src: p.source(&b, u, u + 8, SCALE_NEAREST)?,
            color: u32_at(&b, u + 24),
        },
        kind::ALPHA_BLEND if compat => Op::AlphaBlend {
            alpha: b[u],
            src: p.source_any_area(&b, u + 1, u + 9, SCALE_NEAREST)?,
            src_has_alpha: false,
            dest_has_alpha: false,
        },
        kind::ALPHA_BLEND => {
            let flags = u16_at(&b, u);
            Op::AlphaBlend {
                alpha: b[u + 2],
                src: p.source_any_area(&b, u + 3, u + 11, SCALE_NEAREST)?,
                src_has_alpha: flags & 2 != 0,
                dest_has_alpha: flags & 1 != 0,
            }
        }
        kind::COMPOSITE if !compat => {
            let transform = |at: usize| -> Result<Option<[i32; 6]>, ParseError> {
                let address = u64_at(&b, at);
                if address == 0 {
                    return Ok(None);
                }
                let t = mem.read(group, address, 24)?;
                Ok(Some(std::array::from_fn(|i| u32_at(&t, 4 * i) as i32)))
            };
            let (src_transform, mask_transform) = (transform(u + 12)?, transform(u + 28)?);
            let mask_address = u64_at(&b, u + 20);
            let point = |o: usize| {
                (
                    i32::from(u16_at(&b, o) as i16),
                    i32::from(u16_at(&b, o + 2) as i16),
                )
            };
            Op::Composite {
                flags: u32_at(&b, u),
                src: parse_image(mem, group, u64_at(&b, u + 4))?,
                mask: if mask_address == 0 {
                    None
                } else {
                    Some(parse_image(mem, group, mask_address)?)
                },
                src_origin: point(u + 36),
                mask_origin: point(u + 40),
                src_transform,
                mask_transform,
            }
        }
        _ => return Err(ParseError::Invalid("draw type")),
    };
    Ok(Draw {
        surface_id,
        depends_on,
        bbox,
        clip,
        op,
    })
}

/// A COPY that puts a bitmap unscaled and without mask (`render`'s plain copy): the
/// video path, drawn straight from guest memory (`canvas::put_image_rows`) instead of
/// being decoded into a `Draw` first.
#[derive(Debug)]
pub(crate) struct GuestCopy {
    pub surface_id: u32,
    pub depends_on: Vec<u32>,
    pub bbox: Rect,
    pub clip: Option<Vec<Rect>>,
    pub area: Rect,
    pub bitmap: GuestBitmap,
}

/// The drawable at `address` as a `GuestCopy` when it is one; `None` for every other
/// drawing (`parse` takes those). Checks what `parse` checks for it, so a drawing
/// `parse` refuses is refused here with the same error.
pub(crate) fn parse_guest_copy(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    compat: bool,
) -> Result<Option<GuestCopy>, ParseError> {
    let header = read_header(mem, group, address, compat)?;
    let depends_on = header.depends_on();
    let Header {
        bytes: b,
        draw_type,
        surface_id,
        bbox,
        clip_at,
        body_at: u,
        ..
    } = header;
    let area = rect_at(&b, u + 8);
    let plain = draw_type == kind::COPY
        && u16_at(&b, u + 24) == crate::proto::display::ROPD_OP_PUT
        && u64_at(&b, u + 27 + 9) == 0
        && i64::from(area.right) - i64::from(area.left)
            == i64::from(bbox.right) - i64::from(bbox.left)
        && i64::from(area.bottom) - i64::from(area.top)
            == i64::from(bbox.bottom) - i64::from(bbox.top);
    if !plain {
        return Ok(None);
    }
    let p = Parser { mem, group };
    let clip = p.clip(&b, clip_at)?;
    let Some(bitmap) = guest_bitmap(mem, group, u64_at(&b, u))? else {
        return Ok(None);
    };
    let ordered =
        area.left >= 0 && area.top >= 0 && area.left < area.right && area.top < area.bottom;
    if !(ordered && area.right as u32 <= bitmap.width && area.bottom as u32 <= bitmap.height) {
        return Err(ParseError::Invalid("source area outside its image"));
    }
    Ok(Some(GuestCopy {
        surface_id,
        depends_on,
        bbox,
        clip,
        area,
        bitmap,
    }))
}

/// `QXL_SURF_FLAG_KEEP_DATA`: the surface's memory already holds its pixels.
pub(crate) const SURF_FLAG_KEEP_DATA: u32 = 1;

/// A `QXLSurfaceCmd`: create (format, size, stride, memory, flags) or destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SurfaceCommand {
    Create {
        id: u32,
        format: u32,
        width: u32,
        height: u32,
        stride: i32,
        data: u64,
        /// `QXL_SURF_FLAG_*`.
        flags: u32,
    },
    Destroy {
        id: u32,
    },
}

pub(crate) fn parse_surface_command(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<SurfaceCommand, ParseError> {
    let b = mem.read(group, address, 41)?;
    let id = u32_at(&b, 8);
    Ok(match b[12] {
        0 => SurfaceCommand::Create {
            id,
            format: u32_at(&b, 17),
            width: u32_at(&b, 21),
            height: u32_at(&b, 25),
            stride: u32_at(&b, 29) as i32,
            data: u64_at(&b, 33),
            flags: u32_at(&b, 13),
        },
        1 => SurfaceCommand::Destroy { id },
        _ => return Err(ParseError::Invalid("surface command type")),
    })
}

/// A ROP3 pattern whose origin lies right of or below the box moved, by whole pattern
/// sizes, to the box's left and top: the same tiling, but spice-common's rop3.c starts
/// the pattern at `(box - origin) % size`, negative then (C's remainder), and reads
/// memory outside the pattern (garbage: the C server's rendering changes from run to run
/// and spice-gtk's differs from it). Forwarded this way, clients draw the tiling we draw.
fn pattern_origin_before(brush: Brush, bbox: &Rect) -> Brush {
    match brush {
        Brush::Pattern {
            image: Image::Pixels(p),
            x,
            y,
        } if p.width > 0 && p.height > 0 => {
            let before = |start: i32, origin: i32, size: u32| -> i32 {
                let offset = (i64::from(start) - i64::from(origin)).rem_euclid(i64::from(size));
                // Within i32: start - offset with 0 <= offset < size <= i32::MAX.
                (i64::from(start) - offset).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            };
            Brush::Pattern {
                x: before(bbox.left, x, p.width),
                y: before(bbox.top, y, p.height),
                image: Image::Pixels(p),
            }
        }
        other => other,
    }
}

impl Op {
    /// Every image the operation reads (sources, patterns; masks are always bitmaps).
    pub(crate) fn images_mut(&mut self) -> Vec<&mut Image> {
        fn brush(b: &mut Brush) -> Option<&mut Image> {
            match b {
                Brush::Pattern { image, .. } => Some(image),
                _ => None,
            }
        }
        match self {
            Op::Fill { brush: b, .. } => brush(b).into_iter().collect(),
            Op::Opaque { src, brush: b, .. } | Op::Rop3 { src, brush: b, .. } => {
                std::iter::once(&mut src.image).chain(brush(b)).collect()
            }
            Op::Copy { src, .. }
            | Op::Blend { src, .. }
            | Op::Transparent { src, .. }
            | Op::AlphaBlend { src, .. } => {
                vec![&mut src.image]
            }
            Op::Stroke { brush: b, .. } => brush(b).into_iter().collect(),
            Op::Text { fore, back, .. } => brush(fore).into_iter().chain(brush(back)).collect(),
            Op::Composite { src, mask, .. } => std::iter::once(src).chain(mask.as_mut()).collect(),
            Op::Nop
            | Op::Blackness { .. }
            | Op::Whiteness { .. }
            | Op::Invers { .. }
            | Op::CopyBits { .. } => vec![],
        }
    }
}

#[cfg(test)]
mod pattern_origin_tests {
    use super::*;

    #[test]
    fn a_rop3_pattern_origin_right_of_or_below_the_box_moves_before_it() {
        let pattern = |x, y| Brush::Pattern {
            image: Image::Pixels(Pixels {
                width: 4,
                height: 3,
                data: vec![0; 12],
                alpha: false,
                format: 8,
            }),
            x,
            y,
        };
        let bbox = Rect {
            top: 10,
            left: 20,
            bottom: 15,
            right: 30,
        };
        let origin = |b: Brush| match b {
            Brush::Pattern { x, y, .. } => (x, y),
            _ => unreachable!(),
        };
        // 25 = 20 + 5 -> 25 - 2*4 = 17; 11 = 10 + 1 -> 11 - 3 = 8: same tiling, before the box.
        assert_eq!(
            origin(pattern_origin_before(pattern(25, 11), &bbox)),
            (17, 8)
        );
        // Already left of and above: kept modulo the size (the tiling does not change).
        assert_eq!(
            origin(pattern_origin_before(pattern(20, 10), &bbox)),
            (20, 10)
        );
        assert_eq!(
            origin(pattern_origin_before(pattern(-7, 2), &bbox)),
            (17, 8)
        );
        assert_eq!(
            origin(pattern_origin_before(pattern(i32::MAX, i32::MIN), &bbox)),
            (19, 10)
        );
    }
}
