//! What a display channel shows: the primary surface's pixels as the server knows
//! them, plus, per connected client, the region it has not been sent yet.
//!
//! The worker draws into it; display channel clients (on the reactor thread) take their
//! damage and read pixels out. Keeping damage as a bounded region instead of a queue of
//! updates means a slow client costs no more memory than one screen, and always gets the
//! newest pixels.

use super::region::{Area, Region};
use super::streams::{subtract, StreamInfo, Streams, VideoUpdate};
use crate::proto::caps::Caps;
use crate::proto::display::{Head, StreamReport};
use crate::proto::draw::DrawMessage;
use crate::video::encoder::Frame;
use crate::video::stream::EncodedFrame;
use crate::video::VideoConfig;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes per pixel of the only format the primary surface uses here (32-bit xRGB).
pub const BYTES_PER_PIXEL: usize = 4;
/// Largest primary surface accepted (beyond any real monitor; bounds memory).
pub const MAX_DIMENSION: u32 = 16384;

/// A BGRX framebuffer, rows top-down, stride = width * 4.
///
/// The pixels are shared with the video encoder for the frame it is encoding; the next
/// drawing copies them only if the encoder still holds them (copy on write), so a
/// captured video frame usually costs no copy at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    pub width: u32,
    pub height: u32,
    pixels: Arc<Vec<u8>>,
}

impl Framebuffer {
    pub fn new(width: u32, height: u32) -> Option<Framebuffer> {
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return None;
        }
        Some(Framebuffer {
            width,
            height,
            pixels: Arc::new(vec![0; width as usize * height as usize * BYTES_PER_PIXEL]),
        })
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels to draw on (copied first if a video frame still holds them).
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        Arc::make_mut(&mut self.pixels).as_mut_slice()
    }

    /// `area` as a video frame sharing this framebuffer's pixels.
    pub fn share(&self, area: Area, mm_time: u32) -> Frame {
        let area = area.intersect(&self.bounds());
        Frame {
            width: area.width(),
            height: area.height(),
            pixels: self.pixels.clone(),
            offset: area.top as usize * self.stride() + area.left as usize * BYTES_PER_PIXEL,
            stride: self.stride(),
            mm_time,
        }
    }

    /// Whether a frame shared earlier is still held (by the encoder or its queue).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.pixels) > 1
    }

    pub fn stride(&self) -> usize {
        self.width as usize * BYTES_PER_PIXEL
    }

    pub fn bounds(&self) -> Area {
        Area::new(0, 0, self.width, self.height)
    }

    /// Copies `src` rows (each `src_stride` bytes apart, top-down) into `dest`, clipped to
    /// the surface. `src` must hold `dest.height()` rows of `dest.width()` pixels.
    pub fn blit(&mut self, dest: Area, src: &[u8], src_stride: usize) -> Area {
        let clipped = dest.intersect(&self.bounds());
        if clipped.is_empty() {
            return clipped;
        }
        let row_bytes = clipped.width() as usize * BYTES_PER_PIXEL;
        let skip_x = (clipped.left - dest.left) as usize * BYTES_PER_PIXEL;
        let skip_y = (clipped.top - dest.top) as usize;
        let stride = self.stride();
        for row in 0..clipped.height() as usize {
            let s = (skip_y + row) * src_stride + skip_x;
            let Some(src_row) = src.get(s..s + row_bytes) else {
                break;
            };
            let d = (clipped.top as usize + row) * stride + clipped.left as usize * BYTES_PER_PIXEL;
            self.pixels_mut()[d..d + row_bytes].copy_from_slice(src_row);
        }
        clipped
    }

    /// The pixels of `area` (inside the surface), packed rows.
    pub fn read(&self, area: Area) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_into(area, &mut out);
        out
    }

    /// The pixels of `area` (inside the surface), packed rows, appended to `out`.
    pub fn read_into(&self, area: Area, out: &mut Vec<u8>) {
        let area = area.intersect(&self.bounds());
        let row_bytes = area.width() as usize * BYTES_PER_PIXEL;
        out.reserve(row_bytes * area.height() as usize);
        for y in area.top..area.bottom {
            let start = y as usize * self.stride() + area.left as usize * BYTES_PER_PIXEL;
            out.extend_from_slice(&self.pixels[start..start + row_bytes]);
        }
    }
}

