//! DRAW_STROKE as spice-common's canvas draws it: the path's points rounded from 28.4
//! fixed point to pixels, beziers flattened by subdivision, and every polyline drawn as an
//! X11 zero-width line (CapNotLast, the X server's default octant bias); styled lines as
//! X11 draws a dashed line of width 1. The line width is ignored, as the canvas does.

use super::clip::Clip;
use super::framebuffer::Framebuffer;
use super::{brush_at, get_at, put_at, rop, targets};
use crate::qxl::draw::{line_flags, path_flags, Brush, Draw, PathSeg};
use crate::qxl::image::Pixels;

mod dash;
mod poly;
mod spans;

/// Most pixels one stroke may visit (a hostile path of long segments far off the surface
/// must not keep the worker busy for minutes).
const MAX_STROKE_STEPS: usize = 1 << 24;
/// Deepest bezier subdivision: spice-common recurses until a piece is straight within
/// half a pixel (and forever on a degenerate curve); 2^16 pieces are more than any
/// curve on a surface needs.
const MAX_BEZIER_DEPTH: u32 = 16;

/// 28.4 fixed point to a pixel as spice-common rounds it: a fraction above one half
/// rounds up, one half and below round down.
pub(super) fn fix_to_int(v: i32) -> i32 {
    (v >> 4) + i32::from(v & 0xf > 8)
}

/// Where a stroke's pixels go: the clip, the brush and the rop, and the pixel budget.
pub(super) struct Painter<'a> {
    region: spans::Region,
    /// The surface's width and height.
    surface: (i64, i64),
    pixels: &'a mut [u8],
    stride: usize,
    brush: &'a Brush,
    pattern: Option<&'a Pixels>,
    rop: u16,
    budget: usize,
}

impl Painter<'_> {
    /// Spends one step of the budget; false once it is gone.
    pub(super) fn step(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Paints a batch of spans as spice-common's stroke canvas does (`FillSpans`):
    /// clipped in place to the drawing's region (see `spans`), each span that is left
    /// painted in turn (one step of the budget each); false once the budget is gone.
    pub(super) fn fill_spans(&mut self, spans: Vec<spans::Span>, sorted: bool) -> bool {
        for (x, y, w) in self.region.clip_in_place(spans, sorted) {
            if !self.step() {
                return false;
            }
            let (y, x1) = (i64::from(y), i64::from(x).max(0));
            let x2 = (i64::from(x) + i64::from(w)).min(self.surface.0);
            if y < 0 || y >= self.surface.1 {
                continue;
            }
            for x in x1..x2 {
                self.paint(x as u32, y as u32);
            }
        }
        true
    }

    /// Whether painting a pixel twice gives what painting it once does (X11 paints a
    /// wide line's overlapping pieces once only for the other rops).
    pub(super) fn rop_is_idempotent(&self) -> bool {
        let values = [0, 0xff_ffff];
        values.iter().all(|&s| {
            values.iter().all(|&d| {
                let once = rop::apply(self.rop, s, d, true);
                rop::apply(self.rop, s, once, true) == once
            })
        })
    }

    /// Paints the pixel (x, y) of the surface, whatever the clip.
    fn paint(&mut self, x: u32, y: u32) {
        // The canvas strokes with a NONE brush in black.
        let color = match self.brush {
            Brush::None => Some(0),
            b => brush_at(b, self.pattern, x, y),
        };
        if let Some(c) = color {
            let o = y as usize * self.stride + x as usize * 4;
            let v = rop::apply(self.rop, c, get_at(self.pixels, o), true);
            put_at(self.pixels, o, v);
        }
    }
}

/// The octants (X11's numbering) whose lines step along the major axis when the error
/// term is exactly zero: `miGetZeroLineBias`'s default.
const BIAS_OCTANTS: u32 = (1 << 3) | (1 << 7) | (1 << 6) | (1 << 4);

