//! COMPOSITE and ALPHA_BLEND as spice-common's canvas renders them with pixman (0.42).
//!
//! The canvas composites into a copy of the box in the surface's format (x8r8g8b8 here: the
//! destination reads as opaque) and copies the clipped part back. Images are seen as pixman
//! sees them after spice-common's conversions: for COMPOSITE every bitmap but RGBA becomes
//! x8r8g8b8 (an A8 bitmap turns into opaque black, so an A8 mask lets everything through,
//! and as a component-alpha mask it blocks the colour), for ALPHA_BLEND bitmaps keep their
//! own format. Samples outside a repeat-NONE image are transparent, also for x8r8g8b8.
//!
//! Operators: pixman's 8-bit integer combiners (Porter-Duff, multiply and the separable
//! blend modes it has in integer form), and its single-precision float path for the
//! operators that need a division (colour dodge/burn, soft light, the HSL modes,
//! disjoint/conjoint). Filters: nearest samples the pixel containing the centre minus one
//! 16.16 unit; bilinear uses 7-bit weights on the integer path and full-precision weights
//! on the float path.

use super::framebuffer::Framebuffer;
use super::{resolve, update, Surfaces};
use crate::qxl::draw::{Draw, Op, Source};
use crate::qxl::image::{fmt, Image, Pixels};

/// How pixman reads an image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texels {
    /// a8r8g8b8: the stored alpha.
    Argb,
    /// x8r8g8b8: opaque.
    Xrgb,
    /// An A8 bitmap converted to x8r8g8b8: opaque black.
    OpaqueBlack,
    /// a8: alpha only, no colour.
    A8,
}

const CLEAR: u32 = 0x00;
const SRC: u32 = 0x01;
const DST: u32 = 0x02;
const OVER: u32 = 0x03;
const OVER_REVERSE: u32 = 0x04;
const IN: u32 = 0x05;
const IN_REVERSE: u32 = 0x06;
const OUT: u32 = 0x07;
const OUT_REVERSE: u32 = 0x08;
const ATOP: u32 = 0x09;
const ATOP_REVERSE: u32 = 0x0a;
const XOR: u32 = 0x0b;
const ADD: u32 = 0x0c;
const SATURATE: u32 = 0x0d;
const MULTIPLY: u32 = 0x30;
const SCREEN: u32 = 0x31;
const OVERLAY: u32 = 0x32;
const DARKEN: u32 = 0x33;
const LIGHTEN: u32 = 0x34;
const COLOR_DODGE: u32 = 0x35;
const COLOR_BURN: u32 = 0x36;
const HARD_LIGHT: u32 = 0x37;
const SOFT_LIGHT: u32 = 0x38;
const DIFFERENCE: u32 = 0x39;
const EXCLUSION: u32 = 0x3a;
const HSL_HUE: u32 = 0x3b;
const HSL_SATURATION: u32 = 0x3c;
const HSL_COLOR: u32 = 0x3d;
const HSL_LUMINOSITY: u32 = 0x3e;

/// The operator pixman runs (its `optimize_operator`): on an opaque destination the same
/// result, except SATURATE, which leaves an opaque destination alone; on one with alpha (an
/// ARGB surface) the operator itself; the unnamed codes between the groups clear. None for
/// codes past the table (refused).
fn operator_for(op: u32, dest_opaque: bool) -> Option<u32> {
    Some(match op {
        OVER_REVERSE | SATURATE | IN | OUT | ATOP | ATOP_REVERSE | XOR if !dest_opaque => op,
        OVER_REVERSE | SATURATE => DST,
        IN => SRC,
        OUT => CLEAR,
        ATOP => OVER,
        ATOP_REVERSE => IN_REVERSE,
        XOR => OUT_REVERSE,
        0x0e | 0x0f | 0x1c..=0x1f | 0x2c..=0x2f => CLEAR,
        0x10 | 0x20 => CLEAR,
        0x11 | 0x21 => SRC,
        0x12 | 0x22 => DST,
        0..=HSL_LUMINOSITY => op,
        _ => return None,
    })
}

/// Operators pixman computes in float (its `operator_needs_division`).
fn needs_float(op: u32) -> bool {
    matches!(
        op,
        SATURATE | 0x10..=0x1b | 0x20..=0x2b | COLOR_DODGE | COLOR_BURN | SOFT_LIGHT | HSL_HUE..=HSL_LUMINOSITY
    )
}

/// One image as a pixman source or mask: its pixels, transform, repeat and filter.
struct Picture<'a> {
    image: &'a Pixels,
    texels: Texels,
    /// 16.16 affine transform (t00 t01 t02 t10 t11 t12) from destination to image space.
    transform: Option<[i64; 6]>,
    /// pixman repeat: 0 none, 1 normal, 2 pad, 3 reflect.
    repeat: u32,
    bilinear: bool,
}

/// `c` wrapped into `0..n` by the repeat mode; None outside a repeat-NONE image.
fn wrap(repeat: u32, c: i64, n: i64) -> Option<i64> {
    match repeat {
        1 => Some(c.rem_euclid(n)),
        2 => Some(c.clamp(0, n - 1)),
        3 => {
            let m = c.rem_euclid(2 * n);
            Some(if m < n { m } else { 2 * n - 1 - m })
        }
        _ => (0..n).contains(&c).then_some(c),
    }
}

