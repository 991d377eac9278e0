//! One video stream: its encoder thread, its rate control and its statistics, behind
//! two handles.
//!
//! [`Stream`] is the worker's: it exists once per stream, pushes captured frames and,
//! when dropped, joins the encoder thread (so no frame of the stream reaches a viewer
//! after its end). [`StreamHandle`] is what viewers hold (cloned per viewer): the
//! display channel reports through it what it sent, what it dropped and what the
//! client said. A viewer's handle never keeps the encoder thread alive, which matters
//! because the thread's delivery callback holds the screen that holds the viewers.
//!
//! The rate-control arithmetic ([`super::rate`]) stays pure; this module is where its
//! clock (milliseconds since the stream started) and its lock live.

use super::clock::{MediaClock, StreamStats, START_LATENCY_MS};
use super::encoder::{Frame, Target, VideoEncoder};
use super::pipeline::Pipeline;
use super::rate::{RateControl, RateStats};
use crate::proto::display::StreamReport;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Most encode time (ms) a stream report's lateness is excused for.
const MAX_ENCODE_ALLOWANCE_MS: u64 = 50;

/// A compressed frame on its way to clients.
#[derive(Debug)]
pub(crate) struct EncodedFrame {
    pub stream: u32,
    /// Capture time on the multimedia clock.
    pub mm_time: u32,
    pub data: Vec<u8>,
}

/// What an encoder thread reports: a frame, or that the stream cannot go on.
pub(crate) enum Output {
    Frame(EncodedFrame),
    Failed(String),
}

/// Rate control and statistics of one stream, shared by the worker, the encoder thread
/// and the display channels.
struct State {
    rate: Mutex<RateControl>,
    stats: Mutex<StreamStats>,
    /// The next frame must be a key frame (a client joined).
    key_frame_wanted: AtomicBool,
    started: Instant,
}

/// A viewer's (and the encoder thread's) view of a stream: reports go in, statistics
/// come out.
#[derive(Clone)]
pub(crate) struct StreamHandle(Arc<State>);

impl StreamHandle {
    pub(super) fn new(rate: RateControl) -> StreamHandle {
        StreamHandle(Arc::new(State {
            rate: Mutex::new(rate),
            stats: Mutex::default(),
            key_frame_wanted: AtomicBool::new(false),
            started: Instant::now(),
        }))
    }

    /// Milliseconds since the stream started (the rate control's time base).
    pub(crate) fn age_ms(&self) -> u64 {
        self.0.started.elapsed().as_millis() as u64
    }

    /// `viewer`'s display channel handed a frame of `bytes` to the socket;
    /// `delivered_bps`: what its socket took while output waited for it lately (its
    /// link's rate now), and `queued_ms`: how long what waits ahead of the frame takes at
    /// that rate, if known.
    pub(crate) fn on_sent(
        &self,
        viewer: u64,
        bytes: usize,
        delivered_bps: Option<u64>,
        queued_ms: Option<u64>,
    ) {
        let now = self.age_ms();
        let mut rate = self.0.rate.lock();
        rate.link_delivered(now, viewer, delivered_bps);
        rate.frame_sent(now, bytes);
        if let Some(ms) = queued_ms {
            rate.queued_ahead(now, ms);
        }
    }

    /// An encoded frame was dropped before a viewer could send it (its link is behind).
    pub(crate) fn on_dropped(&self) {
        let now = self.age_ms();
        self.0.rate.lock().frame_dropped(now);
        self.0.stats.lock().frames_dropped += 1;
    }

