//! Rectangles and damage regions, below every other module.
//!
//! Two rectangle types, on purpose:
//! - [`Rect`] is a rectangle as the guest, QEMU and the wire give it (`QXLRect`,
//!   spice.proto's `Rect`: top, left, bottom, right, signed). It may be empty, inverted or
//!   lie partly off its surface; whoever reads one from outside checks it before use.
//! - [`Area`] is a checked, non-negative area of a surface (`left <= x < right`,
//!   `top <= y < bottom`), what the canvas draws, damage tracks and viewers are sent.
//!   Its arithmetic (union, intersection, subtraction) never meets a negative or
//!   inverted edge.
//!
//! The C ABI's `#[repr(C)] QXLRect` (ffi/) converts to and from [`Rect`] at the edge.
//!
//! [`Region`] is damage tracking: a small set of areas that only grows coarser, never
//! longer than a fixed bound, so a client that falls behind costs memory proportional
//! to the screen, not to the number of updates it missed.

/// A rectangle as the guest and the protocol give it (`QXLRect`, spice.proto `Rect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Rect {
    pub(crate) top: i32,
    pub(crate) left: i32,
    pub(crate) bottom: i32,
    pub(crate) right: i32,
}

impl Rect {
    pub(crate) fn width(&self) -> i64 {
        i64::from(self.right) - i64::from(self.left)
    }

    pub(crate) fn height(&self) -> i64 {
        i64::from(self.bottom) - i64::from(self.top)
    }

    /// The same rectangle as an area: None when it is empty, inverted or has a
    /// negative edge.
    pub(crate) fn to_area(self) -> Option<Area> {
        (self.left >= 0 && self.top >= 0 && self.left < self.right && self.top < self.bottom).then(
            || {
                Area::new(
                    self.left as u32,
                    self.top as u32,
                    self.right as u32,
                    self.bottom as u32,
                )
            },
        )
    }

    /// Its part at non-negative coordinates (possibly empty); None when it is empty or
    /// inverted to begin with.
    pub(crate) fn clamped(&self) -> Option<Area> {
        (self.left < self.right && self.top < self.bottom).then(|| {
            Area::new(
                self.left.max(0) as u32,
                self.top.max(0) as u32,
                self.right.max(0) as u32,
                self.bottom.max(0) as u32,
            )
        })
    }
}

impl From<Area> for Rect {
    /// Areas are bounded by the largest surface, far inside `i32`.
    fn from(a: Area) -> Rect {
        Rect {
            top: a.top as i32,
            left: a.left as i32,
            bottom: a.bottom as i32,
            right: a.right as i32,
        }
    }
}

/// An area of a surface, `left <= x < right`, `top <= y < bottom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Area {
    pub(crate) left: u32,
    pub(crate) top: u32,
    pub(crate) right: u32,
    pub(crate) bottom: u32,
}

impl Area {
    pub(crate) fn new(left: u32, top: u32, right: u32, bottom: u32) -> Area {
        Area {
            left,
            top,
            right,
            bottom,
        }
    }

    pub(crate) fn width(&self) -> u32 {
        self.right.saturating_sub(self.left)
    }

    pub(crate) fn height(&self) -> u32 {
        self.bottom.saturating_sub(self.top)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.width() == 0 || self.height() == 0
    }

    pub(crate) fn pixels(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }

    pub(crate) fn union(&self, o: &Area) -> Area {
        Area::new(
            self.left.min(o.left),
            self.top.min(o.top),
            self.right.max(o.right),
            self.bottom.max(o.bottom),
        )
    }

    pub(crate) fn intersect(&self, o: &Area) -> Area {
        let a = Area::new(
            self.left.max(o.left),
            self.top.max(o.top),
            self.right.min(o.right),
            self.bottom.min(o.bottom),
        );
        if a.is_empty() {
            Area::default()
        } else {
            a
        }
    }

    fn touches(&self, o: &Area) -> bool {
        self.left <= o.right && o.left <= self.right && self.top <= o.bottom && o.top <= self.bottom
    }
}

/// Most rectangles a region keeps before merging the closest pair.
pub(crate) const MAX_RECTS: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Region {
    rects: Vec<Area>,
}

impl Region {
    pub(crate) fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    pub(crate) fn rects(&self) -> &[Area] {
        &self.rects
    }

    pub(crate) fn clear(&mut self) {
        self.rects.clear();
    }

    /// Adds an area, merging it with rectangles it overlaps or touches.
    pub(crate) fn add(&mut self, area: Area) {
        if area.is_empty() {
            return;
        }
        let mut merged = area;
        loop {
            let before = self.rects.len();
            self.rects.retain(|r| {
                if r.touches(&merged) {
                    merged = merged.union(r);
                    false
                } else {
                    true
                }
            });
            if self.rects.len() == before {
                break;
            }
        }
        self.rects.push(merged);
        while self.rects.len() > MAX_RECTS {
            self.merge_cheapest_pair();
        }
    }

