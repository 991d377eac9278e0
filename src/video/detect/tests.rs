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
            if let Some(dec) = d.evaluate(next_eval, |_, _| true) {
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
    // A video window much smaller than the stream is followed, once the rest of the
    // stream's area has been still for longer than a video's still parts are.
    let small = Area::new(600, 300, 920, 540);
    let (decisions, _) = play(&mut d, end + 33, (WARM_MS + 1300) / 33, 33, &[small]);
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
        if let Some(dec) = d.evaluate(t, |_, _| true) {
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
        assert_eq!(d.evaluate(now, |_, _| false), None);
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
    assert!(
        matches!(decisions.last(), Some((_, Decision::Move(_)))),
        "{decisions:?}"
    );
    let stream = d.stream().unwrap();
    assert_eq!(
        stream.intersect(&video),
        video,
        "no row of the video left outside"
    );
    assert_eq!(stream, video.union(&band), "nor anything but the video");
}

/// Damage of one frame of a still scene where `movers` things of `side` pixels move at
/// `speed` pixels a frame (bouncing inside `scene`), each frame's change being where a
/// thing was and where it is now; plus the frame stamp at the scene's top-left corner.
fn movers_frame(scene: Area, movers: u32, side: u32, speed: u32, f: u32) -> Vec<Area> {
    let mut out = vec![Area::new(
        scene.left,
        scene.top,
        scene.left + 288,
        scene.top + 32,
    )];
    let (w, h) = (scene.width() - side, scene.height() - side);
    let at = |k: u32, f: u32| {
        let bounce = |v: u32, span: u32| {
            let p = v % (2 * span);
            if p < span {
                p
            } else {
                2 * span - p
            }
        };
        let x = bounce(k * 211 + f * speed * (1 + k % 3), w);
        let y = bounce(k * 97 + f * speed * (1 + k % 2) / 2, h);
        Area::new(
            scene.left + x,
            scene.top + y,
            scene.left + x + side,
            scene.top + y + side,
        )
    };
    for k in 0..movers {
        out.push(at(k, f.saturating_sub(1)).union(&at(k, f)));
    }
    out
}

#[test]
fn things_moving_over_a_still_scene_stream_as_one_area_where_they_move() {
    // Big things moving over a still scene: the hot cells are blobs that move, plus the
    // stamp; the stream must come to cover where they move (with the stamp), and not hop
    // from blob to blob.
    let mut d = Detector::new(1280, 720);
    let scene = Area::new(0, 0, 1280, 720);
    let mut decisions = vec![];
    let mut next_eval = 0;
    for f in 0..250 {
        let now = f * 40;
        for (i, r) in movers_frame(scene, 12, 200, 6, f).iter().enumerate() {
            d.damage(*r, now + i as u32 / 8);
        }
        while next_eval <= now {
            if let Some(dec) = d.evaluate(next_eval, |_, _| true) {
                decisions.push((next_eval, dec));
            }
            next_eval += 100;
        }
    }
    let first = decisions.first().expect("a stream starts").0;
    assert!(first <= 1500, "started at {first} ms: {decisions:?}");
    // It only grows (a thing reaching a part of the scene for the first time), and
    // seldom.
    assert!(decisions.len() <= 4, "{decisions:?}");
    let mut area = Area::default();
    for (_, dec) in &decisions {
        let (Decision::Start(a) | Decision::Move(a)) = dec else {
            panic!("{decisions:?}")
        };
        assert_eq!(a.intersect(&area), area, "{decisions:?}");
        area = *a;
    }
    let stream = d.stream().expect("a stream");
    assert!(stream.pixels() * 10 >= scene.pixels() * 9, "{stream:?}");
    assert_eq!(
        (stream.left, stream.top),
        (0, 0),
        "the stamp is in it: {stream:?}"
    );
}

#[test]
fn two_videos_far_apart_are_not_one_area() {
    let mut d = Detector::new(1920, 1080);
    let a = Area::new(0, 0, 320, 240);
    let b = Area::new(1500, 800, 1820, 1040);
    let (decisions, _) = play(&mut d, 0, 60, 33, &[a, b]);
    let stream = d.stream().expect("a stream");
    assert!(stream == a || stream == b, "{stream:?} {decisions:?}");
}

#[test]
fn a_few_small_things_moving_over_a_still_scene_do_not_stream() {
    // Shapes over a flat background, a pointer: the changed parts go as pixels.
    let mut d = Detector::new(1280, 720);
    let scene = Area::new(0, 0, 1280, 720);
    for f in 0..150 {
        let now = f * 40;
        for (i, r) in movers_frame(scene, 8, 64, 6, f).iter().enumerate() {
            d.damage(*r, now + i as u32 / 8);
        }
        assert_eq!(d.evaluate(now, |_, _| true), None, "at {now} ms");
    }
}

#[test]
fn a_still_screen_is_at_rest_and_a_video_after_it_still_streams() {
    let mut d = Detector::new(1280, 720);
    assert!(d.at_rest(0), "nothing drawn yet");
    let clock = Area::new(1200, 10, 1240, 26);
    d.damage(clock, 1000);
    assert!(!d.at_rest(1000) && !d.at_rest(1000 + WINDOW_MS));
    assert_eq!(d.evaluate(1000 + WINDOW_MS + 1, |_, _| true), None);
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

#[test]
fn a_forgotten_stream_starts_again_while_the_video_plays_on() {
    // The stream's clients left mid-video and one came back: the video never paused,
    // and the same area streams again within a settle time.
    let mut d = Detector::new(1280, 720);
    let video = Area::new(100, 50, 420, 290);
    let (decisions, end) = play(&mut d, 1000, 40, 33, &[video]);
    assert_eq!(decisions.first().map(|x| x.1), Some(Decision::Start(video)));
    d.forget_stream();
    let (again, _) = play(&mut d, end + 33, 40, 33, &[video]);
    let (when, first) = again[0];
    assert_eq!(first, Decision::Start(video));
    assert!(when - end <= 800, "started again after {} ms", when - end);
}

#[test]
fn forgetting_without_a_stream_keeps_the_candidate_settling() {
    // The worker forgets at every evaluation while nothing streams: that must not
    // restart the settle time each time, or no stream would ever start.
    let mut d = Detector::new(1280, 720);
    let video = Area::new(100, 50, 420, 290);
    let mut started = None;
    for f in 0..40u32 {
        let now = 1000 + f * 33;
        d.damage(video, now);
        if f % 3 == 0 {
            d.forget_stream();
            if let Some(dec) = d.evaluate(now, |_, _| true) {
                started.get_or_insert((now, dec));
            }
        }
    }
    let (when, first) = started.expect("a stream starts");
    assert_eq!(first, Decision::Start(video));
    assert!(when - 1000 <= 800, "started after {} ms", when - 1000);
}
