use super::*;

/// Feeds `frames` frames of `rects` (each frame at `period` ms) starting at `t`;
/// evaluates every 100 ms; returns (decisions with times, end time).
fn play(
    d: &mut Detector,
    t: u32,
    frames: u32,
    period: u32,
    rects: &[Area],
) -> (Vec<(u32, Decision)>, u32) {
    let mut out = vec![];
    let mut next_eval = t;
    let mut now = t;
    for f in 0..frames {
        now = t + f * period;
        for (i, r) in rects.iter().enumerate() {
            d.damage(*r, now + i as u32 / 8);
        }
        while next_eval <= now {
            if let Some(dec) = d.evaluate(next_eval, |_| true) {
                out.push((next_eval, dec));
            }
            next_eval += 100;
        }
    }
    (out, now)
}

#[test]
fn a_window_playing_video_starts_a_stream_with_its_exact_box() {
    let mut d = Detector::new(1280, 720);
    let video = Area::new(100, 50, 420, 290);
    let (decisions, _) = play(&mut d, 1000, 40, 33, &[video]);
    let (when, first) = decisions[0];
    assert_eq!(first, Decision::Start(video));
    assert!(when - 1000 <= 800, "started after {} ms", when - 1000);
}

#[test]
fn framebuffer_strips_of_one_frame_make_one_stream() {
    // QEMU's framebuffer updates: one frame arrives as 16-line strips.
    let mut d = Detector::new(1280, 720);
    let strips: Vec<Area> = (0..15)
        .map(|i| Area::new(200, 100 + 16 * i, 840, 116 + 16 * i))
        .collect();
    let (decisions, _) = play(&mut d, 0, 40, 40, &strips);
    assert_eq!(
        decisions.first().map(|x| x.1),
        Some(Decision::Start(Area::new(200, 100, 840, 340)))
    );
}

#[test]
fn a_blinking_cursor_and_typing_do_not_stream() {
    let mut d = Detector::new(1280, 720);
    let cursor = Area::new(10, 10, 18, 26);
    let far = Area::new(900, 600, 908, 616);
    let (decisions, _) = play(&mut d, 0, 100, 100, &[cursor, far]);
    assert!(decisions.is_empty(), "{decisions:?}");
    let mut d = Detector::new(1280, 720);
    let small = Area::new(10, 10, 90, 90); // under 96x96
    let (decisions, _) = play(&mut d, 0, 100, 33, &[small]);
    assert!(decisions.is_empty());
}

#[test]
fn slow_updates_do_not_stream() {
    let mut d = Detector::new(1280, 720);
    let area = Area::new(0, 0, 400, 300);
    let (decisions, _) = play(&mut d, 0, 20, 250, &[area]);
    assert!(decisions.is_empty(), "4 fps is not video: {decisions:?}");
}

#[test]
fn a_stream_keeps_its_area_while_only_part_of_it_changes() {
    // A full-screen video updated in bands (QEMU's framebuffer refresh on a busy host),
    // or with still parts: the hot box wanders inside the stream; no restart.
    let mut d = Detector::new(1920, 1080);
    let full = Area::new(0, 0, 1920, 1080);
    let (decisions, mut end) = play(&mut d, 0, 30, 33, &[full]);
    assert_eq!(decisions.first().map(|x| x.1), Some(Decision::Start(full)));
    for band in [
        Area::new(0, 0, 1920, 600),
        Area::new(0, 400, 1920, 1080),
        Area::new(200, 100, 1700, 900),
    ] {
        let (decisions, e) = play(&mut d, end + 33, 30, 33, &[band]);
        assert!(decisions.is_empty(), "{band:?}: {decisions:?}");
        end = e;
    }
    assert_eq!(d.stream(), Some(full));
    // A video window much smaller than the stream is followed.
    let small = Area::new(600, 300, 920, 540);
    let (decisions, _) = play(&mut d, end + 33, 40, 33, &[small]);
    assert_eq!(decisions.last().map(|x| x.1), Some(Decision::Move(small)));
}

#[test]
fn a_still_stream_ends_and_a_moved_one_follows() {
    let mut d = Detector::new(1280, 720);
    let a = Area::new(0, 0, 320, 240);
    let (decisions, end) = play(&mut d, 0, 30, 33, &[a]);
    assert_eq!(decisions[0].1, Decision::Start(a));
    let b = Area::new(600, 300, 920, 540);
    let (decisions, end) = play(&mut d, end + 33, 40, 33, &[b]);
    assert_eq!(decisions.last().map(|x| x.1), Some(Decision::Move(b)));
    assert_eq!(d.stream(), Some(b));
    // Nothing changes any more: the stream ends.
    let mut ended = None;
    for t in (end..end + 2000).step_by(100) {
        if let Some(dec) = d.evaluate(t, |_| true) {
            ended = Some((t - end, dec));
            break;
        }
    }
    let (after, dec) = ended.expect("the stream ends");
    assert_eq!(dec, Decision::End);
    assert!(
        (IDLE_END_MS..=IDLE_END_MS + 100).contains(&after),
        "{after}"
    );
}

#[test]
fn the_content_test_can_refuse_a_candidate() {
    let mut d = Detector::new(640, 480);
    let a = Area::new(0, 0, 320, 240);
    let mut now = 0;
    for _ in 0..60 {
        d.damage(a, now);
        assert_eq!(d.evaluate(now, |_| false), None);
        now += 33;
    }
    assert_eq!(d.stream(), None);
}

#[test]
fn a_stream_that_started_on_part_of_the_video_grows_to_all_of_it() {
    // A busy guest flushed its first frames in bands: the stream starts on the lower
    // band; then whole frames come and the rows above it change too.
    let mut d = Detector::new(1024, 768);
    let band = Area::new(0, 256, 1024, 576);
    let (decisions, end) = play(&mut d, 0, 30, 33, &[band]);
    assert_eq!(decisions[0].1, Decision::Start(band));
    let video = Area::new(0, 204, 1024, 564);
    let (decisions, _) = play(&mut d, end + 33, 40, 33, &[video]);
    assert_eq!(decisions.last().map(|x| x.1), Some(Decision::Move(video)));
    assert_eq!(d.stream(), Some(video), "no row of the video left outside");
}

#[test]
fn a_still_screen_is_at_rest_and_a_video_after_it_still_streams() {
    let mut d = Detector::new(1280, 720);
    assert!(d.at_rest(0), "nothing drawn yet");
    let clock = Area::new(1200, 10, 1240, 26);
    d.damage(clock, 1000);
    assert!(!d.at_rest(1000) && !d.at_rest(1000 + WINDOW_MS));
    assert_eq!(d.evaluate(1000 + WINDOW_MS + 1, |_| true), None);
    assert!(d.at_rest(1000 + WINDOW_MS + 1));

    // A long still stretch (the worker evaluated nothing), then a video starts.
    let video = Area::new(100, 50, 420, 290);
    let (decisions, end) = play(&mut d, 600_000, 40, 33, &[video]);
    let (when, first) = decisions[0];
    assert_eq!(first, Decision::Start(video));
    assert!(when - 600_000 <= 800, "started after {} ms", when - 600_000);
    assert!(
        !d.at_rest(end + 10 * WINDOW_MS),
        "a stream is live: the worker keeps looking"
    );
}
