//! Raster drawings (FILL, COPY, OPAQUE, BLEND, ROP3, BLACKNESS/WHITENESS/INVERS,
//! TRANSPARENT) as spice-common's software canvas renders them.

use super::framebuffer::Framebuffer;
use super::{
    bilinear, brush_at, copy_with, pattern_of, pixel_or_clear, resolve, rop, update, Surfaces,
    SCALE_INTERPOLATE,
};
use crate::qxl::draw::{Brush, Draw, Mask, Source};
use crate::qxl::image::Pixels;

/// The brush colour at (x, y). A drawing without a brush still applies its rop: with
/// colour 0, as spice-common's draw_brush does (so OP_PUT paints black).
fn brush_color(brush: &Brush, pattern: Option<&Pixels>, x: u32, y: u32) -> u32 {
    brush_at(brush, pattern, x, y).unwrap_or(0)
}

/// FILL: the brush through the rop descriptor onto the destination.
pub(super) fn fill(
    fb: &mut Framebuffer,
    draw: &Draw,
    brush: &Brush,
    rop: u16,
    mask: &Option<Mask>,
    surfaces: &dyn Surfaces,
) {
    let pattern = pattern_of(brush, surfaces);
    update(fb, draw, mask, |x, y, d| {
        Some(rop::apply(
            rop,
            brush_color(brush, pattern.as_deref(), x, y),
            d,
            true,
        ))
    });
}

/// OPAQUE: the source copied, then the brush applied to it through the rop descriptor
/// (the copied image is the rop's destination).
pub(super) fn opaque(
    fb: &mut Framebuffer,
    draw: &Draw,
    src: &Source,
    brush: &Brush,
    rop: u16,
    mask: &Option<Mask>,
    surfaces: &dyn Surfaces,
) {
    let pattern = pattern_of(brush, surfaces);
    copy_with(fb, draw, src, mask, surfaces, |s, _| s);
    update(fb, draw, mask, |x, y, d| {
        Some(rop::apply_opaque(
            rop,
            brush_color(brush, pattern.as_deref(), x, y),
            d,
        ))
    });
}

/// Where ROP3 samples a scaled source, per axis: spice-common's canvas_scale_surface
/// scales the whole image by `s_len / d_len` and starts at destination offset
/// `round(area_start / scale)`, not at the area's start (the two differ by rounding).
struct Rop3Axis {
    /// 16.16 source pixels per destination pixel.
    scale: i64,
    /// Destination pixels before the box's first one.
    origin: i64,
}

impl Rop3Axis {
    fn new(start: i32, s_len: i64, d_len: i64) -> Rop3Axis {
        let ratio = s_len as f64 / d_len as f64;
        Rop3Axis {
            // pixman_double_to_fixed truncates; for these ratios it equals the integer
            // quotient.
            scale: (s_len << 16) / d_len,
            origin: (f64::from(start) / ratio + 0.5).floor() as i64,
        }
    }

    /// The 16.16 source position sampled for destination offset `d` (the pixel centre
    /// through pixman's rounded transform).
    fn at(&self, d: i64) -> i64 {
        ((((d + self.origin) << 16) + 0x8000) * self.scale + 0x8000) >> 16
    }
}

