//! Finds video on the screen from damage alone, so it works whatever the guest sends:
//! the QXL driver's one image per frame, or QEMU's framebuffer updates split into many
//! rectangles (where spice-server never streams).
//!
//! The screen is a grid of cells; each remembers how many distinct frames touched it in
//! the last window. Cells touched at video rates are "hot"; the largest dense cluster
//! of hot cells, refined to the exact damage rectangles inside it, is the candidate.
//! A candidate that holds still for a moment becomes a stream; a stream ends when its
//! area stops changing, and moves or resizes with its candidate.

use crate::geometry::Area;

/// Side of a grid cell, in pixels.
const CELL: u32 = 16;
/// Length of the window the hit counts cover (ms).
const WINDOW_MS: u32 = 500;
/// Frames per window for a cell to be hot (8 per 500 ms = 16 fps; a 10 fps video's
/// cells reach 5 in a window, see below).
const HOT_HITS: u16 = 5;
/// A hot cell not touched for this long has gone cold (ms): video touches its cells
/// every frame.
const COLD_MS: u32 = 250;
/// Two touches closer than this are one frame (QEMU's update of one frame arrives as
/// many rectangles).
const SAME_FRAME_MS: u32 = 8;
/// Smallest stream, as spice-server's `RED_STREAM_MIN_SIZE` (96x96).
const MIN_SIDE: u32 = 96;
const MIN_PIXELS: u64 = 96 * 96;
/// Part of a cluster's box its hot cells must fill (two distant blinking cursors are
/// not a video between them).
const MIN_DENSITY: f64 = 0.5;
/// How long a candidate must hold still before it streams (ms).
const SETTLE_MS: u32 = 250;
/// A stream whose area has not changed for this long ends (ms).
pub(crate) const IDLE_END_MS: u32 = 800;
/// Overlap (intersection over union) for two boxes to be the same place.
const SAME_PLACE: f64 = 0.8;
/// A live stream keeps its area while the hot box lies inside it and fills at least
/// this part of it: a video whose dark or still parts pause, or a framebuffer updated in
/// bands when the host is busy, must not restart its stream (each restart costs a key
/// frame and, for GStreamer codecs, a new pipeline).
const KEEP_INSIDE: f64 = 0.4;
/// Part of a hot box that must lie inside the stream for it to count as inside.
const INSIDE: f64 = 0.95;
/// Most damage rectangles remembered for refining a candidate.
const MAX_RECENT: usize = 512;

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    last_hit: u32,
    /// Frames that touched it in the current and the previous window.
    hits: u16,
    prev_hits: u16,
    window: u32,
}

/// What the detector decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Start(Area),
    /// The stream's area moved or changed size.
    Move(Area),
    End,
}

pub(crate) struct Detector {
    width: u32,
    height: u32,
    cols: u32,
    rows: u32,
    cells: Vec<Cell>,
    recent: Vec<(u32, Area)>,
    candidate: Option<(Area, u32)>,
    stream: Option<Area>,
    last_stream_change: u32,
}

fn iou(a: &Area, b: &Area) -> f64 {
    let i = a.intersect(b).pixels() as f64;
    let u = a.pixels() as f64 + b.pixels() as f64 - i;
    if u == 0.0 {
        0.0
    } else {
        i / u
    }
}

