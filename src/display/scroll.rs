//! Scroll detection on the framebuffer path (`-vga std`, virtio, bochs).
//!
//! There QEMU hands us changed rectangles only (plain copies of its mirror, in 32-pixel
//! wide column strips), so a document scrolling a line costs the whole scrolled area
//! again. Like x11vnc's scrollcopyrect, a batch of plain copies whose new pixels equal
//! the old ones shifted vertically becomes one `COPY_BITS` (the client moves what it
//! has) plus the rows that are really new.
//!
//! Cheap by construction: a few strips' rows are hashed against the old rows around them
//! to vote for a shift (or the last shift is tried first), and only a shift that wins is
//! checked, exactly, pixel by pixel over the batch's area. A hash collision can cost a
//! failed check, never a wrong picture.

use crate::canvas::framebuffer::{Framebuffer, BYTES_PER_PIXEL};
use crate::display::draw;
use crate::display::Forward;
use crate::geometry::{Area, Rect};
use crate::proto::display::ROPD_OP_PUT;
use crate::qxl::draw::{Draw, Op};
use crate::qxl::image::Image;
use std::collections::HashMap;
use std::sync::Arc;

/// Farthest shift looked for, in rows (a page of a document moves less than this).
const MAX_SHIFT: u32 = 384;
/// Strips whose rows vote for a shift.
const PROBES: usize = 4;
/// Widest part of a strip hashed per row.
const PROBE_WIDTH: u32 = 64;
/// Shifts checked exactly per batch.
const CANDIDATES: usize = 3;
/// Smallest copy worth a message: fewer changed pixels go as pixels.
const MIN_COPY_PIXELS: u64 = 1024;
/// Largest batch area examined (its old pixels are kept during the batch).
const MAX_AREA_PIXELS: u64 = 4096 * 4096;
/// Width of the cells the exact check decides on (QEMU's column strips).
const CELL: u32 = 32;
/// Old rows sharing one hash beyond which the hash votes no more (a repeated pattern
/// says nothing about the shift).
const MAX_SAME_HASH: usize = 8;

/// One plain copy of new pixels: `rows` holds `dest.height()` rows of `dest.width()`
/// xRGB pixels.
#[derive(Clone, Copy)]
pub(crate) struct NewPixels<'a> {
    pub dest: Area,
    pub rows: &'a [u32],
}

impl NewPixels<'_> {
    fn row(&self, r: u32, x0: u32, x1: u32) -> &[u32] {
        let w = self.dest.width() as usize;
        let start = r as usize * w + (x0 - self.dest.left) as usize;
        &self.rows[start..start + (x1 - x0) as usize]
    }
}

/// The new pixels of `d` when it is an unclipped, unscaled `OP_PUT` copy of a whole
/// bitmap onto the primary surface: what QEMU's simple display sends for each change.
pub(crate) fn plain_copy(d: &Draw) -> Option<NewPixels<'_>> {
    let Op::Copy {
        src,
        rop: ROPD_OP_PUT,
        mask: None,
    } = &d.op
    else {
        return None;
    };
    let Image::Pixels(px) = &src.image else {
        return None;
    };
    let dest = d.bbox.to_area()?;
    let (w, h) = (dest.width(), dest.height());
    let whole = src.area
        == Rect {
            left: 0,
            top: 0,
            right: w as i32,
            bottom: h as i32,
        };
    let fits = px.width == w && px.height >= h && px.data.len() >= w as usize * h as usize;
    (d.surface_id == 0 && d.clip.is_none() && whole && fits && !dest.is_empty()).then(|| {
        NewPixels {
            dest,
            rows: &px.data[..w as usize * h as usize],
        }
    })
}

/// A vertical scroll found in a batch: `dest` takes the old pixels `dy` rows below it
/// (above it when negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scroll {
    pub dest: Area,
    pub dy: i32,
}

impl Scroll {
    /// Where the moved pixels were.
    pub(crate) fn source(&self) -> Area {
        let top = (self.dest.top as i64 + self.dy as i64) as u32;
        Area::new(
            self.dest.left,
            top,
            self.dest.right,
            top + self.dest.height(),
        )
    }