/// ROP3: the ternary rop of brush, source and destination over the box.
pub(super) fn rop3(
    fb: &mut Framebuffer,
    draw: &Draw,
    src: &Source,
    brush: &Brush,
    code: u8,
    mask: &Option<Mask>,
    surfaces: &dyn Surfaces,
) -> Option<()> {
    let pattern = pattern_of(brush, surfaces);
    let pixels = resolve(&src.image, surfaces)?;
    let (dw, dh) = (draw.bbox.width(), draw.bbox.height());
    let (sw, sh) = (src.area.width(), src.area.height());
    if dw <= 0 || dh <= 0 || sw <= 0 || sh <= 0 {
        return None;
    }
    let scaled = (sw, sh) != (dw, dh);
    let (ax, ay) = (
        Rop3Axis::new(src.area.left, sw, dw),
        Rop3Axis::new(src.area.top, sh, dh),
    );
    let (left, top) = (i64::from(draw.bbox.left), i64::from(draw.bbox.top));
    update(fb, draw, mask, |x, y, d| {
        let (dx, dy) = (i64::from(x) - left, i64::from(y) - top);
        let s = if !scaled {
            pixel_or_clear(
                &pixels,
                i64::from(src.area.left) + dx,
                i64::from(src.area.top) + dy,
            )
        } else if src.scale_mode == SCALE_INTERPOLATE {
            bilinear(&pixels, ax.at(dx), ay.at(dy))
        } else {
            pixel_or_clear(&pixels, (ax.at(dx) - 1) >> 16, (ay.at(dy) - 1) >> 16)
        };
        let p = brush_color(brush, pattern.as_deref(), x, y);
        Some(rop::ternary(code, p, s, d))
    });
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::canvas::fixtures::{rect, NoSurfaces};
    use crate::qxl::draw::{Mask, Source};

    fn px(fb: &Framebuffer, x: u32, y: u32) -> u32 {
        get_at(fb.pixels(), y as usize * fb.stride() + x as usize * 4)
    }

    fn draw(bbox: Rect, op: Op) -> Draw {
        Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox,
            clip: None,
            op,
        }
    }

    /// A 1x1 mask with its bit set, as parsed (1 bpp masks keep their bit as 0 / RGB).
    fn one_bit_mask(set: bool, invert: bool, x: i32) -> Mask {
        Mask {
            invert,
            x,
            y: 0,
            bits: Pixels {
                width: 1,
                height: 1,
                data: vec![if set { 0xffff_ffff } else { 0xff00_0000 }],
                alpha: false,
                format: 1,
            },
        }
    }

    #[test]
    fn a_scaled_rop3_source_starts_at_the_rounded_scaled_origin() {
        // Area (1,0)-(4,1) onto 2 pixels: scale 1.5, origin round(1 / 1.5) = 1 destination
        // pixel, so the samples are at (0 + 1 + 0.5) * 1.5 = 2.25 and 3.75: pixels 2 and 3
        // (a COPY would sample 1.75 and 3.25: pixels 1 and 3).
        let src = Source {
            image: Image::Pixels(Pixels {
                width: 4,
                height: 1,
                data: vec![0x10, 0x20, 0x30, 0x40],
                alpha: false,
                format: 8,
            }),
            area: rect(1, 0, 4, 1),
            scale_mode: 1,
        };
        let mut fb = Framebuffer::new(2, 1).unwrap();
        let op = Op::Rop3 {
            src,
            brush: Brush::Solid(0),
            rop3: 0xcc, // the source as it is
            mask: None,
        };
        render(&mut fb, &draw(rect(0, 0, 2, 1), op), &NoSurfaces);
        assert_eq!((px(&fb, 0, 0), px(&fb, 1, 0)), (0x30, 0x40));
    }

    #[test]
    fn no_brush_applies_the_rop_with_colour_0() {
        let mut fb = Framebuffer::new(2, 1).unwrap();
        fb.pixels_mut().fill(0x35);
        // OP_PUT paints black; OP_OR | INVERS_BRUSH (!0 | d) paints white.
        for (rop, want) in [(1 << 3, 0), ((1 << 4) | (1 << 1), 0x00ff_ffff)] {
            let op = Op::Fill {
                brush: Brush::None,
                rop,
                mask: None,
            };
            render(&mut fb, &draw(rect(0, 0, 1, 1), op), &NoSurfaces);
            assert_eq!(px(&fb, 0, 0), want, "rop {rop:#x}");
        }
        assert_eq!(px(&fb, 1, 0), 0x3535_3535, "outside the box");
    }

    #[test]
    fn nothing_is_drawn_outside_a_mask_even_an_inverted_one() {
        for (set, invert, x, drawn) in [
            (true, false, 0, [true, false, false]),
            (false, true, 0, [true, false, false]),
            (true, true, 0, [false, false, false]),
            // The mask starts one pixel left of the box: only the box's first pixel
            // lies over it.
            (false, true, 1, [false, false, false]),
            (true, false, -1, [false, true, false]),
        ] {
            let mut fb = Framebuffer::new(3, 1).unwrap();
            let mask = Some(one_bit_mask(set, invert, x));
            let op = Op::Whiteness { mask };
            render(&mut fb, &draw(rect(0, 0, 3, 1), op), &NoSurfaces);
            let got: Vec<bool> = (0..3).map(|x| px(&fb, x, 0) != 0).collect();
            assert_eq!(got, drawn, "set={set} invert={invert} x={x}");
        }
    }
}
