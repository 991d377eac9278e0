//! The video streams of one screen as its viewers see them: which stream each viewer
//! has been told about, the newest encoded frame waiting for each, and which areas a
//! viewer receives as video instead of pixels.
//!
//! A stream's area belongs to the stream while it lasts: drawings and damage inside it
//! reach the viewer through the next frame (captured after them, so a late frame never
//! paints over a newer drawing). When the stream ends the viewer is told so, and then
//! gets the area as lossless pixels.

use super::ViewerId;
use crate::geometry::Area;
use crate::proto::caps::Caps;
use crate::proto::msg::display::CAP_COMPOSITE;
use crate::video::codecs::Codec;
use crate::video::stream::{EncodedFrame, StreamHandle};
use std::collections::{HashMap, VecDeque};

/// Inter-coded frames a viewer may have waiting before it leaves the stream.
const MAX_INTER_BACKLOG: usize = 6;

#[derive(Clone)]
pub(crate) struct StreamInfo {
    pub id: u32,
    pub dest: Area,
    pub codec: Codec,
    pub stream: StreamHandle,
}

/// What a display channel must send about video, in order.
pub(crate) enum VideoUpdate {
    Create(StreamInfo),
    Frame {
        frame: EncodedFrame,
        stream: StreamHandle,
    },
    Destroy(u32),
}

struct ViewerStream {
    info: StreamInfo,
    announced: bool,
    /// Encoded frames waiting for room: at most one for MJPEG (a newer one replaces
    /// it); for inter-coded streams every frame counts, up to a bound.
    frames: VecDeque<EncodedFrame>,
    ending: bool,
}

#[derive(Default)]
struct ViewerVideo {
    /// The client said it cannot decode our streams: it gets pixels only.
    refused: bool,
    streams: Vec<ViewerStream>,
    /// Its display caps and preferred codec order (`PREFERRED_VIDEO_CODEC_TYPE`).
    caps: Caps,
    preference: Option<Vec<u8>>,
    /// Its session's measured link rate (bits per second).
    link_bps: Option<u64>,
}

#[derive(Default)]
pub(super) struct Streams {
    active: Vec<StreamInfo>,
    viewers: HashMap<ViewerId, ViewerVideo>,
}

impl Streams {
    pub(super) fn add_viewer(&mut self, viewer: ViewerId, caps: Caps) {
        let streams = self.active.iter().map(fresh).collect();
        self.viewers.insert(
            viewer,
            ViewerVideo {
                refused: false,
                streams,
                caps,
                preference: None,
                link_bps: None,
            },
        );
        self.tell_streams_who_scales();
    }

    /// Whether every viewer that takes streams scales a frame to the stream's size, so
    /// frames may be encoded smaller on a thin link. spice-gtk's canvas scales, and it
    /// says COMPOSITE; spice-html5 draws a frame at its own size and does not.
    fn viewers_scale_frames(&self) -> bool {
        self.viewers
            .values()
            .filter(|v| !v.refused)
            .all(|v| v.caps.has(CAP_COMPOSITE))
    }

    fn tell_streams_who_scales(&self) {
        let allowed = self.viewers_scale_frames();
        for s in &self.active {
            s.stream.allow_smaller_pictures(allowed);
        }
    }

    pub(super) fn set_preference(&mut self, viewer: ViewerId, preference: Vec<u8>) {
        if let Some(v) = self.viewers.get_mut(&viewer) {
            v.preference = Some(preference);
        }
    }

    pub(super) fn set_link_rate(&mut self, viewer: ViewerId, bps: Option<u64>) {
        if let Some(v) = self.viewers.get_mut(&viewer) {
            v.link_bps = bps;
        }
        if let (Some(_), Some(slowest)) = (bps, self.slowest_link()) {
            for s in &self.active {
                s.stream.link_measured(slowest);
            }
        }
    }

    /// The slowest measured link among the viewers that take streams: what a new
    /// stream's bit rate starts from.
    pub(super) fn slowest_link(&self) -> Option<u64> {
        self.viewers
            .values()
            .filter(|v| !v.refused)
            .filter_map(|v| v.link_bps)
            .min()
    }

    /// What a new stream's codec is chosen for: the newest viewer that takes streams
    /// (QEMU serves one client at a time).
    pub(super) fn client_codecs(&self) -> Option<(Caps, Option<Vec<u8>>)> {
        self.viewers
            .iter()
            .filter(|(_, v)| !v.refused)
            .max_by_key(|(id, _)| **id)
            .map(|(_, v)| (v.caps.clone(), v.preference.clone()))
    }

    pub(super) fn remove_viewer(&mut self, viewer: ViewerId) {
        self.viewers.remove(&viewer);
        self.tell_streams_who_scales();
    }