/// A drawing the client repeats itself instead of receiving its pixels.
///
/// Queued drawings go out before the pixels of the viewer's damaged areas, which are
/// read when sent and so are newer than any of them. That keeps every ordering correct:
/// a drawing that reads its own destination where the client is stale writes only
/// there, and those pixels are overwritten by the damage sent after it; a drawing that
/// reads elsewhere (`reads`, COPY_BITS's source) is queued only for viewers whose copy
/// of that area is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub msg: Arc<DrawMessage>,
    /// The pixels it may write.
    pub bbox: Area,
    /// Surface pixels it reads besides its destination.
    pub reads: Option<Area>,
    /// It replaces every pixel of `bbox` without reading them, so anything older that
    /// it covers need not be sent.
    pub opaque: bool,
}

/// Drawings queued per viewer before they are folded into plain damage, and the bytes
/// they may hold.
const MAX_QUEUED_DRAWS: usize = 256;
const MAX_QUEUED_BYTES: usize = 16 << 20;

/// Identifies one display channel client within a screen.
pub type ViewerId = u64;

/// Drawings not yet written back to the guest's memory, kept one box per drawing (up to
/// this many; beyond, they are folded into one box).
const MAX_GUEST_PENDING: usize = 4096;

/// Of the boxes in `pending`, takes those an update of `area` must write back: the ones
/// overlapping it, and (transitively) the ones overlapping those, as spice-server renders
/// a drawing together with everything it was drawn over.
/// Records a drawing not yet written back, folding everything into one box past a bound.
pub fn note_guest(guest: &mut Vec<Area>, damage: Area) {
    if guest.len() >= MAX_GUEST_PENDING {
        let all = guest.drain(..).fold(damage, |a, b| a.union(&b));
        guest.push(all);
    } else {
        guest.push(damage);
    }
}

pub fn take_overlapping(pending: &mut Vec<Area>, area: Area) -> Vec<Area> {
    let mut taken = vec![area];
    loop {
        let before = taken.len();
        let mut i = 0;
        while i < pending.len() {
            if taken.iter().any(|t| !t.intersect(&pending[i]).is_empty()) {
                taken.push(pending.swap_remove(i));
            } else {
                i += 1;
            }
        }
        if taken.len() == before {
            return taken;
        }
    }
}

/// Whether `op` may join a viewer's `queue`: there is room, and the viewer's copy of
/// what it reads is current (not in its damaged `region`).
fn can_queue(op: &Forward, queue: &[Forward], region: &Region, video: &[Area]) -> bool {
    let touches = |areas: &[Area], a: &Area| areas.iter().any(|r| !r.intersect(a).is_empty());
    // Video areas are lossy and late on the client: nothing may read them, and what is
    // drawn there arrives with the next frame.
    let stale = op
        .reads
        .is_some_and(|source| touches(region.rects(), &source) || touches(video, &source));
    if touches(video, &op.bbox) {
        return false;
    }
    let bytes: usize = queue.iter().map(|f| f.msg.body.len()).sum();
    !stale && queue.len() < MAX_QUEUED_DRAWS && bytes + op.msg.body.len() <= MAX_QUEUED_BYTES
}

/// Drops the queued drawings nothing will show: those whose box lies inside the damage
/// about to be sent, or inside the box of a newer opaque drawing, unless a newer
/// drawing reads from them.
fn skip_covered(queue: Vec<Forward>, damage: &Region) -> Vec<Forward> {
    let mut kept = Vec::with_capacity(queue.len());
    let mut newer_reads: Vec<Area> = vec![];
    let mut newer_opaque: Vec<Area> = vec![];
    for op in queue.into_iter().rev() {
        let inside = |outer: &Area| op.bbox.intersect(outer) == op.bbox;
        let covered = damage.rects().iter().any(inside) || newer_opaque.iter().any(inside);
        let read_later = newer_reads
            .iter()
            .any(|r| !r.intersect(&op.bbox).is_empty());
        if covered && !read_later {
            continue;
        }
        if op.opaque {
            newer_opaque.push(op.bbox);
        }
        if let Some(r) = op.reads {
            newer_reads.push(r);
        }
        kept.push(op);
    }
    kept.reverse();
    kept
}

