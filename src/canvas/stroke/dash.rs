//! Styled (dashed) zero-width lines as spice-common draws them: X11 has no zero-width
//! dash code and draws them as on/off dashed lines of width 1 (`miZeroDashLine` →
//! `miWideDash`), with CapNotLast and miter joins. Each "on" dash of a segment is a
//! rectangle one pixel wide along the segment, filled as a polygon; where two segments
//! meet inside a dash a miter (or bevel) join fills the corner. With a rop that is not
//! idempotent and three points or more, the polygons' spans are merged first so every
//! pixel is painted once; otherwise each polygon is painted as it comes.

use super::poly::{self, Slope, Vertex};
use super::Painter;

/// Half the line width: X11 draws these lines one pixel wide.
const HALF_WIDTH: f64 = 0.5;
/// X11's miter limit: 1 / sin²(11°/2); sharper corners get a bevel.
const SQ_SECANT: f64 = 108.856472512142;

/// Where the dash pattern stands: which dash and how far into it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct DashPos {
    index: usize,
    offset: i32,
}

/// Advances `pos` by `dist` pixels along the dash list (`miStepDash`).
fn step_dash(pos: &mut DashPos, dash: &[u8], mut dist: i32) {
    let len = |i: usize| i32::from(dash[i]);
    if dist < len(pos.index) - pos.offset {
        pos.offset += dist;
        return;
    }
    dist -= len(pos.index) - pos.offset;
    let mut index = (pos.index + 1) % dash.len();
    let total: i32 = dash.iter().map(|&d| i32::from(d)).sum();
    if total > 0 && total <= dist {
        dist %= total;
    }
    while dist >= len(index) {
        dist -= len(index);
        index = (index + 1) % dash.len();
    }
    *pos = DashPos {
        index,
        offset: dist,
    };
}

/// One end of a drawn segment, what a join needs: the end point, the direction away
/// from the segment, the offset to the line's edge and the edge's `k`.
#[derive(Clone, Copy, Debug, Default)]
struct Face {
    x: i32,
    y: i32,
    dx: i32,
    dy: i32,
    xa: f64,
    ya: f64,
    k: f64,
}

/// Where the polygons' spans go: painted at once, or gathered to be merged so that
/// each pixel is painted once.
struct Sink<'p, 'a> {
    painter: &'p mut Painter<'a>,
    /// The spans of each polygon so far, when they are to be merged.
    gathered: Option<Vec<Vec<(i32, i32, i32)>>>,
    whole: bool,
}

impl Sink<'_, '_> {
    /// Spends a step of the budget on a polygon; false (and the line cut) once it is gone.
    fn charge(&mut self) -> bool {
        self.whole = self.whole && self.painter.step();
        self.whole
    }

    fn fill(&mut self, poly: &poly::Poly) {
        if !self.whole {
            return;
        }
        let mut spans = vec![];
        let whole = poly.spans(|y, x, w| {
            spans.push((x, y, w));
            self.painter.step()
        });
        self.whole &= whole;
        if !self.whole || spans.is_empty() {
            return;
        }
        match &mut self.gathered {
            Some(group) => group.push(spans),
            None => self.whole = self.painter.fill_spans(spans, true),
        }
    }

    /// Paints the gathered spans, each pixel once (`miFillUniqueSpanGroup`): one
    /// polygon's spans as they are, more merged row by row, in one batch.
    fn finish(mut self) -> bool {
        let Some(mut group) = self.gathered.take() else {
            return self.whole;
        };
        if !self.whole || group.is_empty() {
            return self.whole;
        }
        if group.len() == 1 {
            return self.painter.fill_spans(group.remove(0), true);
        }
        let mut all: Vec<(i32, i32, i32)> = group.concat();
        all.sort_unstable_by_key(|&(x, y, _)| (y, x));
        let mut merged: Vec<(i32, i32, i32)> = vec![]; // (x1, y, x2) half-open
        for (x, y, w) in all {
            let x2 = x.wrapping_add(w);
            match merged.last_mut() {
                Some((_, my, mx2)) if *my == y && x <= *mx2 => *mx2 = (*mx2).max(x2),
                _ => merged.push((x, y, x2)),
            }
        }
        let spans = merged
            .into_iter()
            .map(|(x1, y, x2)| (x1, y, x2 - x1))
            .collect();
        self.painter.fill_spans(spans, true)
    }
}

const TOP: usize = 0;
const RIGHT: usize = 1;
const BOTTOM: usize = 2;
const LEFT: usize = 3;

