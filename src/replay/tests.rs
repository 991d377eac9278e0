//! Recordings built by hand (written as spice-server's recorder writes them), read back.

use super::format::*;
use super::layout::{lay_out, Link};
use super::writer::RecordWriter;
use super::{ReplayError, Session, Step};
use crate::geometry::Rect;

fn rect(top: i32, left: i32, bottom: i32, right: i32) -> Rect {
    Rect {
        top,
        left,
        bottom,
        right,
    }
}

fn bitmap(flat: bool) -> Image {
    let pixels: Vec<u8> = (0..64u8).collect();
    Image {
        descriptor: ImageDescriptor {
            id: 0xdead_beef_0000_0001,
            kind: IMAGE_BITMAP,
            flags: 0,
            width: 4,
            height: 4,
        },
        data: ImageData::Bitmap(Bitmap {
            format: 8,
            flags: u8::from(flat),
            x: 4,
            y: 4,
            stride: 16,
            palette: Some(Palette {
                unique: 7,
                entries: vec![0xff00_0000, 1, 0x80ff_ffff],
            }),
            data: if flat {
                BitmapData::Flat(pixels)
            } else {
                BitmapData::Chunked(Chunks(vec![pixels[..10].to_vec(), pixels[10..].to_vec()]))
            },
        }),
    }
}

fn mask(bitmap: Option<Image>) -> QMask {
    QMask {
        flags: 1,
        pos: Point { x: -3, y: 9 },
        bitmap,
    }
}

fn drawable(op: DrawOp) -> Drawable {
    Drawable {
        bbox: rect(1, 2, 30, 40),
        clip: Clip::Rects {
            num_rects: 2,
            chunks: Chunks(vec![vec![1; 16], vec![2; 16]]),
        },
        effect: 3,
        mm_time: 0xffff_fff0,
        self_bitmap: 0,
        self_bitmap_area: rect(0, 0, 0, 0),
        surface_id: 0,
        surfaces_dest: [u32::MAX, 0, u32::MAX],
        surfaces_rects: [rect(0, 0, 1, 1), rect(5, 6, 7, 8), rect(0, 0, 0, 0)],
        op,
    }
}

fn surface_image(id: u32) -> Image {
    Image {
        descriptor: ImageDescriptor {
            id: 1,
            kind: IMAGE_SURFACE,
            flags: 0,
            width: 8,
            height: 8,
        },
        data: ImageData::Surface { surface_id: id },
    }
}