    /// A client's `STREAM_REPORT` (not the "cannot decode" one): feeds the rate control
    /// and the playout delay of `clock`.
    pub(crate) fn on_client_report(&self, report: &StreamReport, clock: &MediaClock) {
        let now = self.age_ms();
        // The playout delay grows to absorb late frames; the rate control must still
        // see a frame that needed more than the starting delay as late, or a queue
        // building up on a slow link would hide behind an ever longer delay.
        let grown = clock.latency() as i32 - START_LATENCY_MS as i32;
        // Time spent encoding makes every frame that much later without any queue on the
        // link (VP8 or 1080p H.264 take 15-25 ms here): the rate control does not count
        // it, or a busy host would read as a slow link and starve the stream.
        let encode_ms = {
            let stats = self.0.stats.lock();
            (stats.encode_us / stats.frames_encoded.max(1) / 1000).min(MAX_ENCODE_ALLOWANCE_MS)
        };
        // The client's clock runs the playout delay behind ours: a frame that arrived
        // `last_frame_delay` ms before its display time took the rest of that delay
        // from capture to the client.
        let path_delay = i64::from(clock.latency()) - i64::from(report.last_frame_delay);
        let mut rate = self.0.rate.lock();
        rate.client_report(
            now,
            report.num_frames,
            report.num_drops,
            // Saturating: the delay is the client's number, anything an i32 holds.
            report
                .last_frame_delay
                .saturating_sub(grown.max(0))
                .saturating_add(encode_ms as i32),
            Some(path_delay),
        );
        let rate_made_late = rate.lateness_is_ours();
        drop(rate);
        clock.stream_report(report.last_frame_delay, report.num_drops, rate_made_late);
        let (rate, target) = {
            let r = self.0.rate.lock();
            (r.stats(), r.target())
        };
        crate::log_debug!(
            "video: {} ms: report {} frames {} drops, {} ms early, path {path_delay} ms (queue {} ms); \
             budget {} bps, q{} {} fps; held for the link {}",
            now,
            report.num_frames,
            report.num_drops,
            report.last_frame_delay,
            rate.queue_ms,
            rate.budget_bps,
            target.quality,
            target.fps,
            rate.frames_held_for_link
        );
    }

    /// Whether every viewer of the stream scales frames to its size (see
    /// [`RateControl::allow_smaller_pictures`]).
    pub(crate) fn allow_smaller_pictures(&self, allowed: bool) {
        let now = self.age_ms();
        self.0.rate.lock().allow_smaller_pictures(now, allowed);
    }

    /// A viewer's link was measured at `bps` (see [`RateControl::link_measured`]).
    pub(crate) fn link_measured(&self, bps: u64) {
        let now = self.age_ms();
        self.0.rate.lock().link_measured(now, bps);
    }

    /// The next frame encoded must be a key frame (a client joined the stream).
    pub(crate) fn want_key_frame(&self) {
        self.0.key_frame_wanted.store(true, Ordering::Release);
    }

    pub(crate) fn stats(&self) -> StreamStats {
        *self.0.stats.lock()
    }

    pub(crate) fn rate_stats(&self) -> RateStats {
        self.0.rate.lock().stats()
    }

    /// What the rate control asks of the next frame.
    pub(super) fn target(&self) -> Target {
        self.0.rate.lock().target()
    }

    /// A handle of a stream without an encoder (tests of what viewers see).
    #[cfg(test)]
    pub(crate) fn detached() -> StreamHandle {
        StreamHandle::new(RateControl::new(10_000_000, 30))
    }

    /// Whether frames may be encoded smaller than the stream (tests).
    #[cfg(test)]
    pub(crate) fn smaller_pictures_allowed(&self) -> bool {
        self.0.rate.lock().smaller_pictures_allowed()
    }

    /// Whether a key frame is asked for (tests).
    #[cfg(test)]
    pub(crate) fn key_frame_wanted(&self) -> bool {
        self.0.key_frame_wanted.load(Ordering::Acquire)
    }

    // The encoder thread's and the pipeline's side.

    pub(super) fn take_key_frame_request(&self) -> bool {
        self.0.key_frame_wanted.swap(false, Ordering::AcqRel)
    }