/// The "on" dashes of the segment (x1, y1) → (x2, y2) from `pos` (`miWideDashSegment`):
/// one rectangle per dash, its corners offset by half a pixel across the segment and
/// placed by floating-point steps along it; `pos` moves to the segment's end. Returns
/// the segment's start and end faces.
fn dash_segment(
    sink: &mut Sink,
    dash: &[u8],
    pos: &mut DashPos,
    (x1, y1): (i32, i32),
    (x2, y2): (i32, i32),
) -> (Face, Face) {
    let (dx, dy) = (x2.wrapping_sub(x1), y2.wrapping_sub(y1));
    let mut index = pos.index;
    let mut remain = i32::from(dash[index]) - pos.offset;
    let l = HALF_WIDTH;
    let (length, rdx, rdy) = if dx == 0 {
        let len = f64::from(dy);
        if dy < 0 {
            (-len, 0.0, -l)
        } else {
            (len, 0.0, l)
        }
    } else if dy == 0 {
        let len = f64::from(dx);
        if dx < 0 {
            (-len, -l, 0.0)
        } else {
            (len, l, 0.0)
        }
    } else {
        let len = f64::from(dx).hypot(f64::from(dy));
        let r = l / len;
        (len, r * f64::from(dx), r * f64::from(dy))
    };
    let k = l * length;
    let mut slopes = [
        Slope { dx, dy, k },
        Slope {
            dx: dy.wrapping_neg(),
            dy: dx,
            k: 0.0,
        },
        Slope {
            dx: dx.wrapping_neg(),
            dy: dy.wrapping_neg(),
            k,
        },
        Slope {
            dx: dy,
            dy: dx.wrapping_neg(),
            k: 0.0,
        },
    ];
    let upper = Vertex { x: rdy, y: -rdx };
    let lower = Vertex { x: -rdy, y: rdx };
    let mut v = [upper, upper, lower, lower];
    let mut left_len = length;
    while left_len > f64::from(remain) {
        let step_x = f64::from(remain.wrapping_mul(dx)) / length;
        let step_y = f64::from(remain.wrapping_mul(dy)) / length;
        v[RIGHT].x += step_x;
        v[RIGHT].y += step_y;
        v[BOTTOM].x += step_x;
        v[BOTTOM].y += step_y;
        slopes[RIGHT].k = v[RIGHT].x * f64::from(dx) + v[RIGHT].y * f64::from(dy);
        if !sink.charge() {
            break;
        }
        if index & 1 == 0 {
            sink.fill(&poly::build(&v, &slopes, x1, y1));
        }
        left_len -= f64::from(remain);
        index = (index + 1) % dash.len();
        remain = i32::from(dash[index]);
        v[TOP] = v[RIGHT];
        v[LEFT] = v[BOTTOM];
        slopes[LEFT].k = -slopes[RIGHT].k;
    }
    if index & 1 == 0 {
        // The last dash, up to the segment's end, built around (x2, y2).
        for c in [TOP, LEFT] {
            v[c].x -= f64::from(dx);
            v[c].y -= f64::from(dy);
        }
        v[RIGHT] = upper;
        v[BOTTOM] = lower;
        slopes[RIGHT].k = 0.0;
        let len2 = dx.wrapping_mul(dx).wrapping_add(dy.wrapping_mul(dy));
        slopes[LEFT].k += f64::from(len2);
        sink.fill(&poly::build(&v, &slopes, x2, y2));
    }
    remain = (f64::from(remain) - left_len) as i32;
    if remain == 0 {
        index = (index + 1) % dash.len();
        remain = i32::from(dash[index]);
    }
    *pos = DashPos {
        index,
        offset: i32::from(dash[index]) - remain,
    };
    let start = Face {
        x: x1,
        y: y1,
        dx,
        dy,
        xa: rdy,
        ya: -rdx,
        k,
    };
    let end = Face {
        x: x2,
        y: y2,
        dx: dx.wrapping_neg(),
        dy: dy.wrapping_neg(),
        xa: -rdy,
        ya: rdx,
        k,
    };
    (start, end)
}

