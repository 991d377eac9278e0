//! What the canvas's unit tests share: no off-screen surfaces, and rectangles by edges.

use super::Surfaces;
use crate::geometry::Rect;
use crate::qxl::image::Pixels;

/// A drawing that reads no other surface.
pub(crate) struct NoSurfaces;

impl Surfaces for NoSurfaces {
    fn pixels_of(&self, _: u32) -> Option<Pixels> {
        None
    }
}

pub(crate) fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
    Rect {
        left,
        top,
        right,
        bottom,
    }
}
