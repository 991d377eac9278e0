use super::*;
use crate::proto::wire::Reader;

const PATH_BEGIN_END: u8 = 1 | 2;

fn r(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
    Rect {
        top,
        left,
        bottom,
        right,
    }
}

fn draw(op: Op) -> Draw {
    Draw {
        surface_id: 0,
        depends_on: vec![],
        bbox: r(2, 3, 6, 7),
        clip: None,
        op,
    }
}

fn pixels(width: u32, height: u32) -> Pixels {
    Pixels {
        width,
        height,
        data: (0..width * height).map(|i| 0xff00_0000 | i).collect(),
        alpha: false,
        format: 8,
    }
}

/// Reads DisplayBase and checks it; returns the reader after it.
fn after_base<'a>(body: &'a [u8], clip_rects: u32) -> Reader<'a> {
    let mut rd = Reader::new(body);
    assert_eq!(rd.u32().unwrap(), 0, "surface id");
    let bbox: Vec<i32> = (0..4).map(|_| rd.i32().unwrap()).collect();
    assert_eq!(bbox, vec![3, 2, 7, 6], "top, left, bottom, right");
    match clip_rects {
        0 => assert_eq!(rd.u8().unwrap(), 0),
        n => {
            assert_eq!(rd.u8().unwrap(), 1);
            assert_eq!(rd.u32().unwrap(), n);
            rd.take(16 * n as usize).unwrap();
        }
    }
    rd
}

#[test]
fn solid_fill_with_clip() {
    let mut d = draw(Op::Fill {
        brush: Brush::Solid(0x00ff_8000),
        rop: ROPD_OP_PUT,
        mask: None,
    });
    d.clip = Some(vec![r(2, 3, 4, 5)]);
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_FILL);
    let mut rd = after_base(&msg.body, 1);
    assert_eq!(rd.u8().unwrap(), 1, "solid brush");
    assert_eq!(rd.u32().unwrap(), 0x00ff_8000);
    assert_eq!(rd.u16().unwrap(), ROPD_OP_PUT);
    assert_eq!(rd.take(13).unwrap(), &[0; 13], "no mask");
    assert!(rd.rest().is_empty());
}