    /// Merges the two rectangles whose union wastes the fewest pixels.
    fn merge_cheapest_pair(&mut self) {
        let mut best = (0, 1, u64::MAX);
        for i in 0..self.rects.len() {
            for j in i + 1..self.rects.len() {
                let (a, b) = (self.rects[i], self.rects[j]);
                let waste = a.union(&b).pixels().saturating_sub(a.pixels() + b.pixels());
                if waste < best.2 {
                    best = (i, j, waste);
                }
            }
        }
        let b = self.rects.swap_remove(best.1);
        let a = self.rects.swap_remove(best.0);
        self.add(a.union(&b));
    }

    /// Removes `holes` from the region.
    pub(crate) fn remove(&mut self, holes: &[Area]) {
        if !self
            .rects
            .iter()
            .any(|r| holes.iter().any(|h| !h.intersect(r).is_empty()))
        {
            return;
        }
        for r in std::mem::take(&mut self.rects) {
            subtract(r, holes).into_iter().for_each(|a| self.add(a));
        }
    }

    /// Removes and returns a band of whole rows of about `budget` pixels (at least one
    /// row), starting at the first damaged row at or below `from_row` (or from the top
    /// when there is none): a big update goes out as a sequence of slices, top to
    /// bottom, with room for other messages between them.
    pub(crate) fn take_rows(&mut self, budget: u64, from_row: u32) -> RowsTaken {
        let below = |row: u32| self.rects.iter().filter(move |r| r.bottom > row);
        let start = match below(from_row).map(|r| r.top.max(from_row)).min() {
            Some(top) => top,
            None => match self.rects.iter().map(|r| r.top).min() {
                Some(top) => top,
                None => {
                    return RowsTaken {
                        areas: Vec::new(),
                        next_row: 0,
                        to_the_bottom: true,
                    }
                }
            },
        };
        // Rows between two rectangle edges are equally wide: walk edge to edge.
        let mut edges: Vec<u32> = self
            .rects
            .iter()
            .flat_map(|r| [r.top, r.bottom])
            .filter(|&e| e > start)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let (mut end, mut taken) = (start, 0u64);
        for edge in edges {
            let width: u64 = self
                .rects
                .iter()
                .filter(|r| r.top <= end && r.bottom > end)
                .map(|r| u64::from(r.width()))
                .sum();
            if width == 0 {
                // A gap between rectangles: nothing to take there.
                end = edge;
                continue;
            }
            let rows = u64::from(edge - end);
            let fit = budget.saturating_sub(taken) / width;
            if fit < rows {
                end += (fit as u32).max(u32::from(taken == 0));
                break;
            }
            taken += rows * width;
            end = edge;
        }
        let band = Area::new(0, start, u32::MAX, end);
        let mut areas = Vec::new();
        let mut rest = Region::default();
        for r in std::mem::take(&mut self.rects) {
            let cut = r.intersect(&band);
            if cut.is_empty() {
                rest.add(r);
                continue;
            }
            areas.push(cut);
            for piece in subtract(r, &[band]) {
                rest.add(piece);
            }
        }
        *self = rest;
        let to_the_bottom = self.rects.iter().all(|r| r.bottom <= end);
        RowsTaken {
            areas,
            next_row: if to_the_bottom { 0 } else { end },
            to_the_bottom,
        }
    }
}

/// A band of rows taken from a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowsTaken {
    pub areas: Vec<Area>,
    /// Where the next band starts.
    pub next_row: u32,
    /// Nothing damaged is left below the band: a pass over the region ended.
    pub to_the_bottom: bool,
}

