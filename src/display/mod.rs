//! The display model, in the role of spice-server's display channel / dcc / video
//! stream: the primary surface's pixels as the server knows them, the monitor layout,
//! and, per connected client (viewer), what it has not been sent yet and the video
//! streams it receives.
//!
//! The worker draws into the [`Screen`]; display channel clients (on the reactor
//! thread) take their updates and read pixels out; encoder threads hand it frames.
//! Channels depend on this module, never on the worker.

pub(crate) mod draw;
pub(crate) mod forward;
pub(crate) mod monitors;
pub(crate) mod pointer;
pub(crate) mod scroll;
pub(crate) mod streams;
mod viewer;

#[cfg(test)]
pub(crate) use viewer::MAX_TAKE_PIXELS;
pub(crate) use viewer::{Forward, Pending};

use crate::canvas::framebuffer::Framebuffer;
use crate::geometry::Area;
use crate::proto::caps::Caps;
use crate::proto::display::{Head, StreamReport};
use crate::video::encoder::Frame;
use crate::video::stream::EncodedFrame;
use crate::video::VideoConfig;
use monitors::Monitors;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use streams::{StreamInfo, Streams, VideoUpdate};
use viewer::Viewer;

/// Identifies one display channel client within a screen.
pub(crate) type ViewerId = u64;

#[derive(Default)]
struct State {
    /// Bumped whenever the primary surface is created or destroyed.
    generation: u64,
    monitors: Monitors,
    surface: Option<Framebuffer>,
    viewers: HashMap<ViewerId, Viewer>,
    streams: Streams,
    video: Arc<VideoConfig>,
    scroll: scroll::Detector,
}

impl State {
    /// Areas that viewers no longer receive as video go out as pixels instead.
    /// `areas` go out as pixels, but for what a live stream of the viewer owns: a stream
    /// that moved or grew over its old area paints it with its next frame (pixels there
    /// would show a newer picture than the stream's, ahead of it, and cost bytes).
    fn uncover(&mut self, areas: impl IntoIterator<Item = (ViewerId, Area)>) {
        for (viewer, area) in areas {
            let owned = self.streams.owned(viewer);
            if let Some(v) = self.viewers.get_mut(&viewer) {
                crate::geometry::subtract(area, &owned)
                    .into_iter()
                    .for_each(|a| v.uncover(a));
            }
        }
    }
}

/// Called after damage is added (wakes the reactor).
pub(crate) type Notify = Arc<dyn Fn() + Send + Sync>;

/// The shared handle of one display: cloned into the worker, each display channel and
/// each stream's delivery callback; every method takes the lock briefly.
#[derive(Clone, Default)]
pub(crate) struct Screen {
    state: Arc<Mutex<State>>,
    notify: Arc<Mutex<Option<Notify>>>,
}

/// What a viewer must send next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Update {
    Nothing,
    /// The surface changed: (re)create it at this size; everything is damaged.
    NewSurface {
        generation: u64,
        width: u32,
        height: u32,
    },
    SurfaceGone {
        generation: u64,
    },
    /// Forwarded drawings to send first (they are older than the pixels), then a slice
    /// of the damaged areas.
    Draw(Pending),
}

impl Screen {
    pub(crate) fn set_notify(&self, notify: Notify) {
        *self.notify.lock() = Some(notify);
    }

    fn wake(&self) {
        let notify = self.notify.lock().clone();
        if let Some(n) = notify {
            n();
        }
    }

    pub(crate) fn create_surface(&self, width: u32, height: u32) -> bool {
        let Some(fb) = Framebuffer::new(width, height) else {
            return false;
        };
        {
            let mut s = self.state.lock();
            s.generation += 1;
            let all = fb.bounds();
            s.surface = Some(fb);
            s.viewers.values_mut().for_each(|v| v.reset(Some(all)));
        }
        self.wake();
        true
    }

