//! One display client's share of the screen: the region it has not been sent yet, and
//! the drawings queued for it to repeat itself.
//!
//! Keeping damage as a bounded region instead of a queue of updates means a slow client
//! costs no more memory than one screen, and always gets the newest pixels.

use crate::canvas::framebuffer::Framebuffer;
use crate::display::draw::DrawMessage;
use crate::geometry::{subtract, Area, Region};
use std::sync::Arc;

/// A drawing the client repeats itself instead of receiving its pixels.
///
/// Queued drawings go out before the pixels of the viewer's damaged areas, which are
/// read when sent and so are newer than any of them. That keeps every ordering correct:
/// a drawing that reads its own destination where the client is stale writes only
/// there, and those pixels are overwritten by the damage sent after it; a drawing that
/// reads elsewhere (`reads`, COPY_BITS's source) is queued only for viewers whose copy
/// of that area is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    pub msg: Arc<DrawMessage>,
    /// The pixels it may write.
    pub bbox: Area,
    /// Surface pixels it reads besides its destination.
    pub reads: Option<Area>,
    /// It replaces every pixel of `bbox` without reading them, so anything older that
    /// it covers need not be sent.
    pub opaque: bool,
    /// Its image may reach a client on a slow link lossy (JPEG): a copy that puts, an
    /// alpha blend (see `Viewer::lossy`).
    pub lossy_source: bool,
}

/// Most pixels taken at once: a big update (a new client's first picture) goes out in
/// slices of whole rows, so video and smaller updates are not stuck behind all of it on
/// a slow link, and damage that a stream then covers is never sent as pixels.
pub(crate) const MAX_TAKE_PIXELS: u64 = 64 * 1024;

/// Drawings queued per viewer before they are folded into plain damage, and the bytes
/// they may hold.
const MAX_QUEUED_DRAWS: usize = 256;
const MAX_QUEUED_BYTES: usize = 16 << 20;

/// What one viewer has not been sent yet.
#[derive(Default)]
pub(super) struct Viewer {
    damage: Region,
    /// Where the next slice of damage starts (slices go top to bottom).
    next_row: u32,
    /// Drawings to forward, oldest first.
    queue: Vec<Forward>,
    /// The client decodes LZ4 images (`SPICE_DISPLAY_CAP_LZ4_COMPRESSION`); drawings
    /// carrying one reach the others as pixels.
    pub(super) lz4: bool,
    /// Its display channel may send photographs as JPEG (a slow link).
    pub(super) lossy_images: bool,
    /// Where the client's surface may hold lossy pixels (JPEG images, and what drawings
    /// made of them), over-approximated.
    ///
    /// C (dcc-send.cpp) keeps the same region and, when a drawing reads a lossy area,
    /// resends that area lossless before the drawing. We keep the simpler rule the video
    /// areas follow: a drawing that reads lossy pixels (its source, or its destination
    /// when it is not opaque) is not forwarded to this client; its box goes out as
    /// pixels, read from our exact surface (a photograph among them may go JPEG again,
    /// the picture's own approximation, never an error built on an earlier one).
    /// COPY_BITS is the exception: it moves pixels as they are, so it is forwarded and
    /// its destination joins the region. Marks are made when pending work is taken (in
    /// the order the client applies it), conservatively: every area that may go lossy
    /// is marked, and the display channel clears the pixel areas it then sent lossless.
    lossy: Lossy,
}

/// What a viewer sends next: forwarded drawings (older than the pixels), then the
/// pixels of a slice of its damaged areas.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub draws: Vec<Forward>,
    pub parts: Vec<(Area, Vec<u8>)>,
    /// The slice reached the bottom of what was damaged: after a new surface, the
    /// client's first picture is complete.
    pub picture_complete: bool,
}

impl Viewer {
    /// Forgets everything queued; `all` (the whole surface, if any) is damaged.
    pub(super) fn reset(&mut self, all: Option<Area>) {
        self.queue.clear();
        self.damage.clear();
        self.next_row = 0;
        self.lossy.clear();
        if let Some(all) = all {
            self.damage.add(all);
        }
    }

