use super::*;
use crate::display::{Pending, Screen, Update};
use crate::proto::msg::display as m;

const W: u32 = 256;
const H: u32 = 160;

/// Pixels that differ from row to row (text-like), from a seed.
fn noise(seed: u32, n: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x & 0x00ff_ffff
        })
        .collect()
}

/// A whole-surface picture, rows of W.
fn picture(seed: u32) -> Vec<u32> {
    noise(seed, (W * H) as usize)
}

/// `pic` with rows `top..bottom` of columns `left..right` moved up by `dy` and the
/// uncovered rows filled from `seed`.
fn scrolled(pic: &[u32], area: Area, dy: u32, seed: u32) -> Vec<u32> {
    let mut out = pic.to_vec();
    let fresh = noise(seed, (W * dy) as usize);
    for y in area.top..area.bottom {
        for x in area.left..area.right {
            let i = (y * W + x) as usize;
            out[i] = if y + dy < area.bottom {
                pic[((y + dy) * W + x) as usize]
            } else {
                fresh[((y + dy - area.bottom) * W + x) as usize]
            };
        }
    }
    out
}

/// What QEMU sends for a change from `old` to `new`: per 32-pixel column, each run of
/// rows that differ, as (area, pixels).
fn strips(old: &[u32], new: &[u32]) -> Vec<(Area, Vec<u32>)> {
    let mut out = vec![];
    for x0 in (0..W).step_by(32) {
        let x1 = (x0 + 32).min(W);
        let differs =
            |y: u32| (x0..x1).any(|x| old[(y * W + x) as usize] != new[(y * W + x) as usize]);
        let mut y = 0;
        while y < H {
            if !differs(y) {
                y += 1;
                continue;
            }
            let top = y;
            while y < H && differs(y) {
                y += 1;
            }
            let area = Area::new(x0, top, x1, y);
            let px = (top..y)
                .flat_map(|yy| (x0..x1).map(move |x| (yy * W + x) as usize))
                .map(|i| new[i])
                .collect();
            out.push((area, px));
        }
    }
    out
}

fn bytes(pic: &[u32]) -> Vec<u8> {
    pic.iter().flat_map(|p| p.to_le_bytes()).collect()
}

fn framebuffer(pic: &[u32]) -> Framebuffer {
    let mut fb = Framebuffer::new(W, H).unwrap();
    fb.blit(fb.bounds(), &bytes(pic), (W * 4) as usize);
    fb
}

fn new_pixels(strips: &[(Area, Vec<u32>)]) -> Vec<NewPixels<'_>> {
    strips
        .iter()
        .map(|(dest, rows)| NewPixels { dest: *dest, rows })
        .collect()
}

/// Runs a batch through a detector on a surface showing `old`: the scroll it finds.
fn detect(detector: &mut Detector, old: &[u32], new: &[u32]) -> Option<Scroll> {
    let mut fb = framebuffer(old);
    let s = strips(old, new);
    let copies = new_pixels(&s);
    let before = detector.before(&fb, &copies)?;
    let changed: Vec<Area> = s.iter().map(|(a, _)| *a).collect();
    for (a, px) in &s {
        fb.blit(*a, &bytes(px), a.width() as usize * 4);
    }
    assert_eq!(fb.read(fb.bounds()), bytes(new));
    detector.after(&fb, &before, &changed)
}

#[test]
fn a_scrolled_area_is_one_copy_and_the_new_band() {
    let old = picture(1);
    let window = Area::new(40, 20, 220, 150);
    let new = scrolled(&old, window, 14, 2);
    let found = detect(&mut Detector::default(), &old, &new).expect("a scroll");
    // The whole window but its new rows, though QEMU's column strips overhang it.
    assert_eq!(found.dy, 14);
    assert_eq!(found.dest, Area::new(40, 20, 220, 136));
    assert_eq!(found.source(), Area::new(40, 34, 220, 150));
}

