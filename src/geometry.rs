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

    /// Removes and returns everything.
    pub(crate) fn take(&mut self) -> Vec<Area> {
        std::mem::take(&mut self.rects)
    }
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
