//! The software canvas: QXL drawing operations rendered into a 32-bit xRGB surface.
//!
//! It follows spice-common's canvas semantics (rop descriptors, ternary rops, masks,
//! clips, patterns) so what update_area writes back into guest memory is what the C
//! server would write. Pure: surfaces are plain byte buffers.

mod clip;
mod composite;
#[cfg(test)]
mod fixtures;
pub(crate) mod framebuffer;
mod raster;
pub(crate) mod rop;
mod stroke;
pub(crate) use stroke::stroke_is_drawable;
mod text;

use crate::geometry::Area;
use crate::geometry::Rect;
use crate::qxl::draw::{Brush, Draw, Mask, Op, Source};
use crate::qxl::image::{Image, Pixels};
use clip::Clip;
use framebuffer::Framebuffer;
use rop::OP_PUT;
use std::borrow::Cow;

/// Resolves `Image::Surface` sources to pixels (another surface's current contents).
pub(crate) trait Surfaces {
    fn pixels_of(&self, surface_id: u32) -> Option<Pixels>;
}

/// For a drawing that reads no other surface, or whose surface sources were resolved
/// into pixels before rendering.
pub(crate) struct NoSurfaces;

impl Surfaces for NoSurfaces {
    fn pixels_of(&self, _: u32) -> Option<Pixels> {
        None
    }
}

const RGB: u32 = 0x00ff_ffff;
/// Most clip rectangles one drawing may use.
const MAX_CLIP_RECTS: usize = 4096;

/// The pixel at byte offset `o` of a framebuffer's pixels (borrowed once per drawing:
/// `pixels_mut` per pixel would cost more than the pixel).
fn get_at(pixels: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([pixels[o], pixels[o + 1], pixels[o + 2], pixels[o + 3]])
}

fn put_at(pixels: &mut [u8], o: usize, v: u32) {
    pixels[o..o + 4].copy_from_slice(&(v & RGB).to_le_bytes());
}

/// The bits of a pixel a drawing stores: all of them on a surface with alpha (ARGB),
/// the colour only otherwise.
fn stored_bits(fb: &Framebuffer) -> u32 {
    if fb.alpha {
        u32::MAX
    } else {
        RGB
    }
}

/// Where a drawing may draw: bbox ∩ surface ∩ (clip rects). Empty when the clip is
/// refused.
fn targets(fb: &Framebuffer, bbox: &Rect, clip: &Option<Vec<Rect>>) -> Clip {
    let Some(b) = bbox.clamped() else {
        return Clip::default();
    };
    let b = b.intersect(&fb.bounds());
    match clip {
        // A clip listing the same area many times would make one drawing cost
        // millions of pixel writes; past a bound the drawing is refused.
        Some(rects) if rects.len() > MAX_CLIP_RECTS => {
            crate::log_warn!("drawing with {} clip rectangles refused", rects.len());
            Clip::default()
        }
        _ => Clip::new(b, clip.as_deref()).unwrap_or_else(|_| {
            crate::log_warn!(
                "drawing refused: its clip splits into more than {} spans",
                clip::MAX_SPANS
            );
            Clip::default()
        }),
    }
}

fn mask_allows(mask: &Option<Mask>, bbox: &Rect, x: u32, y: u32) -> bool {
    let Some(m) = mask else {
        return true;
    };
    let mx = i64::from(x) - i64::from(bbox.left) + i64::from(m.x);
    let my = i64::from(y) - i64::from(bbox.top) + i64::from(m.y);
    // Outside the mask's bitmap nothing is drawn, inverted or not (spice-common turns
    // the bitmap, inverted within its own size, into a region).
    if mx < 0 || my < 0 || mx >= i64::from(m.bits.width) || my >= i64::from(m.bits.height) {
        return false;
    }
    let set = m.bits.get(mx as u32, my as u32) & RGB != 0;
    set != m.invert
}

/// The brush colour at (x, y).
fn brush_at(brush: &Brush, pattern: Option<&Pixels>, x: u32, y: u32) -> Option<u32> {
    match brush {
        Brush::None => None,
        Brush::Solid(c) => Some(*c),
        Brush::Pattern { x: ox, y: oy, .. } => {
            let p = pattern?;
            let tx = (i64::from(x) - i64::from(*ox)).rem_euclid(i64::from(p.width)) as u32;
            let ty = (i64::from(y) - i64::from(*oy)).rem_euclid(i64::from(p.height)) as u32;
            Some(p.get(tx, ty))
        }
    }
}