    /// The `COPY_BITS` clients repeat, as a forwarded drawing.
    pub(crate) fn forward(&self) -> Option<Forward> {
        let source = self.source();
        let d = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: Rect::from(self.dest),
            clip: None,
            op: Op::CopyBits {
                x: source.left as i32,
                y: source.top as i32,
            },
        };
        let msg = draw::encode(0, &d).ok()?;
        Some(Forward {
            msg: Arc::new(msg),
            bbox: self.dest,
            reads: Some(source),
            opaque: true,
            lossy_source: false,
        })
    }
}

/// Per screen: the last shift found, tried first next time (a document keeps scrolling
/// by the same step).
#[derive(Debug, Default)]
pub(crate) struct Detector {
    last_dy: Option<i32>,
}

/// What a batch needs kept from before it is drawn to be checked after.
pub(crate) struct Before {
    area: Area,
    pixels: Vec<u8>,
    candidates: Vec<i32>,
}

impl Detector {
    /// Before drawing `copies` on `fb`: the shifts they may be, and the old pixels of
    /// their area to check them against; None when nothing looks scrolled.
    pub(crate) fn before(&self, fb: &Framebuffer, copies: &[NewPixels]) -> Option<Before> {
        let area = copies
            .iter()
            .map(|c| c.dest.intersect(&fb.bounds()))
            .filter(|a| !a.is_empty())
            .reduce(|a, b| a.union(&b))?;
        let changed: u64 = copies.iter().map(|c| c.dest.pixels()).sum();
        if changed < MIN_COPY_PIXELS || area.pixels() > MAX_AREA_PIXELS || area.height() < 2 {
            return None;
        }
        let candidates = self.candidates(fb, copies);
        if candidates.is_empty() {
            return None;
        }
        let mut pixels = Vec::new();
        pixels
            .try_reserve_exact(area.pixels() as usize * BYTES_PER_PIXEL)
            .ok()?;
        fb.read_into(area, &mut pixels);
        Some(Before {
            area,
            pixels,
            candidates,
        })
    }

    /// After the batch is drawn: the largest area whose new pixels are old ones shifted,
    /// checked exactly, if it is worth a copy.
    pub(crate) fn after(
        &mut self,
        fb: &Framebuffer,
        before: &Before,
        changed: &[Area],
    ) -> Option<Scroll> {
        let found = before
            .candidates
            .iter()
            .filter_map(|&dy| best_area(fb, before, changed, dy))
            .max_by_key(|&(_, n)| n)
            .map(|(s, _)| s);
        if let Some(s) = found {
            self.last_dy = Some(s.dy);
        }
        found
    }

    /// Shifts worth checking: the last one if the largest strip agrees, then those the
    /// strips' row hashes vote for.
    fn candidates(&self, fb: &Framebuffer, copies: &[NewPixels]) -> Vec<i32> {
        let mut probes: Vec<&NewPixels> = copies.iter().filter(|c| c.dest.height() >= 2).collect();
        probes.sort_by_key(|c| std::cmp::Reverse(c.dest.pixels()));
        probes.truncate(PROBES);
        let mut out = Vec::new();
        if let (Some(dy), Some(first)) = (self.last_dy, probes.first()) {
            if agrees(fb, first, dy) {
                out.push(dy);
            }
        }
        let mut votes: HashMap<i32, u32> = HashMap::new();
        let mut most_voters = 0u32;
        for p in &probes {
            most_voters = most_voters.max(vote(fb, p, &mut votes));
        }
        let mut ranked: Vec<(i32, u32)> = votes.into_iter().collect();
        ranked.sort_by_key(|&(dy, n)| (std::cmp::Reverse(n), dy.unsigned_abs()));
        // A shift a quarter of one strip's rows agree on (other strips may be no scroll).
        let needed = (most_voters / 4).max(2);
        for (dy, n) in ranked {
            if out.len() >= CANDIDATES || n < needed {
                break;
            }
            if !out.contains(&dy) {
                out.push(dy);
            }
        }
        out
    }
}

/// Columns of a strip that vote: at most `PROBE_WIDTH` from its middle.
fn probe_columns(dest: Area) -> (u32, u32) {
    let w = dest.width().min(PROBE_WIDTH);
    let x0 = dest.left + (dest.width() - w) / 2;
    (x0, x0 + w)
}