    pub(super) fn on_encoded(&self, bytes: usize, target: Target, encode_us: u64) {
        let now = self.age_ms();
        self.0
            .rate
            .lock()
            .frame_encoded(now, bytes, target.quality, target.scale);
        let mut s = self.0.stats.lock();
        s.frames_encoded += 1;
        s.bytes += bytes as u64;
        s.encode_us += encode_us;
    }

    pub(super) fn on_queued(&self) {
        self.0.stats.lock().frames_in += 1;
    }

    /// A captured frame was replaced before the encoder took it.
    pub(super) fn on_replaced(&self) {
        self.0.stats.lock().frames_dropped += 1;
    }
}

/// The worker's handle of one stream: it owns the encoder thread.
pub(crate) struct Stream {
    id: u32,
    pipeline: Pipeline,
    handle: StreamHandle,
}

impl Stream {
    /// Starts stream `id`'s encoder thread; `deliver` gets what it produces.
    pub(crate) fn start(
        id: u32,
        encoder: Box<dyn VideoEncoder>,
        rate: RateControl,
        deliver: impl Fn(Output) + Send + 'static,
    ) -> std::io::Result<Stream> {
        let handle = StreamHandle::new(rate);
        let pipeline = Pipeline::start(id, encoder, handle.clone(), deliver)?;
        Ok(Stream {
            id,
            pipeline,
            handle,
        })
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// A handle for viewers.
    pub(crate) fn handle(&self) -> &StreamHandle {
        &self.handle
    }

    /// Whether a frame should be captured now. `new_content`: the source changed since
    /// the rate control last counted a frame (else it is a frame the frame-rate limit
    /// held back, asked for again).
    pub(crate) fn capture_due(&self, new_content: bool) -> bool {
        let now = self.handle.age_ms();
        let mut rate = self.handle.0.rate.lock();
        if new_content {
            rate.frame_captured(now)
        } else {
            rate.held_frame_due(now)
        }
    }

    /// An empty buffer to capture the next frame into (a used one when there is one).
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.pipeline.buffer()
    }

    /// Queues a captured frame for encoding, never waiting; returns false when it
    /// replaced one the encoder had not taken yet.
    pub(crate) fn push(&self, frame: Frame) -> bool {
        self.pipeline.push(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::codecs::Codec;
    use crate::video::encoder::EncodeError;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Encodes a frame as its first pixel byte; notes key frame requests.
    struct Fake {
        key_frames: Arc<AtomicBool>,
    }

    impl VideoEncoder for Fake {
        fn codec(&self) -> Codec {
            Codec::H264
        }
        fn encode(&mut self, frame: &Frame, _t: Target) -> Result<Option<Vec<u8>>, EncodeError> {
            Ok(Some(vec![frame.pixels[0]; 100]))
        }
        fn request_key_frame(&mut self) {
            self.key_frames.store(true, Ordering::SeqCst);
        }
    }

    fn frame(n: u8) -> Frame {
        Frame::packed(1, 1, vec![n, 0, 0, 0], u32::from(n))
    }

    fn start() -> (Stream, mpsc::Receiver<Output>, Arc<AtomicBool>) {
        let (tx, rx) = mpsc::channel();
        let key_frames = Arc::new(AtomicBool::new(false));
        let fake = Fake {
            key_frames: key_frames.clone(),
        };
        let stream = Stream::start(
            4,
            Box::new(fake),
            RateControl::new(10_000_000, 30),
            move |o| {
                let _ = tx.send(o);
            },
        )
        .unwrap();
        (stream, rx, key_frames)
    }

    fn next_frame(rx: &mpsc::Receiver<Output>) -> EncodedFrame {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Output::Frame(f)) => f,
            _ => panic!("no frame delivered"),
        }
    }

    #[test]
    fn pushed_frames_are_delivered_and_counted() {
        let (stream, rx, _) = start();
        assert!(stream.capture_due(true), "the first frame is due");
        assert!(stream.push(frame(9)));
        let f = next_frame(&rx);
        assert_eq!((f.stream, f.mm_time, f.data[0]), (4, 9, 9));
        let stats = stream.handle().stats();
        assert_eq!(
            (stats.frames_in, stats.frames_encoded, stats.bytes),
            (1, 1, 100)
        );
    }