    pub(crate) fn destroy_surface(&self) {
        {
            let mut s = self.state.lock();
            if s.surface.take().is_some() {
                s.generation += 1;
            }
            s.viewers.values_mut().for_each(|v| v.reset(None));
        }
        self.wake();
    }

    #[cfg(test)]
    /// Draws `src` at `dest` and marks the result damaged for every viewer.
    pub(crate) fn draw(&self, dest: Area, src: &[u8], src_stride: usize) {
        self.modify(|fb| Some(fb.blit(dest, src, src_stride)));
    }

    pub(crate) fn size(&self) -> Option<(u32, u32)> {
        self.state
            .lock()
            .surface
            .as_ref()
            .map(|f| (f.width, f.height))
    }

    #[cfg(test)]
    pub(crate) fn add_viewer(&self, viewer: ViewerId) {
        self.add_viewer_with(viewer, Caps::default());
    }

    /// Adds a display client with its display caps (which codecs it decodes).
    pub(crate) fn add_viewer_with(&self, viewer: ViewerId, caps: Caps) {
        let mut s = self.state.lock();
        let mut v = Viewer::default();
        v.lz4 = caps.has(crate::proto::msg::display::CAP_LZ4_COMPRESSION);
        v.reset(s.surface.as_ref().map(Framebuffer::bounds));
        s.viewers.insert(viewer, v);
        s.streams.add_viewer(viewer, caps);
    }

    pub(crate) fn remove_viewer(&self, viewer: ViewerId) {
        let mut s = self.state.lock();
        s.viewers.remove(&viewer);
        s.streams.remove_viewer(viewer);
    }

    /// The next thing `viewer` must send, given the surface generation it last saw.
    pub(crate) fn next_update(&self, viewer: ViewerId, seen_generation: u64) -> Update {
        let mut s = self.state.lock();
        if s.generation != seen_generation {
            return match &s.surface {
                Some(fb) => Update::NewSurface {
                    generation: s.generation,
                    width: fb.width,
                    height: fb.height,
                },
                None => Update::SurfaceGone {
                    generation: s.generation,
                },
            };
        }
        let State {
            surface,
            viewers,
            streams,
            ..
        } = &mut *s;
        let (Some(fb), Some(v)) = (surface.as_ref(), viewers.get_mut(&viewer)) else {
            return Update::Nothing;
        };
        // Taken together under the lock: every drawing is older than these pixels.
        match v.take(fb, &streams.owned(viewer)) {
            Some(pending) => Update::Draw(pending),
            None => Update::Nothing,
        }
    }

    /// Whether `viewer`'s channel may send photographs lossy (JPEG) from now on.
    pub(crate) fn set_lossy_images(&self, viewer: ViewerId, on: bool) {
        if let Some(v) = self.state.lock().viewers.get_mut(&viewer) {
            v.lossy_images = on;
        }
    }

    /// Pixels of `area`, taken from `next_update` while lossy images were on, went out
    /// lossless.
    pub(crate) fn sent_lossless(&self, viewer: ViewerId, area: Area) {
        if let Some(v) = self.state.lock().viewers.get_mut(&viewer) {
            v.sent_lossless(area);
        }
    }

    /// Draws with `f` on the surface; the area it returns is damaged for every viewer.
    pub(crate) fn modify(&self, f: impl FnOnce(&mut Framebuffer) -> Option<Area>) {
        self.forward(None, f);
    }

    /// Sets the guest's monitor layout, and how many monitors it can drive.
    pub(crate) fn set_monitors(&self, heads: Vec<Head>, max_allowed: u16) {
        self.state.lock().monitors.set(heads, max_allowed);
        self.wake();
    }

    /// After a new primary surface: the layout is one head covering it, as spice-server
    /// makes it. `announce`: clients are told now; spice-server does not when the guest's
    /// driver sends layouts itself (its own for the new surface follows).
    pub(crate) fn reset_monitors(&self, announce: bool) {
        self.state.lock().monitors.reset_to_surface(announce);
        if announce {
            self.wake();
        }
    }

