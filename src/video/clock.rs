//! The multimedia clock (`mm_time`) shared with clients, and the playout delay.
//!
//! spice-gtk shows each stream frame when its session clock reaches the frame's stamp,
//! and drops frames that arrive after it. The server stamps a frame with the time it was
//! captured and tells the client a clock running `latency` behind its own
//! (`MULTI_MEDIA_TIME`), so a frame is shown `latency` ms after capture. spice-server
//! keeps that at 400 ms or more and never lowers it; here it follows what the client's
//! stream reports say about how early frames arrive: just enough margin for the jitter
//! seen, so video and pointer stay together.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Where the playout delay starts, and its bounds (ms).
pub(crate) const START_LATENCY_MS: u32 = 80;
pub(crate) const MIN_LATENCY_MS: u32 = 20;
pub(crate) const MAX_LATENCY_MS: u32 = 400;
/// How early a frame should arrive before its display time (ms): the margin kept over
/// the measured spread of arrivals.
const SAFETY_MARGIN_MS: i32 = 15;
/// Reports looked at before lowering the delay (only ever lowered on a calm stretch).
const CALM_REPORTS: usize = 6;
/// Once frames came late, the path has shown its jitter: a longer calm stretch is
/// needed, and only a smaller share of the spare margin is given back. Lowering as
/// quickly as on a calm LAN made the delay saw up and down on a throttled link, with
/// frames dropped as late at each low.
const CALM_REPORTS_AFTER_RAISE: usize = 18;
/// ...or at least this many over this long (ms): at a low frame rate reports come
/// seconds apart, and 18 of them would hold a raised delay for a minute.
const MIN_CALM_REPORTS_AFTER_RAISE: usize = 3;
const CALM_MS_AFTER_RAISE: u32 = 6_000;
/// Late frames this soon after a stream started (ms) are its start, not the path's
/// jitter: the first frames wait behind the picture sent before the stream (and the
/// delay rises for them), but that says nothing of how the path behaves later, so the
/// delay comes down again as on a calm path.
const START_GRACE_MS: u32 = 3_000;
/// The share of the spare margin given back on a lowering: 1/2, or 1/3 after a raise.
const GIVE_BACK_SHARE: i32 = 2;
const GIVE_BACK_SHARE_AFTER_RAISE: i32 = 3;
/// Largest lateness or earliness (ms) a report is taken at.
const MAX_REPORTED_MS: i32 = 60_000;
/// Longest the audio is held back so that late video can catch up with it (ms).
pub(crate) const MAX_AUDIO_HOLD_MS: u32 = 200;

pub(crate) struct MediaClock {
    start: Instant,
    latency_ms: AtomicU32,
    /// Bumped on every latency change, so main channels re-send `MULTI_MEDIA_TIME`.
    generation: AtomicU64,
    delay: Mutex<PlayoutDelay>,
    /// Audio is playing to a client, which then sets its clock from the audio stamps.
    audio_playing: AtomicBool,
    /// How long audio frames wait before they are sent (ms), while audio plays.
    audio_hold_ms: AtomicU32,
}

impl Default for MediaClock {
    fn default() -> Self {
        MediaClock {
            start: Instant::now(),
            latency_ms: AtomicU32::new(START_LATENCY_MS),
            generation: AtomicU64::new(0),
            delay: Mutex::new(PlayoutDelay::new(START_LATENCY_MS)),
            audio_playing: AtomicBool::new(false),
            audio_hold_ms: AtomicU32::new(0),
        }
    }
}

impl MediaClock {
    /// Server time in ms (wraps after 49 days, as the protocol's u32 does).
    pub(crate) fn now(&self) -> u32 {
        self.start.elapsed().as_millis() as u32
    }

    /// What the client's clock should read now.
    pub(crate) fn client_time(&self) -> u32 {
        self.now().wrapping_sub(self.latency())
    }

