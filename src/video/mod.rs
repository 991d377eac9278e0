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
mod shrink;
pub(crate) mod stream;

use codecs::{Codec, CodecList, Encoder};
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

    /// Whether a candidate area the detector found moving at video rates streams, given
    /// the part of its box hot now; `picture_like` looks at its content (taken only when
    /// asked: it copies the area). `filter` streams pictures only. `all` streams pictures,
    /// and flat content (an animation, a UI) only where most of the area changes: where a
    /// few flat shapes move, their changes as lossless pixels cost a fraction of a stream
    /// of the whole area (a third on the test animation) and are exact.
    pub(crate) fn streams(self, hot_share: f64, picture_like: impl FnOnce() -> bool) -> bool {
        match self {
            StreamMode::Off => false,
            StreamMode::All => hot_share >= ALL_FLAT_MIN_HOT_SHARE || picture_like(),
            StreamMode::Filter => picture_like(),
        }
    }
}

/// With `streaming-video=all`, the part of a candidate's box that must be hot now for
/// content that is not picture-like to stream (a terminal rewritten everywhere at 25
/// frames a second is all hot; shapes moving over a flat background, 0.35-0.5).
const ALL_FLAT_MIN_HOT_SHARE: f64 = 0.6;

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

    /// When streams may use GStreamer, probes in the background the entries a stream
    /// could open before any client said what it prefers: those ahead of the built-in
    /// MJPEG encoder, which needs no probe. With the default list that is none, so an
    /// idle server never loads GStreamer and its plugins (megabytes per VM).
    pub(crate) fn probe_encoders(&self) {
        let (mode, codecs) = self.settings.lock().clone();
        if mode != StreamMode::Off {
            gst::probe_in_background(unprobed_first_choices(codecs.choices()));
        }
    }

    /// A client's codec preference (`PREFERRED_VIDEO_CODEC_TYPE`): probes the GStreamer
    /// entries for the codecs it names, so its first stream does not wait for them.
    pub(crate) fn probe_preferred(&self, preference: &[u8]) {
        let (mode, codecs) = self.settings.lock().clone();
        if mode != StreamMode::Off {
            gst::probe_in_background(preferred_entries(&codecs, preference));
        }
    }

    pub(crate) fn mode(&self) -> StreamMode {
        self.settings.lock().0
    }

    pub(crate) fn codecs(&self) -> CodecList {
        self.settings.lock().1.clone()
    }
}

/// The entries of `list` ahead of the first one that needs no probe (the built-in MJPEG
/// encoder): those a stream is chosen from when the client has no preference.
fn unprobed_first_choices(list: &[codecs::CodecChoice]) -> Vec<(Encoder, Codec)> {
    list.iter()
        .take_while(|c| c.encoder != Encoder::Spice)
        .map(|c| (c.encoder, c.codec))
        .collect()
}

/// The entries a stream for a client with this preference may be chosen from: `list`
/// in the client's order (as `select::choose` sorts it), up to the built-in MJPEG encoder.
fn preferred_entries(list: &CodecList, preference: &[u8]) -> Vec<(Encoder, Codec)> {
    let mut ordered = list.choices().to_vec();
    ordered.sort_by_key(|c| {
        let wanted = select::codec_type(c.codec);
        preference
            .iter()
            .position(|&t| t == wanted)
            .unwrap_or(usize::MAX)
    });
    unprobed_first_choices(&ordered)
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn the_default_list_probes_nothing_until_a_client_prefers_a_gstreamer_codec() {
        let default = CodecList::default();
        assert!(unprobed_first_choices(default.choices()).is_empty());
        assert_eq!(
            preferred_entries(&default, &[3, 1]),
            vec![(Encoder::Gstreamer, Codec::H264)]
        );
        assert!(
            preferred_entries(&default, &[1]).is_empty(),
            "MJPEG: built in"
        );
        let h264_first = CodecList::parse("gstreamer:h264;spice:mjpeg;gstreamer:vp8");
        assert_eq!(
            unprobed_first_choices(h264_first.choices()),
            vec![(Encoder::Gstreamer, Codec::H264)]
        );
    }
}

#[cfg(test)]
mod mode_tests {
    use super::*;

    #[test]
    fn all_streams_pictures_and_flat_content_only_where_most_of_it_changes() {
        let (picture, flat) = (|| true, || false);
        assert!(StreamMode::All.streams(0.4, picture));
        assert!(
            StreamMode::All.streams(0.9, flat),
            "a terminal rewritten everywhere"
        );
        assert!(
            !StreamMode::All.streams(0.4, flat),
            "a few flat shapes moving"
        );
        assert!(StreamMode::Filter.streams(0.4, picture));
        assert!(!StreamMode::Filter.streams(1.0, flat));
        assert!(!StreamMode::Off.streams(1.0, picture));
    }

    #[test]
    fn all_does_not_copy_an_area_that_changes_everywhere() {
        assert!(StreamMode::All.streams(1.0, || panic!("the area was copied")));
    }
}