#[test]
fn the_copy_and_the_rest_as_pixels_make_the_new_picture_on_the_client() {
    let old = picture(3);
    let window = Area::new(32, 16, 224, 144);
    let new = scrolled(&old, window, 14, 4);
    let screen = Screen::default();
    screen.add_viewer(1);
    assert!(screen.create_surface(W, H));
    let Update::NewSurface { generation, .. } = screen.next_update(1, 0) else {
        panic!("expected a new surface")
    };
    screen.modify(|fb| Some(fb.blit(fb.bounds(), &bytes(&old), (W * 4) as usize)));
    let mut client = Framebuffer::new(W, H).unwrap();
    let Update::Draw(Pending { parts, .. }) = screen.next_update(1, generation) else {
        panic!("expected the picture")
    };
    for (a, px) in parts {
        client.blit(a, &px, a.width() as usize * 4);
    }
    let s = strips(&old, &new);
    let copies = new_pixels(&s);
    screen.draw_plain_copies(&copies, |fb, i| {
        let (a, px) = &s[i];
        Some(fb.blit(*a, &bytes(px), a.width() as usize * 4))
    });
    let Update::Draw(Pending { draws, parts, .. }) = screen.next_update(1, generation) else {
        panic!("expected an update")
    };
    assert_eq!(draws.len(), 1, "one copy");
    assert_eq!(draws[0].msg.msg_type, m::COPY_BITS);
    let copy = &draws[0];
    let source = copy.reads.unwrap();
    // The client moves what it has (rows in the copy's direction, as a memmove)...
    let moved = client.read(source);
    client.blit(copy.bbox, &moved, copy.bbox.width() as usize * 4);
    // ...and receives the new rows.
    let sent: u64 = parts.iter().map(|(a, _)| a.pixels()).sum();
    assert!(
        sent <= u64::from(window.width()) * 14,
        "only the new band goes as pixels ({sent} pixels)"
    );
    for (a, px) in parts {
        client.blit(a, &px, a.width() as usize * 4);
    }
    assert_eq!(client.read(client.bounds()), bytes(&new));
}

#[test]
fn a_change_that_is_no_scroll_makes_no_copy() {
    let old = picture(5);
    let mut new = old.clone();
    let fresh = noise(6, (W * H) as usize);
    for y in 30..120 {
        for x in 40..200 {
            new[(y * W + x) as usize] = fresh[(y * W + x) as usize];
        }
    }
    assert_eq!(detect(&mut Detector::default(), &old, &new), None);
}

#[test]
fn a_scroll_inside_a_window_beside_other_changes_copies_only_the_scroll() {
    let old = picture(7);
    let pane = Area::new(96, 60, 224, 160);
    let mut new = scrolled(&old, pane, 20, 8);
    // A clock changes at the same time, above and left of the pane.
    let clock = noise(9, 64 * 12);
    for y in 4..16 {
        for x in 0..64 {
            new[(y * W + x) as usize] = clock[((y - 4) * 64 + x) as usize];
        }
    }
    let mut detector = Detector::default();
    let found = detect(&mut detector, &old, &new).expect("the pane's scroll");
    assert_eq!(found.dy, 20);
    assert_eq!(found.dest, Area::new(96, 60, 224, 140));
    // The next step scrolls by the same amount: the last shift is tried first.
    let newer = scrolled(&new, pane, 20, 10);
    assert_eq!(detect(&mut detector, &new, &newer).map(|s| s.dy), Some(20));
}

#[test]
fn a_scroll_down_is_found_too() {
    let old = picture(11);
    // Rows move down by 9: each new row is the old one 9 above.
    let mut new = old.clone();
    let fresh = noise(12, (W * 9) as usize);
    for y in 30..150u32 {
        for x in 0..W {
            new[(y * W + x) as usize] = if y >= 39 {
                old[((y - 9) * W + x) as usize]
            } else {
                fresh[((y - 30) * W + x) as usize]
            };
        }
    }
    let found = detect(&mut Detector::default(), &old, &new).expect("a scroll");
    assert_eq!((found.dy, found.dest), (-9, Area::new(0, 39, W, 150)));
}

#[test]
fn a_shift_the_exact_check_refutes_is_not_used() {
    // Rows that hash alike but are not (a forged candidate stands for a collision): the
    // exact check finds no area that is the old one shifted.
    let old = picture(13);
    let mut new = old.clone();
    let fresh = noise(14, (W * H) as usize);
    for y in 40..120 {
        for x in 0..W {
            new[(y * W + x) as usize] = fresh[(y * W + x) as usize];
        }
    }
    let mut fb = framebuffer(&old);
    let area = Area::new(0, 40, W, 120);
    let before = Before {
        area,
        pixels: fb.read(area),
        candidates: vec![14, -3],
    };
    fb.blit(
        area,
        &bytes(&new[(40 * W) as usize..(120 * W) as usize]),
        (W * 4) as usize,
    );
    assert_eq!(Detector::default().after(&fb, &before, &[area]), None);
}

