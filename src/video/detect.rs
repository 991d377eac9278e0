//! Finds video on the screen from damage alone, so it works whatever the guest sends:
//! the QXL driver's one image per frame, or QEMU's framebuffer updates split into many
//! rectangles (where spice-server never streams).
//!
//! The screen is a grid of cells; each remembers how many distinct frames touched it in
//! the last window. Cells touched at video rates are "hot", and stay "warm" for a while
//! after: a video where only some things move (people walking over a still street,
//! shapes over a flat background) heats different cells from one moment to the next,
//! and its area is where they moved lately, not where they are now. The warm cluster
//! with the most hot cells (warm cells a small gap apart belong together), refined to the
//! exact damage inside it, is the candidate. A candidate that holds still for a moment
//! becomes a stream; a stream ends when its area stops changing, and moves or grows with
//! its candidate, so no part of the video goes as pixels on another clock than the rest.

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
/// Part of a cluster's box its warm cells must fill (two blinking cursors are not a
/// video between them; people walking over a still street heat a quarter of it).
const MIN_DENSITY: f64 = 0.25;
/// Part of a candidate's box its hot cells must fill for a stream to start: where only
/// a few things move over a still picture (shapes over a flat background, typing, a
/// pointer), the changed parts as lossless pixels cost less than a stream of the whole
/// area and are exact, and with no stream nothing runs on another clock.
const MIN_HOT_SHARE: f64 = 0.35;
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
/// How long a cell that was hot stays part of the video's area (ms).
const WARM_MS: u32 = 2000;
/// Warm cells at most this many cells apart are one cluster (the still background between
/// two people walking is part of the same video).
const GAP: i64 = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    last_hit: u32,
    /// Frames that touched it in the current and the previous window.
    hits: u16,
    prev_hits: u16,
    window: u32,
    /// When it was last seen hot (`warm`: ever).
    hot_at: u32,
    warm: bool,
    /// What damage touched inside it in the current and the previous half of `WARM_MS`
    /// (the exact edges of a video that does not fill its cells).
    touched: Option<Area>,
    prev_touched: Option<Area>,
    touch_epoch: u32,
}

impl Cell {
    /// Moves what it was touched by to the half of `WARM_MS` that `now` is in.
    fn roll_touched(&mut self, now: u32) {
        let epoch = now / (WARM_MS / 2);
        if epoch != self.touch_epoch {
            self.prev_touched = self
                .touched
                .filter(|_| epoch.wrapping_sub(self.touch_epoch) == 1);
            self.touched = None;
            self.touch_epoch = epoch;
        }
    }

