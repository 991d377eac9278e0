//! Video: stream detection, the encode pipeline and the encoders.

pub mod clock;
pub mod codecs;
pub mod detect;
pub mod encoder;
pub mod gst;
pub mod mjpeg;
pub mod picture;
pub mod pipeline;
pub mod rate;
pub mod select;

use codecs::CodecList;
use parking_lot::Mutex;

/// `streaming-video=`: which screen updates may become video streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamMode {
    Off,
    All,
    /// Only picture-like content (not text or UI).
    #[default]
    Filter,
}

/// What every screen's video path shares: the server's settings and the clock clients
/// play frames by.
#[derive(Default)]
pub struct VideoConfig {
    pub clock: clock::MediaClock,
    settings: Mutex<(StreamMode, CodecList)>,
}

impl VideoConfig {
    pub fn set(&self, mode: StreamMode, codecs: CodecList) {
        *self.settings.lock() = (mode, codecs);
    }

    pub fn mode(&self) -> StreamMode {
        self.settings.lock().0
    }

    pub fn codecs(&self) -> CodecList {
        self.settings.lock().1.clone()
    }
}