impl Detector {
    pub(crate) fn new(width: u32, height: u32) -> Detector {
        let (cols, rows) = (width.div_ceil(CELL), height.div_ceil(CELL));
        Detector {
            width,
            height,
            cols,
            rows,
            cells: vec![Cell::default(); (cols * rows) as usize],
            recent: Vec::new(),
            candidate: None,
            stream: None,
            last_stream_change: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn stream(&self) -> Option<Area> {
        self.stream
    }

    /// Nothing to decide until the screen changes again: no stream, and no damage left
    /// in the window. `evaluate` returns None until the next `damage`, so an idle worker
    /// need not call it (no timer wakes an idle server).
    pub(crate) fn at_rest(&self, now: u32) -> bool {
        self.stream.is_none() && self.recent.iter().all(|(t, _)| age(now, *t) > WINDOW_MS)
    }

    /// Records that `area` changed at `now` (ms).
    pub(crate) fn damage(&mut self, area: Area, now: u32) {
        let area = area.intersect(&Area::new(0, 0, self.width, self.height));
        if area.is_empty() {
            return;
        }
        if self.stream.is_some_and(|s| !s.intersect(&area).is_empty()) {
            self.last_stream_change = now;
        }
        let window = now / WINDOW_MS;
        for row in area.top / CELL..area.bottom.div_ceil(CELL) {
            for col in area.left / CELL..area.right.div_ceil(CELL) {
                let cell = &mut self.cells[(row * self.cols + col) as usize];
                roll(cell, window);
                if cell.hits == 0 || now.wrapping_sub(cell.last_hit) >= SAME_FRAME_MS {
                    cell.hits = cell.hits.saturating_add(1);
                }
                cell.last_hit = now;
            }
        }
        if self.recent.len() >= MAX_RECENT {
            self.recent.remove(0);
        }
        self.recent.push((now, area));
    }

    /// Looks at the last window; call a few times a second. `accept` is asked whether a
    /// new candidate area may stream (the `filter` mode's content test).
    pub(crate) fn evaluate(
        &mut self,
        now: u32,
        accept: impl FnOnce(Area) -> bool,
    ) -> Option<Decision> {
        self.recent.retain(|(t, _)| age(now, *t) <= WINDOW_MS);
        if let Some(stream) = self.stream {
            if age(now, self.last_stream_change) >= IDLE_END_MS {
                self.stream = None;
                self.candidate = None;
                return Some(Decision::End);
            }
            let found = self.hot_box(now)?;
            if within(&found, &stream) {
                self.candidate = None;
                return None;
            }
            // Somewhere else, or beyond the stream's edge (a busy guest flushed its first
            // frames in bands and the stream started on part of the video): follow it once
            // it has settled there, so no part of the video stays outside the stream.
            return self.settled(found, now).then(|| {
                self.stream = Some(found);
                self.last_stream_change = now;
                Decision::Move(found)
            });
        }
        let found = self.hot_box(now)?;
        if !self.settled(found, now) || !accept(found) {
            return None;
        }
        self.stream = Some(found);
        self.candidate = None;
        self.last_stream_change = now;
        Some(Decision::Start(found))
    }

    /// Whether `found` has been (about) the candidate for `SETTLE_MS`.
    fn settled(&mut self, found: Area, now: u32) -> bool {
        match self.candidate {
            Some((c, since)) if iou(&c, &found) >= SAME_PLACE => {
                self.candidate = Some((found, since));
                age(now, since) >= SETTLE_MS
            }
            _ => {
                self.candidate = Some((found, now));
                false
            }
        }
    }

    /// The exact box of the largest dense cluster of hot cells, if big enough.
    fn hot_box(&mut self, now: u32) -> Option<Area> {
        let window = now / WINDOW_MS;
        let hot: Vec<bool> = self
            .cells
            .iter_mut()
            .map(|c| {
                roll(c, window);
                // A full window of hits, or the current window already as busy.
                c.prev_hits.max(c.hits) >= HOT_HITS && age(now, c.last_hit) < COLD_MS
            })
            .collect();
        let mut seen = vec![false; hot.len()];
        let mut best: Option<(usize, Area)> = None;
        for start in 0..hot.len() {
            if !hot[start] || seen[start] {
                continue;
            }
            let (count, cells_box) = self.cluster(start, &hot, &mut seen);
            if best.is_none_or(|(n, _)| count > n) {
                best = Some((count, cells_box));
            }
        }
        let (count, cells_box) = best?;
        let box_cells = u64::from(cells_box.width()) * u64::from(cells_box.height());
        if (count as f64) < MIN_DENSITY * box_cells as f64 {
            return None;
        }
        let pixel_box = Area::new(
            cells_box.left * CELL,
            cells_box.top * CELL,
            (cells_box.right * CELL).min(self.width),
            (cells_box.bottom * CELL).min(self.height),
        );
        // The damage inside the cluster gives the exact edges.
        let exact = self
            .recent
            .iter()
            .map(|(_, a)| a.intersect(&pixel_box))
            .filter(|a| !a.is_empty())
            .reduce(|a, b| a.union(&b))?;
        (exact.width() >= MIN_SIDE && exact.height() >= MIN_SIDE && exact.pixels() >= MIN_PIXELS)
            .then_some(exact)
    }

    /// Flood-fills the 8-connected hot cells from `start`: (count, box in cells).
    fn cluster(&self, start: usize, hot: &[bool], seen: &mut [bool]) -> (usize, Area) {
        let mut stack = vec![start];
        seen[start] = true;
        let (mut count, mut bbox) = (0, None::<Area>);
        while let Some(i) = stack.pop() {
            count += 1;
            let (col, row) = (i as u32 % self.cols, i as u32 / self.cols);
            let cell = Area::new(col, row, col + 1, row + 1);
            bbox = Some(bbox.map_or(cell, |b| b.union(&cell)));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (c, r) = (i64::from(col) + dx, i64::from(row) + dy);
                    if c < 0 || r < 0 || c >= i64::from(self.cols) || r >= i64::from(self.rows) {
                        continue;
                    }
                    let j = (r as u32 * self.cols + c as u32) as usize;
                    if hot[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        (count, bbox.unwrap_or_default())
    }
}

/// Whether `found` lies inside `stream` and fills enough of it to keep the stream as it is.
fn within(found: &Area, stream: &Area) -> bool {
    let inside = found.intersect(stream).pixels() as f64;
    inside >= INSIDE * found.pixels() as f64 && inside >= KEEP_INSIDE * stream.pixels() as f64
}

/// How long ago (ms) `then` was at `now`; 0 for a moment not yet reached.
fn age(now: u32, then: u32) -> u32 {
    (now.wrapping_sub(then) as i32).max(0) as u32
}

/// Moves a cell's counts to the window `window`.
fn roll(cell: &mut Cell, window: u32) {
    if cell.window == window {
        return;
    }
    cell.prev_hits = if window.wrapping_sub(cell.window) == 1 {
        cell.hits
    } else {
        0
    };
    cell.hits = 0;
    cell.window = window;
}

#[cfg(test)]
mod tests;