#[derive(Default)]
struct State {
    /// Bumped whenever the primary surface is created or destroyed.
    generation: u64,
    /// The guest's monitor layout (`monitors_config_async`); empty = one head covering
    /// the surface.
    heads: Vec<Head>,
    /// Drawings not yet in the guest's copy of the surface (see `take_overlapping`).
    guest: Vec<Area>,
    /// Bumped when the layout (or the surface) changes.
    monitors_generation: u64,
    surface: Option<Framebuffer>,
    pending: HashMap<ViewerId, Region>,
    /// Drawings to forward, per viewer, oldest first.
    draws: HashMap<ViewerId, Vec<Forward>>,
    streams: Streams,
    video: Arc<VideoConfig>,
}

impl State {
    /// Areas that viewers no longer receive as video go out as pixels instead.
    fn uncover(&mut self, areas: impl IntoIterator<Item = (ViewerId, Area)>) {
        for (viewer, area) in areas {
            if let Some(region) = self.pending.get_mut(&viewer) {
                region.add(area);
            }
        }
    }
}

/// Called after damage is added (wakes the reactor).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone, Default)]
pub struct Screen {
    state: Arc<Mutex<State>>,
    notify: Arc<Mutex<Option<Notify>>>,
}

/// What a viewer must send next.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
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
    /// Pixels of damaged areas.
    /// Forwarded drawings to send first (they are older than the pixels), then damaged
    /// areas.
    Draw {
        draws: Vec<Forward>,
        parts: Vec<(Area, Vec<u8>)>,
    },
}

impl Screen {
    pub fn set_notify(&self, notify: Notify) {
        *self.notify.lock() = Some(notify);
    }

    fn wake(&self) {
        let notify = self.notify.lock().clone();
        if let Some(n) = notify {
            n();
        }
    }

    pub fn create_surface(&self, width: u32, height: u32) -> bool {
        let Some(fb) = Framebuffer::new(width, height) else {
            return false;
        };
        {
            let mut s = self.state.lock();
            s.generation += 1;
            s.monitors_generation += 1;
            s.surface = Some(fb);
            s.guest.clear();
            s.guest.push(Area::new(0, 0, width, height));
            let all = Area::new(0, 0, width, height);
            s.draws.values_mut().for_each(Vec::clear);
            for region in s.pending.values_mut() {
                region.clear();
                region.add(all);
            }
        }
        self.wake();
        true
    }

    pub fn destroy_surface(&self) {
        {
            let mut s = self.state.lock();
            if s.surface.take().is_some() {
                s.generation += 1;
            }
            s.pending.values_mut().for_each(Region::clear);
            s.draws.values_mut().for_each(Vec::clear);
        }
        self.wake();
    }

    /// Draws `src` at `dest` and marks the result damaged for every viewer.
    pub fn draw(&self, dest: Area, src: &[u8], src_stride: usize) {
        self.modify(|fb| Some(fb.blit(dest, src, src_stride)));
    }

    pub fn size(&self) -> Option<(u32, u32)> {
        self.state
            .lock()
            .surface
            .as_ref()
            .map(|f| (f.width, f.height))
    }

    pub fn add_viewer(&self, viewer: ViewerId) {
        self.add_viewer_with(viewer, Caps::default());
    }

    /// Adds a display client with its display caps (which codecs it decodes).
    pub fn add_viewer_with(&self, viewer: ViewerId, caps: Caps) {
        let mut s = self.state.lock();
        let mut region = Region::default();
        if let Some(fb) = &s.surface {
            region.add(fb.bounds());
        }
        s.pending.insert(viewer, region);
        s.draws.insert(viewer, Vec::new());
        s.streams.add_viewer(viewer, caps);
    }

    pub fn remove_viewer(&self, viewer: ViewerId) {
        let mut s = self.state.lock();
        s.pending.remove(&viewer);
        s.draws.remove(&viewer);
        s.streams.remove_viewer(viewer);
    }

