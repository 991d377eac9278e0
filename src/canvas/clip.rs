//! A drawing's clip as a banded region: horizontal bands, each with its sorted, disjoint
//! spans (the y-x banded form pixman uses, and so the C server's canvas).
//!
//! A guest may clip a drawing by thousands of rectangles. Asking "is this pixel inside?"
//! of every rectangle made one drawing cost minutes; here it is a binary search (and
//! usually none: the last band and span found are tried first), and whole spans are
//! drawn without asking at all.

use crate::geometry::{Area, Rect};

/// Most spans a clip may split into (bands × spans per band). Real clips (a window's
/// visible part) have a few hundred; 4096 rectangles with staggered tops over a large
/// surface could otherwise take hundreds of MiB.
pub(crate) const MAX_SPANS: usize = 1 << 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Band {
    top: u32,
    bottom: u32,
    /// Its spans: `spans[start..end]`.
    start: usize,
    end: usize,
}

/// Where a drawing may draw: `bounds ∩ (union of the clip rectangles)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Clip {
    bands: Vec<Band>,
    /// `(left, right)` pairs, band after band.
    spans: Vec<(u32, u32)>,
    extents: Area,
}

/// The clip would take more than [`MAX_SPANS`] spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooComplex;

impl Clip {
    /// The clip of a drawing on a surface: `bounds` (its box on the surface) cut to the
    /// union of `rects` when there are any (`None`: no clip).
    pub(crate) fn new(bounds: Area, rects: Option<&[Rect]>) -> Result<Clip, TooComplex> {
        if bounds.is_empty() {
            return Ok(Clip::default());
        }
        let Some(rects) = rects else {
            return Ok(Clip::from_area(bounds));
        };
        let mut areas: Vec<Area> = rects
            .iter()
            .filter_map(Rect::clamped)
            .map(|r| r.intersect(&bounds))
            .filter(|a| !a.is_empty())
            .collect();
        areas.sort_unstable_by_key(|a| a.top);
        let mut edges: Vec<u32> = areas.iter().flat_map(|a| [a.top, a.bottom]).collect();
        edges.sort_unstable();
        edges.dedup();

        let mut clip = Clip::default();
        // The rectangles crossing the current band, sorted by left edge.
        let mut active: Vec<Area> = Vec::new();
        let mut next = 0;
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for band in edges.windows(2) {
            let (top, bottom) = (band[0], band[1]);
            active.retain(|a| a.bottom > top);
            while let Some(a) = areas.get(next).filter(|a| a.top == top) {
                let at = active.partition_point(|b| b.left <= a.left);
                active.insert(at, *a);
                next += 1;
            }
            merged.clear();
            for a in &active {
                match merged.last_mut() {
                    Some(last) if a.left <= last.1 => last.1 = last.1.max(a.right),
                    _ => merged.push((a.left, a.right)),
                }
            }
            clip.push_band(top, bottom, &merged)?;
        }
        Ok(clip)
    }

    fn from_area(a: Area) -> Clip {
        Clip {
            bands: vec![Band {
                top: a.top,
                bottom: a.bottom,
                start: 0,
                end: 1,
            }],
            spans: vec![(a.left, a.right)],
            extents: a,
        }
    }

    /// Appends a band below the others, joined to the last one when it continues it.
    fn push_band(&mut self, top: u32, bottom: u32, spans: &[(u32, u32)]) -> Result<(), TooComplex> {
        if spans.is_empty() {
            return Ok(());
        }
        if let Some(last) = self.bands.last_mut() {
            if last.bottom == top && self.spans[last.start..last.end] == *spans {
                last.bottom = bottom;
                self.extents.bottom = bottom;
                return Ok(());
            }
        }
        if self.spans.len() + spans.len() > MAX_SPANS {
            return Err(TooComplex);
        }
        let start = self.spans.len();
        self.spans.extend_from_slice(spans);
        self.bands.push(Band {
            top,
            bottom,
            start,
            end: self.spans.len(),
        });
        let (left, right) = (spans[0].0, spans[spans.len() - 1].1);
        self.extents = if start == 0 {
            Area::new(left, top, right, bottom)
        } else {
            Area::new(
                self.extents.left.min(left),
                self.extents.top,
                self.extents.right.max(right),
                bottom,
            )
        };
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bands.is_empty()
    }

    /// The smallest area holding the whole clip (empty when the clip is).
    pub(crate) fn extents(&self) -> Area {
        self.extents
    }

    /// The clip as disjoint areas, top to bottom (each span of each band).
    pub(crate) fn areas(&self) -> impl Iterator<Item = Area> + '_ {
        self.bands.iter().flat_map(move |b| {
            self.spans[b.start..b.end]
                .iter()
                .map(move |&(l, r)| Area::new(l, b.top, r, b.bottom))
        })
    }

    /// The bands top to bottom: their rows and spans (pixman's boxes, band by band).
    pub(crate) fn bands(&self) -> impl Iterator<Item = (u32, u32, &[(u32, u32)])> + '_ {
        self.bands
            .iter()
            .map(move |b| (b.top, b.bottom, &self.spans[b.start..b.end]))
    }

    /// The index of the band holding row `y`, if any.
    fn band_of(&self, y: u32) -> Option<usize> {
        let i = self.bands.partition_point(|b| b.bottom <= y);
        self.bands.get(i).filter(|b| b.top <= y).map(|_| i)
    }

    /// The spans of row `y`, left to right.
    pub(crate) fn row(&self, y: u32) -> &[(u32, u32)] {
        match self.band_of(y) {
            Some(i) => &self.spans[self.bands[i].start..self.bands[i].end],
            None => &[],
        }
    }

    /// The parts of row `y` between `left` and `right` (exclusive) inside the clip.
    pub(crate) fn row_between(
        &self,
        y: u32,
        left: u32,
        right: u32,
    ) -> impl Iterator<Item = (u32, u32)> + '_ {
        let spans = self.row(y);
        let first = spans.partition_point(|s| s.1 <= left);
        spans[first..]
            .iter()
            .take_while(move |s| s.0 < right)
            .map(move |&(l, r)| (l.max(left), r.min(right)))
    }

    /// A point-in-clip test for many nearby points (strokes now paint spans instead).
    #[allow(dead_code)]
    pub(crate) fn probe(&self) -> Probe<'_> {
        Probe {
            clip: self,
            band: 0,
            span: 0,
        }
    }
}

