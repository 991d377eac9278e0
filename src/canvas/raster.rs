//! Raster drawings (FILL, COPY, OPAQUE, BLEND, ROP3, BLACKNESS/WHITENESS/INVERS,
//! TRANSPARENT) as spice-common's software canvas renders them.

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::qxl::draw::Mask;

    fn px(fb: &Framebuffer, x: u32, y: u32) -> u32 {
        get_at(fb.pixels(), y as usize * fb.stride() + x as usize * 4)
    }

    fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
        Rect {
            top,
            left,
            bottom,
            right,
        }
    }

    struct NoSurfaces;
    impl Surfaces for NoSurfaces {
        fn pixels_of(&self, _: u32) -> Option<Pixels> {
            None
        }
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