/// One command of every kind the recorder writes.
fn every_command() -> Vec<Command> {
    let copy = CopyOp {
        src: Some(bitmap(true)),
        src_area: rect(0, 0, 4, 4),
        rop_descriptor: 8,
        scale_mode: 1,
        mask: mask(Some(bitmap(false))),
    };
    let pattern = Brush::Pattern {
        image: Some(bitmap(false)),
        pos: Point { x: 1, y: 2 },
    };
    let ops = vec![
        DrawOp::Nop,
        DrawOp::Fill {
            brush: Brush::Solid(0xff33_2211),
            rop_descriptor: 8,
            mask: mask(None),
        },
        DrawOp::Opaque {
            src: Some(bitmap(false)),
            src_area: rect(0, 0, 4, 4),
            brush: pattern.clone(),
            rop_descriptor: 2,
            scale_mode: 0,
            mask: mask(None),
        },
        DrawOp::Copy(copy.clone()),
        DrawOp::Blend(copy),
        DrawOp::CopyBits {
            src_pos: Point { x: 10, y: -20 },
        },
        DrawOp::Blackness(mask(None)),
        DrawOp::Whiteness(mask(Some(bitmap(true)))),
        DrawOp::Invers(mask(None)),
        DrawOp::Rop3 {
            src: Some(surface_image(0)),
            src_area: rect(0, 0, 8, 8),
            brush: Brush::Other(0),
            rop3: 0xca,
            scale_mode: 1,
            mask: mask(None),
        },
        DrawOp::Stroke {
            path: Chunks(vec![vec![9; 12]]),
            attr_flags: LINE_STYLED,
            style: Some((2, vec![0, 0, 1, 0, 0, 0, 2, 0])),
            brush: Brush::Solid(5),
            fore_mode: 1,
            back_mode: 2,
        },
        DrawOp::Text {
            string: QxlString {
                data_size: 6,
                length: 1,
                flags: 4,
                chunks: Chunks(vec![vec![1, 2, 3], vec![4, 5, 6]]),
            },
            back_area: rect(0, 0, 10, 10),
            fore_brush: Brush::Solid(1),
            back_brush: pattern,
            fore_mode: 3,
            back_mode: 4,
        },
        DrawOp::Transparent {
            src: Some(bitmap(true)),
            src_area: rect(0, 0, 4, 4),
            src_color: 0x00ff_00ff,
            true_color: 0xffff_ffff,
        },
        DrawOp::AlphaBlend {
            alpha_flags: 1,
            alpha: 200,
            src: Some(Image {
                descriptor: ImageDescriptor {
                    id: 2,
                    kind: IMAGE_QUIC,
                    flags: 1,
                    width: 4,
                    height: 4,
                },
                data: ImageData::Quic {
                    data_size: 7,
                    chunks: Chunks(vec![b"QUIC".to_vec(), b"abc".to_vec()]),
                },
            }),
            src_area: rect(0, 0, 4, 4),
        },
        DrawOp::Composite {
            flags: 0x8000_0001,
            src: Some(bitmap(true)),
            src_transform: Some(vec![7; 24]),
            mask: Some(bitmap(false)),
            mask_transform: None,
            src_origin: (-1, 2),
            mask_origin: (3, -4),
        },
    ];
    let mut commands: Vec<Command> = ops
        .into_iter()
        .map(|op| Command::Draw(Box::new(drawable(op))))
        .collect();
    commands.push(Command::Update(UpdateCmd {
        area: rect(0, 0, 100, 200),
        update_id: 77,
        surface_id: 0,
    }));
    commands.push(Command::Message(b"hello from the guest".to_vec()));
    commands.push(Command::Surface(SurfaceCmd {
        surface_id: 5,
        kind: SURFACE_CREATE,
        flags: SURFACE_KEEP_DATA,
        create: Some(SurfaceCreate {
            format: 32,
            width: 2,
            height: 2,
            stride: -8,
            data: Some(vec![0xab; 16]),
        }),
    }));
    commands.push(Command::Surface(SurfaceCmd {
        surface_id: 5,
        kind: SURFACE_DESTROY,
        flags: 0,
        create: None,
    }));
    commands.push(Command::Cursor(CursorCmd {
        kind: CURSOR_SET,
        op: CursorOp::Set {
            position: (10, -2),
            visible: 1,
            shape: CursorShape {
                unique: u64::MAX,
                kind: 1,
                width: 2,
                height: 2,
                hot_spot_x: 1,
                hot_spot_y: 0,
                data_size: 16,
                chunks: Chunks(vec![vec![0xee; 16]]),
            },
        },
    }));
    commands.push(Command::Cursor(CursorCmd {
        kind: CURSOR_MOVE,
        op: CursorOp::Move { position: (3, 4) },
    }));
    commands.push(Command::Cursor(CursorCmd {
        kind: CURSOR_TRAIL,
        op: CursorOp::Trail {
            length: 5,
            frequency: 6,
        },
    }));
    commands.push(Command::Cursor(CursorCmd {
        kind: 2,
        op: CursorOp::Other,
    }));
    commands
}

fn primary() -> PrimarySurface {
    PrimarySurface {
        width: 4,
        height: 2,
        stride: 16,
        format: 32,
        position: 0,
        mouse_mode: 1,
        flags: 0,
        kind: 0,
        data: vec![0x11; 32],
    }
}

