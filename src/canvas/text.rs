//! DRAW_TEXT as spice-common's software canvas draws it: the back area filled with the
//! back brush (a plain copy whatever back_mode says; black for a NONE brush), then the
//! glyphs gathered into one mask (overlaps keep the larger coverage, but see the 4-bit
//! quirk below; a 4-bit value v is v << 4, so full coverage is 240; 8-bit glyphs are read
//! one row late) and the fore brush composited OVER the destination through it (a pattern
//! anchored at the mask's corner). fore_mode is not used, except that a back area with
//! any fore_mode but PUT makes the canvas give up on the whole drawing.

use super::framebuffer::Framebuffer;
use super::{brush_at, get_at, over, put_at, rop::OP_PUT, targets};
use crate::geometry::{Area, Rect};
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
                Some(p.get(tx as u32, ty as u32))
            }
            b => brush_at(b, None, x, y),
        }
    };
    let pixels = fb.pixels_mut();
    let area = Area::new(ml as u32, mt as u32, mr as u32, mb as u32);
    for a in clip.areas() {
        let a = a.intersect(&area);
        for y in a.top..a.bottom {
            let row = (i64::from(y) - mt) as usize * mw;
            for x in a.left..a.right {
                let m = u32::from(mask[row + (i64::from(x) - ml) as usize]);
                if m == 0 {
                    continue;
                }
                let Some(c) = pattern_at(x, y) else {
                    continue;
                };
                let o = y as usize * stride + x as usize * 4;
                put_at(pixels, o, over(c | 0xff00_0000, get_at(pixels, o), m));
            }
        }
    }
}