/// `area` minus every rectangle of `holes`, as disjoint rectangles.
pub(crate) fn subtract(area: Area, holes: &[Area]) -> Vec<Area> {
    let mut parts = vec![area];
    for hole in holes {
        let mut next = Vec::with_capacity(parts.len() + 3);
        for p in parts {
            let cut = p.intersect(hole);
            if cut.is_empty() {
                next.push(p);
                continue;
            }
            let pieces = [
                Area::new(p.left, p.top, p.right, cut.top),
                Area::new(p.left, cut.bottom, p.right, p.bottom),
                Area::new(p.left, cut.top, cut.left, cut.bottom),
                Area::new(cut.right, cut.top, p.right, cut.bottom),
            ];
            next.extend(pieces.into_iter().filter(|a| !a.is_empty()));
        }
        parts = next;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_touching_areas_merge() {
        let mut r = Region::default();
        r.add(Area::new(0, 0, 10, 10));
        r.add(Area::new(10, 0, 20, 10));
        assert_eq!(r.rects(), &[Area::new(0, 0, 20, 10)]);
        r.add(Area::new(100, 100, 110, 110));
        assert_eq!(r.rects().len(), 2);
        r.add(Area::new(5, 5, 105, 105));
        assert_eq!(r.rects(), &[Area::new(0, 0, 110, 110)]);
    }

    #[test]
    fn region_size_is_bounded() {
        let mut r = Region::default();
        for i in 0..1000u32 {
            let x = (i % 40) * 50;
            let y = (i / 40) * 50;
            r.add(Area::new(x, y, x + 10, y + 10));
        }
        assert!(r.rects().len() <= MAX_RECTS);
        // Every added area is still covered.
        for i in 0..1000u32 {
            let (x, y) = ((i % 40) * 50, (i / 40) * 50);
            assert!(r
                .rects()
                .iter()
                .any(|a| a.left <= x && a.top <= y && a.right >= x + 10 && a.bottom >= y + 10));
        }
    }

    #[test]
    fn removing_holes_keeps_the_rest_of_the_region() {
        let mut r = Region::default();
        r.add(Area::new(0, 0, 10, 10));
        r.add(Area::new(20, 0, 30, 10));
        r.remove(&[Area::new(0, 0, 5, 10), Area::new(40, 40, 50, 50)]);
        let total: u64 = r.rects().iter().map(Area::pixels).sum();
        assert_eq!(total, 50 + 100);
        assert!(r.rects().iter().all(|a| a.left >= 5));
        let before = r.clone();
        r.remove(&[Area::new(40, 40, 50, 50)]);
        assert_eq!(r, before, "a hole elsewhere changes nothing");
    }

    #[test]
    fn rows_are_taken_in_bands_of_the_budget_top_to_bottom() {
        let mut r = Region::default();
        r.add(Area::new(0, 0, 100, 50));
        r.add(Area::new(200, 20, 300, 30));
        // Rows 0..20 are 100 wide, 20..30 are 200 wide.
        let first = r.take_rows(2_500, 0);
        let mut areas = first.areas.clone();
        areas.sort_by_key(|a| a.left);
        assert_eq!(
            areas,
            vec![Area::new(0, 0, 100, 22), Area::new(200, 20, 300, 22)]
        );
        let pixels = |t: &RowsTaken| t.areas.iter().map(Area::pixels).sum::<u64>();
        assert!(pixels(&first) <= 2_500, "{first:?}");
        assert_eq!(first.next_row, 22);
        assert!(!first.to_the_bottom);
        let mut total = pixels(&first);
        let mut next = first.next_row;
        let mut passes = 1;
        loop {
            let t = r.take_rows(2_500, next);
            assert!(
                t.areas.iter().all(|a| a.top >= next),
                "top to bottom: {t:?}"
            );
            total += pixels(&t);
            passes += 1;
            next = t.next_row;
            if t.to_the_bottom {
                break;
            }
        }
        assert!(r.is_empty());
        assert_eq!(total, 100 * 50 + 100 * 10, "every pixel once");
        assert_eq!(passes, 3);
    }

    #[test]
    fn a_band_is_at_least_one_row_and_wraps_to_the_top() {
        let mut r = Region::default();
        r.add(Area::new(0, 10, 1000, 12));
        let t = r.take_rows(10, 0);
        assert_eq!(
            t.areas,
            vec![Area::new(0, 10, 1000, 11)],
            "one row past the budget"
        );
        // Damage above where the pass is: taken from the top once nothing is below.
        r.add(Area::new(0, 0, 5, 5));
        let t = r.take_rows(10_000, 11);
        assert_eq!(t.areas, vec![Area::new(0, 11, 1000, 12)]);
        assert_eq!((t.to_the_bottom, t.next_row), (true, 0), "the pass ended");
        let t = r.take_rows(10_000, t.next_row);
        assert_eq!(t.areas, vec![Area::new(0, 0, 5, 5)]);
        assert!(t.to_the_bottom && r.is_empty());
        let none = r.take_rows(10_000, 3);
        assert!(none.areas.is_empty() && none.to_the_bottom);
    }

    #[test]
    fn empty_areas_are_ignored() {
        let mut r = Region::default();
        r.add(Area::new(5, 5, 5, 10));
        assert!(r.is_empty());
        assert!(Area::new(0, 0, 10, 10)
            .intersect(&Area::new(20, 20, 30, 30))
            .is_empty());
    }

    #[test]
    fn subtract_leaves_the_frame_around_a_hole() {
        let parts = subtract(Area::new(0, 0, 10, 10), &[Area::new(2, 2, 5, 5)]);
        let total: u64 = parts.iter().map(Area::pixels).sum();
        assert_eq!(total, 100 - 9);
        assert!(parts
            .iter()
            .all(|p| p.intersect(&Area::new(2, 2, 5, 5)).is_empty()));
        assert_eq!(
            subtract(Area::new(0, 0, 4, 4), &[Area::new(0, 0, 9, 9)]),
            vec![]
        );
    }

    #[test]
    fn a_guest_rect_becomes_an_area_only_when_it_is_one() {
        let r = |left, top, right, bottom| Rect {
            top,
            left,
            bottom,
            right,
        };
        assert_eq!(r(1, 2, 3, 4).to_area(), Some(Area::new(1, 2, 3, 4)));
        assert_eq!(r(-1, 2, 3, 4).to_area(), None, "a negative edge");
        assert_eq!(r(3, 2, 1, 4).to_area(), None, "inverted");
        assert_eq!(r(-1, 2, 3, 4).clamped(), Some(Area::new(0, 2, 3, 4)));
        assert_eq!(r(3, 2, 3, 4).clamped(), None, "empty");
        assert_eq!(Rect::from(Area::new(1, 2, 3, 4)), r(1, 2, 3, 4));
    }
}