/// Remembers the last band and span hit, so neighbouring points cost no search.
#[allow(dead_code)]
pub(crate) struct Probe<'a> {
    clip: &'a Clip,
    band: usize,
    span: usize,
}

#[allow(dead_code)]
impl Probe<'_> {
    pub(crate) fn contains(&mut self, x: u32, y: u32) -> bool {
        let c = self.clip;
        let e = &c.extents;
        if x < e.left || x >= e.right || y < e.top || y >= e.bottom {
            return false;
        }
        let band = match c.bands.get(self.band) {
            Some(b) if b.top <= y && y < b.bottom => *b,
            _ => match c.band_of(y) {
                Some(i) => {
                    self.band = i;
                    self.span = c.bands[i].start;
                    c.bands[i]
                }
                None => return false,
            },
        };
        if let Some(&(l, r)) = c.spans.get(self.span) {
            if (band.start..band.end).contains(&self.span) && l <= x && x < r {
                return true;
            }
        }
        let spans = &c.spans[band.start..band.end];
        let i = spans.partition_point(|s| s.1 <= x);
        match spans.get(i) {
            Some(&(l, _)) if l <= x => {
                self.span = band.start + i;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
        Rect {
            top,
            left,
            bottom,
            right,
        }
    }

    /// Whether (x, y) lies in any of `rects` and in `bounds`, the slow way.
    fn naive(bounds: Area, rects: &[Rect], x: u32, y: u32) -> bool {
        let (xi, yi) = (x as i32, y as i32);
        x >= bounds.left
            && x < bounds.right
            && y >= bounds.top
            && y < bounds.bottom
            && rects
                .iter()
                .any(|r| xi >= r.left && xi < r.right && yi >= r.top && yi < r.bottom)
    }

    #[test]
    fn matches_the_union_of_overlapping_rectangles() {
        let bounds = Area::new(2, 1, 30, 28);
        let rects = [
            rect(0, 0, 10, 10),
            rect(5, 5, 20, 12),
            rect(8, 3, 9, 25),
            rect(-5, 20, 40, 22),
            rect(25, 25, 25, 30), // empty
            rect(12, 14, 18, 16),
            rect(14, 15, 28, 40),
        ];
        let clip = Clip::new(bounds, Some(&rects)).unwrap();
        let mut probe = clip.probe();
        let mut covered = 0;
        for y in 0..32 {
            for x in 0..34 {
                let want = naive(bounds, &rects, x, y);
                assert_eq!(probe.contains(x, y), want, "({x}, {y})");
                let in_row = clip.row(y).iter().any(|&(l, r)| l <= x && x < r);
                assert_eq!(in_row, want, "row ({x}, {y})");
                covered += u64::from(want);
            }
        }
        let total: u64 = clip.areas().map(|a| a.pixels()).sum();
        assert_eq!(total, covered, "areas are disjoint and cover the clip");
        let e = clip.extents();
        assert!(clip.areas().all(|a| a.intersect(&e) == a));
    }

    #[test]
    fn row_between_cuts_spans_to_the_range() {
        let rects = [rect(0, 0, 4, 1), rect(6, 0, 9, 1), rect(12, 0, 20, 1)];
        let clip = Clip::new(Area::new(0, 0, 32, 1), Some(&rects)).unwrap();
        let got: Vec<_> = clip.row_between(0, 2, 14).collect();
        assert_eq!(got, vec![(2, 4), (6, 9), (12, 14)]);
        assert_eq!(clip.row_between(0, 9, 12).count(), 0);
        assert_eq!(clip.row_between(1, 0, 32).count(), 0);
    }

    #[test]
    fn no_clip_is_the_bounds_and_identical_bands_join() {
        let b = Area::new(1, 2, 3, 4);
        assert_eq!(Clip::new(b, None).unwrap().areas().collect::<Vec<_>>(), [b]);
        let stacked = [rect(0, 0, 5, 3), rect(0, 3, 5, 6)];
        let clip = Clip::new(Area::new(0, 0, 9, 9), Some(&stacked)).unwrap();
        assert_eq!(clip.areas().collect::<Vec<_>>(), [Area::new(0, 0, 5, 6)]);
        assert!(Clip::new(Area::new(0, 0, 9, 9), Some(&[]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_clip_too_fragmented_is_refused() {
        // Thin columns whose tops all differ: every band holds every column.
        let n = 1024;
        let rects: Vec<Rect> = (0..n).map(|i| rect(2 * i, i, 2 * i + 1, 4096)).collect();
        let bounds = Area::new(0, 0, 4096, 4096);
        assert_eq!(Clip::new(bounds, Some(&rects)), Err(TooComplex));
        assert!(Clip::new(bounds, Some(&rects[..256])).is_ok());
    }
}
