//! DRAW_TEXT as spice-common's software canvas draws it: the back area filled with the
//! back brush (a plain copy whatever back_mode says; black for a NONE brush), then the
//! glyphs gathered into one mask (overlaps keep the larger coverage, but see the 4-bit
//! quirk below; a 4-bit value v is v << 4, so full coverage is 240; 8-bit glyphs are read
//! one row late) and the fore brush composited OVER the destination through it (a pattern
//! anchored at the mask's corner). fore_mode is not used, except that a back area with
//! any fore_mode but PUT makes the canvas give up on the whole drawing.

use super::framebuffer::Framebuffer;
use super::{brush_at, get_at, over, put_at, rop::OP_PUT, targets};
use crate::geometry::Rect;
use crate::qxl::draw::{Brush, Draw, Glyph};
use crate::qxl::image::Pixels;

/// Most glyph pixels one text drawing may visit (the parser's limits allow 8 Mi).
const MAX_GLYPH_PIXELS: u64 = 1 << 24;

/// What a text drawing paints with.
pub(super) struct TextPaint<'a> {
    pub back_area: &'a Rect,
    pub back: &'a Brush,
    pub back_pattern: Option<&'a Pixels>,
    pub fore: &'a Brush,
    pub fore_pattern: Option<&'a Pixels>,
    pub fore_mode: u16,
}

/// The glyphs' bounding box (spice-common's mask: zero-sized glyphs count too).
fn glyph_bounds(glyphs: &[Glyph]) -> Option<(i64, i64, i64, i64)> {
    glyphs.iter().fold(None, |acc, g| {
        let (l, t) = (i64::from(g.x), i64::from(g.y));
        let (r, b) = (l + i64::from(g.width), t + i64::from(g.height));
        Some(match acc {
            None => (l, t, r, b),
            Some((al, at, ar, ab)) => (al.min(l), at.min(t), ar.max(r), ab.max(b)),
        })
    })
}

/// Row `y` (from the top) of a glyph's coverage as the canvas shows it.
fn glyph_row(g: &Glyph, bpp: u8, y: usize) -> &[u8] {
    let w = g.width as usize;
    match (bpp, y) {
        (8, 0) => &g.a8_top,
        (8, y) => &g.coverage[(y - 1) * w..y * w],
        (_, y) => &g.coverage[y * w..(y + 1) * w],
    }
}