    /// Where it was touched lately.
    fn touched(&self) -> Option<Area> {
        match (self.touched, self.prev_touched) {
            (Some(a), Some(b)) => Some(a.union(&b)),
            (a, b) => a.or(b),
        }
    }
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
    candidate: Option<(Area, u32)>,
    stream: Option<Area>,
    /// When anything last changed (`at_rest`).
    last_damage: Option<u32>,
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
            candidate: None,
            stream: None,
            last_damage: None,
            last_stream_change: 0,
        }
    }

    /// The screen's size (width, height).
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    #[cfg(test)]
    pub(crate) fn stream(&self) -> Option<Area> {
        self.stream
    }

    /// The stream it decided on no longer lives (its clients left, its encoder failed):
    /// the area is a candidate again, so a client that comes back gets a stream without
    /// waiting for the video to pause. Without a stream, the candidate stays settling.
    pub(crate) fn forget_stream(&mut self) {
        if self.stream.take().is_some() {
            self.candidate = None;
        }
    }

    /// Nothing to decide until the screen changes again: no stream, and no damage left
    /// in the window. `evaluate` returns None until the next `damage`, so an idle worker
    /// need not call it (no timer wakes an idle server).
    pub(crate) fn at_rest(&self, now: u32) -> bool {
        self.stream.is_none() && self.last_damage.is_none_or(|t| age(now, t) > WINDOW_MS)
    }

    /// Records that `area` changed at `now` (ms).
    pub(crate) fn damage(&mut self, area: Area, now: u32) {
        let area = area.intersect(&Area::new(0, 0, self.width, self.height));
        if area.is_empty() {
            return;
        }
        self.last_damage = Some(now);
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
                let mine = area.intersect(&Area::new(
                    col * CELL,
                    row * CELL,
                    (col + 1) * CELL,
                    (row + 1) * CELL,
                ));
                cell.roll_touched(now);
                cell.touched = Some(cell.touched.map_or(mine, |t| t.union(&mine)));
                cell.last_hit = now;
            }
        }
    }

    /// Looks at the last window; call a few times a second. `accept` is asked whether a
    /// new candidate area may stream, given the part of its box hot now (the content and
    /// cost test).
    pub(crate) fn evaluate(
        &mut self,
        now: u32,
        accept: impl FnOnce(Area, f64) -> bool,
    ) -> Option<Decision> {
        if let Some(stream) = self.stream {
            if age(now, self.last_stream_change) >= IDLE_END_MS {
                self.stream = None;
                self.candidate = None;
                return Some(Decision::End);
            }
            let (found, _) = self.hot_box(now)?;
            if within(&found, &stream) {
                self.candidate = None;
                return None;
            }
            // Beyond the stream's edge (a busy guest flushed its first frames in bands and
            // the stream started on part of the video; things moving into a part of the
            // scene they had not reached): grow over it. Somewhere else, or much smaller:
            // follow it. Either once it has settled, so no part of the video stays outside
            // the stream.
            let grown = found.union(&stream);
            let target = if within(&found, &grown) { grown } else { found };
            return self.settled(target, now).then(|| {
                self.stream = Some(target);
                self.last_stream_change = now;
                Decision::Move(target)
            });
        }
        let (found, hot_share) = self.hot_box(now)?;
        if hot_share < MIN_HOT_SHARE {
            self.candidate = None;
            return None;
        }
        if !self.settled(found, now) || !accept(found, hot_share) {
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

    /// The exact box of the dense cluster of warm cells with the most hot ones (the
    /// video playing now, where it moved lately), if big enough, and the part of it (in
    /// cells) hot now.
    fn hot_box(&mut self, now: u32) -> Option<(Area, f64)> {
        let window = now / WINDOW_MS;
        let mut warm = vec![false; self.cells.len()];
        let mut hot = vec![false; self.cells.len()];
        for (i, c) in self.cells.iter_mut().enumerate() {
            roll(c, window);
            c.roll_touched(now);
            // A full window of hits, or the current window already as busy.
            if c.prev_hits.max(c.hits) >= HOT_HITS && age(now, c.last_hit) < COLD_MS {
                (c.hot_at, c.warm, hot[i]) = (now, true, true);
            }
            c.warm &= age(now, c.hot_at) < WARM_MS;
            warm[i] = c.warm;
        }
        let mut seen = vec![false; warm.len()];
        let mut best: Option<((usize, usize), Area)> = None;
        for start in 0..warm.len() {
            if !hot[start] || seen[start] {
                continue;
            }
            let (count, cells_box) = self.cluster(start, &warm, &hot, &mut seen);
            if best.is_none_or(|(n, _)| count > n) {
                best = Some((count, cells_box));
            }
        }
        let ((hot_count, count), cells_box) = best?;
        let box_cells = u64::from(cells_box.width()) * u64::from(cells_box.height());
        if (count as f64) < MIN_DENSITY * box_cells as f64 {
            return None;
        }
        // What changed inside the cluster's box lately gives the exact edges.
        let mut exact: Option<Area> = None;
        for row in cells_box.top..cells_box.bottom {
            for col in cells_box.left..cells_box.right {
                if let Some(t) = self.cells[(row * self.cols + col) as usize].touched() {
                    exact = Some(exact.map_or(t, |e| e.union(&t)));
                }
            }
        }
        let exact = exact?;
        (exact.width() >= MIN_SIDE && exact.height() >= MIN_SIDE && exact.pixels() >= MIN_PIXELS)
            .then_some((exact, hot_count as f64 / box_cells as f64))
    }

    /// Flood-fills the warm cells from `start`, bridging gaps of up to `GAP` cells:
    /// ((hot cells, warm cells), box in cells).
    fn cluster(
        &self,
        start: usize,
        warm: &[bool],
        hot: &[bool],
        seen: &mut [bool],
    ) -> ((usize, usize), Area) {
        let mut stack = vec![start];
        seen[start] = true;
        let (mut hot_count, mut count, mut bbox) = (0, 0, None::<Area>);
        while let Some(i) = stack.pop() {
            count += 1;
            hot_count += usize::from(hot[i]);
            let (col, row) = (i as u32 % self.cols, i as u32 / self.cols);
            let cell = Area::new(col, row, col + 1, row + 1);
            bbox = Some(bbox.map_or(cell, |b| b.union(&cell)));
            for dy in -GAP..=GAP {
                for dx in -GAP..=GAP {
                    let (c, r) = (i64::from(col) + dx, i64::from(row) + dy);
                    if c < 0 || r < 0 || c >= i64::from(self.cols) || r >= i64::from(self.rows) {
                        continue;
                    }
                    let j = (r as u32 * self.cols + c as u32) as usize;
                    if warm[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        ((hot_count, count), bbox.unwrap_or_default())
    }
}

/// Whether `found` lies inside `stream` and fills enough of it to keep the stream as it is.
/// Wholly inside: a row of the video left out would go as pixels, ahead of the stream.
fn within(found: &Area, stream: &Area) -> bool {
    found.intersect(stream) == *found
        && found.pixels() as f64 >= KEEP_INSIDE * stream.pixels() as f64
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