/// One segment of an X11 zero-width line from `a` towards `b`, its last point left out.
/// False when the budget ran out.
fn zero_segment(p: &mut Painter, a: (i32, i32), b: (i32, i32)) -> bool {
    let (x1, y1) = (i64::from(a.0), i64::from(a.1));
    let (dx, dy) = (i64::from(b.0) - x1, i64::from(b.1) - y1);
    let (adx, ady) = (dx.abs(), dy.abs());
    let (sx, sy) = (if dx < 0 { -1 } else { 1 }, if dy < 0 { -1 } else { 1 });
    let x_major = adx > ady;
    let octant = (u32::from(dx < 0) << 2) | (u32::from(dy < 0) << 1) | u32::from(!x_major);
    let bias = i64::from((BIAS_OCTANTS >> octant) & 1);
    let (major, minor) = if x_major { (adx, ady) } else { (ady, adx) };
    // miZeroLine clips each segment to the surface (its pixels there are the unclipped
    // line's) and paints the rest as one batch of spans, a row's pixels joined.
    let (sw, sh) = p.surface;
    let (start, step, lo, hi) = if x_major {
        (x1, sx, 0, sw)
    } else {
        (y1, sy, 0, sh)
    };
    let k_of = |v: i64| (v - start) * step;
    let (k0, k1) = {
        let (ka, kb) = (k_of(lo), k_of(hi - 1));
        (ka.min(kb).max(0), (ka.max(kb) + 1).min(major))
    };
    let mut spans: Vec<spans::Span> = vec![];
    for k in k0..k1 {
        if !p.step() {
            return false;
        }
        // Bresenham's error term in closed form: the minor offset after k steps.
        let m = (2 * k * minor + major - bias).div_euclid(2 * major);
        let (x, y) = if x_major {
            (x1 + k * sx, y1 + m * sy)
        } else {
            (x1 + m * sx, y1 + k * sy)
        };
        if x < 0 || x >= sw || y < 0 || y >= sh {
            continue;
        }
        let (x, y) = (x as i32, y as i32);
        match spans.last_mut() {
            Some(last) if last.1 == y => {
                last.0 = last.0.min(x);
                last.2 += 1;
            }
            _ => spans.push((x, y, 1)),
        }
    }
    p.fill_spans(spans, false)
}

/// A zero-width polyline (`miZeroLine` with CapNotLast): every segment without its end.
fn zero_polyline(p: &mut Painter, points: &[(i32, i32)]) -> bool {
    points.windows(2).all(|w| zero_segment(p, w[0], w[1]))
}

fn dot(x1: i32, y1: i32, x2: i32, y2: i32) -> i64 {
    (i64::from(x1) * i64::from(x2)).wrapping_add(i64::from(y1) * i64::from(y2)) >> 4
}

fn mid(a: (i32, i32), b: (i32, i32)) -> (i32, i32) {
    (a.0.wrapping_add(b.0) / 2, a.1.wrapping_add(b.1) / 2)
}

/// spice-common's bezier flattening: split in halves until both control points lie
/// within half a pixel of the chord, then a line to the end point.
fn subdivide(out: &mut Vec<(i32, i32)>, p: [(i32, i32); 4], depth: u32) {
    let [p0, p1, p2, p3] = p;
    let d = |a: (i32, i32), b: (i32, i32)| (a.0.wrapping_sub(b.0), a.1.wrapping_sub(b.1));
    let (v1, v3, v2) = (d(p1, p0), d(p3, p0), d(p2, p3));
    let a2 = dot(v1.0, v1.1, v1.0, v1.1);
    let b2 = dot(v3.0, v3.1, v3.0, v3.1);
    let c2 = dot(v2.0, v2.1, v2.0, v2.1);
    let ab = dot(v1.0, v1.1, v3.0, v3.1);
    let v0 = d(p0, p3);
    let cb = dot(v2.0, v2.1, v0.0, v0.1);
    let h1 = a2.wrapping_mul(b2).wrapping_sub(ab.wrapping_mul(ab)) >> 3;
    let h2 = c2.wrapping_mul(b2).wrapping_sub(cb.wrapping_mul(cb)) >> 3;
    if (h1 < b2 && h2 < b2) || depth >= MAX_BEZIER_DEPTH {
        out.push((fix_to_int(p3.0), fix_to_int(p3.1)));
        return;
    }
    let (p01, p12, p23) = (mid(p0, p1), mid(p1, p2), mid(p2, p3));
    let (p012, p123) = (mid(p01, p12), mid(p12, p23));
    let p0123 = mid(p012, p123);
    subdivide(out, [p0, p01, p012, p0123], depth + 1);
    subdivide(out, [p0123, p123, p23, p3], depth + 1);
}