impl Picture<'_> {
    /// The pixel at integer image coordinates, 0 (transparent) outside a repeat-NONE image.
    fn texel(&self, x: i64, y: i64) -> u32 {
        let (w, h) = (i64::from(self.image.width), i64::from(self.image.height));
        let (Some(x), Some(y)) = (wrap(self.repeat, x, w), wrap(self.repeat, y, h)) else {
            return 0;
        };
        let p = self.image.get(x as u32, y as u32);
        match self.texels {
            Texels::Argb => p,
            Texels::Xrgb => p | 0xff00_0000,
            Texels::OpaqueBlack => 0xff00_0000,
            Texels::A8 => p & 0xff00_0000,
        }
    }

    fn texel_f(&self, x: i64, y: i64) -> F4 {
        let p = self.texel(x, y);
        let mut f = unpack_f(p);
        if p != 0 && matches!(self.texels, Texels::Xrgb | Texels::OpaqueBlack) {
            f[0] = 1.0;
        }
        f
    }

    /// The 16.16 point sampled for pixel (x, y) of the image's own space before the
    /// transform (the pixel centre, transformed as pixman_transform_point_3d rounds).
    fn point(&self, x: i64, y: i64) -> Option<(i64, i64)> {
        let t = self.transform?;
        let (cx, cy) = ((x << 16) + 0x8000, (y << 16) + 0x8000);
        // wrapping: a hostile transform must not panic (pixman gives up on such points)
        let row = |a: i64, b: i64, c: i64| {
            (a.wrapping_mul(cx)
                .wrapping_add(b.wrapping_mul(cy))
                .wrapping_add(0x8000)
                >> 16)
                .wrapping_add(c)
        };
        Some((row(t[0], t[1], t[2]), row(t[3], t[4], t[5])))
    }

    /// The sample for destination pixel (x, y) (already offset by the origin), 8-bit path.
    fn sample(&self, x: i64, y: i64) -> u32 {
        let Some((px, py)) = self.point(x, y) else {
            return self.texel(x, y);
        };
        if !self.bilinear {
            return self.texel(px.wrapping_sub(1) >> 16, py.wrapping_sub(1) >> 16);
        }
        let (x1, y1) = (px.wrapping_sub(0x8000), py.wrapping_sub(0x8000));
        let dx = ((x1 >> 9) & 0x7f) << 1;
        let dy = ((y1 >> 9) & 0x7f) << 1;
        let (x1, y1) = (x1 >> 16, y1 >> 16);
        let (tl, tr) = (self.texel(x1, y1), self.texel(x1 + 1, y1));
        let (bl, br) = (self.texel(x1, y1 + 1), self.texel(x1 + 1, y1 + 1));
        let w_br = dx * dy;
        let w_tr = dx * (256 - dy);
        let w_bl = (256 - dx) * dy;
        let w_tl = (256 - dx) * (256 - dy);
        let mut out = 0u32;
        for shift in [0, 8, 16, 24] {
            let c = |p: u32| i64::from((p >> shift) & 0xff);
            let v = (c(tl) * w_tl + c(tr) * w_tr + c(bl) * w_bl + c(br) * w_br) >> 16;
            out |= (v as u32 & 0xff) << shift;
        }
        out
    }

    /// The sample for destination pixel (x, y), float path.
    fn sample_f(&self, x: i64, y: i64) -> F4 {
        let Some((px, py)) = self.point(x, y) else {
            return self.texel_f(x, y);
        };
        if !self.bilinear {
            return self.texel_f(px.wrapping_sub(1) >> 16, py.wrapping_sub(1) >> 16);
        }
        let (x1, y1) = (px.wrapping_sub(0x8000), py.wrapping_sub(0x8000));
        let dx = (x1 & 0xffff) as f32 / 65536.0;
        let dy = (y1 & 0xffff) as f32 / 65536.0;
        let (x1, y1) = (x1 >> 16, y1 >> 16);
        let (tl, tr) = (self.texel_f(x1, y1), self.texel_f(x1 + 1, y1));
        let (bl, br) = (self.texel_f(x1, y1 + 1), self.texel_f(x1 + 1, y1 + 1));
        let w_br = dx * dy;
        let w_tr = dx * (1.0 - dy);
        let w_bl = (1.0 - dx) * dy;
        let w_tl = (1.0 - dx) * (1.0 - dy);
        std::array::from_fn(|i| tl[i] * w_tl + tr[i] * w_tr + bl[i] * w_bl + br[i] * w_br)
    }
}

/// How the canvas sees a COMPOSITE source or mask (`canvas_get_image(.., FALSE)`: converted
/// to the canvas's x8r8g8b8 unless it has alpha; a surface as the surface's format).
fn composite_texels(image: &Image, pixels: &Pixels, force_opaque: bool) -> Texels {
    match image {
        Image::Pixels(_) if pixels.format == fmt::RGBA => Texels::Argb,
        Image::Pixels(_) if pixels.format == fmt::BIT8_A => Texels::OpaqueBlack,
        Image::Surface(_) if pixels.alpha && !force_opaque => Texels::Argb,
        _ => Texels::Xrgb,
    }
}

/// pixman filter → bilinear or not; None for the convolution filters (spice-common passes
/// them no parameters: pixman would dereference NULL).
fn filter_is_bilinear(filter: u32) -> Option<bool> {
    match filter {
        0 | 3 | 7 => Some(false),
        1 | 2 | 4 => Some(true),
        _ => None,
    }
}

const SOURCE_OPAQUE: u32 = 1 << 22;