#[test]
fn rows_alike_in_the_probe_but_not_elsewhere_are_copied_only_where_they_match() {
    // The new rows equal the old ones 14 below in the middle columns that vote, and
    // differ in one pixel column of every other cell: only the columns between those
    // may be copied.
    let old = picture(15);
    let window = Area::new(0, 20, W, 150);
    let mut new = scrolled(&old, window, 14, 16);
    for y in 20..136u32 {
        for x in (0..W).filter(|x| !(96..160).contains(x)).step_by(32) {
            new[(y * W + x) as usize] ^= 1;
        }
    }
    let found = detect(&mut Detector::default(), &old, &new).expect("the middle");
    assert_eq!(found.dest, Area::new(65, 20, 160, 136));
}

#[test]
fn a_uniform_area_votes_for_nothing() {
    let old = vec![0x00ff_ffff; (W * H) as usize];
    let mut new = old.clone();
    for x in 0..W {
        new[(50 * W + x) as usize] = 0;
    }
    assert_eq!(detect(&mut Detector::default(), &old, &new), None);
}

#[test]
fn largest_rectangle_of_cells() {
    #[rustfmt::skip]
    let cells = [
        1, 0, 1, 1,
        1, 1, 1, 1,
        0, 1, 1, 1,
        1, 1, 1, 0,
    ].map(|c| c == 1);
    assert_eq!(
        largest_rectangle(&cells, 4, (0, 4), (0, 4)),
        Some((0, 3, 2, 4))
    );
    assert_eq!(
        largest_rectangle(&cells, 4, (1, 4), (0, 3)),
        Some((1, 4, 1, 3))
    );
    assert_eq!(largest_rectangle(&[false; 4], 2, (0, 2), (0, 2)), None);
}

/// A screen showing `old` to viewer 1 (everything sent); its surface generation.
fn screen_showing(old: &[u32]) -> (Screen, u64) {
    let screen = Screen::default();
    screen.add_viewer(1);
    assert!(screen.create_surface(W, H));
    let Update::NewSurface { generation, .. } = screen.next_update(1, 0) else {
        panic!("expected a new surface")
    };
    screen.modify(|fb| Some(fb.blit(fb.bounds(), &bytes(old), (W * 4) as usize)));
    assert!(matches!(
        screen.next_update(1, generation),
        Update::Draw { .. }
    ));
    (screen, generation)
}

fn draw_strips(screen: &Screen, s: &[(Area, Vec<u32>)]) {
    screen.draw_plain_copies(&new_pixels(s), |fb, i| {
        let (a, px) = &s[i];
        Some(fb.blit(*a, &bytes(px), a.width() as usize * 4))
    });
}

fn copies_and_pixels(update: Update) -> (usize, u64) {
    match update {
        Update::Draw(Pending { draws, parts, .. }) => {
            (draws.len(), parts.iter().map(|(a, _)| a.pixels()).sum())
        }
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn a_client_that_joined_since_gets_pixels_not_a_copy() {
    let old = picture(17);
    let (screen, generation) = screen_showing(&old);
    screen.add_viewer(2);
    let window = Area::new(32, 16, 224, 144);
    draw_strips(&screen, &strips(&old, &scrolled(&old, window, 14, 18)));
    let (copies, pixels) = copies_and_pixels(screen.next_update(1, generation));
    assert_eq!((copies, pixels), (1, u64::from(window.width()) * 14));
    let (copies, pixels) = copies_and_pixels(screen.next_update(2, generation));
    assert_eq!(
        (copies, pixels),
        (0, u64::from(W * H)),
        "its old pixels were never sent: it gets the whole surface"
    );
}

#[test]
fn no_copy_reads_or_writes_a_video_stream() {
    let old = picture(19);
    let (screen, generation) = screen_showing(&old);
    let window = Area::new(32, 16, 224, 144);
    screen.start_stream(crate::display::streams::StreamInfo {
        id: 1,
        dest: Area::new(0, 100, W, 120),
        codec: crate::video::codecs::Codec::Mjpeg,
        stream: crate::video::stream::StreamHandle::detached(),
    });
    screen.next_video(1, true);
    draw_strips(&screen, &strips(&old, &scrolled(&old, window, 14, 20)));
    let (copies, _) = copies_and_pixels(screen.next_update(1, generation));
    assert_eq!(
        copies, 0,
        "the stream's area is late and lossy on the client"
    );
}
