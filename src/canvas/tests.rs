use super::*;
use crate::qxl::draw::Source;

struct NoSurfaces;
impl Surfaces for NoSurfaces {
    fn pixels_of(&self, _: u32) -> Option<Pixels> {
        None
    }
}

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
        surface_id: 0,
        depends_on: vec![],
        bbox,
        clip: None,
        op,
    }
}

#[test]
fn fill_respects_clip() {
    let mut fb = Framebuffer::new(4, 4).unwrap();
    let mut d = draw(
        rect(0, 0, 4, 4),
        Op::Fill {
            brush: Brush::Solid(0x00ff_0000),
            rop: 8,
            mask: None,
        },
    );
    d.clip = Some(vec![rect(1, 1, 2, 2)]);
    let damage = render(&mut fb, &d, &NoSurfaces);
    assert_eq!(damage, Some(Area::new(1, 1, 2, 2)));
    assert_eq!(px(&fb, 1, 1), 0x00ff_0000);
    assert_eq!(px(&fb, 0, 0), 0);
}

#[test]
fn copy_scales_and_copy_bits_scrolls() {
    let mut fb = Framebuffer::new(4, 4).unwrap();
    let src = Pixels {
        width: 2,
        height: 1,
        data: vec![0xff11_1111, 0xff22_2222],
        alpha: false,
        format: 8,
    };
    let op = Op::Copy {
        src: Source {
            image: Image::Pixels(src),
            area: rect(0, 0, 2, 1),
            scale_mode: 1,
        },
        rop: 8,
        mask: None,
    };
    render(&mut fb, &draw(rect(0, 0, 4, 1), op), &NoSurfaces);
    assert_eq!(
        (0..4).map(|x| px(&fb, x, 0)).collect::<Vec<_>>(),
        vec![0x111111, 0x111111, 0x222222, 0x222222]
    );
    // Move row 0 down to row 1.
    render(
        &mut fb,
        &draw(rect(0, 1, 4, 2), Op::CopyBits { x: 0, y: 0 }),
        &NoSurfaces,
    );
    assert_eq!(px(&fb, 3, 1), 0x222222);
}

#[test]
fn alpha_blend_is_premultiplied_over() {
    let mut fb = Framebuffer::new(1, 1).unwrap();
    put(&mut fb, 0, 0, 0x0000_00ff);
    let src = Pixels {
        width: 1,
        height: 1,
        data: vec![0xffff_0000],
        alpha: false,
        format: 8,
    };
    let op = Op::AlphaBlend {
        src: Source {
            image: Image::Pixels(src),
            area: rect(0, 0, 1, 1),
            scale_mode: 0,
        },
        alpha: 128,
        src_has_alpha: false,
    };
    render(&mut fb, &draw(rect(0, 0, 1, 1), op), &NoSurfaces);
    assert_eq!(px(&fb, 0, 0), 0x0080_007f);
}

#[test]
fn boxes_outside_the_surface_draw_nothing() {
    let mut fb = Framebuffer::new(2, 2).unwrap();
    let d = draw(rect(5, 5, 9, 9), Op::Whiteness { mask: None });
    assert_eq!(render(&mut fb, &d, &NoSurfaces), None);
    let d = draw(rect(1, 1, -3, 0), Op::Whiteness { mask: None });
    assert_eq!(render(&mut fb, &d, &NoSurfaces), None);
}

#[test]
fn overlapping_clip_rects_invert_once() {
    let mut fb = Framebuffer::new(4, 1).unwrap();
    let mut d = draw(rect(0, 0, 4, 1), Op::Invers { mask: None });
    d.clip = Some(vec![rect(0, 0, 3, 1), rect(1, 0, 4, 1)]);
    render(&mut fb, &d, &NoSurfaces);
    assert!((0..4).all(|x| px(&fb, x, 0) == 0x00ff_ffff));
}

#[test]
fn plain_copy_writes_what_the_general_path_writes() {
    // A source partly outside the image, a clip, an offset: the row fast path (OP_PUT)
    // and the per-pixel path (OP_OR onto black, which equals PUT there) must agree.
    let src = Pixels {
        width: 5,
        height: 4,
        data: (0..20).map(|i| 0xff00_0000 | (i * 0x010203)).collect(),
        alpha: false,
        format: 8,
    };
    let copy = |rop| Op::Copy {
        src: Source {
            image: Image::Pixels(src.clone()),
            area: rect(2, 1, 8, 5),
            scale_mode: 1,
        },
        rop,
        mask: None,
    };
    let mut d = draw(rect(1, 1, 7, 5), copy(8));
    d.clip = Some(vec![rect(0, 0, 5, 3), rect(3, 3, 7, 7)]);
    let mut fast = Framebuffer::new(8, 8).unwrap();
    render(&mut fast, &d, &NoSurfaces);
    d.op = copy(1 << 4); // OP_OR onto black
    let mut slow = Framebuffer::new(8, 8).unwrap();
    render(&mut slow, &d, &NoSurfaces);
    assert_eq!(fast, slow);
    assert_ne!(fast.pixels(), vec![0; 8 * 8 * 4], "something was drawn");
}