/// Renders an `Op::Composite` drawing.
pub(super) fn composite(fb: &mut Framebuffer, draw: &Draw, surfaces: &dyn Surfaces) {
    let Op::Composite {
        flags,
        src,
        mask,
        src_origin,
        mask_origin,
        src_transform,
        mask_transform,
    } = &draw.op
    else {
        return;
    };
    let Some(op) = operator_for(flags & 0xff, !fb.argb) else {
        crate::log_warn!("composite with operator {:#x} refused", flags & 0xff);
        return;
    };
    let (Some(src_bilinear), Some(mask_bilinear)) = (
        filter_is_bilinear((flags >> 8) & 7),
        filter_is_bilinear((flags >> 11) & 7),
    ) else {
        crate::log_warn!("composite with a convolution filter refused: {flags:#x}");
        return;
    };
    // pixman does nothing for DST (IN_REVERSE too on a 16-bit surface, where the images are
    // converted to its opaque format): the pixels, alpha or X bits included, stay.
    if op == DST || (fb.rgb_bits.is_some() && op == IN_REVERSE) {
        return;
    }
    let Some(s) = resolve(src, surfaces) else {
        return;
    };
    let m = match mask {
        Some(image) => match resolve(image, surfaces) {
            Some(p) => Some((image, p)),
            None => return,
        },
        None => None,
    };
    if s.width == 0
        || s.height == 0
        || m.as_ref()
            .is_some_and(|(_, p)| p.width == 0 || p.height == 0)
    {
        return;
    }
    let source = Picture {
        image: &s,
        texels: composite_texels(src, &s, flags & SOURCE_OPAQUE != 0),
        transform: src_transform.map(|t| t.map(i64::from)),
        repeat: (flags >> 14) & 3,
        bilinear: src_bilinear,
    };
    let mask = m.as_ref().map(|(image, p)| Picture {
        image: p,
        texels: composite_texels(image, p, false),
        transform: mask_transform.map(|t| t.map(i64::from)),
        repeat: (flags >> 16) & 3,
        bilinear: mask_bilinear,
    });
    let component_alpha = mask.is_some() && flags & (1 << 18) != 0;
    let float = needs_float(op);
    let (sox, soy) = (i64::from(src_origin.0), i64::from(src_origin.1));
    let (mox, moy) = (i64::from(mask_origin.0), i64::from(mask_origin.1));
    let (left, top) = (i64::from(draw.bbox.left), i64::from(draw.bbox.top));
    // spice-common composites onto a copy of the box in the surface's own format: an ARGB
    // surface's alpha takes part, any other destination reads as opaque.
    let dest_alpha = if fb.argb { 0 } else { 0xff00_0000 };
    let fb_bits = fb.rgb_bits;
    update(fb, draw, &None, |x, y, d| {
        let (rx, ry) = (i64::from(x) - left, i64::from(y) - top);
        let d = d | dest_alpha;
        Some(if let (true, Some(bits)) = (float, fb_bits) {
            // a 16-bit surface: its pixels and the images converted to its format
            let s = unpack_narrow(source.sample(rx + sox, ry + soy), bits);
            let m = mask
                .as_ref()
                .map(|m| unpack_narrow(m.sample(rx + mox, ry + moy), bits));
            pack_f(combine_float(
                op,
                s,
                m,
                component_alpha,
                unpack_narrow(d, bits),
            ))
        } else if float {
            let s = source.sample_f(rx + sox, ry + soy);
            let m = mask.as_ref().map(|m| m.sample_f(rx + mox, ry + moy));
            pack_f(combine_float(op, s, m, component_alpha, unpack_f(d)))
        } else {
            let s = source.sample(rx + sox, ry + soy);
            let m = mask.as_ref().map(|m| m.sample(rx + mox, ry + moy));
            match m {
                Some(m) if component_alpha => combine_ca(op, s, m, d),
                m => combine_u(op, s, m.map(|m| m >> 24), d),
            }
        })
    });
}

/// Renders an `Op::AlphaBlend` drawing: pixman OVER of the source (its own format; scaled
/// with a nearest filter when the areas differ) through a solid mask of `alpha`.
pub(super) fn alpha_blend(
    fb: &mut Framebuffer,
    draw: &Draw,
    src: &Source,
    alpha: u8,
    src_has_alpha: bool,
    surfaces: &dyn Surfaces,
) {
    if alpha == 0 {
        return;
    }
    let Some(pixels) = resolve(&src.image, surfaces) else {
        return;
    };
    if pixels.width == 0 || pixels.height == 0 {
        return;
    }
    let texels = match &src.image {
        Image::Pixels(p) if p.format == fmt::RGBA => Texels::Argb,
        Image::Pixels(p) if p.format == fmt::BIT8_A => Texels::A8,
        Image::Surface(_) if src_has_alpha && pixels.alpha => Texels::Argb,
        _ => Texels::Xrgb,
    };
    let (dw, dh) = (draw.bbox.width(), draw.bbox.height());
    let (sw, sh) = (src.area.width(), src.area.height());
    if dw <= 0 || dh <= 0 {
        return;
    }
    let (sx, sy) = (i64::from(src.area.left), i64::from(src.area.top));
    let transform = (sw != dw || sh != dh).then(|| {
        let (fx, fy) = (((sw << 16) / dw) as i32, ((sh << 16) / dh) as i32);
        [i64::from(fx), 0, sx << 16, 0, i64::from(fy), sy << 16]
    });
    let picture = Picture {
        image: &pixels,
        texels,
        transform,
        repeat: 0,
        bilinear: false,
    };
    let (ox, oy) = if transform.is_some() {
        (0, 0)
    } else {
        (sx, sy)
    };
    let mask = (alpha != 255).then_some(u32::from(alpha));
    let (left, top) = (i64::from(draw.bbox.left), i64::from(draw.bbox.top));
    // An ARGB surface's own alpha takes part (spice-common blends into a8r8g8b8 there);
    // any other destination reads as opaque.
    let dest_alpha = if fb.alpha { 0 } else { 0xff00_0000 };
    update(fb, draw, &None, |x, y, d| {
        let s = picture.sample(i64::from(x) - left + ox, i64::from(y) - top + oy);
        Some(combine_u(OVER, s, mask, d | dest_alpha))
    });
}