    /// `damage` was drawn, by `op` when the client may repeat it; `video` are the
    /// areas this viewer receives as video.
    pub(super) fn drawn(&mut self, op: Option<&Forward>, damage: Area, video: &[Area]) {
        match op {
            Some(op)
                if (self.lz4 || !op.msg.needs_lz4())
                    && can_queue(op, &self.queue, &self.damage, video)
                    && !self.reads_lossy(op) =>
            {
                if self.moves_lossy(op) {
                    // Marked now too, so drawings queued before the next take see it.
                    self.lossy.add(op.bbox);
                }
                self.queue.push(op.clone())
            }
            _ if video.is_empty() => self.damage.add(damage),
            _ => subtract(damage, video)
                .into_iter()
                .for_each(|a| self.damage.add(a)),
        }
    }

    /// A batch drew `changed`, of which `copy` (a COPY_BITS) repeats a part: queued
    /// when this viewer's copy of its source is current, the rest of `changed` then
    /// being damage; otherwise all of `changed` is.
    pub(super) fn scrolled(&mut self, copy: &Forward, changed: &[Area], video: &[Area]) {
        if !can_queue(copy, &self.queue, &self.damage, video) {
            changed.iter().for_each(|&a| self.drawn(None, a, video));
            return;
        }
        self.queue.push(copy.clone());
        for &a in changed {
            for rest in subtract(a, &[copy.bbox]) {
                self.drawn(None, rest, video);
            }
        }
    }

    /// `area` must go out as pixels (it is no longer sent as video).
    pub(super) fn uncover(&mut self, area: Area) {
        self.damage.add(area);
    }

    /// Takes what is pending, reading a slice of the damaged pixels from `fb` (so every
    /// drawing taken is older than them); None when nothing is. `video`: the areas this
    /// viewer receives as video; damage there waits for the stream's next frame.
    pub(super) fn take(&mut self, fb: &Framebuffer, video: &[Area]) -> Option<Pending> {
        self.damage.remove(video);
        let draws = std::mem::take(&mut self.queue);
        if self.damage.is_empty() && draws.is_empty() {
            return None;
        }
        let draws = skip_covered(draws, &self.damage);
        for op in &draws {
            if self.moves_lossy(op) || (op.lossy_source && self.lossy_images) {
                self.lossy.add(op.bbox);
            } else if op.opaque {
                self.lossy.remove(op.bbox);
            }
        }
        let slice = self.damage.take_rows(MAX_TAKE_PIXELS, self.next_row);
        self.next_row = slice.next_row;
        let parts: Vec<(Area, Vec<u8>)> =
            slice.areas.into_iter().map(|a| (a, fb.read(a))).collect();
        for (area, _) in &parts {
            if self.lossy_images {
                self.lossy.add(*area);
            } else {
                self.lossy.remove(*area);
            }
        }
        Some(Pending {
            draws,
            parts,
            picture_complete: slice.to_the_bottom,
        })
    }

    /// `area` went out lossless after all (it was marked lossy when taken).
    pub(super) fn sent_lossless(&mut self, area: Area) {
        self.lossy.remove(area);
    }

    /// Whether `op` reads pixels that may be lossy on the client (COPY_BITS aside).
    fn reads_lossy(&self, op: &Forward) -> bool {
        if op.msg.msg_type == COPY_BITS {
            return false;
        }
        op.reads.is_some_and(|r| self.lossy.touches(&r))
            || (!op.opaque && self.lossy.touches(&op.bbox))
    }

    /// A COPY_BITS from lossy pixels: its destination becomes lossy.
    fn moves_lossy(&self, op: &Forward) -> bool {
        op.msg.msg_type == COPY_BITS && op.reads.is_some_and(|r| self.lossy.touches(&r))
    }
}

const COPY_BITS: u16 = crate::proto::msg::display::COPY_BITS;

/// Most rectangles `Lossy` keeps before it becomes their bounding box.
const MAX_LOSSY_RECTS: usize = 64;

/// Disjoint rectangles that may cover more than the truth, never less: removing an area
/// removes exactly it (a `Region` merges touching rectangles, which would bring it back).
#[derive(Default)]
struct Lossy {
    rects: Vec<Area>,
}

impl Lossy {
    fn touches(&self, area: &Area) -> bool {
        self.rects.iter().any(|r| !r.intersect(area).is_empty())
    }