#[test]
fn unscaled_copy_sends_only_the_area_it_reads() {
    let d = draw(Op::Copy {
        src: Source {
            image: Image::Pixels(pixels(10, 10)),
            area: r(5, 5, 9, 9),
            scale_mode: 0,
        },
        rop: 1 << 6, // OP_XOR
        mask: None,
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_COPY);
    let mut rd = after_base(&msg.body, 0);
    let image_at = rd.u32().unwrap() as usize;
    let area: Vec<i32> = (0..4).map(|_| rd.i32().unwrap()).collect();
    assert_eq!(area, vec![0, 0, 4, 4], "cropped to the source area");
    assert_eq!(rd.u16().unwrap(), 1 << 6);
    rd.u8().unwrap();
    rd.take(13).unwrap();
    let fixed_end = msg.body.len() - rd.rest().len();
    assert_eq!(image_at, fixed_end, "image follows the fixed part");
    let mut img = Reader::new(&msg.body[image_at..]);
    img.u64().unwrap();
    assert_eq!(img.u8().unwrap(), IMAGE_TYPE_BITMAP);
    img.u8().unwrap();
    assert_eq!((img.u32().unwrap(), img.u32().unwrap()), (4, 4));
    assert_eq!(img.u8().unwrap(), BITMAP_FMT_32BIT);
    assert_eq!(img.u8().unwrap(), BITMAP_FLAGS_TOP_DOWN);
    assert_eq!(
        (img.u32().unwrap(), img.u32().unwrap(), img.u32().unwrap()),
        (4, 4, 16)
    );
    assert_eq!(img.u32().unwrap(), 0, "no palette");
    let first = u32::from_le_bytes(img.take(4).unwrap().try_into().unwrap());
    assert_eq!(first, 0xff00_0000 | 55, "pixel (5, 5) of the source");
}

#[test]
fn scaled_source_is_sent_whole_and_large_images_compressed() {
    let d = draw(Op::Blend {
        src: Source {
            image: Image::Pixels(pixels(40, 40)),
            area: r(0, 0, 20, 20),
            scale_mode: 0,
        },
        rop: ROPD_OP_PUT,
        mask: None,
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_BLEND);
    assert!(msg.images.iter().any(|i| i.lz4), "its image went LZ4");
    assert!(
        !msg.needs_lz4(),
        "and can be re-encoded for a client without LZ4"
    );
    let mut rd = after_base(&msg.body, 0);
    let image_at = rd.u32().unwrap() as usize;
    let area: Vec<i32> = (0..4).map(|_| rd.i32().unwrap()).collect();
    assert_eq!(area, vec![0, 0, 20, 20]);
    let mut img = Reader::new(&msg.body[image_at..]);
    img.u64().unwrap();
    assert_eq!(img.u8().unwrap(), IMAGE_TYPE_LZ4);
    img.u8().unwrap();
    assert_eq!((img.u32().unwrap(), img.u32().unwrap()), (40, 40));
    let size = img.u32().unwrap() as usize;
    let payload = img.take(size).unwrap();
    assert_eq!(&payload[..2], &[1, BITMAP_FMT_32BIT]);
    let decoded = lz4_flex::block::decompress(&payload[6..], 40 * 40 * 4).unwrap();
    assert_eq!(&decoded[4..8], &(0xff00_0001u32).to_le_bytes());
}

#[test]
fn masks_surfaces_and_unimplemented_rop3_codes_stay_pixels() {
    let mask = crate::qxl::draw::Mask {
        invert: false,
        x: 0,
        y: 0,
        bits: pixels(1, 1),
    };
    assert_eq!(
        encode(0, &draw(Op::Invers { mask: Some(mask) })),
        Err(NotForwardable::Mask)
    );
    let src = Source {
        image: Image::Surface(3),
        area: r(0, 0, 4, 4),
        scale_mode: 0,
    };
    assert_eq!(
        encode(0, &draw(Op::Transparent { src, color: 0 })),
        Err(NotForwardable::SurfaceSource)
    );
    let rop3 = |code| {
        encode(
            0,
            &draw(Op::Rop3 {
                src: Source {
                    image: Image::Pixels(pixels(4, 4)),
                    area: r(0, 0, 4, 4),
                    scale_mode: 0,
                },
                brush: Brush::Solid(1),
                rop3: code,
                mask: None,
            }),
        )
        .map(|m| m.msg_type)
    };
    assert_eq!(rop3(0xcc), Err(NotForwardable::Rop3Code), "SRCCOPY");
    assert_eq!(rop3(0x5a), Err(NotForwardable::Rop3Code), "PATINVERT");
    assert_eq!(rop3(0x01), Ok(m::DRAW_ROP3));
    assert_eq!(rop3(0xb8), Ok(m::DRAW_ROP3));
    let implemented = (0..=255u8).filter(|&c| client_implements_rop3(c)).count();
    assert_eq!(implemented, 218, "spice-common's rop3.c has 218 handlers");
}

#[test]
fn stroke_path_in_fixed_point() {
    let seg = |flags, points: &[(i32, i32)]| PathSeg {
        flags,
        points: points.iter().map(|&(x, y)| (x << 4, y << 4)).collect(),
    };
    let d = draw(Op::Stroke {
        path: vec![
            seg(PATH_BEGIN_END.into(), &[(2, 3), (5, 3)]),
            seg(PATH_BEGIN_END.into(), &[(4, 4), (4, 6), (2, 6)]),
        ],
        brush: Brush::Solid(7),
        fore_mode: ROPD_OP_PUT,
        back_mode: 0,
        width: 0,
        attr_flags: 0,
        style: vec![],
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_STROKE);
    let mut rd = after_base(&msg.body, 0);
    let path_at = rd.u32().unwrap() as usize;
    assert_eq!(rd.u8().unwrap(), 0, "solid line");
    assert_eq!((rd.u8().unwrap(), rd.u32().unwrap()), (1, 7));
    assert_eq!((rd.u16().unwrap(), rd.u16().unwrap()), (ROPD_OP_PUT, 0));
    assert_eq!(path_at, msg.body.len() - rd.rest().len());
    let mut rd = Reader::new(&msg.body[path_at..]);
    assert_eq!(rd.u32().unwrap(), 2, "segments");
    assert_eq!((rd.u8().unwrap(), rd.u32().unwrap()), (PATH_BEGIN_END, 2));
    assert_eq!((rd.i32().unwrap(), rd.i32().unwrap()), (32, 48));
    rd.take(8).unwrap();
    assert_eq!((rd.u8().unwrap(), rd.u32().unwrap()), (PATH_BEGIN_END, 3));
    rd.take(24).unwrap();
    assert!(rd.rest().is_empty());
    // A dashed line goes with its style (what the guest sent: START_WITH_GAP too).
    let dashed = draw(Op::Stroke {
        path: vec![seg(PATH_BEGIN_END.into(), &[(2, 3), (5, 3)])],
        brush: Brush::Solid(7),
        fore_mode: ROPD_OP_PUT,
        back_mode: 0,
        width: 0,
        attr_flags: line_flags::STYLED | line_flags::START_WITH_GAP,
        style: vec![3 << 4, 40],
    });
    let msg = encode(0, &dashed).unwrap();
    let mut rd = after_base(&msg.body, 0);
    rd.u32().unwrap();
    assert_eq!(
        rd.u8().unwrap(),
        line_flags::STYLED | line_flags::START_WITH_GAP
    );
    assert_eq!(rd.u8().unwrap(), 2, "style_nseg");
    let style_at = rd.u32().unwrap() as usize;
    let mut st = Reader::new(&msg.body[style_at..]);
    assert_eq!((st.i32().unwrap(), st.i32().unwrap()), (48, 40));
    // The client's canvas hangs on a dash list without a dash of a pixel or more.
    let no_dash = draw(Op::Stroke {
        path: vec![seg(PATH_BEGIN_END.into(), &[(2, 3), (5, 3)])],
        brush: Brush::Solid(7),
        fore_mode: ROPD_OP_PUT,
        back_mode: 0,
        width: 0,
        attr_flags: line_flags::STYLED,
        style: vec![8, 0],
    });
    assert_eq!(encode(0, &no_dash), Err(NotForwardable::Style));
}

#[test]
fn text_keeps_the_guest_raster_depth_and_row_order() {
    // A 3x2 A1 glyph whose parsed coverage is bottom-up: wire rows are top-down again.
    let glyph = Glyph {
        x: 4,
        y: 6,
        width: 3,
        height: 2,
        coverage: vec![255, 0, 0, 0, 255, 255],
        a8_top: vec![],
    };
    let d = draw(Op::Text {
        glyphs: vec![glyph],
        glyph_bpp: 1,
        back_area: r(0, 0, 0, 0),
        fore: Brush::Solid(0xffffff),
        back: Brush::None,
        fore_mode: ROPD_OP_PUT,
        back_mode: 0,
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_TEXT);
    let mut rd = after_base(&msg.body, 0);
    let string_at = rd.u32().unwrap() as usize;
    let mut s = Reader::new(&msg.body[string_at..]);
    assert_eq!((s.u16().unwrap(), s.u8().unwrap()), (1, STRING_RASTER_A1));
    let pos: Vec<i32> = (0..4).map(|_| s.i32().unwrap()).collect();
    assert_eq!(pos, vec![4, 6, 0, 0]);
    assert_eq!((s.u16().unwrap(), s.u16().unwrap()), (3, 2));
    assert_eq!(s.rest(), &[0b0110_0000, 0b1000_0000]);
    rd.take(16).unwrap();

    // The client's canvas aborts on a back area with a fore_mode other than PUT.
    let xor = draw(Op::Text {
        glyphs: vec![],
        glyph_bpp: 1,
        back_area: r(0, 0, 4, 4),
        fore: Brush::Solid(1),
        back: Brush::None,
        fore_mode: 1 << 6,
        back_mode: 0,
    });
    assert_eq!(encode(0, &xor), Err(NotForwardable::Style));
}

#[test]
fn an_inverted_text_back_area_goes_as_an_empty_one() {
    // Neither canvas fills an inverted back area; the client's would pass it to pixman,
    // which logs it as a bug.
    let glyph = Glyph {
        x: 0,
        y: 0,
        width: 1,
        height: 1,
        coverage: vec![255],
        a8_top: vec![],
    };
    let back_of = |back_area: Rect| {
        let d = draw(Op::Text {
            glyphs: vec![glyph.clone()],
            glyph_bpp: 1,
            back_area,
            fore: Brush::Solid(0xffffff),
            back: Brush::Solid(1),
            fore_mode: ROPD_OP_PUT,
            back_mode: 0,
        });
        let msg = encode(0, &d).unwrap();
        let mut rd = after_base(&msg.body, 0);
        rd.u32().unwrap();
        (0..4).map(|_| rd.i32().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(back_of(r(5, 1, 2, 4)), vec![0, 0, 0, 0]);
    assert_eq!(back_of(r(1, 5, 4, 2)), vec![0, 0, 0, 0]);
    // top, left, bottom, right on the wire
    assert_eq!(back_of(r(1, 2, 4, 5)), vec![2, 1, 5, 4]);
}

#[test]
fn a_text_back_pattern_is_marked_as_maybe_never_decoded() {
    // spice-gtk decodes a text's back brush only where the back area meets the drawing:
    // a GLZ image it never decodes would stall every later GLZ image on it.
    let pattern = || Brush::Pattern {
        image: Image::Pixels(pixels(4, 4)),
        x: 0,
        y: 0,
    };
    let d = draw(Op::Text {
        glyphs: vec![Glyph {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
            coverage: vec![255],
            a8_top: vec![],
        }],
        glyph_bpp: 1,
        back_area: r(0, 0, 2, 2),
        fore: pattern(),
        back: pattern(),
        fore_mode: ROPD_OP_PUT,
        back_mode: 0,
    });
    let msg = encode(0, &d).unwrap();
    let flags: Vec<bool> = msg.images.iter().map(|i| i.maybe_undecoded).collect();
    assert_eq!(flags, vec![false, true], "fore, back");
}

#[test]
fn copy_bits_and_alpha_blend_layouts() {
    let msg = encode(0, &draw(Op::CopyBits { x: 9, y: 8 })).unwrap();
    assert_eq!(msg.msg_type, m::COPY_BITS);
    let mut rd = after_base(&msg.body, 0);
    assert_eq!((rd.i32().unwrap(), rd.i32().unwrap()), (9, 8));

    let mut src = pixels(4, 4);
    src.alpha = true;
    let msg = encode(
        0,
        &draw(Op::AlphaBlend {
            src: Source {
                image: Image::Pixels(src),
                area: r(0, 0, 4, 4),
                scale_mode: 1,
            },
            alpha: 0x80,
            src_has_alpha: true,
            dest_has_alpha: false,
        }),
    )
    .unwrap();
    assert_eq!(msg.msg_type, m::DRAW_ALPHA_BLEND);
    let mut rd = after_base(&msg.body, 0);
    assert_eq!(
        (rd.u8().unwrap(), rd.u8().unwrap()),
        (ALPHA_SRC_HAS_ALPHA, 0x80)
    );
    let image_at = rd.u32().unwrap() as usize;
    assert_eq!(msg.body[image_at + 18], BITMAP_FMT_RGBA);
}

#[test]
fn images_can_be_replaced_per_client_with_their_pointers_moved() {
    // A pattern brush (small, raw) and a source (large, LZ4): two images at the end.
    let d = draw(Op::Opaque {
        src: Source {
            image: Image::Pixels(pixels(40, 40)),
            area: r(0, 0, 20, 20),
            scale_mode: 0,
        },
        brush: Brush::Pattern {
            image: Image::Pixels(pixels(4, 4)),
            x: 0,
            y: 0,
        },
        rop: ROPD_OP_PUT,
        mask: None,
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.images.len(), 2);
    let (src, pat) = (&msg.images[0], &msg.images[1]);
    assert_eq!((src.width, src.height, src.lz4), (40, 40, true));
    assert_eq!((pat.width, pat.height, pat.lz4), (4, 4, false));
    assert_eq!(src.pixels, pixels(40, 40).data);
    assert!(msg.with_images(|_| None).unwrap() == msg, "kept: unchanged");
    let swapped = msg
        .with_images(|image| Some(vec![image.width as u8; 3]))
        .unwrap();
    let mut rd = after_base(&swapped.body, 0);
    let src_at = rd.u32().unwrap() as usize;
    rd.take(16).unwrap();
    assert_eq!(rd.u8().unwrap(), 2, "pattern brush");
    let pat_at = rd.u32().unwrap() as usize;
    assert_eq!(&swapped.body[src_at..src_at + 3], &[40; 3]);
    assert_eq!(&swapped.body[pat_at..pat_at + 3], &[4; 3]);
    assert_eq!(swapped.body.len(), pat_at + 3);
    // And again from the replaced message.
    let again = swapped.with_images(|_| Some(vec![9])).unwrap();
    assert_eq!(again.body.len(), src_at + 2);
}

#[test]
fn composite_a8_source_goes_out_as_the_canvas_sees_it() {
    // spice-common converts an A8 composite source to x8r8g8b8 (opaque black); sent as RGBA
    // the client would keep its alpha and render another picture than the server's
    let a8 = Pixels {
        width: 2,
        height: 1,
        data: vec![0x1000_0000, 0x8000_0000],
        alpha: true,
        format: crate::qxl::image::fmt::BIT8_A,
    };
    let d = draw(Op::Composite {
        flags: 3,
        src: Image::Pixels(a8),
        mask: None,
        src_origin: (0, 0),
        mask_origin: (0, 0),
        src_transform: None,
        mask_transform: None,
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_COMPOSITE);
    assert!(!msg.images[0].alpha);
    assert_eq!(msg.images[0].pixels, vec![0xff00_0000; 2]);
}

#[test]
fn composite_mask_and_its_transform_go_out() {
    let a8 = Pixels {
        width: 1,
        height: 1,
        data: vec![0x4000_0000],
        alpha: true,
        format: crate::qxl::image::fmt::BIT8_A,
    };
    let d = draw(Op::Composite {
        flags: 3,
        src: Image::Pixels(pixels(2, 2)),
        mask: Some(Image::Pixels(a8)),
        src_origin: (1, 2),
        mask_origin: (-3, 4),
        src_transform: None,
        mask_transform: Some([0x10000, 0, 5, 0, 0x10000, 6]),
    });
    let msg = encode(0, &d).unwrap();
    assert_eq!(msg.msg_type, m::DRAW_COMPOSITE);
    let mut rd = after_base(&msg.body, 0);
    assert_eq!(
        rd.u32().unwrap(),
        3 | 1 << 19 | 1 << 21,
        "op, HAS_MASK, HAS_MASK_TRANSFORM"
    );
    rd.u32().unwrap();
    rd.u32().unwrap();
    let t: Vec<i32> = (0..6).map(|_| rd.i32().unwrap()).collect();
    assert_eq!(t, vec![0x10000, 0, 5, 0, 0x10000, 6]);
    assert_eq!(rd.u16().unwrap() as i16, 1);
    assert_eq!(rd.u16().unwrap() as i16, 2);
    assert_eq!(rd.u16().unwrap() as i16, -3);
    assert_eq!(rd.u16().unwrap() as i16, 4);
    assert_eq!(msg.images.len(), 2);
    assert_eq!(
        msg.images[1].pixels,
        vec![0xff00_0000],
        "the A8 mask as opaque black"
    );
}