/// The corner where a segment (`left`, its start face) follows another (`right`, the
/// previous one's end face): a miter up to X11's limit, else a bevel (`miLineJoin`).
/// Painting polygons directly, a one-pixel line whose segments run right or down draws
/// the corner itself and gets no join.
fn join(sink: &mut Sink, mut left: Face, mut right: Face) {
    let heads_forward = |f: &Face| f.dx > 0 || (f.dx == 0 && f.dy > 0);
    if sink.gathered.is_none() && (heads_forward(&left) || heads_forward(&right)) {
        return;
    }
    let denom = f64::from(left.dx.wrapping_neg()) * f64::from(right.dy)
        + f64::from(right.dx) * f64::from(left.dy);
    if denom == 0.0 {
        return;
    }
    let swap = denom <= 0.0;
    let flip = |f: &mut Face| {
        f.xa = -f.xa;
        f.ya = -f.ya;
        f.dx = f.dx.wrapping_neg();
        f.dy = f.dy.wrapping_neg();
    };
    if swap {
        flip(&mut right);
    } else {
        flip(&mut left);
    }
    let mut v = [
        Vertex {
            x: right.xa,
            y: right.ya,
        },
        Vertex::default(),
        Vertex {
            x: left.xa,
            y: left.ya,
        },
        Vertex::default(),
    ];
    let mut slopes = [
        Slope {
            dx: right.dy.wrapping_neg(),
            dy: right.dx,
            k: 0.0,
        },
        Slope {
            dx: left.dy,
            dy: left.dx.wrapping_neg(),
            k: 0.0,
        },
        Slope::default(),
        Slope::default(),
    ];
    let (ldx, ldy) = (f64::from(left.dx), f64::from(left.dy));
    let (rdx, rdy) = (f64::from(right.dx), f64::from(right.dy));
    let my =
        (ldy * (right.xa * rdy - right.ya * rdx) - rdy * (left.xa * ldy - left.ya * ldx)) / denom;
    let mx = if left.dy != 0 {
        left.xa + (my - left.ya) * ldx / ldy
    } else {
        right.xa + (my - right.ya) * rdx / rdy
    };
    let width = 2.0 * HALF_WIDTH;
    let count = if (mx * mx + my * my) * 4.0 > SQ_SECANT * width * width {
        // Bevel: the edge straight across from one face's corner to the other's.
        let (bx, by) = (right.xa - left.xa, right.ya - left.ya);
        let scale = if bx.abs() > by.abs() {
            bx.abs()
        } else {
            by.abs()
        };
        let sdx = ((bx * 65536.0) / scale) as i32;
        let sdy = ((by * 65536.0) / scale) as i32;
        slopes[2] = Slope {
            dx: sdx,
            dy: sdy,
            k: ((left.xa + right.xa) * f64::from(sdy) - (left.ya + right.ya) * f64::from(sdx))
                / 2.0,
        };
        3
    } else {
        let sign = if swap { -1 } else { 1 };
        slopes[2] = Slope {
            dx: left.dx.wrapping_mul(sign),
            dy: left.dy.wrapping_mul(sign),
            k: left.k * f64::from(sign),
        };
        v[3] = Vertex { x: mx, y: my };
        slopes[3] = Slope {
            dx: right.dx.wrapping_mul(sign),
            dy: right.dy.wrapping_mul(sign),
            k: right.k * f64::from(sign),
        };
        4
    };
    if sink.charge() {
        sink.fill(&poly::build(&v[..count], &slopes[..count], left.x, left.y));
    }
}

