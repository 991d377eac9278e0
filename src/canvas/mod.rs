//! The software canvas: QXL drawing operations rendered into a 32-bit xRGB surface.
//!
//! It follows spice-common's canvas semantics (rop descriptors, ternary rops, masks,
//! clips, patterns) so what update_area writes back into guest memory is what the C
//! server would write. Pure: surfaces are plain byte buffers.

mod clip;
pub(crate) mod framebuffer;
mod raster;
pub(crate) mod rop;

use crate::geometry::Area;
use crate::geometry::Rect;
use crate::qxl::draw::{Brush, Draw, Glyph, Mask, Op, Source};
use crate::qxl::image::{Image, Pixels};
use clip::Clip;
use framebuffer::Framebuffer;
use rop::OP_PUT;
use std::borrow::Cow;

/// Resolves `Image::Surface` sources to pixels (another surface's current contents).
pub(crate) trait Surfaces {
    fn pixels_of(&self, surface_id: u32) -> Option<Pixels>;
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

/// Samples a composite source or mask as pixman does: the destination pixel centre,
/// offset by the origin, through the optional affine transform, with a repeat mode.
struct Sampler<'a> {
    image: &'a Pixels,
    origin: (i32, i32),
    transform: Option<[i32; 6]>,
    /// pixman repeat: 0 none, 1 normal, 2 pad, 3 reflect.
    repeat: u32,
    bilinear: bool,
}

impl Sampler<'_> {
    fn at(&self, rx: i64, ry: i64) -> u32 {
        let cx = ((rx + i64::from(self.origin.0)) << 16) + 0x8000;
        let cy = ((ry + i64::from(self.origin.1)) << 16) + 0x8000;
        let (px, py) = match self.transform {
            None => (cx, cy),
            Some(t) => {
                let t: [i64; 6] = t.map(i64::from);
                (
                    ((t[0] * cx + t[1] * cy + 0x8000) >> 16) + t[2],
                    ((t[3] * cx + t[4] * cy + 0x8000) >> 16) + t[5],
                )
            }
        };
        if self.bilinear {
            return bilinear(self.image, px, py);
        }
        let (x, y) = ((px - 1) >> 16, (py - 1) >> 16);
        let (w, h) = (i64::from(self.image.width), i64::from(self.image.height));
        let wrap = |v: i64, n: i64| match self.repeat {
            1 => Some(v.rem_euclid(n)),
            2 => Some(v.clamp(0, n - 1)),
            3 => {
                let m = v.rem_euclid(2 * n);
                Some(if m < n { m } else { 2 * n - 1 - m })
            }
            _ => (0..n).contains(&v).then_some(v),
        };
        match (wrap(x, w), wrap(y, h)) {
            (Some(x), Some(y)) => self.image.get(x as u32, y as u32),
            _ => 0,
        }
    }
}