// ---- 8-bit combiners (pixman-combine32.c) ---------------------------------------------

fn channel(p: u32, i: u32) -> u32 {
    (p >> (8 * i)) & 0xff
}

fn per_channel(f: impl Fn(u32) -> u32) -> u32 {
    (0..4).fold(0, |acc, i| acc | (f(i) & 0xff) << (8 * i))
}

/// `x * a / 255` with pixman's rounding.
fn mul(x: u32, a: u32) -> u32 {
    let t = x * a + 0x80;
    ((t >> 8) + t) >> 8
}

/// Every channel of `x` times the scalar `a`.
fn mul_s(x: u32, a: u32) -> u32 {
    per_channel(|i| mul(channel(x, i), a))
}

/// Channel-wise product.
fn mul_v(x: u32, a: u32) -> u32 {
    per_channel(|i| mul(channel(x, i), channel(a, i)))
}

/// Channel-wise saturating sum.
fn add(x: u32, y: u32) -> u32 {
    per_channel(|i| (channel(x, i) + channel(y, i)).min(255))
}

/// `(x + 127) / 255` as pixman's DIV_ONE_UN8.
fn div_one(x: u32) -> u32 {
    (x + 0x80 + ((x + 0x80) >> 8)) >> 8
}

/// The separable blend functions' `ad * as * B(d/ad, s/as)` in integers.
fn blend_int(op: u32, d: i32, ad: i32, s: i32, r#as: i32) -> i32 {
    match op {
        SCREEN => s * ad + d * r#as - s * d,
        OVERLAY => {
            if 2 * d < ad {
                2 * s * d
            } else {
                r#as * ad - 2 * (ad - d) * (r#as - s)
            }
        }
        DARKEN => (ad * s).min(r#as * d),
        LIGHTEN => (ad * s).max(r#as * d),
        HARD_LIGHT => {
            if 2 * s < r#as {
                2 * s * d
            } else {
                r#as * ad - 2 * (ad - d) * (r#as - s)
            }
        }
        DIFFERENCE => (d * r#as - s * ad).abs(),
        EXCLUSION => s * ad + d * r#as - 2 * d * s,
        _ => 0,
    }
}

/// PDF_SEPARABLE_BLEND_MODE: `s` already masked, `m` the per-channel source alpha.
fn separable(op: u32, s: u32, m: u32, d: u32) -> u32 {
    let (sa, da) = (s >> 24, d >> 24);
    let ra = (da * 255 + sa * 255 - sa * da).min(255 * 255);
    let mut out = div_one(ra) << 24;
    for i in 0..3 {
        let (dc, sc, mc) = (channel(d, i), channel(s, i), channel(m, i));
        let base = (255 - mc) * dc + (255 - da) * sc;
        let v = base.wrapping_add(blend_int(op, dc as i32, da as i32, sc as i32, mc as i32) as u32);
        out |= div_one(v.min(255 * 255)) << (8 * i);
    }
    out
}

/// Unified-alpha combine of source `s` through mask alpha `m` onto `d`.
fn combine_u(op: u32, s: u32, m: Option<u32>, d: u32) -> u32 {
    let s = match m {
        None => s,
        Some(m) => mul_s(s, m),
    };
    let (sa, da) = (s >> 24, d >> 24);
    match op {
        CLEAR => 0,
        SRC => s,
        OVER => add(mul_s(d, 255 - sa), s),
        OVER_REVERSE => add(mul_s(s, 255 - da), d),
        IN => mul_s(s, da),
        IN_REVERSE => mul_s(d, sa),
        OUT => mul_s(s, 255 - da),
        OUT_REVERSE => mul_s(d, 255 - sa),
        ATOP => add(mul_s(s, da), mul_s(d, 255 - sa)),
        ATOP_REVERSE => add(mul_s(s, 255 - da), mul_s(d, sa)),
        XOR => add(mul_s(s, 255 - da), mul_s(d, 255 - sa)),
        ADD => add(s, d),
        MULTIPLY => add(mul_v(d, s), add(mul_s(s, 255 - da), mul_s(d, 255 - sa))),
        SCREEN | OVERLAY | DARKEN | LIGHTEN | HARD_LIGHT | DIFFERENCE | EXCLUSION => {
            separable(op, s, sa * 0x0101_0101, d)
        }
        _ => d,
    }
}

/// Component-alpha combine: `m` is a per-channel mask.
fn combine_ca(op: u32, s: u32, m: u32, d: u32) -> u32 {
    let da = d >> 24;
    // combine_mask_ca: the source through the mask, the mask times the source alpha
    let sm = mul_v(s, m);
    let ma = mul_s(m, s >> 24);
    match op {
        CLEAR => 0,
        SRC => sm,
        OVER => add(mul_v(d, !ma), sm),
        OVER_REVERSE => add(mul_s(sm, 255 - da), d),
        IN => mul_s(sm, da),
        IN_REVERSE => mul_v(d, ma),
        OUT => mul_s(sm, 255 - da),
        OUT_REVERSE => mul_v(d, !ma),
        ATOP => add(mul_v(d, !ma), mul_s(sm, da)),
        ATOP_REVERSE => add(mul_v(d, ma), mul_s(sm, 255 - da)),
        XOR => add(mul_v(d, !ma), mul_s(sm, 255 - da)),
        ADD => add(sm, d),
        MULTIPLY => add(add(mul_v(d, !ma), mul_s(sm, 255 - da)), mul_v(d, sm)),
        SCREEN | OVERLAY | DARKEN | LIGHTEN | HARD_LIGHT | DIFFERENCE | EXCLUSION => {
            separable(op, sm, ma, d)
        }
        _ => d,
    }
}

// ---- float combiners (pixman-combine-float.c) -------------------------------------------

/// a, r, g, b in 0..1.
type F4 = [f32; 4];

fn unpack_f(p: u32) -> F4 {
    let c = |shift: u32| ((p >> shift) & 0xff) as f32 * (1.0f32 / 255.0);
    [c(24), c(16), c(8), c(0)]
}

/// An opaque pixel of a 16-bit format (widened to bytes by bit replication) as pixman's
/// float path reads it: each channel's `n` top bits times `1 / (2^n - 1)`.
fn unpack_narrow(p: u32, bits: [u32; 3]) -> F4 {
    let c = |shift: u32, n: u32| {
        (((p >> shift) & 0xff) >> (8 - n)) as f32 * (1.0f32 / ((1u32 << n) - 1) as f32)
    };
    [c(24, 8), c(16, bits[0]), c(8, bits[1]), c(0, bits[2])]
}

/// pixman's float_to_unorm(f, 8) per channel.
fn pack_f(f: F4) -> u32 {
    let unorm = |v: f32| {
        // NaN stays NaN (and becomes 0 below), as in pixman
        let v = v.clamp(0.0, 1.0);
        let u = (v * 256.0) as u32;
        u - (u >> 8)
    };
    (unorm(f[0]) << 24) | (unorm(f[1]) << 16) | (unorm(f[2]) << 8) | unorm(f[3])
}

fn is_zero(f: f32) -> bool {
    -f32::MIN_POSITIVE < f && f < f32::MIN_POSITIVE
}

fn clamp01(f: f32) -> f32 {
    f.clamp(0.0, 1.0)
}

#[derive(Clone, Copy)]
enum Factor {
    Zero,
    One,
    SaOverDa,
    DaOverSa,
    InvSaOverDa,
    InvDaOverSa,
    OneMinusSaOverDa,
    OneMinusDaOverSa,
    OneMinusInvDaOverSa,
    OneMinusInvSaOverDa,
}

fn factor(f: Factor, sa: f32, da: f32) -> f32 {
    use Factor::*;
    match f {
        Zero => 0.0,
        One => 1.0,
        SaOverDa if is_zero(da) => 1.0,
        SaOverDa => clamp01(sa / da),
        DaOverSa if is_zero(sa) => 1.0,
        DaOverSa => clamp01(da / sa),
        InvSaOverDa if is_zero(da) => 1.0,
        InvSaOverDa => clamp01((1.0 - sa) / da),
        InvDaOverSa if is_zero(sa) => 1.0,
        InvDaOverSa => clamp01((1.0 - da) / sa),
        OneMinusSaOverDa if is_zero(da) => 0.0,
        OneMinusSaOverDa => clamp01(1.0 - sa / da),
        OneMinusDaOverSa if is_zero(sa) => 0.0,
        OneMinusDaOverSa => clamp01(1.0 - da / sa),
        OneMinusInvDaOverSa if is_zero(sa) => 0.0,
        OneMinusInvDaOverSa => clamp01(1.0 - (1.0 - da) / sa),
        OneMinusInvSaOverDa if is_zero(da) => 0.0,
        OneMinusInvSaOverDa => clamp01(1.0 - (1.0 - sa) / da),
    }
}

/// The disjoint/conjoint (and SATURATE) Porter-Duff factors (fa for the source, fb for the
/// destination).
fn pd_factors(op: u32) -> Option<(Factor, Factor)> {
    use Factor::*;
    Some(match op {
        SATURATE => (InvDaOverSa, One),
        0x13 => (One, InvSaOverDa),
        0x14 => (InvDaOverSa, One),
        0x15 => (OneMinusInvDaOverSa, Zero),
        0x16 => (Zero, OneMinusInvSaOverDa),
        0x17 => (InvDaOverSa, Zero),
        0x18 => (Zero, InvSaOverDa),
        0x19 => (OneMinusInvDaOverSa, InvSaOverDa),
        0x1a => (InvDaOverSa, OneMinusInvSaOverDa),
        0x1b => (InvDaOverSa, InvSaOverDa),
        0x23 => (One, OneMinusSaOverDa),
        0x24 => (OneMinusDaOverSa, One),
        0x25 => (DaOverSa, Zero),
        0x26 => (Zero, SaOverDa),
        0x27 => (OneMinusDaOverSa, Zero),
        0x28 => (Zero, OneMinusSaOverDa),
        0x29 => (DaOverSa, OneMinusSaOverDa),
        0x2a => (OneMinusDaOverSa, SaOverDa),
        0x2b => (OneMinusDaOverSa, OneMinusSaOverDa),
        _ => return None,
    })
}

/// The float separable blend functions (`ad * as * B(d/ad, s/as)`).
fn blend_float(op: u32, sa: f32, s: f32, da: f32, d: f32) -> f32 {
    match op {
        COLOR_DODGE => {
            if is_zero(d) {
                0.0
            } else if d * sa >= sa * da - s * da || is_zero(sa - s) {
                sa * da
            } else {
                sa * sa * d / (sa - s)
            }
        }
        COLOR_BURN => {
            if d >= da {
                sa * da
            } else if sa * (da - d) >= s * da || is_zero(s) {
                0.0
            } else {
                sa * (da - sa * (da - d) / s)
            }
        }
        SOFT_LIGHT => {
            if is_zero(da) {
                d * sa
            } else if 2.0 * s <= sa {
                d * sa - d * (da - d) * (sa - 2.0 * s) / da
            } else if 4.0 * d <= da {
                d * sa + (2.0 * s - sa) * d * ((16.0 * d / da - 12.0) * d / da + 3.0)
            } else {
                d * sa + ((d * da).sqrt() - d) * (2.0 * s - sa)
            }
        }
        _ => 0.0,
    }
}

/// One channel of a float combiner (`sa` the channel's source alpha).
fn combine_channel(op: u32, sa: f32, s: f32, da: f32, d: f32, alpha: bool) -> f32 {
    if let Some((fa, fb)) = pd_factors(op) {
        let v = s * factor(fa, sa, da) + d * factor(fb, sa, da);
        return if 1.0 < v { 1.0 } else { v };
    }
    if alpha {
        return da + sa - da * sa;
    }
    let f = (1.0 - sa) * d + (1.0 - da) * s;
    f + blend_float(op, sa, s, da, d)
}

fn combine_float(op: u32, s: F4, m: Option<F4>, component_alpha: bool, d: F4) -> F4 {
    if (HSL_HUE..=HSL_LUMINOSITY).contains(&op) {
        // pixman has no component-alpha HSL combiner: it leaves the destination.
        return if component_alpha {
            d
        } else {
            combine_hsl(op, s, m, d)
        };
    }
    let (alphas, s) = match m {
        None => ([s[0]; 4], s),
        Some(m) if !component_alpha => {
            let s = s.map(|v| v * m[0]);
            ([s[0]; 4], s)
        }
        Some(m) => {
            // component alpha: each colour through its mask channel, the mask times the
            // source alpha as each channel's source alpha
            let sa = s[0];
            let alphas = m.map(|v| v * sa);
            (alphas, [alphas[0], s[1] * m[1], s[2] * m[2], s[3] * m[3]])
        }
    };
    let da = d[0];
    std::array::from_fn(|i| combine_channel(op, alphas[i], s[i], da, d[i], i == 0))
}

#[derive(Clone, Copy)]
struct Rgb {
    r: f32,
    g: f32,
    b: f32,
}

fn minf(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

fn maxf(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

impl Rgb {
    fn min(&self) -> f32 {
        minf(minf(self.r, self.g), self.b)
    }
    fn max(&self) -> f32 {
        maxf(maxf(self.r, self.g), self.b)
    }
    fn lum(&self) -> f32 {
        self.r * 0.3 + self.g * 0.59 + self.b * 0.11
    }
    fn sat(&self) -> f32 {
        self.max() - self.min()
    }
    fn scaled(&self, k: f32) -> Rgb {
        Rgb {
            r: self.r * k,
            g: self.g * k,
            b: self.b * k,
        }
    }
    fn map(&mut self, f: impl Fn(f32) -> f32) {
        self.r = f(self.r);
        self.g = f(self.g);
        self.b = f(self.b);
    }

    fn clip(&mut self, a: f32) {
        let (l, n, x) = (self.lum(), self.min(), self.max());
        if n < 0.0 {
            let t = l - n;
            if is_zero(t) {
                self.map(|_| 0.0);
            } else {
                self.map(|c| l + ((c - l) * l) / t);
            }
        }
        if x > a {
            let t = x - l;
            if is_zero(t) {
                self.map(|_| a);
            } else {
                self.map(|c| l + ((c - l) * (a - l) / t));
            }
        }
    }

    fn set_lum(&mut self, sa: f32, l: f32) {
        let d = l - self.lum();
        self.map(|c| c + d);
        self.clip(sa);
    }

    fn set_sat(&mut self, sat: f32) {
        let mut c = [self.r, self.g, self.b];
        // pixman's choice of max, mid and min (ties included)
        let (max, mid, min) = if c[0] > c[1] {
            if c[0] > c[2] {
                if c[1] > c[2] {
                    (0, 1, 2)
                } else {
                    (0, 2, 1)
                }
            } else {
                (2, 0, 1)
            }
        } else if c[0] > c[2] {
            (1, 0, 2)
        } else if c[1] > c[2] {
            (1, 2, 0)
        } else {
            (2, 1, 0)
        };
        let t = c[max] - c[min];
        if is_zero(t) {
            c[mid] = 0.0;
            c[max] = 0.0;
        } else {
            c[mid] = ((c[mid] - c[min]) * sat) / t;
            c[max] = sat;
        }
        c[min] = 0.0;
        (self.r, self.g, self.b) = (c[0], c[1], c[2]);
    }
}

fn combine_hsl(op: u32, s: F4, m: Option<F4>, d: F4) -> F4 {
    let (mut sa, da) = (s[0], d[0]);
    let mut sc = Rgb {
        r: s[1],
        g: s[2],
        b: s[3],
    };
    let dc = Rgb {
        r: d[1],
        g: d[2],
        b: d[3],
    };
    if let Some(m) = m {
        // as pixman 0.42 does: green scaled twice, blue not at all
        let ma = m[0];
        sa *= ma;
        sc.r *= ma;
        sc.g *= ma;
        sc.g *= ma;
    }
    let mut rc;
    match op {
        HSL_HUE => {
            rc = sc.scaled(da);
            rc.set_sat(dc.sat() * sa);
            rc.set_lum(sa * da, dc.lum() * sa);
        }
        HSL_SATURATION => {
            rc = dc.scaled(sa);
            rc.set_sat(sc.sat() * da);
            rc.set_lum(sa * da, dc.lum() * sa);
        }
        HSL_COLOR => {
            rc = sc.scaled(da);
            rc.set_lum(sa * da, dc.lum() * sa);
        }
        _ => {
            rc = dc.scaled(sa);
            rc.set_lum(sa * da, sc.lum() * da);
        }
    }
    [
        sa + da - sa * da,
        (1.0 - sa) * dc.r + (1.0 - da) * sc.r + rc.r,
        (1.0 - sa) * dc.g + (1.0 - da) * sc.g + rc.g,
        (1.0 - sa) * dc.b + (1.0 - da) * sc.b + rc.b,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{get_at, put_at, render};
    use super::*;
    use crate::canvas::fixtures::{rect, NoSurfaces};
    use crate::geometry::Rect;

    fn image(format: u8, width: u32, data: Vec<u32>) -> Image {
        Image::Pixels(Pixels {
            width,
            height: data.len() as u32 / width,
            data,
            alpha: matches!(format, fmt::RGBA | fmt::BIT8_A),
            format,
        })
    }

    /// Renders `op` over a row of `dest` pixels; returns the row.
    fn row_after(dest: &[u32], op: Op) -> Vec<u32> {
        let width = dest.len() as u32;
        let mut fb = Framebuffer::new(width, 1).unwrap();
        for (x, v) in dest.iter().enumerate() {
            put_at(fb.pixels_mut(), x * 4, *v);
        }
        let draw = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: rect(0, 0, width as i32, 1),
            clip: None,
            op,
        };
        render(&mut fb, &draw, &NoSurfaces);
        (0..dest.len())
            .map(|x| get_at(fb.pixels(), x * 4))
            .collect()
    }

    fn composite_op(flags: u32, src: Image, mask: Option<Image>) -> Op {
        Op::Composite {
            flags,
            src,
            mask,
            src_origin: (0, 0),
            mask_origin: (0, 0),
            src_transform: None,
            mask_transform: None,
        }
    }

    #[test]
    fn a8_mask_lets_everything_through() {
        // the canvas converts the A8 mask to x8r8g8b8: opaque whatever its values
        let op = composite_op(
            OVER,
            image(fmt::BIT32, 1, vec![0xffff_0000]),
            Some(image(fmt::BIT8_A, 1, vec![0])),
        );
        assert_eq!(row_after(&[0x0000ff], op), vec![0xff0000]);
    }

    #[test]
    fn a8_component_alpha_mask_blocks_the_colour() {
        // as x8r8g8b8 the mask's colour channels are 0: OVER adds nothing and keeps all
        let op = composite_op(
            OVER | 1 << 18,
            image(fmt::BIT32, 1, vec![0xffff_0000]),
            Some(image(fmt::BIT8_A, 1, vec![0xff00_0000])),
        );
        assert_eq!(row_after(&[0x0000ff], op), vec![0x0000ff]);
    }

    #[test]
    fn in_clears_outside_a_repeat_none_source() {
        let op = composite_op(IN, image(fmt::BIT32, 1, vec![0x123456]), None);
        assert_eq!(row_after(&[0x0000ff, 0x00ff00], op), vec![0x123456, 0]);
    }

    #[test]
    fn xrgb_source_is_transparent_outside_its_image() {
        let op = composite_op(OVER, image(fmt::BIT32, 1, vec![0x123456]), None);
        assert_eq!(
            row_after(&[0x0000ff, 0x00ff00], op),
            vec![0x123456, 0x00ff00]
        );
    }

    #[test]
    fn saturate_leaves_an_opaque_destination() {
        let op = composite_op(SATURATE, image(fmt::RGBA, 1, vec![0x8040_0000]), None);
        assert_eq!(row_after(&[0x0000ff], op), vec![0x0000ff]);
    }

    #[test]
    fn multiply_in_8_bit() {
        // d*s + s*(1-da) + d*(1-sa): blue 255 * (255-128)/255 = 127
        let op = composite_op(MULTIPLY, image(fmt::RGBA, 1, vec![0x8080_0000]), None);
        assert_eq!(row_after(&[0x0000ff], op), vec![0x00007f]);
    }

    #[test]
    fn bilinear_uses_7_bit_weights_and_truncates() {
        // half a pixel to the right between black and white: 255 * 128/256 = 127.5 -> 127
        let op = Op::Composite {
            flags: SRC | 4 << 8 | 2 << 14,
            src: image(fmt::BIT32, 2, vec![0, 0xffffff]),
            mask: None,
            src_origin: (0, 0),
            mask_origin: (0, 0),
            src_transform: Some([0x10000, 0, 0x8000, 0, 0x10000, 0]),
            mask_transform: None,
        };
        assert_eq!(row_after(&[0], op), vec![0x7f7f7f]);
    }

    #[test]
    fn color_dodge_in_float() {
        // d / (1 - s) = (128/255) / (1 - 64/255) = 0.670 -> 0.670 * 256 = 171
        let op = composite_op(COLOR_DODGE, image(fmt::BIT32, 1, vec![0x404040]), None);
        assert_eq!(row_after(&[0x808080], op), vec![0xababab]);
        // d >= 1 - s: saturates to white
        let op = composite_op(COLOR_DODGE, image(fmt::BIT32, 1, vec![0x808080]), None);
        assert_eq!(row_after(&[0x808080], op), vec![0xffffff]);
    }

    #[test]
    fn atop_keeps_its_meaning_on_an_argb_destination() {
        // On an opaque destination ATOP is OVER; on ARGB it reads the destination's alpha:
        // an opaque red source ATOP a transparent pixel leaves it transparent.
        assert_eq!(operator_for(ATOP, true), Some(OVER));
        assert_eq!(operator_for(ATOP, false), Some(ATOP));
        let mut fb = Framebuffer::new(1, 1).unwrap();
        fb.alpha = true;
        fb.argb = true;
        let draw = Draw {
            surface_id: 1,
            depends_on: vec![],
            bbox: rect(0, 0, 1, 1),
            clip: None,
            op: composite_op(ATOP, image(fmt::RGBA, 1, vec![0xffff_0000]), None),
        };
        render(&mut fb, &draw, &NoSurfaces);
        assert_eq!(fb.pixels(), &[0, 0, 0, 0]);
    }

    #[test]
    fn float_ops_read_16_bit_channels_unwidened() {
        // 565 red 17 widens to the byte 140 (140/255 = 0.5490) but pixman's float path
        // reads 17/31 = 0.5484.
        let f = unpack_narrow(0xff8c_0000, [5, 6, 5]);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[1], 17.0 * (1.0f32 / 31.0));
        assert_ne!(f[1], unpack_f(0xff8c_0000)[1]);
    }

    #[test]
    fn hsl_with_component_alpha_leaves_the_destination() {
        let op = composite_op(
            HSL_HUE | 1 << 18,
            image(fmt::BIT32, 1, vec![0xff0000]),
            Some(image(fmt::BIT32, 1, vec![0xffffff])),
        );
        assert_eq!(row_after(&[0x336699], op), vec![0x336699]);
    }

    #[test]
    fn unknown_operators_and_convolution_filters_are_refused() {
        let op = composite_op(0x40, image(fmt::BIT32, 1, vec![0xffffff]), None);
        assert_eq!(row_after(&[0x336699], op), vec![0x336699]);
        let op = composite_op(SRC | 5 << 8, image(fmt::BIT32, 1, vec![0xffffff]), None);
        assert_eq!(row_after(&[0x336699], op), vec![0x336699]);
    }

    fn alpha_blend_op(src: Image, area: Rect, alpha: u8, src_has_alpha: bool) -> Op {
        Op::AlphaBlend {
            src: Source {
                image: src,
                area,
                scale_mode: 1,
            },
            alpha,
            src_has_alpha,
            dest_has_alpha: false,
        }
    }

    #[test]
    fn alpha_blend_rgba_bitmap_keeps_its_alpha_without_the_flag() {
        // half red (premultiplied) over blue: blue * 127/255 = 127
        let op = alpha_blend_op(
            image(fmt::RGBA, 1, vec![0x8080_0000]),
            rect(0, 0, 1, 1),
            255,
            false,
        );
        assert_eq!(row_after(&[0x0000ff], op), vec![0x80007f]);
    }

    #[test]
    fn alpha_blend_a8_bitmap_darkens() {
        let op = alpha_blend_op(
            image(fmt::BIT8_A, 1, vec![0xff00_0000]),
            rect(0, 0, 1, 1),
            128,
            true,
        );
        // white * (1 - 128/255)
        assert_eq!(row_after(&[0xffffff], op), vec![0x7f7f7f]);
    }

    #[test]
    fn alpha_blend_area_past_the_bitmap_reads_transparent() {
        let op = alpha_blend_op(
            image(fmt::BIT32, 1, vec![0x123456]),
            rect(0, 0, 2, 1),
            255,
            false,
        );
        assert_eq!(
            row_after(&[0x0000ff, 0x00ff00], op),
            vec![0x123456, 0x00ff00]
        );
    }

    #[test]
    fn hostile_parameters_do_not_panic() {
        // extreme transforms, origins, filters, repeats and areas: no overflow, no panic
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32
        };
        let extremes = [i32::MIN, i32::MAX, 0, 1, -1, 0x10000, -0x10000, 0x7fff_0000];
        for _ in 0..300 {
            let v: Vec<i32> = (0..10)
                .map(|_| extremes[next() as usize % extremes.len()])
                .collect();
            let transform = [v[0], v[1], v[2], v[3], v[4], v[5]];
            let flags = next() & 0x1ff_ffff;
            let origin = (next() as i16 as i32, next() as i16 as i32);
            let op = Op::Composite {
                flags,
                src: image(fmt::RGBA, 2, vec![0x8040_2010, 0xffff_ffff]),
                mask: (flags & 1 != 0).then(|| image(fmt::BIT8_A, 1, vec![0x8000_0000])),
                src_origin: origin,
                mask_origin: (origin.1, origin.0),
                src_transform: (flags & 2 != 0).then_some(transform),
                mask_transform: (flags & 4 != 0).then_some(transform),
            };
            row_after(&[0x123456, 0x654321, 0], op);
            let area = rect(v[6], v[7], v[8], v[9]);
            let op = alpha_blend_op(image(fmt::RGBA, 1, vec![0x8040_2010]), area, 200, true);
            row_after(&[0x123456, 0x654321, 0], op);
        }
    }
}