    pub(super) fn active(&self) -> &[StreamInfo] {
        &self.active
    }

    pub(super) fn start(&mut self, info: StreamInfo) {
        for v in self.viewers.values_mut().filter(|v| !v.refused) {
            v.streams.push(fresh(&info));
        }
        self.active.push(info);
        self.tell_streams_who_scales();
    }

    /// Ends stream `id`; returns, per viewer, the area that must now go out as pixels.
    pub(super) fn end(&mut self, id: u32) -> Vec<(ViewerId, Area)> {
        self.active.retain(|s| s.id != id);
        let mut uncovered = vec![];
        for (viewer, v) in &mut self.viewers {
            for s in v
                .streams
                .iter_mut()
                .filter(|s| s.info.id == id && !s.ending)
            {
                s.ending = true;
                s.frames.clear();
                uncovered.push((*viewer, s.info.dest));
            }
        }
        uncovered
    }

    /// A viewer cannot decode: its streams end and it gets their areas as pixels.
    pub(super) fn refuse(&mut self, viewer: ViewerId) -> Vec<Area> {
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return vec![];
        };
        v.refused = true;
        let uncovered = v
            .streams
            .iter_mut()
            .filter(|s| !s.ending)
            .map(|s| {
                s.ending = true;
                s.frames.clear();
                s.info.dest
            })
            .collect();
        self.tell_streams_who_scales();
        uncovered
    }

    /// Hands a frame to every viewer of its stream. An MJPEG frame still waiting is
    /// replaced (a drop: the network is behind). Inter-coded frames refer to the ones
    /// before them, so none may be dropped: they queue, and a viewer whose queue
    /// overflows leaves the stream (returned: its area must now go out as pixels).
    pub(super) fn deliver(&mut self, frame: &EncodedFrame) -> Vec<(ViewerId, Area)> {
        let mut uncovered = vec![];
        for (viewer, v) in &mut self.viewers {
            for s in v
                .streams
                .iter_mut()
                .filter(|s| s.info.id == frame.stream && !s.ending)
            {
                let dropped = if s.info.codec == Codec::Mjpeg {
                    let waiting = !s.frames.is_empty();
                    s.frames.clear();
                    waiting
                } else if s.frames.len() >= MAX_INTER_BACKLOG {
                    s.ending = true;
                    s.frames.clear();
                    uncovered.push((*viewer, s.info.dest));
                    true
                } else {
                    false
                };
                if dropped {
                    s.info.stream.on_dropped();
                }
                if !s.ending {
                    s.frames.push_back(EncodedFrame {
                        stream: frame.stream,
                        mm_time: frame.mm_time,
                        data: frame.data.clone(),
                    });
                }
            }
        }
        uncovered
    }

    /// The areas `viewer` receives as video.
    pub(super) fn owned(&self, viewer: ViewerId) -> Vec<Area> {
        self.viewers
            .get(&viewer)
            .map(|v| {
                v.streams
                    .iter()
                    .filter(|s| !s.ending)
                    .map(|s| s.info.dest)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn handle(&self, id: u32) -> Option<StreamHandle> {
        self.active
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.stream.clone())
    }

    /// What `viewer` must send now; frames are taken only when it has `room`.
    pub(super) fn next(&mut self, viewer: ViewerId, room: bool) -> Vec<VideoUpdate> {
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return vec![];
        };
        let mut out = vec![];
        v.streams.retain_mut(|s| {
            if s.ending {
                if s.announced {
                    out.push(VideoUpdate::Destroy(s.info.id));
                }
                return false;
            }
            if !s.announced {
                s.announced = true;
                // A client joining a running stream needs a key frame to start from.
                s.info.stream.want_key_frame();
                out.push(VideoUpdate::Create(s.info.clone()));
            }
            if room {
                out.extend(s.frames.drain(..).map(|frame| VideoUpdate::Frame {
                    frame,
                    stream: s.info.stream.clone(),
                }));
            }
            true
        });
        out
    }
}