pub(super) fn draw_text(
    fb: &mut Framebuffer,
    draw: &Draw,
    glyphs: &[Glyph],
    bpp: u8,
    paint: &TextPaint,
) {
    let clip = targets(fb, &draw.bbox, &draw.clip);
    if clip.is_empty() {
        return;
    }
    let stride = fb.stride();
    let back = paint.back_area;
    if back.top != back.bottom && back.left != back.right {
        if paint.fore_mode != OP_PUT {
            crate::log_warn!("text with a back area and a fore_mode other than PUT dropped");
            return;
        }
        let pixels = fb.pixels_mut();
        for a in clip.areas() {
            let (l, r) = (
                i64::from(a.left).max(i64::from(back.left)),
                i64::from(a.right).min(i64::from(back.right)),
            );
            let (t, b) = (
                i64::from(a.top).max(i64::from(back.top)),
                i64::from(a.bottom).min(i64::from(back.bottom)),
            );
            for y in t..b {
                for x in l..r {
                    let (x, y) = (x as u32, y as u32);
                    // A NONE back brush fills black, as the canvas does.
                    let c = match paint.back {
                        Brush::None => Some(0),
                        b => brush_at(b, paint.back_pattern, x, y),
                    };
                    if let Some(c) = c {
                        put_at(pixels, y as usize * stride + x as usize * 4, c);
                    }
                }
            }
        }
    }
    if matches!(paint.fore, Brush::None) {
        return;
    }
    let Some((bl, bt, br, bb)) = glyph_bounds(glyphs) else {
        return;
    };
    // The part of the mask that can reach the destination.
    let e = clip.extents();
    let (ml, mt) = (bl.max(i64::from(e.left)), bt.max(i64::from(e.top)));
    let (mr, mb) = (br.min(i64::from(e.right)), bb.min(i64::from(e.bottom)));
    if ml >= mr || mt >= mb {
        return;
    }
    let mw = (mr - ml) as usize;
    let mut mask = vec![0u8; mw * (mb - mt) as usize];
    let mut budget = MAX_GLYPH_PIXELS;
    for (n, g) in glyphs.iter().enumerate() {
        let cost = u64::from(g.width) * u64::from(g.height);
        if cost > budget {
            crate::log_warn!(
                "text drawing cut after {n} of {} glyphs: over {MAX_GLYPH_PIXELS} glyph pixels",
                glyphs.len()
            );
            break;
        }
        budget -= cost;
        let (gx, gy) = (i64::from(g.x), i64::from(g.y));
        let (l, r) = (gx.max(ml), (gx + i64::from(g.width)).min(mr));
        let (t, b) = (gy.max(mt), (gy + i64::from(g.height)).min(mb));
        for y in t..b {
            let src = glyph_row(g, bpp, (y - gy) as usize);
            let dst = (y - mt) as usize * mw;
            for x in l..r {
                let col = (x - gx) as usize;
                let c = src[col];
                let m = &mut mask[dst + (x - ml) as usize];
                // spice-common compares a 4-bit byte's second pixel as `byte << 4`
                // before keeping its low 8 bits: when the byte's first pixel is not 0,
                // the second pixel replaces the mask's value instead of raising it.
                *m = if bpp == 4 && col % 2 == 1 && src[col - 1] != 0 {
                    c
                } else {
                    (*m).max(c)
                };
            }
        }
    }
    // A pattern brush is anchored at the mask's corner, not at the surface's.
    let pattern_at = |x: u32, y: u32| -> Option<u32> {
        match paint.fore {
            Brush::Pattern { x: ox, y: oy, .. } => {
                let p = paint.fore_pattern?;
                let tx = (i64::from(x) - bl - i64::from(*ox)).rem_euclid(i64::from(p.width));
                let ty = (i64::from(y) - bt - i64::from(*oy)).rem_euclid(i64::from(p.height));
                // An RGBA pattern keeps its (premultiplied) alpha in the OVER.
                let opaque = if p.alpha { 0 } else { 0xff00_0000 };
                Some(p.get(tx as u32, ty as u32) | opaque)
            }
            b => brush_at(b, None, x, y).map(|c| c | 0xff00_0000),
        }
    };
    let pixels = fb.pixels_mut();
    for y in mt as u32..mb as u32 {
        let row = (i64::from(y) - mt) as usize * mw;
        for (l, r) in clip.row_between(y, ml as u32, mr as u32) {
            for x in l..r {
                let m = u32::from(mask[row + (i64::from(x) - ml) as usize]);
                if m == 0 {
                    continue;
                }
                let Some(c) = pattern_at(x, y) else {
                    continue;
                };
                let o = y as usize * stride + x as usize * 4;
                put_at(pixels, o, over(c, get_at(pixels, o), m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::fixtures::{rect, NoSurfaces};
    use crate::canvas::render;
    use crate::qxl::draw::Op;

    fn glyph(x: i32, y: i32, width: u32, coverage: &[u8]) -> Glyph {
        Glyph {
            x,
            y,
            width,
            height: coverage.len() as u32 / width,
            coverage: coverage.to_vec(),
            a8_top: vec![],
        }
    }

    /// The colour of `over` on an xRGB surface (the canvas clears the alpha byte).
    fn over_rgb(src: u32, dst: u32, alpha: u32) -> u32 {
        over(src, dst, alpha) & 0xff_ffff
    }

    /// Row 0 of a 4x2 surface of colour 0x101010 after the text (fore white unless given).
    fn text(op: Op) -> Vec<u32> {
        let draw = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: rect(0, 0, 4, 2),
            clip: None,
            op,
        };
        let mut fb = Framebuffer::new(4, 2).unwrap();
        for o in (0..fb.pixels().len()).step_by(4) {
            put_at(fb.pixels_mut(), o, 0x10_1010);
        }
        render(&mut fb, &draw, &NoSurfaces);
        (0..4).map(|x| get_at(fb.pixels(), x * 4)).collect()
    }

    fn op(glyphs: Vec<Glyph>, bpp: u8, back_area: Rect, back: Brush, fore_mode: u16) -> Op {
        Op::Text {
            glyphs,
            glyph_bpp: bpp,
            back_area,
            fore: Brush::Solid(0xff_ffff),
            back,
            fore_mode,
            back_mode: 0,
        }
    }

    const NO_BACK: Rect = Rect {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };

    #[test]
    fn four_bit_coverage_is_the_value_shifted_up() {
        // 0xf << 4 = 240: white over 0x10 gives 240 + 0x10 * 15 / 255 = 241.
        let row = text(op(
            vec![glyph(0, 0, 2, &[0xf0, 0x80])],
            4,
            NO_BACK,
            Brush::None,
            OP_PUT,
        ));
        assert_eq!(row[0], over_rgb(0xffff_ffff, 0x10_1010, 240));
        assert_eq!(row[0] & 0xff, 241);
        assert_eq!(row[1], over_rgb(0xffff_ffff, 0x10_1010, 0x80));
    }

    #[test]
    fn a_four_bit_bytes_second_pixel_replaces_when_its_first_is_set() {
        // The first glyph covers pixel 1 fully; the second one's byte is 0x12 there
        // (pixel 0 = 1 << 4, pixel 1 = 2 << 4): pixel 1 ends at 32, not 240.
        let first = glyph(0, 0, 2, &[0, 0xf0]);
        let second = glyph(0, 0, 2, &[0x10, 0x20]);
        let row = text(op(vec![first, second], 4, NO_BACK, Brush::None, OP_PUT));
        assert_eq!(row[1], over_rgb(0xffff_ffff, 0x10_1010, 0x20));
        // With the first pixel 0 the larger coverage stays.
        let first = glyph(0, 0, 2, &[0, 0xf0]);
        let second = glyph(0, 0, 2, &[0, 0x20]);
        let row = text(op(vec![first, second], 4, NO_BACK, Brush::None, OP_PUT));
        assert_eq!(row[1], over_rgb(0xffff_ffff, 0x10_1010, 0xf0));
    }

    #[test]
    fn eight_bit_glyphs_are_read_one_row_late() {
        // Rows (top first) as parsed: [255 255], [0 0]; the canvas shows a8_top on top.
        let mut g = glyph(0, 0, 2, &[255, 255, 0, 0]);
        g.a8_top = vec![0, 255];
        let row = text(op(vec![g], 8, NO_BACK, Brush::None, OP_PUT));
        assert_eq!(&row[..2], &[0x10_1010, 0xff_ffff]);
    }

    #[test]
    fn a_none_back_brush_fills_black_whatever_back_mode() {
        let row = text(op(vec![], 1, rect(1, 0, 3, 1), Brush::None, OP_PUT));
        assert_eq!(row, vec![0x10_1010, 0, 0, 0x10_1010]);
    }

    #[test]
    fn fore_mode_is_ignored_but_a_back_area_needs_put() {
        let xor = 1 << 6;
        let full = || vec![glyph(0, 0, 1, &[255])];
        let row = text(op(full(), 1, NO_BACK, Brush::None, xor));
        assert_eq!(row[0], 0xff_ffff, "glyphs OVER, not XOR");
        let row = text(op(full(), 1, rect(0, 0, 4, 1), Brush::Solid(5), xor));
        assert_eq!(
            row,
            vec![0x10_1010; 4],
            "the canvas gives up on the drawing"
        );
    }

    #[test]
    fn a_fore_pattern_is_anchored_at_the_glyphs_corner() {
        // A 2x1 pattern (red, green) at origin 0; glyphs from x = 1: the mask's corner
        // (x = 1) takes the pattern's first column.
        let pattern = Pixels {
            width: 2,
            height: 1,
            data: vec![0xff_0000, 0x00_ff00],
            alpha: false,
            format: 8,
        };
        let brush = Brush::Pattern {
            image: crate::qxl::image::Image::Pixels(pattern),
            x: 0,
            y: 0,
        };
        let glyphs = vec![glyph(1, 0, 2, &[255, 255])];
        let row = text(Op::Text {
            glyphs,
            glyph_bpp: 1,
            back_area: NO_BACK,
            fore: brush,
            back: Brush::None,
            fore_mode: OP_PUT,
            back_mode: 0,
        });
        assert_eq!(&row[1..3], &[0xff_0000, 0x00_ff00]);
    }

    #[test]
    fn an_rgba_fore_pattern_keeps_its_alpha() {
        // A premultiplied half-transparent white (0x80808080) over 0x101010 with full
        // 1-bit coverage: 0x80 + 0x10 * (255 - 0x80) / 255 = 0x88 per channel; an xRGB
        // pattern with the same bits is opaque and gives 0x808080.
        let with = |alpha: bool| {
            let pattern = Pixels {
                width: 1,
                height: 1,
                data: vec![0x8080_8080],
                alpha,
                format: 8,
            };
            let fore = Brush::Pattern {
                image: crate::qxl::image::Image::Pixels(pattern),
                x: 0,
                y: 0,
            };
            let row = text(Op::Text {
                glyphs: vec![glyph(0, 0, 1, &[255])],
                glyph_bpp: 1,
                back_area: NO_BACK,
                fore,
                back: Brush::None,
                fore_mode: OP_PUT,
                back_mode: 0,
            });
            row[0] & 0xff_ffff
        };
        assert_eq!(with(true), 0x88_8888);
        assert_eq!(with(false), 0x80_8080);
    }
}
