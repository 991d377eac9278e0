//! The worker's half of video: it feeds every change of the primary surface to the
//! stream detector, starts and ends streams, and captures frames into the encode
//! pipeline (one copy of the stream's area per frame, never waiting on the encoder).

use crate::display::streams::StreamInfo;
use crate::display::Screen;
use crate::geometry::Area;
use crate::video::codecs::Codec;
use crate::video::detect::{Decision, Detector};
use crate::video::encoder::VideoEncoder;
use crate::video::mjpeg::MjpegEncoder;
use crate::video::picture;
use crate::video::rate::{RateControl, START_LINK_SHARE};
use crate::video::select;
use crate::video::stream::{Output, Stream};
use crate::video::StreamMode;
use std::time::Duration;

/// How often the detector looks at the screen (ms).
const EVALUATE_EVERY_MS: u32 = 100;
/// How soon the worker looks again when the frame rate held a changed frame back.
const VIDEO_TICK: Duration = Duration::from_millis(10);
/// The bit rate a stream starts from before the client's link is measured, and the
/// most it starts from after (a loopback "link" measures terabits).
const START_BITRATE_BPS: u64 = 20_000_000;
/// Frame rate limit (the source rarely exceeds it; the client's display refresh does).
const MAX_FPS: u32 = 60;

struct Live {
    dest: Area,
    stream: Stream,
    /// Changed since the last captured frame, and since when.
    dirty: Option<u32>,
    /// Changed since the rate control last counted a frame from the source: a frame
    /// held back by the frame-rate limit and asked for again is not a new one.
    uncounted: bool,
}

/// Longest a changed stream area waits for the guest's update to finish (ms): QEMU's
/// framebuffer refresh arrives as many commands, and a frame captured halfway would
/// mix two pictures.
const MAX_UPDATE_WAIT_MS: u32 = 40;

#[derive(Default)]
pub(super) struct Video {
    detector: Option<Detector>,
    live: Option<Live>,
    next_evaluation: u32,
    next_id: u32,
}

impl Video {
    /// The primary surface was created (`Some(size)`) or destroyed: streams end.
    pub(super) fn surface_changed(&mut self, size: Option<(u32, u32)>, screen: &Screen) {
        self.stop(screen);
        self.detector = size.map(|(w, h)| Detector::new(w, h));
    }

    /// Something was drawn on the primary surface.
    pub(super) fn damage(&mut self, area: Area, screen: &Screen) {
        let now = screen.video().clock.now();
        if let Some(d) = &mut self.detector {
            d.damage(area, now);
        }
        if let Some(live) = &mut self.live {
            if !live.dest.intersect(&area).is_empty() {
                live.dirty.get_or_insert(now);
                live.uncounted = true;
            }
        }
    }

    /// Runs detection and capture; returns how soon to be called again. `update_done`:
    /// the guest's command ring is empty (whatever it was drawing is complete).
    pub(super) fn tick(&mut self, screen: &Screen, update_done: bool) -> Option<Duration> {
        let config = screen.video();
        let mode = config.mode();
        // Nobody to stream to: no encoder runs.
        if mode == StreamMode::Off || !screen.has_viewers() {
            self.stop(screen);
            return None;
        }
        let now = config.clock.now();
        if let Some(live) = &self.live {
            if !screen.stream_ids().contains(&live.stream.id()) {
                // The encoder gave up; its area already went back to pixels.
                self.live = None;
            }
        }
        if (now.wrapping_sub(self.next_evaluation) as i32) >= 0 {
            self.next_evaluation = now.wrapping_add(EVALUATE_EVERY_MS);
            self.evaluate(now, mode, screen);
        }
        // Woken early by new commands anyway: sleep until the next evaluation, or until
        // a changed stream area has waited long enough for its update to finish.
        let until_evaluation = self
            .next_evaluation
            .wrapping_sub(now)
            .clamp(1, EVALUATE_EVERY_MS);
        let Some(live) = self.live.as_mut() else {
            // A still screen: sleep until the next drawing wakes the worker.
            if self.detector.as_ref().is_none_or(|d| d.at_rest(now)) {
                return None;
            }
            return Some(Duration::from_millis(until_evaluation.into()));
        };
        let Some(since) = live.dirty else {
            return Some(Duration::from_millis(until_evaluation.into()));
        };
        let waited = now.wrapping_sub(since);
        if !update_done && waited < MAX_UPDATE_WAIT_MS {
            let wait = (MAX_UPDATE_WAIT_MS - waited).min(until_evaluation);
            return Some(Duration::from_millis(wait.into()));
        }
        if live.stream.capture_due(std::mem::take(&mut live.uncounted)) {
            if let Some(frame) = screen.capture_frame(live.dest, now, || live.stream.buffer()) {
                live.dirty = None;
                live.stream.push(frame);
                return Some(Duration::from_millis(until_evaluation.into()));
            }
        }
        // Held back by the frame rate: look again soon.
        Some(VIDEO_TICK)
    }

    fn evaluate(&mut self, now: u32, mode: StreamMode, screen: &Screen) {
        let Some(detector) = &mut self.detector else {
            return;
        };
        if self.live.is_none() {
            detector.forget_stream();
        }
        let accept = |area: Area, hot_share: f64| {
            let accepted = mode.streams(hot_share, || {
                screen.capture(area).is_some_and(|pixels| {
                    picture::is_picture_like(
                        &pixels,
                        area.width(),
                        area.height(),
                        area.width() as usize * 4,
                    )
                })
            });
            if accepted {
                crate::log_debug!("video: candidate {area:?} ({hot_share:.2} hot) streams");
            }
            accepted
        };
        match detector.evaluate(now, accept) {
            Some(Decision::Start(area)) => {
                self.stop(screen);
                self.start(area, screen);
            }
            // The new stream first: the old one's area that it covers is not sent as
            // pixels in between (it would run ahead of the stream's clock).
            Some(Decision::Move(area)) => {
                let old = self.live.take();
                self.start(area, screen);
                if let Some(old) = old {
                    Self::end(old, screen);
                }
            }
            Some(Decision::End) => self.stop(screen),
            None => {}
        }
    }