/// A surface row's pixels in `x0..x1`.
fn fb_row(fb: &Framebuffer, y: u32, x0: u32, x1: u32) -> &[u8] {
    let start = y as usize * fb.stride() + x0 as usize * BYTES_PER_PIXEL;
    &fb.pixels()[start..start + (x1 - x0) as usize * BYTES_PER_PIXEL]
}

fn same_pixels(new: &[u32], old: &[u8]) -> bool {
    new.len() * BYTES_PER_PIXEL == old.len()
        && new
            .iter()
            .zip(old.chunks_exact(BYTES_PER_PIXEL))
            .all(|(n, o)| n & 0x00ff_ffff == u32::from_le_bytes([o[0], o[1], o[2], o[3]]))
}

/// Whether most of `probe`'s rows equal the surface's rows `dy` away.
fn agrees(fb: &Framebuffer, probe: &NewPixels, dy: i32) -> bool {
    let (x0, x1) = probe_columns(probe.dest);
    let mut hits = 0;
    for r in 0..probe.dest.height() {
        let y = probe.dest.top as i64 + r as i64 + dy as i64;
        if y < 0 || y >= fb.height as i64 {
            continue;
        }
        hits += u32::from(same_pixels(
            probe.row(r, x0, x1),
            fb_row(fb, y as u32, x0, x1),
        ));
    }
    2 * hits > probe.dest.height()
}

/// Hash of a row of xRGB pixels; None for a uniform row (it matches anywhere).
fn row_hash(pixels: impl Iterator<Item = u32>) -> Option<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut first = None;
    let mut uniform = true;
    for p in pixels {
        let p = p & 0x00ff_ffff;
        match first {
            None => first = Some(p),
            Some(f) => uniform &= f == p,
        }
        h = (h ^ u64::from(p)).wrapping_mul(0x0100_0000_01b3);
    }
    (!uniform).then_some(h)
}

fn old_row_hash(fb: &Framebuffer, y: u32, x0: u32, x1: u32) -> Option<u64> {
    row_hash(
        fb_row(fb, y, x0, x1)
            .chunks_exact(BYTES_PER_PIXEL)
            .map(|o| u32::from_le_bytes([o[0], o[1], o[2], o[3]])),
    )
}

/// Adds `probe`'s votes: each of its rows votes for every shift to an old row of the
/// same hash nearby. Returns how many rows voted.
fn vote(fb: &Framebuffer, probe: &NewPixels, votes: &mut HashMap<i32, u32>) -> u32 {
    let (x0, x1) = probe_columns(probe.dest);
    let top = probe.dest.top.saturating_sub(MAX_SHIFT);
    let bottom = probe.dest.bottom.saturating_add(MAX_SHIFT).min(fb.height);
    let mut old: HashMap<u64, Vec<u32>> = HashMap::new();
    for y in top..bottom {
        if let Some(h) = old_row_hash(fb, y, x0, x1) {
            old.entry(h).or_default().push(y);
        }
    }
    let mut voters = 0;
    for r in 0..probe.dest.height() {
        let Some(h) = row_hash(probe.row(r, x0, x1).iter().copied()) else {
            continue;
        };
        voters += 1;
        let y = probe.dest.top + r;
        let Some(rows) = old.get(&h).filter(|rows| rows.len() <= MAX_SAME_HASH) else {
            continue;
        };
        for &oy in rows {
            if oy != y {
                *votes.entry(oy as i32 - y as i32).or_default() += 1;
            }
        }
    }
    voters
}

