//! Styled (dashed) zero-width lines: X11 draws them as dashed lines of width 1
//! (`miZeroDashLine` → `miWideDash`).

use super::Painter;

/// A dashed polyline. False when the budget ran out.
pub(super) fn dashed_polyline(
    p: &mut Painter,
    points: &[(i32, i32)],
    _dash: &[u8],
    _offset: i64,
) -> bool {
    super::zero_polyline(p, points)
}