fn recording() -> Vec<u8> {
    let mut w = RecordWriter::new();
    w.create_primary(worker_msg::CREATE_PRIMARY_SURFACE_ASYNC, &primary());
    w.worker_call(2); // wakeup
    for c in every_command() {
        w.command(&c);
    }
    w.worker_call(worker_msg::DESTROY_PRIMARY_SURFACE);
    w.out
}

fn read_all(bytes: &[u8]) -> Result<Vec<Record>, ReplayError> {
    let mut r = RecordReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec);
    }
    Ok(out)
}

#[test]
fn every_record_reads_back_as_written() {
    let records = read_all(&recording()).unwrap();
    let mut expected = vec![Record::CreatePrimary(Some(primary())), Record::OtherCall(2)];
    expected.extend(every_command().into_iter().map(Record::Command));
    expected.push(Record::DestroyPrimary);
    assert_eq!(records.len(), expected.len());
    for (got, want) in records.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn every_prefix_of_a_recording_ends_cleanly_or_with_an_error() {
    let bytes = recording();
    let full = read_all(&bytes).unwrap().len();
    // A cut inside the last line's numbers still reads as a (shorter) number.
    let last_line = bytes.len()
        - 1
        - bytes[..bytes.len() - 1]
            .iter()
            .rev()
            .position(|&b| b == b'\n')
            .unwrap();
    let mut truncated = 0;
    for cut in 0..bytes.len() {
        match read_all(&bytes[..cut]) {
            Ok(records) => assert!(records.len() < full || cut > last_line + 6, "cut at {cut}"),
            Err(ReplayError::Truncated { .. } | ReplayError::Malformed { .. }) => truncated += 1,
            Err(e) => panic!("cut at {cut}: unexpected {e}"),
        }
    }
    println!(
        "{} prefixes, {truncated} reported as cut inside a record",
        bytes.len()
    );
    assert!(truncated > bytes.len() / 2);
}

#[test]
fn garbage_is_rejected() {
    let cases: &[&[u8]] = &[
        b"",
        b"SPICE_REPLAY 2\n",
        b"hello world",
        b"SPICE_REPLAY 1\nevent 0 0 1 5\nnot_a_drawable\n",
        b"SPICE_REPLAY 1\nevent x 0 1 5\n",
        b"SPICE_REPLAY 1\nevent 0 0 5 5\nsurface_cmd\nsurface_id 1\ntype 0\nflags 1\n\
          u.surface_create.format 32\nu.surface_create.width 1\nu.surface_create.height 1\n\
          u.surface_create.stride 4\nbinary 0 data 18446744073709551615:",
        b"SPICE_REPLAY 1\nevent 0 0 1 5\ndrawable\nrect bbox 0 0 1 1\ntype 0\neffect 0\n\
          mm_time 0\nbitmap_offset 0\n",
    ];
    for case in cases {
        let r = read_all(case);
        println!(
            "{:?} -> {r:?}",
            String::from_utf8_lossy(&case[..case.len().min(40)])
        );
        if case.is_empty() {
            assert!(r.is_err());
            continue;
        }
        assert!(r.is_err());
    }
    // Random bytes after a valid header never panic.
    let mut seed = 0x1234_5678u32;
    for _ in 0..300 {
        let mut bytes = b"SPICE_REPLAY 1\n".to_vec();
        let mut base = recording();
        for _ in 0..8 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let at = (seed as usize >> 4) % base.len();
            base[at] = (seed >> 24) as u8;
        }
        bytes.extend_from_slice(&base[15..]);
        let _ = read_all(&bytes);
    }
}