/// The dash list and offset X11 gets from a styled line's attributes: lengths rounded
/// to pixels (kept to a byte, as the canvas stores them), rotated one place with the
/// offset of the new first dash when the line starts with a gap. `None` when no dash
/// is longer than zero (spice-common's dash stepping never ends on such a list).
fn dash_list(attr_flags: u8, style: &[i32]) -> Option<(Vec<u8>, i64)> {
    let mut dash: Vec<u8> = style.iter().map(|&s| fix_to_int(s) as u8).collect();
    let mut offset = 0;
    if attr_flags & line_flags::START_WITH_GAP != 0 {
        dash.rotate_left(1);
        offset = i64::from(dash[0]);
    }
    dash.iter().any(|&d| d > 0).then_some((dash, offset))
}

/// Whether spice-common's canvas can draw this path and style: it aborts on a segment
/// that begins without a point and on a bezier run that is not whole curves or has no
/// start point, and never ends on a dash list without a dash longer than zero.
pub(crate) fn stroke_is_drawable(path: &[PathSeg], attr_flags: u8, style: &[i32]) -> bool {
    if attr_flags & line_flags::STYLED != 0 && dash_list(attr_flags, style).is_none() {
        return false;
    }
    let mut have_start = false;
    for seg in path {
        let mut n = seg.points.len();
        if seg.flags & path_flags::BEGIN != 0 {
            if n == 0 {
                return false;
            }
            have_start = true;
            n -= 1;
        }
        if seg.flags & path_flags::BEZIER != 0 && (n % 3 != 0 || !have_start) {
            return false;
        }
        have_start |= n > 0;
        if seg.flags & path_flags::END != 0 {
            have_start = false;
        }
    }
    true
}

