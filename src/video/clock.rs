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
/// The bound is above spice-server's 400 ms for MJPEG, whose late frames spice-gtk drops:
/// a link that narrows under a stream leaves half a second of frames queued, and a frame
/// shown late beats a frozen picture (the delay comes down again within seconds). Late
/// frames of the other codecs are decoded and shown at once (they carry the next ones),
/// so a longer delay would only hold the picture back: 400 ms for them.
pub(crate) const MAX_LATENCY_MS: u32 = 800;
pub(crate) const MAX_LATENCY_SHOWN_LATE_MS: u32 = 400;
/// How early a frame should arrive before its display time (ms): the margin kept over
/// the measured spread of arrivals.
const SAFETY_MARGIN_MS: i32 = 15;
/// Reports looked at before lowering the delay (only ever lowered on a calm stretch),
/// or at least `MIN_CALM_REPORTS` over `CALM_MS`: at a low frame rate reports come
/// seconds apart.
const CALM_REPORTS: usize = 6;
const MIN_CALM_REPORTS: usize = 3;
const CALM_MS: u32 = 2_000;
/// Spare margin (ms, over the safety margins) that frames of `MIN_CALM_REPORTS` reports
/// in a row had, past which the delay comes down without waiting for `CALM_MS`: a delay
/// raised for a queue that has drained (a link that narrowed) held the picture hundreds
/// of ms back for two more seconds.
const QUICK_SPARE_MS: i32 = 100;
/// The most the delay comes down at a time (ms), the rest a step per calm report: the
/// client's clock jumps ahead by what the delay comes down, and every frame waiting in
/// its queue for less than that is dropped as late (a 377 ms lowering dropped five
/// frames at once: a 400 ms freeze). A step of a frame or so drops none or one.
const MAX_LOWERING_STEP_MS: i32 = 80;
/// A lowering is on trial this long (ms): frames late within it say the path's jitter
/// needs the margin that was given back. From then on, for `CAUTIOUS_MS`, a longer calm
/// stretch is needed and a smaller share of the spare is given back: lowering as
/// quickly as on a calm LAN made the delay saw up and down on a throttled link, with
/// frames dropped as late at each low. Late frames that follow no lowering (a link that
/// narrowed, a stream's start) raise the delay but say nothing of the jitter: after
/// them it comes down as quickly as before (cautious after any raise, a delay raised to
/// 400 ms by one narrowing took 20 s to come down to a path of 30 ms).
const LOWERING_TRIAL_MS: u32 = 4_000;
/// How long after a rise the client may still show frames on its clock of before (ms):
/// the new clock's way to it, a report window and the report's way back.
const RAISE_SETTLE_MS: u32 = 1_000;
const CAUTIOUS_MS: u32 = 30_000;
const CALM_REPORTS_CAUTIOUS: usize = 18;
const CALM_MS_CAUTIOUS: u32 = 6_000;
/// Late frames this soon after a stream started (ms) are its start, not the path's
/// jitter, even after a lowering: the first frames wait behind the picture sent before
/// the stream (on a 0.5 Mbit/s link their reports come 4 s after the start).
const START_GRACE_MS: u32 = 10_000;
/// The share of the spare margin given back on a lowering: 1/2, or 1/3 when cautious.
const GIVE_BACK_SHARE: i32 = 2;
const GIVE_BACK_SHARE_CAUTIOUS: i32 = 3;
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
    /// `late_frames_dropped`: its client drops frames that come after their time (MJPEG
    /// on spice-gtk) rather than showing them at once.
    pub(crate) fn stream_started(&self, late_frames_dropped: bool) {
        let bound = if late_frames_dropped {
            MAX_LATENCY_MS
        } else {
            MAX_LATENCY_SHOWN_LATE_MS
        };
        let lowered = self.delay.lock().stream_started(self.now(), bound);
        if let Some(new) = lowered {
            self.set_latency(new);
        }
    }

    /// A stream's first frames will reach a client about `path_ms` after capture (the
    /// bytes queued ahead of them on a thin link): the delay rises to that at once,
    /// instead of after reports of frames dropped as late (which a client busy receiving
    /// sends only seconds later). Calm reports lower it again.
    pub(crate) fn expect_path(&self, path_ms: u32) {
        let mut delay = self.delay.lock();
        if let Some(new) = delay.expect_path(path_ms, self.now()) {
            self.set_latency(new);
            crate::log_debug!("video: (frames queued ahead wait {path_ms} ms)");
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
    /// its last frame arrived before its display time; `rate_made_late`: the rate
    /// control says late frames are its own (a queue on the path, a probe, congestion
    /// it answered).
    pub(crate) fn stream_report(&self, last_frame_delay: i32, drops: u32, rate_made_late: bool) {
        let mut delay = self.delay.lock();
        if let Some(new) = delay.report(last_frame_delay, drops, rate_made_late, self.now()) {
            let old = self.set_latency(new);
            if self.audio_playing() && new > old {
                let hold = (self.audio_hold() + (new - old)).min(MAX_AUDIO_HOLD_MS);
                self.audio_hold_ms.store(hold, Ordering::Relaxed);
                crate::log_debug!("video: frames late while audio plays, audio held {hold} ms");
            }
        }
    }
}

/// The playout-delay controller: raise at once when frames come late, lower when they
/// have been early by a wide margin for a while (slowly after a lowering proved wrong).
#[derive(Debug, Clone)]
pub(crate) struct PlayoutDelay {
    latency: u32,
    recent_margins: Vec<i32>,
    /// When the first report of the current calm stretch came (ms).
    calm_since: u32,
    /// When the delay was last lowered (ms).
    lowered_at: Option<u32>,
    /// What a lowering still has to give back, a step per calm report.
    lowering_left: i32,
    /// Until when lowering is cautious (ms): frames came late after a lowering.
    cautious_until: Option<u32>,
    /// Until when late frames belong to a stream's start (ms).
    start_grace_until: Option<u32>,
    /// Highest the delay goes (ms), for the codec of the last stream started.
    bound: u32,
    /// The last rise: when, and the delay before it. Frames reported late soon after
    /// were shown on the client's clock of before (the new one was still on its way):
    /// their lateness is counted from there, not added on top of the rise.
    raised: Option<(u32, u32)>,
}

/// Whether `until` is still ahead of `now_ms` (wrapping: the clock is the protocol's
/// u32 of milliseconds).
fn before(now_ms: u32, until: Option<u32>) -> bool {
    until.is_some_and(|until| (until.wrapping_sub(now_ms) as i32) > 0)
}

impl PlayoutDelay {
    pub(crate) fn new(latency: u32) -> PlayoutDelay {
        PlayoutDelay {
            latency,
            recent_margins: Vec::with_capacity(CALM_REPORTS_CAUTIOUS),
            calm_since: 0,
            lowered_at: None,
            lowering_left: 0,
            cautious_until: None,
            start_grace_until: None,
            bound: MAX_LATENCY_MS,
            raised: None,
        }
    }

    /// A stream starts at `now_ms` with the delay bounded by `bound`; returns the new
    /// delay when the bound lowered it. What earlier streams' late frames said of the
    /// path's jitter is not this one's (another client, other frame sizes).
    pub(crate) fn stream_started(&mut self, now_ms: u32, bound: u32) -> Option<u32> {
        self.start_grace_until = Some(now_ms.wrapping_add(START_GRACE_MS));
        self.cautious_until = None;
        self.bound = bound;
        (self.latency > bound).then(|| {
            self.latency = bound;
            bound
        })
    }

    /// Raises the delay to cover `path_ms` with the safety margins (not past the
    /// bound); returns the new delay when it changed.
    pub(crate) fn expect_path(&mut self, path_ms: u32, now_ms: u32) -> Option<u32> {
        let wanted = path_ms
            .saturating_add(2 * SAFETY_MARGIN_MS as u32)
            .min(self.bound);
        (wanted > self.latency).then(|| {
            self.note_rise(now_ms);
            self.lowering_left = 0;
            self.latency = wanted;
            self.recent_margins.clear();
            wanted
        })
    }

    /// A rise from the current delay happens at `now_ms` (a rise within the settling
    /// time of the one before keeps that one's starting point).
    fn note_rise(&mut self, now_ms: u32) {
        if !self.settling(now_ms) {
            self.raised = Some((now_ms, self.latency));
        }
    }

    fn settling(&self, now_ms: u32) -> bool {
        before(
            now_ms,
            self.raised.map(|(at, _)| at.wrapping_add(RAISE_SETTLE_MS)),
        )
    }

    /// Takes a report's margin, reported at `now_ms`; returns the new latency when it
    /// changes. `rate_made_late`: the rate control's own doing (a queue it drains, a
    /// probe) made frames late: they then say nothing of the jitter (early ones still
    /// bound the lowering: on a thin link a short queue stands, and leaving its margins
    /// out lowered the delay by 700 ms straight into late frames).
    pub(crate) fn report(
        &mut self,
        margin: i32,
        drops: u32,
        rate_made_late: bool,
        now_ms: u32,
    ) -> Option<u32> {
        // The client's number: any i32. Beyond a minute either way it says no more.
        let margin = margin.clamp(-MAX_REPORTED_MS, MAX_REPORTED_MS);
        let old = self.latency;
        if margin < SAFETY_MARGIN_MS || drops > 0 {
            // Late or nearly so: add what was missing plus the safety margin (to the
            // delay the client's clock still ran on, if it rose just now).
            let missing = (SAFETY_MARGIN_MS - margin).max(SAFETY_MARGIN_MS);
            let base = match self.raised {
                Some((_, before_rise)) if self.settling(now_ms) => before_rise,
                _ => {
                    self.note_rise(now_ms);
                    old
                }
            };
            self.latency = (base as i32 + missing)
                .max(old as i32)
                .clamp(MIN_LATENCY_MS as i32, self.bound as i32) as u32;
            self.recent_margins.clear();
            let trial_ends = self.lowered_at.map(|t| t.wrapping_add(LOWERING_TRIAL_MS));
            if before(now_ms, trial_ends)
                && !rate_made_late
                && !before(now_ms, self.start_grace_until)
            {
                self.cautious_until = Some(now_ms.wrapping_add(CAUTIOUS_MS));
            }
            self.lowered_at = None;
            self.lowering_left = 0;
        } else if self.lowering_left > 0 {
            // The rest of a lowering, as far as this frame's margin allows.
            let left = std::mem::take(&mut self.lowering_left);
            let back = left
                .min(MAX_LOWERING_STEP_MS)
                .min(margin - 2 * SAFETY_MARGIN_MS);
            if back > 0 {
                self.latency = (old as i32 - back).max(MIN_LATENCY_MS as i32) as u32;
                self.lowering_left = left - back;
                self.lowered_at = Some(now_ms);
            }
        } else {
            if self.recent_margins.is_empty() {
                self.calm_since = now_ms;
            }
            self.recent_margins.push(margin);
            let calm = self.recent_margins.len();
            let calm_ms = now_ms.wrapping_sub(self.calm_since);
            let least = self.recent_margins.iter().copied().min().unwrap_or(margin);
            let spare = least - 2 * SAFETY_MARGIN_MS;
            let (long_enough, share) = if before(now_ms, self.cautious_until) {
                (
                    calm >= CALM_REPORTS_CAUTIOUS
                        || (calm >= MIN_CALM_REPORTS && calm_ms >= CALM_MS_CAUTIOUS),
                    GIVE_BACK_SHARE_CAUTIOUS,
                )
            } else {
                let plenty = spare >= QUICK_SPARE_MS;
                (
                    calm >= CALM_REPORTS
                        || (calm >= MIN_CALM_REPORTS && (calm_ms >= CALM_MS || plenty)),
                    GIVE_BACK_SHARE,
                )
            };
            if long_enough {
                let most = self.recent_margins.iter().copied().max().unwrap_or(margin);
                self.recent_margins.clear();
                if spare > 0 {
                    // Give back part of what was never needed: a share, or when not
                    // cautious all but the spread of the margins seen (a delay raised
                    // for a queue that drained came down by halves, 2 s apart: 400 ms
                    // took 6 s to reach a path of 100).
                    let wanted = if share == GIVE_BACK_SHARE {
                        (spare - (most - least)).max(spare / share)
                    } else {
                        spare / share
                    };
                    let back = wanted.min(MAX_LOWERING_STEP_MS);
                    self.lowering_left = wanted - back;
                    self.latency = (old as i32 - back).max(MIN_LATENCY_MS as i32) as u32;
                    if self.latency < old {
                        self.lowered_at = Some(now_ms);
                    }
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
        assert_eq!(
            d.report(-30, 1, false, 0),
            Some(125),
            "30 ms late + 15 margin"
        );
        assert_eq!(d.report(-1000, 5, false, 0), Some(MAX_LATENCY_MS));
    }

    #[test]
    fn absurd_reports_stay_within_the_bounds() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(i32::MIN, u32::MAX, false, 0), Some(MAX_LATENCY_MS));
        for _ in 0..CALM_REPORTS_CAUTIOUS {
            d.report(i32::MAX, 0, false, 0);
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
            if d.report(margin, 0, false, 0).is_some() {
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
    fn late_frames_after_no_lowering_leave_it_quick_to_come_down() {
        // A link that narrowed: frames 200 ms late, then 100 ms early (70 ms spare).
        let mut d = PlayoutDelay::new(80);
        assert_eq!(
            d.report(-200, 3, false, 0),
            Some(295),
            "200 ms late + 80 + 15"
        );
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(100, 0, false, 100 + i as u32 * 300))
            .next();
        assert_eq!(
            lowered,
            Some(295 - 70),
            "all the spare after a short calm, the margins agreeing"
        );
    }

    /// Calm reports of `margin`, 300 ms apart from `from_ms`, until the delay stops
    /// coming down; no step larger than `MAX_LOWERING_STEP_MS`.
    fn lower_fully(d: &mut PlayoutDelay, margin: i32, from_ms: u32) -> u32 {
        for i in 0..40 {
            let before = d.latency();
            match d.report(margin, 0, false, from_ms + i * 300) {
                Some(now) => assert!(before - now <= MAX_LOWERING_STEP_MS as u32),
                None => return before,
            }
        }
        panic!("still coming down after 40 reports");
    }

    #[test]
    fn a_big_lowering_comes_in_steps_and_stops_at_a_late_frame() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.expect_path(500, 0), Some(530));
        let first = (0..CALM_REPORTS as u32).find_map(|i| d.report(450, 0, false, 2_000 + i * 300));
        assert_eq!(first, Some(530 - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(d.report(450, 0, false, 3_000), Some(370));
        // Late: the rest of the lowering is off, and the delay rises from where it is.
        assert_eq!(d.report(-5, 1, true, 3_300), Some(390));
        assert_eq!(
            d.report(450, 0, false, 3_600),
            None,
            "a new calm stretch first"
        );
    }

    #[test]
    fn margins_that_spread_keep_their_spread() {
        let mut d = PlayoutDelay::new(300);
        // 200 or 260 ms early: 170 spare over the least, 60 of spread.
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(200 + 60 * (i as i32 % 2), 0, false, i as u32 * 300))
            .next();
        // A step at a time: the rest at the next calm report.
        assert_eq!(lowered, Some(300 - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(d.report(200, 0, false, 2_000), Some(300 - (170 - 60)));
        // A spread past half the spare: half of it back.
        let mut d = PlayoutDelay::new(300);
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(100 + 60 * (i as i32 % 2), 0, false, i as u32 * 300))
            .next();
        assert_eq!(lowered, Some(300 - 70 / 2));
    }

    #[test]
    fn a_lowering_followed_by_late_frames_makes_it_cautious() {
        let mut d = PlayoutDelay::new(200);
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(130, 0, false, i as u32 * 300))
            .next();
        assert_eq!(lowered, Some(200 - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(d.report(130, 0, false, 2_000), Some(200 - 100));
        // Within the lowering's trial frames come late: the jitter needed that margin.
        assert_eq!(d.report(-20, 1, false, 3_000), Some(135));
        // 100 ms early from then on: a third of the spare after a long calm stretch.
        for i in 0..CALM_REPORTS_CAUTIOUS - 1 {
            assert_eq!(
                d.report(100, 0, false, 3_100 + i as u32 * 100),
                None,
                "not lowered before a long calm stretch"
            );
        }
        assert_eq!(d.report(100, 0, false, 5_000), Some(135 - 70 / 3));
        // Late again long after that lowering: raised, and no more cautious once the
        // caution's time is over.
        assert_eq!(d.report(-20, 1, false, 40_000), Some(147));
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(100, 0, false, 40_100 + i as u32 * 300))
            .next();
        assert_eq!(lowered, Some(147 - 70));
    }

    #[test]
    fn a_stream_s_late_start_does_not_make_the_delay_cautious() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.stream_started(10_000, MAX_LATENCY_MS), None);
        assert_eq!(
            d.report(-305, 3, false, 11_000),
            Some(400),
            "raised at once all the same"
        );
        // The path is calm: 385 ms early from then on, reports 1/3 s apart.
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(385, 0, false, 11_300 + i as u32 * 330))
            .next();
        assert_eq!(lowered, Some(400 - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(
            lower_fully(&mut d, 385, 13_000),
            45,
            "the spare back after a short calm"
        );
        // Late just after that lowering, still in the start's grace: raised, not cautious.
        assert_eq!(d.report(-50, 1, false, 14_500), Some(110));
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(100, 0, false, 15_000 + i as u32 * 330))
            .next();
        assert_eq!(lowered, Some(40));
        // After the grace, late frames within a lowering's trial are the path's.
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(80, 0, false, 20_000 + i as u32 * 330))
            .next();
        assert_eq!(lowered, Some(MIN_LATENCY_MS));
        d.report(-50, 1, false, 22_500);
        let after = d.latency();
        for i in 0..CALM_REPORTS {
            assert_eq!(
                d.report(300, 0, false, 23_000 + i as u32 * 330),
                None,
                "cautious at {after}"
            );
        }
        // A new stream forgets it, and bounds the delay by what its codec needs.
        assert_eq!(d.stream_started(30_000, 60), Some(60));
    }

    #[test]
    fn an_expected_path_raises_the_delay_without_caution() {
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.expect_path(30, 0), None, "covered already");
        assert_eq!(d.expect_path(200, 0), Some(230));
        assert_eq!(d.expect_path(5_000, 0), Some(MAX_LATENCY_MS));
        // Frames then arrive 300 ms early: the spare back after a short calm.
        let lowered = (0..CALM_REPORTS)
            .filter_map(|_| d.report(300, 0, false, 0))
            .next();
        assert_eq!(lowered, Some(MAX_LATENCY_MS - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(lower_fully(&mut d, 300, 0), MAX_LATENCY_MS - 270);
    }

    #[test]
    fn frames_late_just_after_a_rise_count_from_the_delay_before_it() {
        let mut d = PlayoutDelay::new(100);
        // What is queued ahead of the next frames takes 400 ms: the delay rises at once.
        assert_eq!(d.expect_path(400, 10_000), Some(430));
        // Frames already on their way, shown on the client's clock of before: 300 ms
        // late against 100, so a path of 400, which the rise covers already.
        assert_eq!(d.report(-300, 3, true, 10_400), None);
        assert_eq!(d.report(-350, 2, true, 10_700), Some(465), "100 + 350 + 15");
        // Later reports are on the new clock: late ones add to it.
        assert_eq!(d.report(-20, 1, true, 12_000), Some(500));
    }

    #[test]
    fn frames_late_for_a_queue_leave_it_quick_to_come_down() {
        let mut d = PlayoutDelay::new(200);
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(130, 0, false, i as u32 * 300))
            .next();
        assert_eq!(lowered, Some(200 - MAX_LOWERING_STEP_MS as u32));
        assert_eq!(d.report(130, 0, false, 2_000), Some(100));
        // A probe past the link's rate queued frames: late, within the lowering's trial.
        assert_eq!(d.report(-20, 1, true, 3_000), Some(135));
        let lowered = (0..CALM_REPORTS)
            .filter_map(|i| d.report(100, 0, false, 3_300 + i as u32 * 300))
            .next();
        assert_eq!(
            lowered,
            Some(135 - 70),
            "the queue said nothing of the jitter"
        );
    }

    #[test]
    fn a_delay_far_above_the_need_comes_down_after_three_reports() {
        // A link narrowed: the delay rose to cover 400 ms of queue, which then drained.
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.expect_path(400, 0), Some(430));
        let first = (0..CALM_REPORTS as u32)
            .find_map(|i| d.report(350, 0, false, 2_000 + i * 300).map(|l| (i, l)));
        assert_eq!(
            first,
            Some((2, 430 - MAX_LOWERING_STEP_MS as u32)),
            "third report, 0.6 s in"
        );
        assert_eq!(
            lower_fully(&mut d, 350, 3_000),
            430 - 320,
            "a step per report"
        );
        // 60 ms spare is within the jitter a thin link shows: the full calm stretch.
        let mut d = PlayoutDelay::new(200);
        let first =
            (0..CALM_REPORTS as u32).find_map(|i| d.report(90, 0, false, i * 300).map(|l| (i, l)));
        assert_eq!(first, Some((5, 200 - 60)));
    }

    #[test]
    fn at_a_low_frame_rate_the_delay_comes_down_after_seconds_not_reports() {
        // Reports 2 s apart (a few frames a second on a thin link).
        let mut d = PlayoutDelay::new(80);
        assert_eq!(d.report(-305, 3, false, 1_000), Some(400));
        assert_eq!(d.report(230, 0, false, 3_000), None);
        assert_eq!(d.report(230, 0, false, 5_000), None);
        assert_eq!(
            d.report(230, 0, false, 7_000),
            Some(400 - MAX_LOWERING_STEP_MS as u32),
            "4 s and 3 calm reports"
        );
        assert_eq!(d.report(230, 0, false, 7_300), Some(240));
        assert_eq!(d.report(230, 0, false, 7_600), Some(400 - 200));
        // Late within the lowering's trial: cautious, 6 s of calm needed.
        assert_eq!(d.report(-5, 1, false, 8_000), Some(220));
        assert_eq!(d.report(230, 0, false, 10_000), None);
        assert_eq!(d.report(230, 0, false, 12_000), None);
        assert_eq!(d.report(230, 0, false, 14_000), None, "4 s of calm");
        assert_eq!(
            d.report(230, 0, false, 16_000),
            Some(220 - 200 / 3),
            "6 s and 4 calm reports"
        );
    }

    #[test]
    fn late_frames_hold_the_audio_back_only_while_it_plays() {
        let silent = MediaClock::default();
        silent.stream_report(-30, 1, false);
        assert_eq!(
            silent.audio_hold(),
            0,
            "no audio: the clock message moves instead"
        );
        // (A clock of its own: a report within a second of that rise would count from
        // the delay before it, and how long this test takes is the machine's.)
        let c = MediaClock::default();
        c.set_audio_playing(true);
        c.stream_report(-30, 1, false);
        assert_eq!(c.audio_hold(), 45, "30 ms late + 15 margin");
        for _ in 0..4 * CALM_REPORTS {
            c.stream_report(300, 0, false);
        }
        assert_eq!(c.audio_hold(), 45, "never lowered while audio plays");
        for _ in 0..20 {
            c.stream_report(-1000, 5, false);
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
        c.stream_report(-50, 2, false);
        assert!(c.generation() > gen);
        assert_eq!(c.latency(), START_LATENCY_MS + 65);
    }
}