    #[test]
    fn a_joining_viewer_gets_a_key_frame() {
        let (stream, rx, key_frames) = start();
        stream.push(frame(1));
        next_frame(&rx);
        assert!(!key_frames.load(Ordering::SeqCst));
        let viewer = stream.handle().clone();
        viewer.want_key_frame();
        stream.push(frame(2));
        next_frame(&rx);
        assert!(key_frames.load(Ordering::SeqCst), "asked of the encoder");
        assert!(!stream.handle().take_key_frame_request(), "once");
    }

    /// A stream that has sent five frames to a viewer, and that viewer's handle.
    fn sending() -> (Stream, StreamHandle) {
        let (stream, rx, _) = start();
        let viewer = stream.handle().clone();
        for n in 0..5 {
            stream.push(frame(n));
            let f = next_frame(&rx);
            viewer.on_sent(0, f.data.len(), None, None);
        }
        (stream, viewer)
    }

    #[test]
    fn a_dropped_frame_is_counted_and_cuts_the_rate() {
        let (_stream, viewer) = sending();
        // The client reports (before its first report a drop is the first screenful of
        // pixels ahead of the stream, not the stream's rate).
        let on_time = StreamReport {
            stream_id: 4,
            unique_id: 1,
            start_frame_mm_time: 0,
            end_frame_mm_time: 4,
            num_frames: 5,
            num_drops: 0,
            last_frame_delay: 40,
            audio_delay: 0,
        };
        viewer.on_client_report(&on_time, &MediaClock::default());
        let before = viewer.target();
        viewer.on_dropped();
        assert_eq!(viewer.stats().frames_dropped, 1);
        assert_eq!(viewer.rate_stats().frames_dropped, 1);
        assert_eq!(viewer.rate_stats().cuts, 1);
        assert!(viewer.target().bitrate_bps < before.bitrate_bps);
    }

    fn report(num_drops: u32, last_frame_delay: i32) -> StreamReport {
        StreamReport {
            stream_id: 4,
            unique_id: 1,
            start_frame_mm_time: 0,
            end_frame_mm_time: 4,
            num_frames: 5,
            num_drops,
            last_frame_delay,
            audio_delay: 0,
        }
    }

    #[test]
    fn a_late_client_report_over_a_queue_cuts_the_rate_and_grows_the_playout_delay() {
        let (_stream, viewer) = sending();
        let before = viewer.target();
        let clock = MediaClock::default();
        // On time: the path takes 40 ms (80 ms playout delay, 40 early).
        viewer.on_client_report(&report(0, 40), &clock);
        // Then 500 ms late: 540 ms of queue on the path.
        viewer.on_client_report(&report(3, -500), &clock);
        let rate = viewer.rate_stats();
        assert_eq!((rate.client_reports, rate.late_reports), (2, 1));
        assert!(viewer.target().bitrate_bps < before.bitrate_bps);
        assert!(clock.latency() > START_LATENCY_MS, "the playout delay grew");
    }

    #[test]
    fn late_frames_without_a_queue_grow_only_the_playout_delay() {
        // A stream's first frames, behind the picture sent on connecting: late, but no
        // slower than the path gets. The rate stays; the playout delay grows.
        let (_stream, viewer) = sending();
        let before = viewer.target();
        let clock = MediaClock::default();
        viewer.on_client_report(&report(2, -60), &clock);
        let rate = viewer.rate_stats();
        assert_eq!((rate.late_reports, rate.playout_late, rate.cuts), (1, 1, 0));
        assert_eq!(viewer.target().bitrate_bps, before.bitrate_bps);
        assert!(clock.latency() > START_LATENCY_MS, "the playout delay grew");
    }
}