    fn add(&mut self, area: Area) {
        if area.is_empty() {
            return;
        }
        let pieces = subtract(area, &self.rects);
        self.rects.extend(pieces);
        self.bound();
    }

    fn remove(&mut self, area: Area) {
        if !self.touches(&area) {
            return;
        }
        for rect in std::mem::take(&mut self.rects) {
            self.rects.extend(subtract(rect, &[area]));
        }
        self.bound();
    }

    /// Too many pieces become their bounding box.
    fn bound(&mut self) {
        if self.rects.len() > MAX_LOSSY_RECTS {
            let all = self.rects.iter().fold(self.rects[0], |a, r| a.union(r));
            self.rects = vec![all];
        }
    }

    fn clear(&mut self) {
        self.rects.clear();
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.rects.is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(bbox: Area, reads: Option<Area>, opaque: bool) -> Forward {
        Forward {
            msg: Arc::new(DrawMessage {
                msg_type: 1,
                body: vec![0; 8],
                images: Vec::new(),
            }),
            bbox,
            reads,
            opaque,
            lossy_source: false,
        }
    }

    fn taken(v: &mut Viewer) -> (usize, Vec<Area>) {
        let fb = Framebuffer::new(8, 8).unwrap();
        v.take(&fb, &[])
            .map(|p| (p.draws.len(), p.parts.into_iter().map(|p| p.0).collect()))
            .unwrap_or_default()
    }

    #[test]
    fn damage_under_a_viewer_s_video_is_left_to_the_stream() {
        let mut v = Viewer::default();
        v.reset(Some(Area::new(0, 0, 8, 8)));
        let fb = Framebuffer::new(8, 8).unwrap();
        let video = [Area::new(0, 0, 4, 8)];
        let taken = v.take(&fb, &video).expect("the rest as pixels");
        let areas: Vec<Area> = taken.parts.iter().map(|p| p.0).collect();
        assert_eq!(areas, vec![Area::new(4, 0, 8, 8)]);
        assert!(taken.picture_complete);
        assert!(
            v.take(&fb, &video).is_none(),
            "the stream's area is not sent later"
        );
    }

    #[test]
    fn a_drawing_is_queued_unless_it_reads_stale_pixels() {
        let mut v = Viewer::default();
        let dest = Area::new(0, 4, 8, 8);
        let copy = op(dest, Some(Area::new(0, 0, 8, 4)), true);
        v.drawn(Some(&copy), dest, &[]);
        assert_eq!(taken(&mut v), (1, vec![]));
        v.drawn(None, Area::new(1, 1, 2, 2), &[]);
        v.drawn(Some(&copy), dest, &[]);
        assert_eq!(
            taken(&mut v),
            (0, vec![Area::new(1, 1, 2, 2), dest]),
            "its source is stale: pixels"
        );
        assert_eq!(taken(&mut v), (0, vec![]));
    }

    #[test]
    fn a_drawing_carrying_lz4_reaches_a_client_without_the_cap_as_pixels() {
        let dest = Area::new(0, 0, 4, 4);
        let mut with_lz4 = op(dest, None, true);
        with_lz4.msg = Arc::new(DrawMessage::with_one_lz4_image(1, false));
        let mut v = Viewer::default();
        v.drawn(Some(&with_lz4), dest, &[]);
        assert_eq!(taken(&mut v), (0, vec![dest]), "no LZ4 cap: pixels");
        let mut recodable = op(dest, None, true);
        recodable.msg = Arc::new(DrawMessage::with_one_lz4_image(1, true));
        v.drawn(Some(&recodable), dest, &[]);
        assert_eq!(
            taken(&mut v),
            (1, vec![]),
            "its image is re-encoded for this client"
        );
        v.drawn(Some(&op(dest, None, true)), dest, &[]);
        assert_eq!(
            taken(&mut v),
            (1, vec![]),
            "a drawing without LZ4 goes as is"
        );
        let mut v = Viewer {
            lz4: true,
            ..Viewer::default()
        };
        v.drawn(Some(&with_lz4), dest, &[]);
        assert_eq!(taken(&mut v), (1, vec![]));
    }

    #[test]
    fn video_areas_are_cut_out_of_damage_and_never_queued() {
        let mut v = Viewer::default();
        let video = [Area::new(0, 0, 4, 8)];
        v.drawn(
            Some(&op(Area::new(2, 0, 6, 2), None, false)),
            Area::new(2, 0, 6, 2),
            &video,
        );
        assert_eq!(taken(&mut v), (0, vec![Area::new(4, 0, 6, 2)]));
        v.uncover(video[0]);
        assert_eq!(taken(&mut v), (0, vec![video[0]]));
    }

    #[test]
    fn drawings_reading_lossy_pixels_become_pixels_and_copy_bits_moves_lossiness() {
        let mut v = Viewer {
            lossy_images: true,
            ..Viewer::default()
        };
        let photo = Area::new(0, 0, 4, 4);
        v.drawn(None, photo, &[]);
        assert_eq!(taken(&mut v), (0, vec![photo]));
        // Sent as pixels that may be JPEG: marked lossy.
        let xor = op(Area::new(2, 2, 6, 6), None, false);
        v.drawn(Some(&xor), xor.bbox, &[]);
        assert_eq!(taken(&mut v), (0, vec![xor.bbox]), "reads lossy pixels");
        // COPY_BITS moves them as they are: forwarded, its destination lossy now.
        let mut scroll = op(Area::new(0, 6, 4, 8), Some(Area::new(0, 0, 4, 2)), true);
        Arc::make_mut(&mut scroll.msg).msg_type = COPY_BITS;
        v.lossy_images = false;
        v.drawn(Some(&scroll), scroll.bbox, &[]);
        assert_eq!(taken(&mut v), (1, vec![]));
        let reader = op(Area::new(0, 7, 1, 8), None, false);
        v.drawn(Some(&reader), reader.bbox, &[]);
        assert_eq!(taken(&mut v), (0, vec![reader.bbox]));
        // Lossless pixels and opaque drawings heal what they cover.
        v.drawn(Some(&reader), reader.bbox, &[]);
        assert_eq!(taken(&mut v), (1, vec![]), "sent lossless last time");
        let fill = op(Area::new(0, 0, 8, 8), None, true);
        v.drawn(Some(&fill), fill.bbox, &[]);
        assert_eq!(taken(&mut v), (1, vec![]));
        v.drawn(Some(&xor), xor.bbox, &[]);
        assert_eq!(taken(&mut v), (1, vec![]), "nothing lossy left");
    }

    #[test]
    fn pixels_sent_lossless_after_all_are_cleared_and_lan_viewers_mark_nothing() {
        let mut v = Viewer {
            lossy_images: true,
            ..Viewer::default()
        };
        let area = Area::new(0, 0, 8, 2);
        v.drawn(None, area, &[]);
        taken(&mut v);
        v.sent_lossless(area);
        let xor = op(area, None, false);
        v.drawn(Some(&xor), area, &[]);
        assert_eq!(taken(&mut v), (1, vec![]));
        let mut lan = Viewer::default();
        let mut copy = op(area, None, true);
        copy.lossy_source = true;
        lan.drawn(Some(&copy), area, &[]);
        lan.drawn(None, Area::new(0, 4, 8, 8), &[]);
        taken(&mut lan);
        assert!(lan.lossy.is_empty());
        // A slow link's copy with a photograph may be lossy: marked.
        v.drawn(Some(&copy), area, &[]);
        taken(&mut v);
        v.drawn(Some(&xor), area, &[]);
        assert_eq!(taken(&mut v), (0, vec![area]));
    }

    #[test]
    fn reset_forgets_the_queue_and_damages_everything() {
        let mut v = Viewer::default();
        v.drawn(
            Some(&op(Area::new(0, 0, 1, 1), None, false)),
            Area::new(0, 0, 1, 1),
            &[],
        );
        v.reset(Some(Area::new(0, 0, 8, 8)));
        assert_eq!(taken(&mut v), (0, vec![Area::new(0, 0, 8, 8)]));
        v.drawn(
            Some(&op(Area::new(0, 0, 1, 1), None, false)),
            Area::new(0, 0, 1, 1),
            &[],
        );
        v.reset(None);
        assert!(v.take(&Framebuffer::new(8, 8).unwrap(), &[]).is_none());
    }
}