    /// The next thing `viewer` must send, given the surface generation it last saw.
    pub fn next_update(&self, viewer: ViewerId, seen_generation: u64) -> Update {
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
            pending,
            draws,
            ..
        } = &mut *s;
        let (Some(fb), Some(region)) = (surface.as_ref(), pending.get_mut(&viewer)) else {
            return Update::Nothing;
        };
        let draws = draws
            .get_mut(&viewer)
            .map(std::mem::take)
            .unwrap_or_default();
        if region.is_empty() && draws.is_empty() {
            return Update::Nothing;
        }
        let draws = skip_covered(draws, region);
        // Taken together under the lock: every drawing is older than these pixels.
        let parts = region.take().into_iter().map(|a| (a, fb.read(a))).collect();
        Update::Draw { draws, parts }
    }

    /// Draws with `f` on the surface; the area it returns is damaged for every viewer.
    pub fn modify(&self, f: impl FnOnce(&mut Framebuffer) -> Option<Area>) {
        self.forward(None, f);
    }

    /// Takes what an update of `area` must write back into the guest's memory.
    pub fn take_guest_damage(&self, area: Area) -> Vec<Area> {
        take_overlapping(&mut self.state.lock().guest, area)
    }

    /// Sets the guest's monitor layout.
    pub fn set_monitors(&self, heads: Vec<Head>) {
        {
            let mut s = self.state.lock();
            s.heads = heads;
            s.monitors_generation += 1;
        }
        self.wake();
    }

    /// (generation, heads) of the current monitor layout.
    pub fn monitors(&self) -> (u64, Vec<Head>) {
        let s = self.state.lock();
        let heads = if s.heads.is_empty() {
            s.surface
                .as_ref()
                .map(|fb| {
                    vec![Head {
                        width: fb.width,
                        height: fb.height,
                        ..Head::default()
                    }]
                })
                .unwrap_or_default()
        } else {
            s.heads.clone()
        };
        (s.monitors_generation, heads)
    }

    /// Whether any viewer would receive a forwarded drawing (encoding one is wasted
    /// work otherwise).
    pub fn has_viewers(&self) -> bool {
        !self.state.lock().pending.is_empty()
    }

    /// Renders with `render`; then queues `op` for each viewer whose queue has room and
    /// whose copy of the pixels it reads is current, and gives the others (all of them
    /// without an op) the damage.
    pub fn forward(
        &self,
        op: Option<Forward>,
        render: impl FnOnce(&mut Framebuffer) -> Option<Area>,
    ) -> Option<Area> {
        let damage = {
            let mut s = self.state.lock();
            let State {
                surface,
                pending,
                draws,
                guest,
                streams,
                ..
            } = &mut *s;
            let fb = surface.as_mut()?;
            let damage = render(fb).filter(|a| !a.is_empty())?;
            note_guest(guest, damage);
            for (viewer, region) in pending.iter_mut() {
                let video = streams.owned(*viewer);
                match (&op, draws.get_mut(viewer)) {
                    (Some(op), Some(queue)) if can_queue(op, queue, region, &video) => {
                        queue.push(op.clone())
                    }
                    _ if video.is_empty() => region.add(damage),
                    _ => subtract(damage, &video)
                        .into_iter()
                        .for_each(|a| region.add(a)),
                }
            }
            damage
        };
        self.wake();
        Some(damage)
    }

    pub fn set_video(&self, video: Arc<VideoConfig>) {
        self.state.lock().video = video;
    }

    pub fn video(&self) -> Arc<VideoConfig> {
        self.state.lock().video.clone()
    }

    /// A copy of `area`'s pixels (a video frame), packed rows.
    pub fn capture(&self, area: Area) -> Option<Vec<u8>> {
        self.state.lock().surface.as_ref().map(|fb| fb.read(area))
    }

    /// A video frame of `area`: the screen itself, shared until the next drawing, when
    /// the area is most of it and the previous frame was encoded already (so that
    /// drawing will not have to copy the whole screen); else a copy into the buffer
    /// `buffer` gives (taken only then, so a reusable one is not thrown away).
    pub fn capture_frame(
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
    pub fn start_stream(&self, info: StreamInfo) {
        self.state.lock().streams.start(info);
        self.wake();
    }

    /// Ends a stream: its viewers are told, then get its area as lossless pixels.
    pub fn end_stream(&self, id: u32) {
        {
            let mut s = self.state.lock();
            let uncovered = s.streams.end(id);
            s.uncover(uncovered);
        }
        self.wake();
    }

    /// A client's preferred codec order: running streams end, so the next one is
    /// chosen with it (as spice-server does).
    pub fn set_codec_preference(&self, viewer: ViewerId, preference: Vec<u8>) {
        let ids = {
            let mut s = self.state.lock();
            s.streams.set_preference(viewer, preference);
            s.streams.active().iter().map(|i| i.id).collect::<Vec<_>>()
        };
        ids.into_iter().for_each(|id| self.end_stream(id));
    }

    /// The display caps and codec preference a new stream is chosen for.
    pub fn client_codecs(&self) -> Option<(Caps, Option<Vec<u8>>)> {
        self.state.lock().streams.client_codecs()
    }

    /// Ids of the streams running now.
    pub fn stream_ids(&self) -> Vec<u32> {
        self.state
            .lock()
            .streams
            .active()
            .iter()
            .map(|s| s.id)
            .collect()
    }

    /// An encoded frame for the viewers of its stream.
    pub fn deliver_frame(&self, frame: &EncodedFrame) {
        {
            let mut s = self.state.lock();
            let uncovered = s.streams.deliver(frame);
            s.uncover(uncovered);
        }
        self.wake();
    }

    /// What `viewer` must send about video before anything else; frames only when it
    /// has `room` for them.
    pub fn next_video(&self, viewer: ViewerId, room: bool) -> Vec<VideoUpdate> {
        self.state.lock().streams.next(viewer, room)
    }

    /// A client's stream report: feeds the stream's rate control and the playout delay;
    /// a client that cannot decode gets pixels from now on.
    pub fn stream_report(&self, viewer: ViewerId, report: &StreamReport) {
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
    pub fn with_surface<R>(&self, f: impl FnOnce(&Framebuffer) -> R) -> Option<R> {
        self.state.lock().surface.as_ref().map(f)
    }

    /// A copy of the whole surface (tests).
    pub fn snapshot(&self) -> Option<Framebuffer> {
        self.state.lock().surface.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blit_clips_to_the_surface() {
        let mut fb = Framebuffer::new(4, 4).unwrap();
        let src = vec![0xAB; 3 * 3 * 4];
        let drawn = fb.blit(Area::new(2, 2, 5, 5), &src, 12);
        assert_eq!(drawn, Area::new(2, 2, 4, 4));
        assert_eq!(fb.read(Area::new(2, 2, 4, 4)), vec![0xAB; 16]);
        assert_eq!(fb.read(Area::new(0, 0, 2, 2)), vec![0; 16]);
    }

    #[test]
    fn short_source_draws_what_it_has() {
        let mut fb = Framebuffer::new(4, 4).unwrap();
        fb.blit(Area::new(0, 0, 4, 4), &[1u8; 16], 16);
        assert_eq!(fb.read(Area::new(0, 0, 4, 1)), vec![1; 16]);
        assert_eq!(fb.read(Area::new(0, 1, 4, 2)), vec![0; 16]);
    }

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
    fn refuses_absurd_surfaces() {
        assert!(Framebuffer::new(0, 10).is_none());
        assert!(Framebuffer::new(MAX_DIMENSION + 1, 10).is_none());
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
        let Update::Draw { parts, .. } = screen.next_update(1, generation) else {
            panic!()
        };
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, Area::new(0, 0, 8, 8));
        assert_eq!(screen.next_update(1, generation), Update::Nothing);
        screen.draw(Area::new(1, 1, 3, 3), &[9u8; 16], 8);
        screen.draw(Area::new(2, 2, 4, 4), &[9u8; 16], 8);
        let Update::Draw { parts, .. } = screen.next_update(1, generation) else {
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
}