/// pixman's ADD: saturating sum of `src` (scaled by `alpha`) and `dst`.
fn add(src: u32, dst: u32, alpha: u32) -> u32 {
    let mut out = 0;
    for shift in [0, 8, 16] {
        let s = mul8((src >> shift) & 0xff, alpha);
        out |= (s + ((dst >> shift) & 0xff)).min(255) << shift;
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

/// Most glyph pixels one text drawing may visit (the parser's limits allow 8 Mi).
const MAX_GLYPH_PIXELS: u64 = 1 << 24;

fn draw_glyphs(
    fb: &mut Framebuffer,
    draw: &Draw,
    glyphs: &[Glyph],
    fore: &Brush,
    pattern: Option<&Pixels>,
    mode: u16,
) {
    let clip = targets(fb, &draw.bbox, &draw.clip);
    let e = clip.extents();
    if e.is_empty() {
        return;
    }
    let stride = fb.stride();
    let pixels = fb.pixels_mut();
    let mut budget = MAX_GLYPH_PIXELS;
    for (n, g) in glyphs.iter().enumerate() {
        let cost = u64::from(g.width) * u64::from(g.height);
        if cost > budget {
            crate::log_warn!(
                "text drawing cut after {n} of {} glyphs: over {MAX_GLYPH_PIXELS} glyph pixels",
                glyphs.len()
            );
            return;
        }
        budget -= cost;
        // The glyph's columns and rows on the clip's extents.
        let (x0, y0) = (i64::from(g.x), i64::from(g.y));
        let left = x0.max(i64::from(e.left));
        let right = (x0 + i64::from(g.width)).min(i64::from(e.right));
        let top = y0.max(i64::from(e.top));
        let bottom = (y0 + i64::from(g.height)).min(i64::from(e.bottom));
        if left >= right || top >= bottom {
            continue;
        }
        for y in top..bottom {
            let row = (y - y0) as usize * g.width as usize;
            for (l, r) in clip.row_between(y as u32, left as u32, right as u32) {
                let start = row + (i64::from(l) - x0) as usize;
                let coverage = &g.coverage[start..start + (r - l) as usize];
                for (x, &c) in (l..r).zip(coverage) {
                    if c == 0 {
                        continue;
                    }
                    let c = u32::from(c);
                    let Some(color) = brush_at(fore, pattern, x, y as u32) else {
                        continue;
                    };
                    let o = y as usize * stride + x as usize * 4;
                    let d = get_at(pixels, o);
                    let v = if c == 255 {
                        rop::apply(mode, color, d, true)
                    } else {
                        over(color | 0xff00_0000, d, c)
                    };
                    put_at(pixels, o, v);
                }
            }
        }
    }
}

/// Most pixels one stroke may visit (a hostile path of long segments far off the surface
/// must not keep the worker busy for minutes).
const MAX_STROKE_STEPS: usize = 1 << 24;

/// A zero-width line from `a` to `b` as spice-common draws it (X11 rules): one pixel per
/// step of the major axis, the minor axis rounded half towards the start, and the last
/// point left out (so joined segments and closed paths touch each pixel once). Plots only
/// inside the clip. False when `budget` ran out before the line's end.
fn draw_line(
    clip: &mut clip::Probe,
    a: (i32, i32),
    b: (i32, i32),
    budget: &mut usize,
    mut plot: impl FnMut(u32, u32),
) -> bool {
    let (ax, ay) = (i64::from(a.0), i64::from(a.1));
    let (dx, dy) = (i64::from(b.0) - ax, i64::from(b.1) - ay);
    let major = dx.abs().max(dy.abs());
    // Rounds k * minor / major half towards zero.
    let step = |k: i64, minor: i64| -> i64 {
        if major == 0 {
            return 0;
        }
        let n = 2 * k * minor.abs() - major;
        let v = if n <= 0 {
            0
        } else {
            (n + 2 * major - 1) / (2 * major)
        };
        v * minor.signum()
    };
    for k in 0..major {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let (x, y) = if dx.abs() >= dy.abs() {
            (ax + k * dx.signum(), ay + step(k, dy))
        } else {
            (ax + step(k, dx), ay + k * dy.signum())
        };
        if x >= 0 && y >= 0 && x <= i64::from(u32::MAX) && y <= i64::from(u32::MAX) {
            let (ux, uy) = (x as u32, y as u32);
            if clip.contains(ux, uy) {
                plot(ux, uy);
            }
        }
    }
    true
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
        Op::AlphaBlend { src, alpha, .. } => {
            // As spice-common: the source's own alpha counts whenever it has one (an RGBA
            // bitmap with or without SRC_SURFACE_HAS_ALPHA; the flag only makes an xRGB
            // surface's X byte count, decided when the surface was resolved).
            let pixels = resolve(&src.image, surfaces)?;
            update(fb, draw, &None, |x, y, d| {
                source_at(&pixels, &src.area, &draw.bbox, x, y, src.scale_mode).map(|s| {
                    let s = if pixels.alpha { s } else { s | 0xff00_0000 };
                    over(s, d, u32::from(*alpha))
                })
            });
        }
        Op::Text {
            glyphs,
            back_area,
            fore,
            back,
            fore_mode,
            back_mode,
            ..
        } => {
            if *back_mode != 0 && !matches!(back, Brush::None) {
                let back_draw = Draw {
                    bbox: *back_area,
                    clip: draw.clip.clone(),
                    ..draw.clone()
                };
                let pattern = pattern_of(back, surfaces);
                update(fb, &back_draw, &None, |x, y, d| {
                    brush_at(back, pattern.as_deref(), x, y)
                        .map(|c| rop::apply(*back_mode, c, d, true))
                });
            }
            let pattern = pattern_of(fore, surfaces);
            draw_glyphs(fb, draw, glyphs, fore, pattern.as_deref(), *fore_mode);
        }
        Op::Stroke {
            subpaths,
            brush,
            fore_mode,
            ..
        } => {
            let pattern = pattern_of(brush, surfaces);
            let clip = targets(fb, &draw.bbox, &draw.clip);
            if clip.is_empty() {
                return None;
            }
            let mut probe = clip.probe();
            let mut budget = MAX_STROKE_STEPS;
            let stride = fb.stride();
            let pixels = fb.pixels_mut();
            for path in subpaths {
                for pair in path.windows(2) {
                    let whole = draw_line(&mut probe, pair[0], pair[1], &mut budget, |x, y| {
                        if let Some(c) = brush_at(brush, pattern.as_deref(), x, y) {
                            let o = y as usize * stride + x as usize * 4;
                            let v = rop::apply(*fore_mode, c, get_at(pixels, o), true);
                            put_at(pixels, o, v);
                        }
                    });
                    if !whole {
                        crate::log_warn!(
                            "stroke cut: over {MAX_STROKE_STEPS} pixels along its path"
                        );
                        return damage;
                    }
                }
            }
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
            let s = resolve(src, surfaces)?;
            let m = mask.as_ref().and_then(|m| resolve(m, surfaces));
            let op = flags & 0xff;
            let src_sampler = Sampler {
                image: &s,
                origin: *src_origin,
                transform: *src_transform,
                repeat: (flags >> 14) & 3,
                bilinear: (flags >> 8) & 7 == 1,
            };
            update(fb, draw, &None, |x, y, d| {
                let (rx, ry) = (
                    i64::from(x) - i64::from(draw.bbox.left),
                    i64::from(y) - i64::from(draw.bbox.top),
                );
                let sp = src_sampler.at(rx, ry);
                let sp = if s.alpha { sp } else { sp | 0xff00_0000 };
                let ma = match &m {
                    None => 255,
                    Some(m) => {
                        let mask_sampler = Sampler {
                            image: m,
                            origin: *mask_origin,
                            transform: *mask_transform,
                            repeat: (flags >> 16) & 3,
                            bilinear: (flags >> 11) & 7 == 1,
                        };
                        mask_sampler.at(rx, ry) >> 24
                    }
                };
                Some(match op {
                    0x00 => 0,
                    0x01 => over(sp, 0, ma),
                    0x02 => d,
                    0x0c => add(sp, d, ma),
                    _ => over(sp, d, ma),
                })
            });
        }
    }
    damage
}

/// An unscaled `OP_PUT` copy without mask, row by row (the video and framebuffer path):
/// the same pixels the general path writes, without its per-pixel work.
fn plain_copy(fb: &mut Framebuffer, draw: &Draw, src: &Pixels, area: &Rect) {
    let (ox, oy) = (
        i64::from(area.left) - i64::from(draw.bbox.left),
        i64::from(area.top) - i64::from(draw.bbox.top),
    );
    let stride = fb.stride();
    let bits = stored_bits(fb);
    for a in targets(fb, &draw.bbox, &draw.clip).areas() {
        // Destination columns whose source column lies inside the image.
        let left = i64::from(a.left).max(-ox);
        let right = i64::from(a.right).min(i64::from(src.width) - ox);
        if left >= right {
            continue;
        }
        for y in a.top..a.bottom {
            let sy = i64::from(y) + oy;
            if sy < 0 || sy >= i64::from(src.height) {
                continue;
            }
            let start = (sy * i64::from(src.width) + left + ox) as usize;
            let row = &src.data[start..start + (right - left) as usize];
            let d = y as usize * stride + left as usize * 4;
            let out = &mut fb.pixels_mut()[d..d + row.len() * 4];
            for (o, p) in out.chunks_exact_mut(4).zip(row) {
                o.copy_from_slice(&(p & bits).to_le_bytes());
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