/// An image's pixels: borrowed when the drawing carries them (no copy per drawing).
fn resolve<'a>(image: &'a Image, surfaces: &dyn Surfaces) -> Option<Cow<'a, Pixels>> {
    match image {
        Image::Pixels(p) => Some(Cow::Borrowed(p)),
        Image::Surface(id) => surfaces.pixels_of(*id).map(Cow::Owned),
    }
}

fn pattern_of<'a>(brush: &'a Brush, surfaces: &dyn Surfaces) -> Option<Cow<'a, Pixels>> {
    match brush {
        Brush::Pattern { image, .. } => {
            resolve(image, surfaces).filter(|p| p.width > 0 && p.height > 0)
        }
        _ => None,
    }
}

/// Where pixman samples for destination offset `d` when `s_len` source pixels are
/// scaled onto `d_len` (16.16 fixed point, the pixel centre mapped through the scale).
fn sample_pos(d: i64, s_len: i64, d_len: i64, origin: i64) -> i64 {
    let scale = (s_len << 16) / d_len;
    ((((d << 16) + 0x8000) * scale + 0x8000) >> 16) + (origin << 16)
}

fn pixel_or_clear(src: &Pixels, x: i64, y: i64) -> u32 {
    if x >= 0 && y >= 0 && x < i64::from(src.width) && y < i64::from(src.height) {
        src.get(x as u32, y as u32)
    } else {
        0
    }
}

/// Bilinear filtering with pixman's 7-bit weights.
fn bilinear(src: &Pixels, px: i64, py: i64) -> u32 {
    let (px, py) = (px - 0x8000, py - 0x8000);
    let (x0, y0) = (px >> 16, py >> 16);
    let dx = ((px >> 9) & 0x7f) << 1;
    let dy = ((py >> 9) & 0x7f) << 1;
    let (tl, tr) = (pixel_or_clear(src, x0, y0), pixel_or_clear(src, x0 + 1, y0));
    let (bl, br) = (
        pixel_or_clear(src, x0, y0 + 1),
        pixel_or_clear(src, x0 + 1, y0 + 1),
    );
    let dxy = dx * dy;
    let w_tr = (dx << 8) - dxy;
    let w_bl = (dy << 8) - dxy;
    let w_tl = (256 * 256) - (dy << 8) - (dx << 8) + dxy;
    let mut out = 0u32;
    for shift in [0, 8, 16, 24] {
        let c = |p: u32| i64::from((p >> shift) & 0xff);
        let v = (c(tl) * w_tl + c(tr) * w_tr + c(bl) * w_bl + c(br) * dxy) >> 16;
        out |= (v.clamp(0, 255) as u32) << shift;
    }
    out
}

/// `SPICE_IMAGE_SCALE_MODE_INTERPOLATE`.
const SCALE_INTERPOLATE: u8 = 0;

/// Source pixel for destination (x, y): 1:1 for same-size copies, otherwise sampled as
/// pixman samples a scaled image (nearest or bilinear).
fn source_at(src: &Pixels, area: &Rect, bbox: &Rect, x: u32, y: u32, mode: u8) -> Option<u32> {
    let (dw, dh) = (bbox.width(), bbox.height());
    let (sw, sh) = (area.width(), area.height());
    if dw <= 0 || dh <= 0 || sw <= 0 || sh <= 0 {
        return None;
    }
    let dx = i64::from(x) - i64::from(bbox.left);
    let dy = i64::from(y) - i64::from(bbox.top);
    if sw == dw && sh == dh {
        let (sx, sy) = (i64::from(area.left) + dx, i64::from(area.top) + dy);
        return (sx >= 0 && sy >= 0 && sx < i64::from(src.width) && sy < i64::from(src.height))
            .then(|| src.get(sx as u32, sy as u32));
    }
    let px = sample_pos(dx, sw, dw, i64::from(area.left));
    let py = sample_pos(dy, sh, dh, i64::from(area.top));
    Some(if mode == SCALE_INTERPOLATE {
        bilinear(src, px, py)
    } else {
        pixel_or_clear(src, (px - 1) >> 16, (py - 1) >> 16)
    })
}