    /// The current monitor layout.
    pub(crate) fn monitors(&self) -> monitors::Layout {
        let s = self.state.lock();
        s.monitors.layout(s.surface.as_ref())
    }

    /// Whether any viewer would receive a forwarded drawing (encoding one is wasted
    /// work otherwise).
    pub(crate) fn has_viewers(&self) -> bool {
        !self.state.lock().viewers.is_empty()
    }

    /// Renders with `render`; then queues `op` for each viewer whose queue has room and
    /// whose copy of the pixels it reads is current, and gives the others (all of them
    /// without an op) the damage.
    pub(crate) fn forward(
        &self,
        op: Option<Forward>,
        render: impl FnOnce(&mut Framebuffer) -> Option<Area>,
    ) -> Option<Area> {
        let damage = {
            let mut s = self.state.lock();
            let State {
                surface,
                viewers,
                streams,
                ..
            } = &mut *s;
            let fb = surface.as_mut()?;
            let damage = render(fb).filter(|a| !a.is_empty())?;
            for (id, viewer) in viewers.iter_mut() {
                viewer.drawn(op.as_ref(), damage, &streams.owned(*id));
            }
            damage
        };
        self.wake();
        Some(damage)
    }

    /// Draws a batch of plain copies (QEMU's framebuffer updates), copy `i` with
    /// `render(fb, i)`. When part of the batch is what was there shifted (a scroll), each
    /// viewer whose copy of the old pixels is current gets it as one COPY_BITS and only
    /// the rest as pixels. Returns what each copy drew.
    pub(crate) fn draw_plain_copies(
        &self,
        copies: &[scroll::NewPixels],
        mut render: impl FnMut(&mut Framebuffer, usize) -> Option<Area>,
    ) -> Vec<Option<Area>> {
        let drawn = {
            let mut s = self.state.lock();
            let State {
                surface,
                viewers,
                streams,
                scroll,
                ..
            } = &mut *s;
            let Some(fb) = surface.as_mut() else {
                return vec![None; copies.len()];
            };
            let before = (!viewers.is_empty())
                .then(|| scroll.before(fb, copies))
                .flatten();
            let drawn: Vec<Option<Area>> = (0..copies.len())
                .map(|i| render(fb, i).filter(|a| !a.is_empty()))
                .collect();
            let changed: Vec<Area> = drawn.iter().flatten().copied().collect();
            let found = before.and_then(|b| scroll.after(fb, &b, &changed));
            if let Some(s) = found {
                crate::log_debug!(
                    "display: {} plain copies hold a scroll: {s:?}",
                    copies.len()
                );
            }
            let copy = found.and_then(|s| s.forward());
            for (id, viewer) in viewers.iter_mut() {
                let video = streams.owned(*id);
                match &copy {
                    Some(copy) => viewer.scrolled(copy, &changed, &video),
                    None => changed.iter().for_each(|&a| viewer.drawn(None, a, &video)),
                }
            }
            drawn
        };
        if drawn.iter().any(Option::is_some) {
            self.wake();
        }
        drawn
    }

    pub(crate) fn set_video(&self, video: Arc<VideoConfig>) {
        self.state.lock().video = video;
    }

    pub(crate) fn video(&self) -> Arc<VideoConfig> {
        self.state.lock().video.clone()
    }

    /// A copy of `area`'s pixels (a video frame), packed rows.
    pub(crate) fn capture(&self, area: Area) -> Option<Vec<u8>> {
        self.state.lock().surface.as_ref().map(|fb| fb.read(area))
    }

    /// A video frame of `area`: the screen itself, shared until the next drawing, when
    /// the area is most of it and the previous frame was encoded already (so that
    /// drawing will not have to copy the whole screen); else a copy into the buffer
    /// `buffer` gives (taken only then, so a reusable one is not thrown away).
    pub(crate) fn capture_frame(
        &self,
        area: Area,
        mm_time: u32,
        buffer: impl FnOnce() -> Vec<u8>,
    ) -> Option<Frame> {
        let state = self.state.lock();
        let fb = state.surface.as_ref()?;
        if !fb.is_shared() && 2 * area.pixels() >= fb.bounds().pixels() {
            return Some(fb.share(area, mm_time));
        }
        let mut buffer = buffer();
        fb.read_into(area, &mut buffer);
        Some(Frame::packed(area.width(), area.height(), buffer, mm_time))
    }