/// A dashed polyline (`miWideDash` with CapNotLast and miter joins), the dash pattern
/// starting `offset` pixels in. False when the budget ran out.
pub(super) fn dashed_polyline(
    p: &mut Painter,
    points: &[(i32, i32)],
    dash: &[u8],
    offset: i64,
) -> bool {
    let (Some(&first_pt), Some(&last_pt)) = (points.first(), points.last()) else {
        return true;
    };
    let gathered = (points.len() >= 3 && !p.rop_is_idempotent()).then(Vec::new);
    let mut sink = Sink {
        painter: p,
        gathered,
        whole: true,
    };
    let self_join = first_pt == last_pt;
    let mut pos = DashPos {
        index: 0,
        offset: 0,
    };
    step_dash(&mut pos, dash, offset.clamp(0, i64::from(i32::MAX)) as i32);
    let mut first = true;
    let mut first_face: Option<Face> = None;
    let mut prev_end = Face::default();
    let mut prev_ends_on = false;
    let mut ends_on = false;
    let mut drawn = false;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a == b {
            continue;
        }
        drawn = true;
        let starts_on = pos.index & 1 == 0;
        let (start, end) = dash_segment(&mut sink, dash, &mut pos, a, b);
        ends_on = (pos.index & 1 == 1) != (pos.offset != 0);
        if starts_on {
            if first && self_join {
                first_face = Some(start);
            } else if !first && prev_ends_on {
                join(&mut sink, start, prev_end);
            }
        }
        prev_end = end;
        prev_ends_on = ends_on;
        first = false;
        if !sink.whole {
            break;
        }
    }
    if drawn && ends_on && sink.whole {
        // A closed line joins its last segment to its first.
        if let Some(first_face) = first_face.filter(|_| self_join) {
            join(&mut sink, first_face, prev_end);
        }
    }
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line, stroke_with, WHOLE};
    use super::*;
    use crate::qxl::draw::{line_flags, Brush};

    /// The pixels a dashed stroke (dashes in whole pixels) sets, by position.
    fn dashed(points: &[(i32, i32)], style: &[i32], flags: u8, rop: u16) -> Vec<(u32, u32)> {
        let px: Vec<_> = points.iter().map(|&(x, y)| (x << 4, y << 4)).collect();
        let style = style.iter().map(|&s| s << 4).collect();
        let set = stroke_with(
            vec![line(WHOLE, &px)],
            Brush::Solid(0xff_ffff),
            rop,
            line_flags::STYLED | flags,
            style,
        );
        set.iter().map(|&(x, y, _)| (x, y)).collect()
    }

    const PUT: u16 = crate::canvas::rop::OP_PUT;
    const XOR: u16 = 1 << 6;

    #[test]
    fn a_dash_covers_the_pixels_from_its_start_up_to_its_end() {
        // Dashes of 2 and gaps of 1 along row 1 from x = 0 to 8: the end pixel is left out.
        let set = dashed(&[(0, 1), (8, 1)], &[2, 1], 0, PUT);
        let xs: Vec<_> = set.iter().map(|&(x, y)| (assert_eq!(y, 1), x).1).collect();
        assert_eq!(xs, vec![0, 1, 3, 4, 6, 7]);
    }

    #[test]
    fn start_with_gap_starts_with_the_last_gap() {
        // Style [1, 2] starting with a gap: the list becomes [2, 1], one pixel in.
        let set = dashed(&[(0, 1), (8, 1)], &[1, 2], line_flags::START_WITH_GAP, PUT);
        let xs: Vec<_> = set.iter().map(|&(x, _)| x).collect();
        assert_eq!(xs, vec![1, 2, 4, 5, 7]);
    }

    #[test]
    fn the_pattern_carries_on_round_a_corner() {
        // [2, 2] from (0,1): on 0-1, off 2 and the first pixel down the corner, on 2-3,
        // off 4-5, on 6 (the end, 7, left out).
        let set = dashed(&[(0, 1), (3, 1), (3, 7)], &[2, 2], 0, PUT);
        assert_eq!(set, vec![(0, 1), (1, 1), (3, 2), (3, 3), (3, 6)]);
    }

    #[test]
    fn a_rop_that_is_not_idempotent_paints_overlaps_once() {
        // An L: the across dash and the down dash (and their miter) share (5, 1); with XOR
        // painted twice it would come back, X11 merges the spans and paints it once.
        let path = vec![line(WHOLE, &[(16, 16), (80, 16), (80, 80)])];
        let set = stroke_with(
            path,
            Brush::Solid(0xff_ffff),
            XOR,
            line_flags::STYLED,
            vec![20 << 4, 1 << 4],
        );
        let mut want: Vec<_> = (1..5)
            .map(|x| (x, 1))
            .chain((1..5).map(|y| (5, y)))
            .collect();
        want.sort_by_key(|&(x, y)| (y, x));
        let got: Vec<_> = set.iter().map(|&(x, y, _)| (x, y)).collect();
        assert_eq!(got, want);
        assert!(set.iter().all(|&(_, _, v)| v == 0xee_eeee));
    }

    #[test]
    fn stepping_the_dash_offset_skips_whole_dashes_and_empty_ones() {
        let dash = [2, 0, 3, 1];
        let mut pos = DashPos {
            index: 0,
            offset: 0,
        };
        step_dash(&mut pos, &dash, 1);
        assert_eq!(
            pos,
            DashPos {
                index: 0,
                offset: 1
            }
        );
        let mut pos = DashPos {
            index: 0,
            offset: 0,
        };
        // Two pixels end dash 0; the empty gap is skipped too.
        step_dash(&mut pos, &dash, 2);
        assert_eq!(
            pos,
            DashPos {
                index: 2,
                offset: 0
            }
        );
        let mut pos = DashPos {
            index: 0,
            offset: 0,
        };
        // Whole periods (6 pixels) are skipped at once.
        step_dash(&mut pos, &dash, 6 * 100 + 5);
        assert_eq!(
            pos,
            DashPos {
                index: 3,
                offset: 0
            }
        );
    }
}
