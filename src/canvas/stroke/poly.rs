//! X11's span-based convex polygon filler as lines.c uses it for wide lines (and so for
//! dashes): vertices relative to an integer origin, each edge given by its slope and
//! `k = x0 * dy - y0 * dx`, rows from the ceiling of the top vertex to the ceiling of
//! the bottom one, each row's span from its left edge's pixel to its right edge's,
//! inclusive. The integer steps and the floating-point inputs follow X11's so that the
//! same pixels come out.

/// A polygon vertex, relative to the polygon's origin.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Vertex {
    pub x: f64,
    pub y: f64,
}

/// The edge leaving a vertex: its direction and `k = x0 * dy - y0 * dx`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Slope {
    pub dx: i32,
    pub dy: i32,
    pub k: f64,
}

/// One edge stepped row by row (a Bresenham walk of its x).
#[derive(Clone, Copy, Debug, Default)]
struct Edge {
    height: i32,
    x: i32,
    stepx: i32,
    signdx: i32,
    e: i32,
    dy: i32,
    dx: i32,
}

impl Edge {
    fn step(&mut self) {
        self.x = self.x.wrapping_add(self.stepx);
        self.e = self.e.wrapping_add(self.dx);
        if self.e > 0 {
            self.x = self.x.wrapping_add(self.signdx);
            self.e = self.e.wrapping_sub(self.dy);
        }
    }
}

/// The smallest integer not below `x` (C's `ICEIL`: truncation, one up for a positive
/// fraction).
pub(super) fn iceil(x: f64) -> i32 {
    let t = x as i32;
    if x == f64::from(t) || x < 0.0 {
        t
    } else {
        t.wrapping_add(1)
    }
}

/// An edge from the vertex at height `y0` (relative) with slope (`dx`, `dy`) and `k`,
/// the polygon's origin at (`xi`, `yi`); `left` edges start one pixel to the right (the
/// pixel whose centre is inside). Returns the edge and the absolute row it starts on.
fn build_edge(y0: f64, k: f64, dx: i32, dy: i32, xi: i32, yi: i32, left: bool) -> (Edge, i32) {
    let (dx, dy, k) = if dy < 0 {
        (dx.wrapping_neg(), dy.wrapping_neg(), -k)
    } else {
        (dx, dy, k)
    };
    let y = iceil(y0);
    let xady = iceil(k).wrapping_add(y.wrapping_mul(dx));
    let x = if xady <= 0 {
        -(xady.wrapping_neg() / dy) - 1
    } else {
        (xady - 1) / dy
    };
    let mut e = xady.wrapping_sub(x.wrapping_mul(dy));
    let (signdx, stepx, edx) = if dx >= 0 {
        (1, dx / dy, dx % dy)
    } else {
        e = dy - e + 1;
        (-1, -(dx.wrapping_neg() / dy), dx.wrapping_neg() % dy)
    };
    let edge = Edge {
        height: 0,
        x: x.wrapping_add(i32::from(left)).wrapping_add(xi),
        stepx,
        signdx,
        e: e.wrapping_sub(dy),
        dy,
        dx: edx,
    };
    (edge, y.wrapping_add(yi))
}

/// The vertex index `v + incr`, wrapping around `count`.
fn step_around(v: usize, incr: isize, count: usize) -> usize {
    let n = v as isize + incr;
    if n < 0 {
        count - 1
    } else if n as usize == count {
        0
    } else {
        n as usize
    }
}

/// A convex polygon ready to fill: its top row and its left and right edge chains.
pub(super) struct Poly {
    top: i32,
    left: Vec<Edge>,
    right: Vec<Edge>,
}