    /// A stream now owns its area for every viewer that can take it.
    pub(crate) fn start_stream(&self, info: StreamInfo) {
        self.state.lock().streams.start(info);
        self.wake();
    }

    /// Ends a stream: its viewers are told, then get its area as lossless pixels.
    pub(crate) fn end_stream(&self, id: u32) {
        {
            let mut s = self.state.lock();
            let uncovered = s.streams.end(id);
            s.uncover(uncovered);
        }
        self.wake();
    }

    /// A client's preferred codec order: running streams end, so the next one is
    /// chosen with it (as spice-server does).
    pub(crate) fn set_codec_preference(&self, viewer: ViewerId, preference: Vec<u8>) {
        self.video().probe_preferred(&preference);
        let ids = {
            let mut s = self.state.lock();
            s.streams.set_preference(viewer, preference);
            s.streams.active().iter().map(|i| i.id).collect::<Vec<_>>()
        };
        ids.into_iter().for_each(|id| self.end_stream(id));
    }

    /// The display caps and codec preference a new stream is chosen for.
    pub(crate) fn client_codecs(&self) -> Option<(Caps, Option<Vec<u8>>)> {
        self.state.lock().streams.client_codecs()
    }

    /// A viewer's session measured its link (`None`: not yet, or gone).
    pub(crate) fn set_link_rate(&self, viewer: ViewerId, bps: Option<u64>) {
        self.state.lock().streams.set_link_rate(viewer, bps);
    }

    /// The slowest measured link of the viewers that take streams (bits per second).
    pub(crate) fn slowest_link(&self) -> Option<u64> {
        self.state.lock().streams.slowest_link()
    }

    /// Ids of the streams running now.
    pub(crate) fn stream_ids(&self) -> Vec<u32> {
        self.state
            .lock()
            .streams
            .active()
            .iter()
            .map(|s| s.id)
            .collect()
    }

    /// An encoded frame for the viewers of its stream.
    pub(crate) fn deliver_frame(&self, frame: &EncodedFrame) {
        {
            let mut s = self.state.lock();
            let uncovered = s.streams.deliver(frame);
            s.uncover(uncovered);
        }
        self.wake();
    }

    /// What `viewer` must send about video before anything else; frames only when it
    /// has `room` for them.
    pub(crate) fn next_video(&self, viewer: ViewerId, room: bool) -> Vec<VideoUpdate> {
        self.state.lock().streams.next(viewer, room)
    }

    /// A client's stream report: feeds the stream's rate control and the playout delay;
    /// a client that cannot decode gets pixels from now on.
    pub(crate) fn stream_report(&self, viewer: ViewerId, report: &StreamReport) {
        let mut s = self.state.lock();
        if report.cannot_decode() {
            crate::log_warn!("display viewer {viewer} cannot decode video; sending pixels");
            let areas = s.streams.refuse(viewer);
            s.uncover(areas.into_iter().map(|a| (viewer, a)));
            drop(s);
            self.wake();
            return;
        }
        let Some(stream) = s.streams.handle(report.stream_id) else {
            return;
        };
        let video = s.video.clone();
        drop(s);
        stream.on_client_report(report, &video.clock);
        // The main channel may have a new clock to send.
        self.wake();
    }