fn fresh(info: &StreamInfo) -> ViewerStream {
    ViewerStream {
        info: info.clone(),
        announced: false,
        frames: VecDeque::new(),
        ending: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u32, dest: Area) -> StreamInfo {
        StreamInfo {
            id,
            dest,
            codec: Codec::Mjpeg,
            stream: StreamHandle::detached(),
        }
    }

    fn frame(stream: u32, n: u8) -> EncodedFrame {
        EncodedFrame {
            stream,
            mm_time: u32::from(n),
            data: vec![n],
        }
    }

    #[test]
    fn frames_go_smaller_only_while_every_viewer_scales_them() {
        let scales = Caps::from_bits(&[CAP_COMPOSITE]);
        let mut s = Streams::default();
        s.add_viewer(1, scales.clone());
        let stream = info(3, Area::new(0, 0, 1280, 720));
        let handle = stream.stream.clone();
        s.start(stream);
        assert!(handle.smaller_pictures_allowed(), "spice-gtk alone");
        s.add_viewer(2, Caps::default());
        assert!(
            !handle.smaller_pictures_allowed(),
            "a viewer that draws frames as they come"
        );
        s.refuse(2);
        assert!(
            handle.smaller_pictures_allowed(),
            "it takes no stream any more"
        );
        s.add_viewer(4, Caps::default());
        s.remove_viewer(4);
        assert!(handle.smaller_pictures_allowed(), "it left");
    }

    #[test]
    fn a_viewer_hears_of_a_stream_then_gets_only_the_newest_frame_then_its_end() {
        let mut s = Streams::default();
        s.add_viewer(1, Caps::default());
        let dest = Area::new(0, 0, 100, 100);
        s.start(info(3, dest));
        assert_eq!(s.owned(1), vec![dest]);
        s.deliver(&frame(3, 1));
        s.deliver(&frame(3, 2));
        let kinds: Vec<String> = s
            .next(1, true)
            .into_iter()
            .map(|u| match u {
                VideoUpdate::Create(i) => format!("create {}", i.id),
                VideoUpdate::Frame { frame, .. } => format!("frame {}", frame.data[0]),
                VideoUpdate::Destroy(id) => format!("destroy {id}"),
            })
            .collect();
        assert_eq!(kinds, vec!["create 3", "frame 2"]);
        s.deliver(&frame(3, 3));
        assert!(s.next(1, false).is_empty(), "no room: the frame waits");
        assert_eq!(s.end(3), vec![(1, dest)]);
        assert!(s.owned(1).is_empty());
        let last = s.next(1, true);
        assert!(
            matches!(last.as_slice(), [VideoUpdate::Destroy(3)]),
            "the waiting frame is dropped"
        );
        assert!(s.next(1, true).is_empty());
    }

    #[test]
    fn inter_coded_frames_are_never_dropped_and_a_stuck_viewer_leaves() {
        let mut s = Streams::default();
        s.add_viewer(1, Caps::default());
        let dest = Area::new(0, 0, 64, 64);
        let mut h264 = info(5, dest);
        h264.codec = Codec::H264;
        let stream = h264.stream.clone();
        s.start(h264);
        s.next(1, true);
        assert!(
            stream.key_frame_wanted(),
            "a new viewer starts from a key frame"
        );
        for n in 1..=3 {
            assert!(s.deliver(&frame(5, n)).is_empty());
        }
        let sent: Vec<u8> = s
            .next(1, true)
            .into_iter()
            .filter_map(|u| match u {
                VideoUpdate::Frame { frame, .. } => Some(frame.data[0]),
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![1, 2, 3], "every frame, in order");
        let mut left = vec![];
        for n in 0..=MAX_INTER_BACKLOG as u8 {
            left.extend(s.deliver(&frame(5, n)));
        }
        assert_eq!(
            left,
            vec![(1, dest)],
            "the stuck viewer gets pixels instead"
        );
        assert!(s.owned(1).is_empty());
        assert!(matches!(
            s.next(1, true).as_slice(),
            [VideoUpdate::Destroy(5)]
        ));
    }

    #[test]
    fn the_slowest_measured_link_of_viewers_that_take_streams_counts() {
        let mut s = Streams::default();
        assert_eq!(s.slowest_link(), None);
        s.add_viewer(1, Caps::default());
        s.add_viewer(2, Caps::default());
        s.add_viewer(3, Caps::default());
        s.set_link_rate(1, Some(50_000_000));
        assert_eq!(
            s.slowest_link(),
            Some(50_000_000),
            "2 and 3 not measured yet"
        );
        s.set_link_rate(2, Some(3_000_000));
        s.set_link_rate(3, Some(1_000_000));
        s.refuse(3);
        assert_eq!(s.slowest_link(), Some(3_000_000), "3 gets pixels only");
        s.remove_viewer(2);
        assert_eq!(s.slowest_link(), Some(50_000_000));
    }

    #[test]
    fn late_viewers_join_running_streams_and_refusers_get_pixels() {
        let mut s = Streams::default();
        let dest = Area::new(0, 0, 50, 50);
        s.start(info(0, dest));
        s.add_viewer(2, Caps::default());
        assert!(matches!(
            s.next(2, true).as_slice(),
            [VideoUpdate::Create(_)]
        ));
        assert_eq!(s.refuse(2), vec![dest]);
        assert!(matches!(
            s.next(2, true).as_slice(),
            [VideoUpdate::Destroy(0)]
        ));
        s.start(info(1, dest));
        assert!(
            s.next(2, true).is_empty(),
            "a refusing viewer is not offered new streams"
        );
    }
}