#[test]
fn huge_declared_sizes_are_refused_without_allocating() {
    let bomb = b"SPICE_REPLAY 1\nevent 0 1 20 5\n100000 100000 400000 32\n0 1 0 0\n\
                 binary 0 data 40000000000:";
    assert!(matches!(read_all(bomb), Err(ReplayError::TooLarge { .. })));
    let chunks = b"SPICE_REPLAY 1\nevent 0 0 1 5\ndrawable\nrect bbox 0 0 1 1\ntype 1\n\
                   num_rects 1\ndata_chunks 4000000000 16\n";
    assert!(matches!(
        read_all(chunks),
        Err(ReplayError::TooLarge { .. })
    ));
}

#[test]
fn refused_primary_has_no_data_lines() {
    let mut w = RecordWriter::new();
    w.worker_call(worker_msg::CREATE_PRIMARY_SURFACE);
    w.worker_call(worker_msg::DESTROY_SURFACES_ASYNC);
    assert_eq!(
        read_all(&w.out).unwrap(),
        vec![Record::CreatePrimary(None), Record::DestroySurfaces]
    );
}

/// Reads the little-endian integer of `n` bytes at `at`.
fn le(bytes: &[u8], at: usize, n: usize) -> u64 {
    bytes[at..at + n]
        .iter()
        .rev()
        .fold(0, |v, b| (v << 8) | u64::from(*b))
}

#[test]
fn drawable_layout_matches_qxl_dev_h() {
    let Command::Draw(d) = &every_command()[3] else {
        unreachable!()
    };
    let l = lay_out(&Command::Draw(d.clone())).unwrap();
    let (ext, body) = (&l.blocks[0], &l.blocks[1]);
    assert_eq!(ext.bytes.len(), 24);
    assert_eq!(le(&ext.bytes, 8, 4), 1); // QXL_CMD_DRAW
    assert_eq!(
        ext.links,
        vec![Link {
            at: 0,
            target: 1,
            offset: 0
        }]
    );
    assert_eq!(body.bytes.len(), 191);
    assert!(body.links.contains(&Link {
        at: 0,
        target: 0,
        offset: 0
    })); // release id
    assert_eq!(body.bytes[12], 3); // effect
    assert_eq!(body.bytes[13], draw::COPY);
    assert_eq!(le(&body.bytes, 31, 4), 1); // bbox.top
    assert_eq!(le(&body.bytes, 43, 4), 40); // bbox.right
    assert_eq!(le(&body.bytes, 47, 4), u64::from(CLIP_RECTS));
    assert_eq!(le(&body.bytes, 59, 4), 0xffff_fff0); // mm_time
    assert_eq!(le(&body.bytes, 63, 4), u64::from(u32::MAX)); // surfaces_dest[0]
    assert_eq!(le(&body.bytes, 123 + 24, 2), 8); // copy.rop_descriptor
    assert_eq!(body.bytes[123 + 26], 1); // scale_mode
                                         // clip rects: num_rects, then a two-chunk list linked both ways
    let clip = body.links.iter().find(|l| l.at == 51).unwrap().target;
    let rects = &l.blocks[clip];
    assert_eq!(le(&rects.bytes, 0, 4), 2);
    assert_eq!(le(&rects.bytes, 4, 4), 16); // first chunk's data_size
    assert_eq!(&rects.bytes[24..40], &[1; 16]);
    let next = rects.links.iter().find(|l| l.at == 4 + 12).unwrap().target;
    assert_eq!(l.blocks[next].bytes[20..], [2; 16]);
    assert_eq!(
        l.blocks[next].links,
        vec![Link {
            at: 4,
            target: clip,
            offset: 4
        }]
    );
    // source image: a 48-byte QXLImage whose flat data and palette are linked
    let img = body.links.iter().find(|l| l.at == 123).unwrap().target;
    let image = &l.blocks[img];
    assert_eq!(image.bytes.len(), 48);
    assert_eq!(le(&image.bytes, 0, 8), 0xdead_beef_0000_0001);
    assert_eq!(le(&image.bytes, 28, 4), 16); // stride
    let pal = image.links.iter().find(|l| l.at == 32).unwrap().target;
    assert_eq!(le(&l.blocks[pal].bytes, 8, 2), 3);
    assert_eq!(le(&l.blocks[pal].bytes, 10, 4), 0xff00_0000);
    let data = image.links.iter().find(|l| l.at == 40).unwrap().target;
    assert_eq!(l.blocks[data].bytes, (0..64u8).collect::<Vec<_>>());
    // every link lands inside its target and its field inside its block
    for b in &l.blocks {
        for link in &b.links {
            assert!(link.at + 8 <= b.bytes.len());
            assert!(link.offset <= l.blocks[link.target].bytes.len());
        }
    }
}