    /// Reads the surface with `f` (None without a surface).
    pub(crate) fn with_surface<R>(&self, f: impl FnOnce(&Framebuffer) -> R) -> Option<R> {
        self.state.lock().surface.as_ref().map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_frame_keeps_its_pixels_when_the_screen_changes() {
        let screen = Screen::default();
        assert!(screen.create_surface(4, 4));
        screen.draw(Area::new(0, 0, 4, 4), &[5u8; 64], 16);
        // Most of the screen: shared, no copy.
        let frame = screen
            .capture_frame(Area::new(0, 1, 4, 4), 7, Vec::new)
            .unwrap();
        assert_eq!(
            (frame.width, frame.height, frame.stride, frame.offset),
            (4, 3, 16, 16)
        );
        assert!(frame.is_complete());
        assert_eq!(
            Arc::strong_count(&frame.pixels),
            2,
            "shared with the screen"
        );
        // While it is held, the next frame is a copy, so that the drawing after it
        // copies no more than the frame's area.
        let second = screen
            .capture_frame(Area::new(0, 0, 4, 4), 8, Vec::new)
            .unwrap();
        assert_eq!(Arc::strong_count(&second.pixels), 1, "a copy");
        assert_eq!(second.bytes(), &[5u8; 64][..]);
        screen.draw(Area::new(0, 0, 4, 4), &[9u8; 64], 16);
        assert_eq!(
            frame.bytes(),
            &[5u8; 48][..],
            "the frame is what was captured"
        );
        assert_eq!(
            screen.capture(Area::new(0, 0, 4, 4)).unwrap(),
            vec![9u8; 64]
        );
        // A small area is always a copy.
        drop(frame);
        let small = screen
            .capture_frame(Area::new(1, 1, 3, 3), 9, || Vec::with_capacity(64))
            .unwrap();
        assert_eq!((small.width, small.stride), (2, 8));
        assert_eq!(Arc::strong_count(&small.pixels), 1);
        assert_eq!(small.bytes(), &[9u8; 16][..]);
    }

    #[test]
    fn viewer_sees_surface_then_damage_then_nothing() {
        let screen = Screen::default();
        screen.add_viewer(1);
        assert!(screen.create_surface(8, 8));
        let Update::NewSurface {
            generation,
            width: 8,
            height: 8,
        } = screen.next_update(1, 0)
        else {
            panic!("expected a new surface")
        };
        // Creating the surface damaged all of it.
        let Update::Draw(Pending { parts, .. }) = screen.next_update(1, generation) else {
            panic!()
        };
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, Area::new(0, 0, 8, 8));
        assert_eq!(screen.next_update(1, generation), Update::Nothing);
        screen.draw(Area::new(1, 1, 3, 3), &[9u8; 16], 8);
        screen.draw(Area::new(2, 2, 4, 4), &[9u8; 16], 8);
        let Update::Draw(Pending { parts, .. }) = screen.next_update(1, generation) else {
            panic!()
        };
        assert_eq!(
            parts.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![Area::new(1, 1, 4, 4)]
        );
        screen.destroy_surface();
        assert!(matches!(
            screen.next_update(1, generation),
            Update::SurfaceGone { .. }
        ));
    }

    fn parts(update: Update) -> Vec<Area> {
        match update {
            Update::Draw(Pending { parts, .. }) => parts.into_iter().map(|p| p.0).collect(),
            other => panic!("expected pixels, got {other:?}"),
        }
    }

    /// A screen with an 8x8 surface that viewer 1 has seen completely.
    fn seen() -> (Screen, u64) {
        let screen = Screen::default();
        screen.add_viewer(1);
        screen.create_surface(8, 8);
        let Update::NewSurface { generation, .. } = screen.next_update(1, 0) else {
            panic!("expected a new surface")
        };
        assert_eq!(parts(screen.next_update(1, generation)).len(), 1);
        (screen, generation)
    }