/// Renders a DRAW_STROKE.
#[allow(clippy::too_many_arguments)]
pub(super) fn draw_stroke(
    fb: &mut Framebuffer,
    draw: &Draw,
    path: &[PathSeg],
    brush: &Brush,
    pattern: Option<&Pixels>,
    fore_mode: u16,
    attr_flags: u8,
    style: &[i32],
) {
    let clip: Clip = targets(fb, &draw.bbox, &draw.clip);
    if clip.is_empty() {
        return;
    }
    let dash = if attr_flags & line_flags::STYLED != 0 {
        match dash_list(attr_flags, style) {
            Some(d) => Some(d),
            None => {
                crate::log_warn!("styled stroke without a dash longer than zero dropped");
                return;
            }
        }
    } else {
        None
    };
    let stride = fb.stride();
    let surface = (i64::from(fb.width), i64::from(fb.height));
    let mut p = Painter {
        region: spans::Region::new(&clip),
        surface,
        pixels: fb.pixels_mut(),
        stride,
        brush,
        pattern,
        rop: fore_mode,
        budget: MAX_STROKE_STEPS,
    };
    let mut lines: Vec<(i32, i32)> = vec![];
    let flush = |p: &mut Painter, lines: &mut Vec<(i32, i32)>| -> bool {
        let whole = match &dash {
            _ if lines.is_empty() => true,
            None => zero_polyline(p, lines),
            Some((list, offset)) => dash::dashed_polyline(p, lines, list, *offset),
        };
        lines.clear();
        if !whole {
            crate::log_warn!("stroke cut: over {MAX_STROKE_STEPS} pixels along its path");
        }
        whole
    };
    for seg in path {
        let mut points = &seg.points[..];
        if seg.flags & path_flags::BEGIN != 0 {
            if !flush(&mut p, &mut lines) {
                return;
            }
            let Some((&first, rest)) = points.split_first() else {
                // spice-common reads past the segment here; nothing sane to draw.
                crate::log_warn!("stroke path segment begins without a point: dropped");
                return;
            };
            lines.push((fix_to_int(first.0), fix_to_int(first.1)));
            points = rest;
        }
        if seg.flags & path_flags::BEZIER != 0 {
            // spice-common gives up (and aborts) on a bezier run that is not whole
            // curves, or that has no start point.
            let Some(&(sx, sy)) = lines.last() else {
                crate::log_warn!("bezier without a start point: stroke dropped");
                return;
            };
            if points.len() % 3 != 0 {
                crate::log_warn!("bezier segment of {} points: stroke dropped", points.len());
                return;
            }
            let mut start = (sx << 4, sy << 4);
            for c in points.chunks_exact(3) {
                subdivide(&mut lines, [start, c[0], c[1], c[2]], 0);
                let &(ex, ey) = lines.last().unwrap_or(&(0, 0));
                start = (ex << 4, ey << 4);
            }
        } else {
            lines.extend(points.iter().map(|&(x, y)| (fix_to_int(x), fix_to_int(y))));
        }
        if seg.flags & path_flags::END != 0 {
            if seg.flags & path_flags::CLOSE != 0 {
                if let Some(&first) = lines.first() {
                    lines.push(first);
                }
            }
            if !flush(&mut p, &mut lines) {
                return;
            }
        }
    }
    flush(&mut p, &mut lines);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::fixtures::NoSurfaces;
    use crate::canvas::render;
    use crate::geometry::Rect;
    use crate::qxl::draw::Op;

    /// The pixels a stroke sets on an 8x8 surface of colour 0x111111 (listed by position).
    fn stroke(path: Vec<PathSeg>, brush: Brush) -> Vec<(u32, u32, u32)> {
        stroke_with(path, brush, crate::canvas::rop::OP_PUT, 0, vec![])
    }

    /// `stroke` with a rop descriptor and a line style.
    pub(super) fn stroke_with(
        path: Vec<PathSeg>,
        brush: Brush,
        fore_mode: u16,
        attr_flags: u8,
        style: Vec<i32>,
    ) -> Vec<(u32, u32, u32)> {
        let draw = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: Rect {
                left: 0,
                top: 0,
                right: 8,
                bottom: 8,
            },
            clip: None,
            op: Op::Stroke {
                path,
                brush,
                fore_mode,
                back_mode: 0,
                width: 1 << 4,
                attr_flags,
                style,
            },
        };
        let mut fb = Framebuffer::new(8, 8).unwrap();
        for o in (0..fb.pixels().len()).step_by(4) {
            put_at(fb.pixels_mut(), o, 0x11_1111);
        }
        render(&mut fb, &draw, &NoSurfaces);
        let mut set = vec![];
        for y in 0..8 {
            for x in 0..8 {
                let v = get_at(fb.pixels(), y as usize * fb.stride() + x as usize * 4);
                if v != 0x11_1111 {
                    set.push((x, y, v));
                }
            }
        }
        set
    }

    pub(super) fn line(flags: u32, points: &[(i32, i32)]) -> PathSeg {
        PathSeg {
            flags,
            points: points.to_vec(),
        }
    }

    pub(super) const WHOLE: u32 = path_flags::BEGIN | path_flags::END;

    #[test]
    fn fixed_point_rounds_half_down() {
        assert_eq!(fix_to_int(8), 0, "0.5");
        assert_eq!(fix_to_int(9), 1);
        assert_eq!(fix_to_int(24), 1, "1.5");
        assert_eq!(fix_to_int(-8), -1, "-0.5");
        assert_eq!(fix_to_int(-7), 0);
    }

    #[test]
    fn ties_follow_the_x11_octant_bias() {
        let white = Brush::Solid(0xff_ffff);
        // (0,0) → (4,2) ties at x = 1 and 3: octant 8 steps the minor axis there...
        let forward = stroke(vec![line(WHOLE, &[(0, 0), (64, 32)])], white.clone());
        let pts: Vec<_> = forward.iter().map(|&(x, y, _)| (x, y)).collect();
        assert_eq!(pts, vec![(0, 0), (1, 1), (2, 1), (3, 2)]);
        // ...its reverse (octant 4, biased) stays on the major axis: other pixels.
        let back = stroke(vec![line(WHOLE, &[(64, 32), (0, 0)])], white);
        let pts: Vec<_> = back.iter().map(|&(x, y, _)| (x, y)).collect();
        assert_eq!(pts, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
    }

    #[test]
    fn a_half_pixel_end_rounds_down_and_the_last_point_is_left_out() {
        // (0.5, 1) → (5.5, 1): pixels 0..5 of row 1, without the end pixel 5.
        let set = stroke(
            vec![line(WHOLE, &[(8, 16), (88, 16)])],
            Brush::Solid(0xff_ffff),
        );
        let pts: Vec<_> = set.iter().map(|&(x, y, _)| (x, y)).collect();
        assert_eq!(pts, vec![(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]);
    }

    #[test]
    fn a_none_brush_strokes_black() {
        let set = stroke(vec![line(WHOLE, &[(0, 0), (32, 0)])], Brush::None);
        assert_eq!(set, vec![(0, 0, 0), (1, 0, 0)]);
    }

    #[test]
    fn close_returns_to_the_first_point() {
        let closed = path_flags::BEGIN | path_flags::END | path_flags::CLOSE;
        let set = stroke(
            vec![line(closed, &[(0, 0), (48, 0), (48, 48)])],
            Brush::Solid(1),
        );
        // Along the top, down the right side, back along the diagonal to (0, 0).
        let pts: Vec<_> = set.iter().map(|&(x, y, _)| (x, y)).collect();
        assert_eq!(
            pts,
            vec![
                (0, 0),
                (1, 0),
                (2, 0),
                (3, 0),
                (1, 1),
                (3, 1),
                (2, 2),
                (3, 2),
                (3, 3)
            ]
        );
    }

    #[test]
    fn a_bezier_draws_the_curve_not_its_control_polygon() {
        // From (0,0) to (7,0) with both control points 8 rows down: the curve's
        // lowest point is at 3/4 of that (row 6), its controls' corners are not drawn.
        let bezier = path_flags::BEGIN | path_flags::END | path_flags::BEZIER;
        let set = stroke(
            vec![line(bezier, &[(0, 0), (0, 128), (112, 128), (112, 0)])],
            Brush::Solid(1),
        );
        let lowest = set.iter().map(|&(_, y, _)| y).max().unwrap();
        assert_eq!(lowest, 6);
        assert!(!set.iter().any(|&(x, y, _)| (x, y) == (0, 7)));
    }

    #[test]
    fn start_with_gap_rotates_the_dash_list() {
        let style = [1 << 4, 2 << 4, 3 << 4];
        assert_eq!(
            dash_list(line_flags::STYLED, &style),
            Some((vec![1, 2, 3], 0))
        );
        assert_eq!(
            dash_list(line_flags::STYLED | line_flags::START_WITH_GAP, &style),
            Some((vec![2, 3, 1], 2))
        );
        assert_eq!(dash_list(line_flags::STYLED, &[8, 0]), None, "no dash");
    }
}