    pub(crate) fn latency(&self) -> u32 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// While audio plays, spice-gtk sets its clock from the audio frames' stamps (the
    /// last one minus its audio output delay): main channels stop sending
    /// `MULTI_MEDIA_TIME`, which would fight it. When audio stops they send it again.
    pub(crate) fn set_audio_playing(&self, playing: bool) {
        let was = self.audio_playing.swap(playing, Ordering::AcqRel);
        if was && !playing {
            self.audio_hold_ms.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// While audio plays, the client's clock is the audio's: a video frame is shown when
    /// the audio stamped with the same time is heard. When the client's audio output is
    /// quicker than the video path (a low-latency audio sink), frames arrive after their
    /// time and are dropped, and `MULTI_MEDIA_TIME` cannot move the clock back. Holding
    /// the audio back moves the client's clock and the sound together, so video and
    /// sound stay in step and the frames arrive in time. Only ever grown while audio
    /// plays (lowering it would leave the extra audio queued in the client's sink, out
    /// of step), and dropped when it stops.
    pub(crate) fn audio_hold(&self) -> u32 {
        self.audio_hold_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn audio_playing(&self) -> bool {
        self.audio_playing.load(Ordering::Acquire)
    }

    /// A stream started: late frames in its first seconds do not make the delay cautious.
    pub(crate) fn stream_started(&self) {
        self.delay.lock().stream_started(self.now());
    }

    /// A stream's first frames will reach a client about `path_ms` after capture (the
    /// bytes queued ahead of them on a thin link): the delay rises to that at once,
    /// instead of after reports of frames dropped as late (which a client busy receiving
    /// sends only seconds later). Calm reports lower it again.
    pub(crate) fn expect_path(&self, path_ms: u32) {
        let mut delay = self.delay.lock();
        if let Some(new) = delay.expect_path(path_ms) {
            self.set_latency(new);
            crate::log_debug!("video: (a stream's first frames wait {path_ms} ms)");
        }
    }

    /// The playout delay is `new` ms from now on (main channels re-send the client's
    /// clock); returns the one before.
    fn set_latency(&self, new: u32) -> u32 {
        let old = self.latency_ms.swap(new, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
        crate::log_debug!("video: playout delay now {new} ms");
        old
    }

    /// A client's stream report: `last_frame_delay` is how early (ms; negative = late)
    /// its last frame arrived before its display time.
    pub(crate) fn stream_report(&self, last_frame_delay: i32, drops: u32) {
        let mut delay = self.delay.lock();
        if let Some(new) = delay.report(last_frame_delay, drops, self.now()) {
            let old = self.set_latency(new);
            if self.audio_playing() && new > old {
                let hold = (self.audio_hold() + (new - old)).min(MAX_AUDIO_HOLD_MS);
                self.audio_hold_ms.store(hold, Ordering::Relaxed);
                crate::log_debug!("video: frames late while audio plays, audio held {hold} ms");
            }
        }
    }
}

/// The playout-delay controller: raise at once when frames come late, lower slowly
/// when they have been early by a wide margin for a while.
#[derive(Debug, Clone)]
pub(crate) struct PlayoutDelay {
    latency: u32,
    recent_margins: Vec<i32>,
    /// Frames came late at least once: lower cautiously from then on.
    raised: bool,
    /// When the first report of the current calm stretch came (ms).
    calm_since: u32,
    /// Until when late frames belong to a stream's start (ms).
    start_grace_until: Option<u32>,
}

impl PlayoutDelay {
    pub(crate) fn new(latency: u32) -> PlayoutDelay {
        PlayoutDelay {
            latency,
            recent_margins: Vec::with_capacity(CALM_REPORTS_AFTER_RAISE),
            raised: false,
            calm_since: 0,
            start_grace_until: None,
        }
    }

    pub(crate) fn stream_started(&mut self, now_ms: u32) {
        self.start_grace_until = Some(now_ms.wrapping_add(START_GRACE_MS));
    }

    /// Raises the delay to cover `path_ms` with the safety margins (not past the
    /// bound); returns the new delay when it changed.
    pub(crate) fn expect_path(&mut self, path_ms: u32) -> Option<u32> {
        let wanted = path_ms
            .saturating_add(2 * SAFETY_MARGIN_MS as u32)
            .min(MAX_LATENCY_MS);
        (wanted > self.latency).then(|| {
            self.latency = wanted;
            self.recent_margins.clear();
            wanted
        })
    }

    fn in_start_grace(&self, now_ms: u32) -> bool {
        // Wrapping: the clock is the protocol's u32 of milliseconds.
        self.start_grace_until
            .is_some_and(|until| (until.wrapping_sub(now_ms) as i32) > 0)
    }

    /// Takes a report's margin, reported at `now_ms`; returns the new latency when it
    /// changes.
    pub(crate) fn report(&mut self, margin: i32, drops: u32, now_ms: u32) -> Option<u32> {
        // The client's number: any i32. Beyond a minute either way it says no more.
        let margin = margin.clamp(-MAX_REPORTED_MS, MAX_REPORTED_MS);
        let old = self.latency;
        if margin < SAFETY_MARGIN_MS || drops > 0 {
            // Late or nearly so: add what was missing plus the safety margin.
            let missing = (SAFETY_MARGIN_MS - margin).max(SAFETY_MARGIN_MS);
            self.latency =
                (old as i32 + missing).clamp(MIN_LATENCY_MS as i32, MAX_LATENCY_MS as i32) as u32;
            self.recent_margins.clear();
            if !self.in_start_grace(now_ms) {
                self.raised = true;
            }
        } else {
            if self.recent_margins.is_empty() {
                self.calm_since = now_ms;
            }
            self.recent_margins.push(margin);
            let calm = self.recent_margins.len();
            let (long_enough, share) = if self.raised {
                let calm_ms = now_ms.wrapping_sub(self.calm_since);
                (
                    calm >= CALM_REPORTS_AFTER_RAISE
                        || (calm >= MIN_CALM_REPORTS_AFTER_RAISE && calm_ms >= CALM_MS_AFTER_RAISE),
                    GIVE_BACK_SHARE_AFTER_RAISE,
                )
            } else {
                (calm >= CALM_REPORTS, GIVE_BACK_SHARE)
            };
            if long_enough {
                let least = self.recent_margins.iter().copied().min().unwrap_or(margin);
                self.recent_margins.clear();
                let spare = least - 2 * SAFETY_MARGIN_MS;
                if spare > 0 {
                    // Give back part of what was never needed.
                    self.latency = (old as i32 - spare / share).max(MIN_LATENCY_MS as i32) as u32;
                }
            }
        }
        (self.latency != old).then_some(self.latency)
    }

    #[cfg(test)]
    pub(crate) fn latency(&self) -> u32 {
        self.latency
    }
}

/// Stream statistics kept per stream and logged at debug level when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamStats {
    pub frames_in: u64,
    pub frames_encoded: u64,
    pub frames_dropped: u64,
    pub bytes: u64,
    pub encode_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_frames_raise_the_delay_at_once() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(-30, 1, 0), Some(125), "30 ms late + 15 margin");
        assert_eq!(d.report(-1000, 5, 0), Some(MAX_LATENCY_MS));
    }

    #[test]
    fn absurd_reports_stay_within_the_bounds() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(i32::MIN, u32::MAX, 0), Some(MAX_LATENCY_MS));
        for _ in 0..CALM_REPORTS_AFTER_RAISE {
            d.report(i32::MAX, 0, 0);
        }
        assert!(
            (MIN_LATENCY_MS..MAX_LATENCY_MS).contains(&d.latency()),
            "{}",
            d.latency()
        );
    }

    #[test]
    fn early_frames_lower_it_slowly_and_never_below_the_margin() {
        let mut d = PlayoutDelay::new(200);
        let mut changes = 0;
        for _ in 0..200 {
            // Frames arrive 10 ms after capture: margin = latency - 10.
            let margin = d.latency() as i32 - 10;
            if d.report(margin, 0, 0).is_some() {
                changes += 1;
            }
        }
        let settled = d.latency();
        assert!(
            (35..=45).contains(&settled),
            "settles near 10 + 2 margins: {settled}"
        );
        assert!(changes < 15, "few steps: {changes}");
    }

    #[test]
    fn after_late_frames_it_comes_down_in_smaller_steps_after_longer_calm() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(-200, 3, 0), Some(295), "200 ms late + 80 + 15");
        // Frames now arrive 100 ms early: 70 ms of spare margin.
        for _ in 0..CALM_REPORTS_AFTER_RAISE - 1 {
            assert_eq!(
                d.report(100, 0, 0),
                None,
                "not lowered before a long calm stretch"
            );
        }
        assert_eq!(
            d.report(100, 0, 0),
            Some(295 - 70 / 3),
            "a third of the spare"
        );
        // Without a raise first, half the spare after a short calm stretch.
        let mut calm = PlayoutDelay::new(295);
        let lowered = (0..CALM_REPORTS)
            .filter_map(|_| calm.report(100, 0, 0))
            .last();
        assert_eq!(lowered, Some(295 - 70 / 2));
    }

    #[test]
    fn a_stream_s_late_start_does_not_make_the_delay_cautious() {
        let mut d = PlayoutDelay::new(80);
        d.stream_started(10_000);
        assert_eq!(
            d.report(-305, 3, 11_000),
            Some(400),
            "raised at once all the same"
        );
        // The path is calm: 385 ms early from then on, reports 1/3 s apart.
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(385, 0, 11_300 + i as u32 * 330))
            .last();
        assert_eq!(
            lowered,
            Some(400 - 355 / 2),
            "half the spare after a short calm"
        );
        // Late frames after the grace are the path's: cautious again.
        d.report(-50, 1, 14_500);
        let after = d.latency();
        for i in 0..CALM_REPORTS {
            assert_eq!(d.report(300, 0, 15_000 + i as u32 * 330), None, "{after}");
        }
    }

    #[test]
    fn an_expected_path_raises_the_delay_without_caution() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.expect_path(30), None, "covered already");
        assert_eq!(d.expect_path(200), Some(230));
        assert_eq!(d.expect_path(5_000), Some(MAX_LATENCY_MS));
        // Frames then arrive 300 ms early: half the spare back after a short calm.
        let lowered = (0..CALM_REPORTS).filter_map(|_| d.report(300, 0, 0)).last();
        assert_eq!(lowered, Some(MAX_LATENCY_MS - 270 / 2));
    }

    #[test]
    fn at_a_low_frame_rate_a_raised_delay_comes_down_after_seconds_not_reports() {
        // Reports 2 s apart (a few frames a second on a thin link).
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(-305, 3, 1_000), Some(400));
        assert_eq!(d.report(230, 0, 3_000), None);
        assert_eq!(d.report(230, 0, 5_000), None);
        assert_eq!(d.report(230, 0, 7_000), None, "4 s of calm");
        assert_eq!(
            d.report(230, 0, 9_000),
            Some(400 - 200 / 3),
            "6 s and 4 calm reports"
        );
    }

    #[test]
    fn late_frames_hold_the_audio_back_only_while_it_plays() {
        let c = MediaClock::default();
        c.stream_report(-30, 1);
        assert_eq!(
            c.audio_hold(),
            0,
            "no audio: the clock message moves instead"
        );
        c.set_audio_playing(true);
        c.stream_report(-30, 1);
        assert_eq!(c.audio_hold(), 45, "30 ms late + 15 margin");
        for _ in 0..4 * CALM_REPORTS {
            c.stream_report(300, 0);
        }
        assert_eq!(c.audio_hold(), 45, "never lowered while audio plays");
        for _ in 0..20 {
            c.stream_report(-1000, 5);
        }
        assert!(c.audio_hold() <= MAX_AUDIO_HOLD_MS);
        c.set_audio_playing(false);
        assert_eq!(c.audio_hold(), 0, "dropped when the audio stops");
    }

    #[test]
    fn clock_runs_latency_behind() {
        let c = MediaClock::default();
        let gen = c.generation();
        assert_eq!(c.now().wrapping_sub(c.client_time()), START_LATENCY_MS);
        c.stream_report(-50, 2);
        assert!(c.generation() > gen);
        assert_eq!(c.latency(), START_LATENCY_MS + 65);
    }
}