    #[test]
    fn a_stream_owns_its_area_until_it_ends_then_the_area_goes_as_pixels() {
        let (screen, generation) = seen();
        let dest = Area::new(0, 0, 4, 4);
        screen.start_stream(StreamInfo {
            id: 2,
            dest,
            codec: crate::video::codecs::Codec::Mjpeg,
            stream: crate::video::stream::StreamHandle::detached(),
        });
        assert!(matches!(
            screen.next_video(1, true).as_slice(),
            [VideoUpdate::Create(_)]
        ));
        // Drawn inside the stream: the next frame carries it, no pixels go.
        screen.draw(Area::new(1, 1, 3, 3), &[1; 16], 8);
        assert_eq!(screen.next_update(1, generation), Update::Nothing);
        screen.draw(Area::new(6, 6, 8, 8), &[1; 16], 8);
        assert_eq!(
            parts(screen.next_update(1, generation)),
            vec![Area::new(6, 6, 8, 8)]
        );
        screen.deliver_frame(&EncodedFrame {
            stream: 2,
            mm_time: 5,
            data: vec![1, 2, 3],
        });
        let frames = screen.next_video(1, true);
        let [VideoUpdate::Frame { frame, .. }] = frames.as_slice() else {
            panic!("expected the frame")
        };
        assert_eq!(
            (frame.mm_time, frame.data.as_slice()),
            (5, &[1u8, 2, 3][..])
        );
        screen.end_stream(2);
        assert!(matches!(
            screen.next_video(1, true).as_slice(),
            [VideoUpdate::Destroy(2)]
        ));
        assert_eq!(parts(screen.next_update(1, generation)), vec![dest]);
    }

    #[test]
    fn a_stream_grown_over_the_old_one_leaves_only_the_rest_as_pixels() {
        let (screen, generation) = seen();
        let stream = |id, dest| StreamInfo {
            id,
            dest,
            codec: crate::video::codecs::Codec::Mjpeg,
            stream: crate::video::stream::StreamHandle::detached(),
        };
        screen.start_stream(stream(2, Area::new(0, 0, 8, 4)));
        screen.next_video(1, true);
        // The new stream starts before the old one ends (worker::video's Move).
        screen.start_stream(stream(3, Area::new(0, 2, 8, 8)));
        screen.end_stream(2);
        assert!(matches!(
            screen.next_video(1, true).as_slice(),
            [VideoUpdate::Destroy(2), VideoUpdate::Create(_)]
        ));
        assert_eq!(
            parts(screen.next_update(1, generation)),
            vec![Area::new(0, 0, 8, 2)]
        );
    }

    #[test]
    fn a_viewer_that_cannot_decode_gets_the_stream_area_as_pixels() {
        let (screen, generation) = seen();
        let dest = Area::new(0, 0, 8, 4);
        screen.start_stream(StreamInfo {
            id: 0,
            dest,
            codec: crate::video::codecs::Codec::Mjpeg,
            stream: crate::video::stream::StreamHandle::detached(),
        });
        screen.next_video(1, true);
        let refusal = StreamReport {
            stream_id: 0,
            unique_id: 1,
            start_frame_mm_time: 0,
            end_frame_mm_time: 0,
            num_frames: 0,
            num_drops: u32::MAX,
            last_frame_delay: 0,
            audio_delay: 0,
        };
        screen.stream_report(1, &refusal);
        assert_eq!(parts(screen.next_update(1, generation)), vec![dest]);
        assert!(matches!(
            screen.next_video(1, true).as_slice(),
            [VideoUpdate::Destroy(0)]
        ));
    }

    #[test]
    fn each_viewer_has_its_own_damage() {
        let (screen, generation) = seen();
        screen.draw(Area::new(0, 0, 2, 2), &[1; 16], 8);
        screen.add_viewer(2);
        assert_eq!(
            parts(screen.next_update(2, generation)),
            vec![Area::new(0, 0, 8, 8)],
            "a new viewer gets everything"
        );
        assert_eq!(
            parts(screen.next_update(1, generation)),
            vec![Area::new(0, 0, 2, 2)]
        );
        screen.remove_viewer(1);
        assert!(screen.has_viewers());
        screen.remove_viewer(2);
        assert!(!screen.has_viewers());
        assert_eq!(screen.next_update(1, generation), Update::Nothing);
    }
}