/// Rewrites, in place, every destination pixel the clip and mask allow:
/// `f(x, y, current)` returns the new value, or `None` to leave the pixel alone.
/// (Each pixel's new value depends only on its own old value and on other images.)
fn update(
    fb: &mut Framebuffer,
    draw: &Draw,
    mask: &Option<Mask>,
    mut f: impl FnMut(u32, u32, u32) -> Option<u32>,
) {
    let clip = targets(fb, &draw.bbox, &draw.clip);
    let stride = fb.stride();
    let bits = stored_bits(fb);
    let pixels = fb.pixels_mut();
    for a in clip.areas() {
        for y in a.top..a.bottom {
            for x in a.left..a.right {
                if mask_allows(mask, &draw.bbox, x, y) {
                    let o = y as usize * stride + x as usize * 4;
                    if let Some(v) = f(x, y, get_at(pixels, o)) {
                        pixels[o..o + 4].copy_from_slice(&(v & bits).to_le_bytes());
                    }
                }
            }
        }
    }
}

/// `a * b / 255`, rounded the way pixman rounds (so results match spice-common's).
fn mul8(a: u32, b: u32) -> u32 {
    let t = a * b + 0x80;
    ((t >> 8) + t) >> 8
}

/// Premultiplied OVER of `src` scaled by the constant `alpha` onto `dst` (its alpha
/// channel too, which only a surface with alpha keeps).
fn over(src: u32, dst: u32, alpha: u32) -> u32 {
    let sa = mul8(src >> 24, alpha);
    let mut out = 0;
    for shift in [0, 8, 16, 24] {
        let s = mul8((src >> shift) & 0xff, alpha);
        let d = mul8((dst >> shift) & 0xff, 255 - sa);
        out |= (s + d).min(255) << shift;
    }
    out
}

