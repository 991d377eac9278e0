//! Drawings not yet written back into the guest's memory for a surface: what an
//! `update_area` must render there (spice-server renders a drawing together with
//! everything it was drawn over).

use crate::geometry::Area;

/// Boxes kept one per drawing up to this many; beyond, they are folded into one box.
const MAX_PENDING: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct GuestDamage(Vec<Area>);

impl GuestDamage {
    /// Records a drawing not yet written back, folding everything into one box past a
    /// bound.
    pub(crate) fn note(&mut self, damage: Area) {
        let pending = &mut self.0;
        if pending.len() >= MAX_PENDING {
            let all = pending.drain(..).fold(damage, |a, b| a.union(&b));
            pending.push(all);
        } else {
            pending.push(damage);
        }
    }

    /// Takes what an update of `area` must write back: `area` itself, the boxes
    /// overlapping it, and (transitively) the ones overlapping those.
    pub(crate) fn take_overlapping(&mut self, area: Area) -> Vec<Area> {
        let pending = &mut self.0;
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

    /// Everything is written back (or no longer the guest's to get).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// A new surface: all of it is still to be written back.
    pub(crate) fn reset(&mut self, all: Area) {
        self.0.clear();
        self.0.push(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_takes_what_overlaps_it_transitively() {
        let mut g = GuestDamage::default();
        g.note(Area::new(0, 0, 2, 2));
        g.note(Area::new(1, 1, 5, 5));
        g.note(Area::new(20, 20, 30, 30));
        let taken = g.take_overlapping(Area::new(4, 4, 6, 6));
        assert_eq!(
            taken.len(),
            3,
            "the area, the box over it, the box under that"
        );
        assert!(!taken.contains(&Area::new(20, 20, 30, 30)));
        assert_eq!(g.take_overlapping(Area::new(4, 4, 6, 6)).len(), 1);
    }

    #[test]
    fn past_the_bound_boxes_fold_into_one() {
        let mut g = GuestDamage::default();
        for i in 0..=MAX_PENDING as u32 {
            g.note(Area::new(i, 0, i + 1, 1));
        }
        assert_eq!(g.0.len(), 1);
        assert_eq!(g.0[0], Area::new(0, 0, MAX_PENDING as u32 + 1, 1));
    }
}
