//! How spice-common's stroke canvas paints a batch of spans (`stroke_fill_spans`): it
//! clips them to the drawing's region with `spice_canvas_clip_spans`, writing the
//! clipped spans over the very array it reads. A span that two boxes of one band cut
//! in two yields two spans, the second overwriting the next span not yet read; from
//! there on the copies are read again in place of the lost spans (and clipped against
//! the band being walked, whatever their row). The pixels that follow from this are
//! what the C canvas and spice-gtk show, so they are reproduced here.

use super::super::clip::Clip;

/// A span: (x, y, width).
pub(super) type Span = (i32, i32, i32);

/// The drawing's region as pixman's boxes, band by band.
pub(super) struct Region {
    /// (top, bottom, its boxes in `boxes`).
    bands: Vec<(i32, i32, std::ops::Range<usize>)>,
    /// (left, right) of each box.
    boxes: Vec<(i32, i32)>,
}

impl Region {
    pub(super) fn new(clip: &Clip) -> Region {
        let mut boxes = vec![];
        let bands = clip
            .bands()
            .map(|(top, bottom, spans)| {
                let start = boxes.len();
                boxes.extend(spans.iter().map(|&(l, r)| (l as i32, r as i32)));
                (top as i32, bottom as i32, start..boxes.len())
            })
            .collect();
        Region { bands, boxes }
    }

    /// The first band from `from` whose bottom is below row `y`.
    fn band_for(&self, from: usize, y: i32) -> usize {
        from + self.bands[from..].partition_point(|b| b.1 <= y)
    }

    /// The spans `spice_canvas_clip_spans` leaves of `spans`, in the order it leaves
    /// them. `sorted`: the spans come in ascending rows (else they are sorted by row
    /// first when the region has more than one box).
    pub(super) fn clip_in_place(&self, mut spans: Vec<Span>, sorted: bool) -> Vec<Span> {
        if self.boxes.len() == 1 {
            let (top, bottom, _) = self.bands[0];
            let (left, right) = self.boxes[0];
            return spans
                .into_iter()
                .filter_map(|(x, y, w)| {
                    let (x1, x2) = (x.max(left), x.saturating_add(w).min(right));
                    (top <= y && y < bottom && x1 < x2).then_some((x1, y, x2 - x1))
                })
                .collect();
        }
        if self.boxes.is_empty() || spans.is_empty() {
            return vec![];
        }
        if !sorted && spans.len() > 1 {
            spans.sort_by_key(|s| s.1);
        }
        let last = spans.len();
        let (mut read, mut write) = (0, 0);
        // Moving down one band at a time until one reaches the span's row, as the C
        // does, ends at the first band whose bottom is below it.
        let mut band = self.band_for(0, spans[0].1);
        // Skips the spans above `band` (NextBand).
        let skip = |read: &mut usize, spans: &[Span], band: usize| {
            while *read < last && spans[*read].1 < self.bands[band].0 {
                *read += 1;
            }
        };
        if band < self.bands.len() {
            skip(&mut read, &spans, band);
        }
        while read < last && band < self.bands.len() {
            let (x, y, w) = spans[read];
            let (_, bottom, ref range) = self.bands[band];
            if y < bottom {
                let x2 = x.saturating_add(w);
                for &(l, r) in &self.boxes[range.clone()] {
                    let (nx1, nx2) = (x.max(l), x2.min(r));
                    if nx1 < nx2 {
                        let out = (nx1, y, nx2 - nx1);
                        match spans.get_mut(write) {
                            Some(slot) => *slot = out,
                            None => spans.push(out),
                        }
                        write += 1;
                    }
                }
                read += 1;
            } else {
                band = self.band_for(band + 1, y);
                if band < self.bands.len() {
                    skip(&mut read, &spans, band);
                }
            }
        }
        spans.truncate(write);
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Area, Rect};

    fn clip(rects: &[(i32, i32, i32, i32)]) -> Clip {
        let rects: Vec<Rect> = rects
            .iter()
            .map(|&(left, top, right, bottom)| Rect {
                left,
                top,
                right,
                bottom,
            })
            .collect();
        Clip::new(Area::new(0, 0, 64, 64), Some(&rects)).unwrap()
    }

    #[test]
    fn spans_are_cut_to_the_boxes_of_their_band() {
        let c = clip(&[(0, 0, 4, 4), (0, 8, 4, 12)]);
        let out = Region::new(&c).clip_in_place(vec![(2, 1, 5), (1, 5, 2), (0, 9, 1)], true);
        assert_eq!(out, vec![(2, 1, 2), (0, 9, 1)]);
    }

    #[test]
    fn a_span_cut_in_two_overwrites_the_next_one() {
        // Two boxes side by side: row 1's span is cut in two; the second piece takes
        // row 2's place and is read (and painted) again in its stead, and so on.
        let c = clip(&[(0, 0, 4, 8), (6, 0, 10, 8)]);
        let out = Region::new(&c).clip_in_place(vec![(2, 1, 6), (1, 2, 2), (1, 3, 2)], true);
        assert_eq!(out, vec![(2, 1, 2), (6, 1, 2), (6, 1, 2), (6, 1, 2)]);
    }
}