    /// The encoder for a new stream: the server's codec list as the client takes it
    /// (spice-server's rule), falling back to the built-in MJPEG encoder when the chosen
    /// one does not open.
    fn encoder(screen: &Screen) -> Option<(Codec, Box<dyn VideoEncoder>)> {
        let (caps, preference) = screen.client_codecs()?;
        let list = screen.video().codecs();
        let (encoder, codec) =
            select::choose(&list, &caps, preference.as_deref(), select::is_available)?;
        match select::open(encoder, codec) {
            Ok(e) => Some((codec, e)),
            Err(e) if codec != Codec::Mjpeg => {
                crate::log_warn!("video: {encoder:?}:{codec:?} does not open ({e}); using MJPEG");
                let mjpeg = MjpegEncoder::new().ok()?;
                Some((Codec::Mjpeg, Box::new(mjpeg)))
            }
            Err(e) => {
                crate::log_warn!("video: no MJPEG encoder: {e}");
                None
            }
        }
    }

    fn start(&mut self, dest: Area, screen: &Screen) {
        // Even sizes: 4:2:0 encoders (H.264, H.265) refuse odd ones. One more row or
        // column of the screen rather than one less (which would go as pixels, ahead of
        // the stream), unless at the screen's edge.
        let (width, height) = self.detector.as_ref().map_or((0, 0), Detector::size);
        let even = |start: u32, end: u32, limit: u32| match (end - start) % 2 {
            0 => end,
            _ if end < limit => end + 1,
            _ => end - 1,
        };
        let dest = Area::new(
            dest.left,
            dest.top,
            even(dest.left, dest.right, width),
            even(dest.top, dest.bottom, height),
        );
        let Some((codec, encoder)) = Self::encoder(screen) else {
            return;
        };
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % 50;
        let sink = screen.clone();
        let deliver = move |out: Output| match out {
            Output::Frame(frame) => sink.deliver_frame(&frame),
            Output::Failed(why) => {
                crate::log_warn!("video: stream {id} stopped: {why}");
                sink.end_stream(id);
            }
        };
        let rate = RateControl::new(start_bitrate(screen.slowest_link()), MAX_FPS)
            .for_area(u64::from(dest.width()) * u64::from(dest.height()));
        let rate = match codec {
            Codec::Mjpeg => rate,
            _ => rate.for_bitrate_codec(),
        };
        let stream = match Stream::start(id, encoder, rate, deliver) {
            Ok(s) => s,
            Err(e) => {
                crate::log_warn!("video: cannot start an encoder thread: {e}");
                return;
            }
        };
        crate::log_debug!(
            "video: stream {id} ({codec:?}) starts at {}x{}+{}+{}",
            dest.width(),
            dest.height(),
            dest.left,
            dest.top
        );
        // spice-gtk drops MJPEG frames that come after their time and shows the
        // other codecs' at once.
        screen.video().clock.stream_started(codec == Codec::Mjpeg);
        screen.start_stream(StreamInfo {
            id,
            dest,
            codec,
            stream: stream.handle().clone(),
        });
        self.live = Some(Live {
            dest,
            stream,
            dirty: Some(screen.video().clock.now()),
            uncounted: true,
        });
    }

    /// Ends the live stream: the encoder thread is joined first, so no frame of it
    /// reaches a viewer after its end.
    pub(super) fn stop(&mut self, screen: &Screen) {
        if let Some(live) = self.live.take() {
            Self::end(live, screen);
        }
    }

    fn end(live: Live, screen: &Screen) {
        let id = live.stream.id();
        let handle = live.stream.handle().clone();
        drop(live.stream);
        screen.end_stream(id);
        let stats = handle.stats();
        let rate = handle.rate_stats();
        // Frames are shown `latency` ms after capture (end to end) when they arrive in time.
        crate::log_debug!(
            "video: stream {} ended after {} ms: {} frames in, {} encoded, {} dropped, {} bytes, {} us encoding per frame, end-to-end latency {} ms; rate control {:?}",
            id,
            handle.age_ms(),
            stats.frames_in,
            stats.frames_encoded,
            stats.frames_dropped,
            stats.bytes,
            stats.encode_us / stats.frames_encoded.max(1),
            screen.video().clock.latency(),
            rate
        );
    }
}

/// What a new stream's bit rate starts from: a share of the slowest viewer's measured
/// link, so a slow link is not flooded with a LAN stream's first seconds while the
/// rate control finds its rate.
fn start_bitrate(slowest_link: Option<u64>) -> u64 {
    slowest_link.map_or(START_BITRATE_BPS, |bps| {
        ((bps as f64 * START_LINK_SHARE) as u64).min(START_BITRATE_BPS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_starts_from_a_share_of_the_slowest_measured_link() {
        assert_eq!(start_bitrate(None), START_BITRATE_BPS, "not measured yet");
        assert_eq!(start_bitrate(Some(1_000_000)), 700_000);
        assert_eq!(
            start_bitrate(Some(2_000_000_000_000)),
            START_BITRATE_BPS,
            "loopback"
        );
    }
}
