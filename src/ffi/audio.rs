//! The frame QEMU fills between `spice_server_playback_get_buffer` and
//! `spice_server_playback_put_samples`.
//!
//! QEMU writes into it over several audio-timer ticks, so it must stay put and must not
//! be read meanwhile: it is memory of its own, allocated once per playback instance,
//! written only by QEMU and read only inside `put_samples` (QEMU's thread, its lock
//! held), where its samples are copied into the stream's queue.

use crate::audio::playback::PlaybackStream;
use crate::audio::FRAME_SAMPLES;
use std::ptr::NonNull;
use std::sync::Arc;

pub(crate) struct Playback {
    pub stream: Arc<PlaybackStream>,
    frame: NonNull<u32>,
}

// SAFETY: `frame` is touched only on QEMU's thread under its lock (module comment); the
// stream is Send + Sync itself.
unsafe impl Send for Playback {}
// SAFETY: as above.
unsafe impl Sync for Playback {}

impl Playback {
    pub(crate) fn new(stream: Arc<PlaybackStream>) -> Playback {
        let frame: Box<[u32]> = vec![0u32; FRAME_SAMPLES].into_boxed_slice();
        // SAFETY: Box::into_raw never returns NULL.
        let frame = unsafe { NonNull::new_unchecked(Box::into_raw(frame).cast::<u32>()) };
        Playback { stream, frame }
    }

    /// The frame for QEMU to fill, or None when nobody would hear it.
    pub(crate) fn buffer(&self) -> Option<(*mut u32, u32)> {
        self.stream
            .wants_frames()
            .then_some((self.frame.as_ptr(), FRAME_SAMPLES as u32))
    }

    /// QEMU filled the frame at `samples`: queue a copy. Other pointers are ignored.
    pub(crate) fn put(&self, samples: *mut u32) {
        if samples != self.frame.as_ptr() {
            crate::log_warn!("spice_server_playback_put_samples: not the buffer we gave out");
            return;
        }
        // SAFETY: our allocation of FRAME_SAMPLES u32; QEMU handed it back and does not
        // write it until the next get_buffer (module comment).
        let frame = unsafe { std::slice::from_raw_parts(self.frame.as_ptr(), FRAME_SAMPLES) };
        self.stream.put(frame);
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw of a FRAME_SAMPLES slice in `new`.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.frame.as_ptr(),
                FRAME_SAMPLES,
            )));
        }
    }
}
