//! What the canvas's unit tests share: no off-screen surfaces, and rectangles by edges.

pub(crate) use super::NoSurfaces;
use crate::geometry::Rect;

pub(crate) fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
    Rect {
        left,
        top,
        right,
        bottom,
    }
}