/// The cells (rows x `CELL`-wide columns) of the batch's area whose new pixels equal
/// the old ones `dy` rows away, and the largest rectangle of them around the changed
/// cells that do; with the changed pixels it covers.
fn best_area(
    fb: &Framebuffer,
    before: &Before,
    changed: &[Area],
    dy: i32,
) -> Option<(Scroll, u64)> {
    let area = before.area;
    // Cell columns: absolute CELL-aligned, clipped to the area.
    let first = area.left / CELL;
    let cols: Vec<(u32, u32)> = (first..=(area.right - 1) / CELL)
        .map(|c| ((c * CELL).max(area.left), ((c + 1) * CELL).min(area.right)))
        .collect();
    let (w, h) = (cols.len(), area.height() as usize);
    let stride = area.width() as usize * BYTES_PER_PIXEL;
    let old_row = |y: u32, x0: u32, x1: u32| -> &[u8] {
        if (area.top..area.bottom).contains(&y) {
            let start =
                (y - area.top) as usize * stride + (x0 - area.left) as usize * BYTES_PER_PIXEL;
            &before.pixels[start..start + (x1 - x0) as usize * BYTES_PER_PIXEL]
        } else {
            fb_row(fb, y, x0, x1)
        }
    };
    let mut matches = vec![false; w * h];
    let mut is_changed = vec![false; w * h];
    for c in changed {
        let c = c.intersect(&area);
        for y in c.top..c.bottom {
            for (i, &(x0, x1)) in cols.iter().enumerate() {
                if x0 < c.right && c.left < x1 {
                    is_changed[(y - area.top) as usize * w + i] = true;
                }
            }
        }
    }
    // Changed cells that match bound where the copy may lie.
    let (mut lo_r, mut hi_r, mut lo_c, mut hi_c) = (usize::MAX, 0, usize::MAX, 0);
    for r in 0..h {
        let y = area.top + r as u32;
        let sy = y as i64 + dy as i64;
        if sy < 0 || sy >= fb.height as i64 {
            continue;
        }
        for (i, &(x0, x1)) in cols.iter().enumerate() {
            let m = fb_row(fb, y, x0, x1) == old_row(sy as u32, x0, x1);
            matches[r * w + i] = m;
            if m && is_changed[r * w + i] {
                (lo_r, hi_r) = (lo_r.min(r), hi_r.max(r + 1));
                (lo_c, hi_c) = (lo_c.min(i), hi_c.max(i + 1));
            }
        }
    }
    if lo_r >= hi_r {
        return None;
    }
    let (r0, r1, c0, c1) = largest_rectangle(&matches, w, (lo_r, hi_r), (lo_c, hi_c))?;
    let (top, bottom) = (area.top + r0 as u32, area.top + r1 as u32);
    // Cells at the scrolled area's edges also hold what stayed: take their columns
    // that moved too.
    let column_moved = |x: u32| {
        (top..bottom).all(|y| {
            let sy = (y as i64 + dy as i64) as u32;
            fb_row(fb, y, x, x + 1) == old_row(sy, x, x + 1)
        })
    };
    let mut left = cols[c0].0;
    while left > area.left && column_moved(left - 1) {
        left -= 1;
    }
    let mut right = cols[c1 - 1].1;
    while right < area.right && column_moved(right) {
        right += 1;
    }
    let dest = Area::new(left, top, right, bottom);
    let covered: u64 = changed.iter().map(|c| c.intersect(&dest).pixels()).sum();
    (covered >= MIN_COPY_PIXELS).then_some((Scroll { dest, dy }, covered))
}

/// The largest all-true rectangle of `cells` (rows of `w`) within rows `rows` and
/// columns `cols`, as (row0, row1, col0, col1), by cell count.
fn largest_rectangle(
    cells: &[bool],
    w: usize,
    rows: (usize, usize),
    cols: (usize, usize),
) -> Option<(usize, usize, usize, usize)> {
    let n = cols.1 - cols.0;
    let mut heights = vec![0usize; n];
    let mut best: Option<(usize, (usize, usize, usize, usize))> = None;
    let mut stack: Vec<usize> = Vec::with_capacity(n + 1);
    for r in rows.0..rows.1 {
        for (i, hgt) in heights.iter_mut().enumerate() {
            *hgt = if cells[r * w + cols.0 + i] {
                *hgt + 1
            } else {
                0
            };
        }
        // Largest rectangle in the histogram ending at row r.
        stack.clear();
        for i in 0..=n {
            let cur = if i < n { heights[i] } else { 0 };
            while let Some(&top) = stack.last() {
                if heights[top] <= cur {
                    break;
                }
                stack.pop();
                let left = stack.last().map_or(0, |&l| l + 1);
                let size = heights[top] * (i - left);
                if best.is_none_or(|(b, _)| size > b) {
                    best = Some((
                        size,
                        (r + 1 - heights[top], r + 1, cols.0 + left, cols.0 + i),
                    ));
                }
            }
            stack.push(i);
        }
    }
    best.map(|(_, rect)| rect)
}

#[cfg(test)]
mod tests;
