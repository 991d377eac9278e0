//! One stream's encode pipeline: the worker hands captured frames to a bounded
//! crossbeam channel, an encoder thread compresses them, and a delivery callback hands
//! the result to the display channels.
//!
//! The worker never waits: the channel holds one frame, and a newer frame replaces one
//! the encoder has not taken yet (newest wins). Dropping the pipeline closes the
//! channel and joins the encoder thread.
//!
//! Frame buffers go back to the worker once encoded (or dropped), so capturing a frame
//! writes into memory already mapped and warm instead of a fresh multi-megabyte
//! allocation each time.

use super::encoder::{Frame, VideoEncoder};
use super::stream::{EncodedFrame, Output, StreamHandle};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Frame buffers kept for reuse: the one being encoded, one waiting, one spare.
const SPARE_BUFFERS: usize = 3;

pub(super) struct Pipeline {
    frames: Option<Sender<Frame>>,
    /// The other end, to take back a frame the encoder has not started.
    stale: Receiver<Frame>,
    /// Buffers of frames that were encoded or dropped, for the next captures.
    spare: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    thread: Option<JoinHandle<()>>,
    stream: StreamHandle,
}

impl Pipeline {
    pub(super) fn start(
        stream: u32,
        mut encoder: Box<dyn VideoEncoder>,
        handle: StreamHandle,
        deliver: impl Fn(Output) + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        let (tx, rx) = bounded::<Frame>(1);
        let stale = rx.clone();
        let spare = bounded::<Vec<u8>>(SPARE_BUFFERS);
        let give_back = spare.0.clone();
        let state = handle.clone();
        let thread = std::thread::Builder::new()
            .name(format!("spice-encode-{stream}"))
            .spawn(move || {
                while let Ok(frame) = rx.recv() {
                    let target = state.target();
                    let frame_time = frame.mm_time;
                    let started = Instant::now();
                    // An encoder (GStreamer, libjpeg) that panics ends this stream, not
                    // the thread silently: the worker hears `Failed` and sends pixels.
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        if state.take_key_frame_request() {
                            encoder.request_key_frame();
                        }
                        encoder.encode(&frame, target)
                    }));
                    let spent = started.elapsed().as_micros() as u64;
                    let result = match result {
                        Ok(result) => result,
                        Err(panic) => {
                            let why = panic_message(panic.as_ref());
                            crate::log_error!("video: stream {stream}'s encoder panicked: {why}");
                            deliver(Output::Failed(format!("encoder panicked: {why}")));
                            // Its state is unknown: dropping it may panic too.
                            let _ = catch_unwind(AssertUnwindSafe(move || drop(encoder)));
                            return;
                        }
                    };
                    recycle(&give_back, frame);
                    match result {
                        Ok(Some(data)) => {
                            state.on_encoded(data.len(), target, spent);
                            deliver(Output::Frame(EncodedFrame {
                                stream,
                                mm_time: frame_time,
                                data,
                            }));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            deliver(Output::Failed(e.to_string()));
                            return;
                        }
                    }
                }
            })?;
        Ok(Pipeline {
            frames: Some(tx),
            stale,
            spare,
            thread: Some(thread),
            stream: handle,
        })
    }

    /// An empty buffer to capture the next frame into (a used one when there is one).
    pub(super) fn buffer(&self) -> Vec<u8> {
        let mut buffer = self.spare.1.try_recv().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// Queues a frame for encoding; returns false when it replaced one not yet taken.
    pub(super) fn push(&self, frame: Frame) -> bool {
        let Some(tx) = &self.frames else {
            return false;
        };
        // An encoder that failed or panicked takes no more frames (the worker is about
        // to hear `Failed` and end the stream).
        if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
            return false;
        }
        self.stream.on_queued();
        let mut frame = frame;
        let mut fresh = true;
        loop {
            match tx.try_send(frame) {
                Ok(()) => return fresh,
                Err(TrySendError::Full(back)) => {
                    if let Ok(dropped) = self.stale.try_recv() {
                        recycle(&self.spare.0, dropped);
                        fresh = false;
                        self.stream.on_replaced();
                    }
                    frame = back;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Keeps a finished frame's buffer for the next capture when it was a copy (a shared
/// screen just goes back to the worker), if there is room.
fn recycle(spare: &Sender<Vec<u8>>, frame: Frame) {
    if let Ok(buffer) = Arc::try_unwrap(frame.pixels) {
        let _ = spare.try_send(buffer);
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.frames = None;
        while self.stale.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::log_error!("video: an encoder thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::codecs::Codec;
    use crate::video::encoder::{EncodeError, Target};
    use crate::video::rate::RateControl;
    use std::sync::mpsc;

    /// Encodes a frame as its first pixel byte, slowly when asked to.
    struct Fake {
        delay: std::time::Duration,
        fail_on: Option<u8>,
        panic_on: Option<u8>,
    }

    impl VideoEncoder for Fake {
        fn codec(&self) -> Codec {
            Codec::Mjpeg
        }
        fn encode(&mut self, frame: &Frame, _t: Target) -> Result<Option<Vec<u8>>, EncodeError> {
            std::thread::sleep(self.delay);
            if Some(frame.pixels[0]) == self.fail_on {
                return Err(EncodeError::Failed("broken".into()));
            }
            if Some(frame.pixels[0]) == self.panic_on {
                panic!("encoder bug");
            }
            Ok(Some(vec![frame.pixels[0]]))
        }
    }

    fn frame(n: u8) -> Frame {
        Frame::packed(1, 1, vec![n, 0, 0, 0], u32::from(n))
    }

    fn start(fake: Fake) -> (Pipeline, mpsc::Receiver<Output>) {
        let (tx, rx) = mpsc::channel();
        let handle = StreamHandle::new(RateControl::new(10_000_000, 30));
        let p = Pipeline::start(7, Box::new(fake), handle, move |o| {
            let _ = tx.send(o);
        })
        .unwrap();
        (p, rx)
    }

    #[test]
    fn a_slow_encoder_gets_the_newest_frame_and_the_worker_never_waits() {
        let (p, rx) = start(Fake {
            delay: std::time::Duration::from_millis(50),
            fail_on: None,
            panic_on: None,
        });
        let t = Instant::now();
        for n in 0..100 {
            p.push(frame(n));
        }
        assert!(t.elapsed().as_millis() < 40, "pushing never blocks");
        let mut got = vec![];
        while let Ok(Output::Frame(f)) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
            got.push(f.data[0]);
            assert_eq!(f.stream, 7);
        }
        assert_eq!(got.last(), Some(&99), "the newest frame is encoded");
        assert!(got.len() <= 3, "stale frames were dropped: {got:?}");
        let stats = p.stream.stats();
        assert_eq!(stats.frames_in, 100);
        assert!(stats.frames_dropped >= 97);
    }

    #[test]
    fn frame_buffers_come_back_for_reuse() {
        let (p, rx) = start(Fake {
            delay: std::time::Duration::ZERO,
            fail_on: None,
            panic_on: None,
        });
        assert_eq!(p.buffer().capacity(), 0, "nothing to reuse yet");
        let mut pixels = vec![1, 0, 0, 0];
        pixels.reserve(4096);
        let capacity = pixels.capacity();
        let f = Frame::packed(1, 1, pixels, 1);
        p.push(f);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(2)).is_ok());
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        let mut reused = p.buffer();
        while reused.capacity() == 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            reused = p.buffer();
        }
        assert_eq!(reused.capacity(), capacity, "the encoded frame's buffer");
        assert!(reused.is_empty());
    }

    #[test]
    fn a_failing_encoder_reports_and_stops() {
        let (p, rx) = start(Fake {
            delay: std::time::Duration::ZERO,
            fail_on: Some(3),
            panic_on: None,
        });
        p.push(frame(3));
        assert!(matches!(
            rx.recv_timeout(std::time::Duration::from_secs(2)),
            Ok(Output::Failed(_))
        ));
        drop(p); // joins the finished thread
    }

    #[test]
    fn a_panicking_encoder_reports_failure_and_its_thread_ends_cleanly() {
        let (mut p, rx) = start(Fake {
            delay: std::time::Duration::ZERO,
            fail_on: None,
            panic_on: Some(2),
        });
        p.push(frame(1));
        assert!(matches!(
            rx.recv_timeout(std::time::Duration::from_secs(2)),
            Ok(Output::Frame(_))
        ));
        p.push(frame(2));
        match rx.recv_timeout(std::time::Duration::from_secs(2)) {
            Ok(Output::Failed(why)) => assert!(why.contains("encoder bug"), "{why}"),
            other => panic!("expected Failed, got {:?}", other.map(|_| ())),
        }
        // The thread ends on its own; a frame the worker pushes before it hears is
        // refused at once.
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        while !p.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the encoder thread ends");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!p.push(frame(4)), "a dead pipeline takes no frames");
        let thread = p.thread.take().unwrap();
        assert!(thread.join().is_ok(), "the panic stayed inside the thread");
    }
}
