//! Video: stream detection, the encode pipeline and the encoders.

pub(crate) mod clock;
pub(crate) mod codecs;
pub(crate) mod detect;
pub(crate) mod encoder;
pub(crate) mod fallback;
pub(crate) mod gst;
pub(crate) mod mjpeg;
pub(crate) mod picture;
mod pipeline;
pub(crate) mod queue;
pub(crate) mod rate;
pub(crate) mod select;
pub(crate) mod stream;

use codecs::CodecList;
use parking_lot::Mutex;

/// `streaming-video=`: which screen updates may become video streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StreamMode {
    Off,
    All,
    /// Only picture-like content (not text or UI).
    #[default]
    Filter,
}

impl StreamMode {
    /// `SPICE_STREAM_VIDEO_OFF` (1), `_ALL` (2), `_FILTER` (3).
    pub(crate) fn from_c(value: i32) -> Option<StreamMode> {
        match value {
            1 => Some(StreamMode::Off),
            2 => Some(StreamMode::All),
            3 => Some(StreamMode::Filter),
            _ => None,
        }
    }
}

/// What every screen's video path shares: the server's settings and the clock clients
/// play frames by.
#[derive(Default)]
pub(crate) struct VideoConfig {
    pub clock: clock::MediaClock,
    settings: Mutex<(StreamMode, CodecList)>,
}

impl VideoConfig {
    /// New settings; returns whether they changed.
    pub(crate) fn set(&self, mode: StreamMode, codecs: CodecList) -> bool {
        let mut settings = self.settings.lock();
        let changed = *settings != (mode, codecs.clone());
        *settings = (mode, codecs);
        changed
    }

    /// When streams may use GStreamer, probes its encoders in the background, so the
    /// first stream does not wait for them (and GStreamer never starts when streaming
    /// is off).
    pub(crate) fn probe_encoders(&self) {
        let (mode, codecs) = self.settings.lock().clone();
        if mode != StreamMode::Off {
            gst::probe_in_background(&codecs);
        }
    }

    pub(crate) fn mode(&self) -> StreamMode {
        self.settings.lock().0
    }

    pub(crate) fn codecs(&self) -> CodecList {
        self.settings.lock().1.clone()
    }
}