/// Builds the polygon of `vertices` (relative to (`xi`, `yi`)), `slopes[i]` the edge
/// leaving vertex i.
pub(super) fn build(vertices: &[Vertex], slopes: &[Slope], xi: i32, yi: i32) -> Poly {
    let count = vertices.len();
    let (mut top, mut bottom) = (0, 0);
    let (mut miny, mut maxy) = (vertices[0].y, vertices[0].y);
    for (i, v) in vertices.iter().enumerate().skip(1) {
        if v.y < miny {
            top = i;
            miny = v.y;
        }
        if v.y >= maxy {
            bottom = i;
            maxy = v.y;
        }
    }
    let j = step_around(top, -1, count);
    let (si, sj) = (slopes[top], slopes[j]);
    let (clockwise, mut slopeoff) = if sj.dy.wrapping_mul(si.dx) > si.dy.wrapping_mul(sj.dx) {
        (-1, -1)
    } else {
        (1, 0)
    };
    let bottomy = iceil(maxy).wrapping_add(yi);
    let chain = |dir: isize, slopeoff: isize, left: bool, topy: &mut Option<i32>| {
        let mut edges: Vec<Edge> = vec![];
        let mut lasty = 0;
        let (mut i, mut s) = (top, step_around(top, slopeoff, count));
        while i != bottom {
            let sl = slopes[s];
            if sl.dy != 0 {
                let (edge, y) = build_edge(vertices[i].y, sl.k, sl.dx, sl.dy, xi, yi, left);
                match edges.last_mut() {
                    Some(prev) => prev.height = y.wrapping_sub(lasty),
                    None => {
                        if topy.is_none() {
                            *topy = Some(y);
                        }
                    }
                }
                edges.push(edge);
                lasty = y;
            }
            i = step_around(i, dir, count);
            s = step_around(s, dir, count);
        }
        if let Some(last) = edges.last_mut() {
            last.height = bottomy.wrapping_sub(lasty);
        }
        edges
    };
    // The first chain (the right one) sets the top row; X11 leaves it 0 without one.
    let mut topy = None;
    let right = chain(clockwise, slopeoff, false, &mut topy);
    let mut no_top = Some(0);
    slopeoff = if slopeoff == 0 { -1 } else { 0 };
    let left = chain(-clockwise, slopeoff, true, &mut no_top);
    Poly {
        top: topy.unwrap_or(0),
        left,
        right,
    }
}

impl Poly {
    /// Calls `span(y, x, width)` for each row's span, top to bottom; stops (false) when
    /// `span` does.
    pub(super) fn spans(&self, mut span: impl FnMut(i32, i32, i32) -> bool) -> bool {
        let (mut li, mut ri) = (0, 0);
        let mut l = Edge::default();
        let mut r = Edge::default();
        let mut y = self.top;
        while (li < self.left.len() || l.height != 0) && (ri < self.right.len() || r.height != 0) {
            if l.height == 0 && li < self.left.len() {
                l = self.left[li];
                li += 1;
            }
            if r.height == 0 && ri < self.right.len() {
                r = self.right[ri];
                ri += 1;
            }
            let height = l.height.min(r.height);
            l.height = l.height.wrapping_sub(height);
            r.height = r.height.wrapping_sub(height);
            for _ in 0..height.max(0) {
                if r.x >= l.x && !span(y, l.x, r.x.wrapping_sub(l.x).wrapping_add(1)) {
                    return false;
                }
                y = y.wrapping_add(1);
                l.step();
                r.step();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(p: &Poly) -> Vec<(i32, i32, i32)> {
        let mut out = vec![];
        p.spans(|y, x, w| {
            out.push((y, x, w));
            true
        });
        out
    }

    #[test]
    fn iceil_rounds_up_positive_fractions_only() {
        assert_eq!(iceil(1.0), 1);
        assert_eq!(iceil(1.25), 2);
        assert_eq!(iceil(-0.5), 0);
        assert_eq!(iceil(-1.5), -1);
    }

    #[test]
    fn a_unit_square_on_pixel_corners_fills_one_pixel() {
        // (0,0)-(1,1) clockwise: rows [0, 1); columns whose centre... X11's rule takes
        // the left edge's pixel + 1 and the right edge's pixel: x from 0 to 0.
        let v = [
            Vertex { x: 0.0, y: 0.0 },
            Vertex { x: 1.0, y: 0.0 },
            Vertex { x: 1.0, y: 1.0 },
            Vertex { x: 0.0, y: 1.0 },
        ];
        let s = [
            Slope {
                dx: 1,
                dy: 0,
                k: 0.0,
            },
            Slope {
                dx: 0,
                dy: 1,
                k: 1.0,
            },
            Slope {
                dx: -1,
                dy: 0,
                k: 1.0,
            },
            Slope {
                dx: 0,
                dy: -1,
                k: 0.0,
            },
        ];
        let p = build(&v, &s, 5, 7);
        assert_eq!(rows(&p), vec![(7, 5, 1)]);
    }
}