/// Renders one drawing operation into `fb`. Returns the damaged area.
pub(crate) fn render(fb: &mut Framebuffer, draw: &Draw, surfaces: &dyn Surfaces) -> Option<Area> {
    if fb.make_unique().is_err() {
        crate::log_warn!("drawing dropped: no host memory to copy the surface a video frame holds");
        return None;
    }
    let damage = Some(targets(fb, &draw.bbox, &draw.clip).extents()).filter(|a| !a.is_empty());
    match &draw.op {
        Op::Nop => return None,
        Op::Fill { brush, rop, mask } => raster::fill(fb, draw, brush, *rop, mask, surfaces),
        Op::Copy {
            src,
            rop: OP_PUT,
            mask: None,
        } if src.area.width() == draw.bbox.width() && src.area.height() == draw.bbox.height() => {
            if let Some(pixels) = resolve(&src.image, surfaces) {
                plain_copy(fb, draw, &pixels, &src.area);
            }
        }
        Op::Copy { src, rop, mask } | Op::Blend { src, rop, mask } => {
            copy_with(fb, draw, src, mask, surfaces, |s, d| {
                rop::apply(*rop, s, d, false)
            });
        }
        Op::Opaque {
            src,
            brush,
            rop,
            mask,
        } => raster::opaque(fb, draw, src, brush, *rop, mask, surfaces),
        Op::Blackness { mask } | Op::Whiteness { mask } | Op::Invers { mask } => {
            update(fb, draw, mask, |_, _, d| {
                Some(match draw.op {
                    Op::Blackness { .. } => 0,
                    Op::Whiteness { .. } => RGB,
                    _ => !d,
                })
            });
        }
        Op::CopyBits { x: sx, y: sy } => {
            // Source and destination may overlap (scrolling): copy from a snapshot of
            // the source area only.
            let (ox, oy) = (
                i64::from(*sx) - i64::from(draw.bbox.left),
                i64::from(*sy) - i64::from(draw.bbox.top),
            );
            let (sx, sy) = ((*sx).max(0) as u32, (*sy).max(0) as u32);
            let source = Area::new(
                sx,
                sy,
                sx.saturating_add(draw.bbox.width().clamp(0, i64::from(u32::MAX)) as u32),
                sy.saturating_add(draw.bbox.height().clamp(0, i64::from(u32::MAX)) as u32),
            )
            .intersect(&fb.bounds());
            let snapshot = fb.read(source);
            let row = source.width() as usize;
            update(fb, draw, &None, |x, y, _| {
                let (fx, fy) = (i64::from(x) + ox, i64::from(y) + oy);
                let inside = fx >= i64::from(source.left)
                    && fy >= i64::from(source.top)
                    && fx < i64::from(source.right)
                    && fy < i64::from(source.bottom);
                inside.then(|| {
                    let i = 4
                        * ((fy as usize - source.top as usize) * row
                            + (fx as usize - source.left as usize));
                    u32::from_le_bytes([
                        snapshot[i],
                        snapshot[i + 1],
                        snapshot[i + 2],
                        snapshot[i + 3],
                    ])
                })
            });
        }
        Op::Rop3 {
            src,
            brush,
            rop3,
            mask,
        } => raster::rop3(fb, draw, src, brush, *rop3, mask, surfaces)?,
        Op::Transparent { src, color } => {
            let pixels = resolve(&src.image, surfaces)?;
            update(fb, draw, &None, |x, y, _| {
                source_at(&pixels, &src.area, &draw.bbox, x, y, src.scale_mode)
                    .filter(|s| s & RGB != color & RGB)
            });
        }
        Op::AlphaBlend {
            src,
            alpha,
            src_has_alpha,
            ..
        } => composite::alpha_blend(fb, draw, src, *alpha, *src_has_alpha, surfaces),
        Op::Text {
            glyphs,
            glyph_bpp,
            back_area,
            fore,
            back,
            fore_mode,
            ..
        } => {
            let back_pattern = pattern_of(back, surfaces);
            let fore_pattern = pattern_of(fore, surfaces);
            let paint = text::TextPaint {
                back_area,
                back,
                back_pattern: back_pattern.as_deref(),
                fore,
                fore_pattern: fore_pattern.as_deref(),
                fore_mode: *fore_mode,
            };
            text::draw_text(fb, draw, glyphs, *glyph_bpp, &paint);
        }
        Op::Stroke {
            path,
            brush,
            fore_mode,
            attr_flags,
            style,
            ..
        } => {
            let pattern = pattern_of(brush, surfaces);
            stroke::draw_stroke(
                fb,
                draw,
                path,
                brush,
                pattern.as_deref(),
                *fore_mode,
                *attr_flags,
                style,
            );
        }
        Op::Composite { .. } => composite::composite(fb, draw, surfaces),
    }
    damage
}

/// An unscaled `OP_PUT` copy without mask, row by row (the video and framebuffer path):
/// the same pixels the general path writes, without its per-pixel work.
fn plain_copy(fb: &mut Framebuffer, draw: &Draw, src: &Pixels, area: &Rect) {
    let width = src.width as usize;
    put_rows(
        fb,
        &draw.bbox,
        &draw.clip,
        area,
        (src.width, src.height),
        |sy, sx0, sx1, row| {
            let start = sy as usize * width;
            row.put(&src.data[start + sx0 as usize..start + sx1 as usize]);
            true
        },
    );
}

/// One destination row span of `put_image_rows`: its pixels are given either as ARGB
/// (`put`) or as 32-bit words copied into `words()` then `words_done()`.
pub(crate) struct RowTarget<'a> {
    out: &'a mut [u8],
    bits: u32,
}