#[test]
fn short_flat_bitmaps_are_padded_to_what_the_server_reads() {
    let mut image = bitmap(true);
    if let ImageData::Bitmap(b) = &mut image.data {
        b.data = BitmapData::Flat(vec![1; 3]);
    }
    let l = lay_out(&Command::Draw(Box::new(drawable(DrawOp::Copy(CopyOp {
        src: Some(image),
        src_area: rect(0, 0, 4, 4),
        rop_descriptor: 8,
        scale_mode: 0,
        mask: mask(None),
    })))))
    .unwrap();
    assert!(l
        .blocks
        .iter()
        .any(|b| b.bytes.len() == 64 && b.bytes[..3] == [1, 1, 1]));
}

#[test]
fn session_maps_surface_ids_and_reports_steps() {
    let mut w = RecordWriter::new();
    w.create_primary(worker_msg::CREATE_PRIMARY_SURFACE, &primary());
    let create = |id| {
        Command::Surface(SurfaceCmd {
            surface_id: id,
            kind: SURFACE_CREATE,
            flags: 0,
            create: Some(SurfaceCreate {
                format: 32,
                width: 8,
                height: 8,
                stride: 32,
                data: None,
            }),
        })
    };
    w.command(&create(900));
    let mut draw = drawable(DrawOp::Copy(CopyOp {
        src: Some(surface_image(900)),
        src_area: rect(0, 0, 8, 8),
        rop_descriptor: 8,
        scale_mode: 0,
        mask: mask(None),
    }));
    draw.surfaces_dest = [900, u32::MAX, u32::MAX];
    w.command(&Command::Draw(Box::new(draw)));
    w.command(&Command::Surface(SurfaceCmd {
        surface_id: 900,
        kind: SURFACE_DESTROY,
        flags: 0,
        create: None,
    }));
    w.worker_call(worker_msg::DESTROY_PRIMARY_SURFACE_ASYNC);
    let mut out = w.out;
    out.extend_from_slice(b"event 9 0 1 1\ndrawable\nrect bbox"); // cut by the recorder's exit

    let mut s = Session::new(out.as_slice(), 4).unwrap();
    assert!(matches!(s.next_step(), Ok(Some(Step::CreatePrimary(p))) if p == primary()));
    let Ok(Some(Step::Command(c))) = s.next_step() else {
        panic!()
    };
    assert_eq!(le(&c.blocks[1].bytes, 8, 4), 1); // recorded 900 -> replay id 1
    assert_eq!(c.blocks[2].bytes.len(), 8 * 32); // the surface's memory
    let Ok(Some(Step::Command(d))) = s.next_step() else {
        panic!()
    };
    assert_eq!(le(&d.blocks[1].bytes, 63, 4), 1); // surfaces_dest[0]
    let img = d.blocks[1]
        .links
        .iter()
        .find(|l| l.at == 123)
        .unwrap()
        .target;
    assert_eq!(le(&d.blocks[img].bytes, 18, 4), 1); // surface image id
    let Ok(Some(Step::Command(destroy))) = s.next_step() else {
        panic!()
    };
    assert_eq!(destroy.frees_surface, Some(1));
    assert!(matches!(s.next_step(), Ok(Some(Step::DestroyPrimary))));
    assert!(matches!(s.next_step(), Err(ReplayError::Truncated { .. })));
    assert!(matches!(s.next_step(), Ok(None)));
}