impl RowTarget<'_> {
    /// Stores ARGB pixels as the surface keeps them (`stored_bits`).
    pub(crate) fn put(&mut self, pixels: &[u32]) {
        for (o, p) in self.out.chunks_exact_mut(4).zip(pixels) {
            o.copy_from_slice(&(p & self.bits).to_le_bytes());
        }
    }

    /// The span's bytes, for B, G, R, A words copied straight in.
    pub(crate) fn words(&mut self) -> &mut [u8] {
        self.out
    }

    /// After `words()` was filled: the alpha bytes as `put` would have stored them
    /// (`has_alpha`: the fourth bytes are alpha, else padding, which decodes as opaque).
    pub(crate) fn words_done(&mut self, has_alpha: bool) {
        let alpha: u8 = if self.bits == RGB {
            0
        } else if !has_alpha {
            0xff
        } else {
            return;
        };
        // Two pixels per 64-bit word (byte stores one pixel apart cost more than the copy).
        const RGB2: u64 = 0x00ff_ffff_00ff_ffff;
        let set = u64::from(alpha) * 0x0100_0000_0100_0000;
        let mut pairs = self.out.chunks_exact_mut(8);
        for p in &mut pairs {
            let v = u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
            p.copy_from_slice(&((v & RGB2) | set).to_le_bytes());
        }
        pairs
            .into_remainder()
            .chunks_exact_mut(4)
            .for_each(|p| p[3] = alpha);
    }
}

/// An unscaled `OP_PUT` copy without mask of an image whose rows `fetch` gives (the
/// video path: a bitmap still in guest memory, copied row by row as it is drawn, never
/// decoded whole). `fetch(y, x0, x1, target)` stores pixels `x0..x1` of the image's row
/// `y` into `target`, or returns false, and no more rows are drawn (the caller knows
/// why). Draws what `render` draws for the same copy; returns the damaged area as it
/// does.
pub(crate) fn put_image_rows(
    fb: &mut Framebuffer,
    bbox: &Rect,
    clip: &Option<Vec<Rect>>,
    area: &Rect,
    image_size: (u32, u32),
    mut fetch: impl FnMut(u32, u32, u32, &mut RowTarget) -> bool,
) -> Option<Area> {
    if fb.make_unique().is_err() {
        crate::log_warn!("drawing dropped: no host memory to copy the surface a video frame holds");
        return None;
    }
    let damage = Some(targets(fb, bbox, clip).extents()).filter(|a| !a.is_empty());
    let mut failed = false;
    put_rows(fb, bbox, clip, area, image_size, |sy, sx0, sx1, row| {
        failed = failed || !fetch(sy, sx0, sx1, row);
        !failed
    });
    damage
}

/// The row spans of an unscaled copy of `area` of an image of `image_size` to `bbox`
/// (clipped): `row(y, x0, x1, target)` stores the image's row `y`, columns `x0..x1`,
/// into `target`; false stops.
fn put_rows(
    fb: &mut Framebuffer,
    bbox: &Rect,
    clip: &Option<Vec<Rect>>,
    area: &Rect,
    (src_width, src_height): (u32, u32),
    mut row: impl FnMut(u32, u32, u32, &mut RowTarget) -> bool,
) {
    let (ox, oy) = (
        i64::from(area.left) - i64::from(bbox.left),
        i64::from(area.top) - i64::from(bbox.top),
    );
    let stride = fb.stride();
    let bits = stored_bits(fb);
    let spans = targets(fb, bbox, clip);
    let pixels = fb.pixels_mut();
    for a in spans.areas() {
        // Destination columns whose source column lies inside the image.
        let left = i64::from(a.left).max(-ox);
        let right = i64::from(a.right).min(i64::from(src_width) - ox);
        if left >= right {
            continue;
        }
        let (sx0, sx1) = ((left + ox) as u32, (right + ox) as u32);
        for y in a.top..a.bottom {
            let sy = i64::from(y) + oy;
            if sy < 0 || sy >= i64::from(src_height) {
                continue;
            }
            let d = y as usize * stride + left as usize * 4;
            let mut target = RowTarget {
                out: &mut pixels[d..d + (right - left) as usize * 4],
                bits,
            };
            if !row(sy as u32, sx0, sx1, &mut target) {
                return;
            }
        }
    }
}

fn copy_with(
    fb: &mut Framebuffer,
    draw: &Draw,
    src: &Source,
    mask: &Option<Mask>,
    surfaces: &dyn Surfaces,
    combine: impl Fn(u32, u32) -> u32,
) {
    let Some(pixels) = resolve(&src.image, surfaces) else {
        return;
    };
    update(fb, draw, mask, |x, y, d| {
        source_at(&pixels, &src.area, &draw.bbox, x, y, src.scale_mode).map(|s| combine(s, d))
    });
}

#[cfg(test)]
mod tests;
