//! A surface's pixels in the one format the canvas draws (32-bit xRGB, stored BGRX).

use crate::geometry::Area;
use crate::video::encoder::Frame;
use std::collections::TryReserveError;
use std::sync::Arc;

/// `len` zero bytes, or an error when the host cannot provide them.
pub(crate) fn zeroed(len: usize) -> Result<Vec<u8>, TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)?;
    v.resize(len, 0);
    Ok(v)
}

/// Bytes per pixel of the only format the primary surface uses here (32-bit xRGB).
pub(crate) const BYTES_PER_PIXEL: usize = 4;
/// Largest primary surface accepted (beyond any real monitor; bounds memory).
pub(crate) const MAX_DIMENSION: u32 = 16384;

/// A BGRX framebuffer, rows top-down, stride = width * 4.
///
/// The pixels are shared with the video encoder for the frame it is encoding; the next
/// drawing copies them only if the encoder still holds them (copy on write), so a
/// captured video frame usually costs no copy at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Framebuffer {
    pub width: u32,
    pub height: u32,
    /// The top byte of each pixel is alpha, kept by drawings (an ARGB surface); otherwise
    /// it is left 0.
    pub alpha: bool,
    /// That top byte is an ARGB surface's alpha, which pixman reads as the destination's
    /// alpha (an xRGB surface's X byte reads as opaque).
    pub argb: bool,
    /// A 16-bit surface's red, green and blue widths: pixman's float combiners read such
    /// a surface (and images converted to it) as `v / (2^n - 1)`, not as the widened byte.
    pub rgb_bits: Option<[u32; 3]>,
    pixels: Arc<Vec<u8>>,
}

impl Framebuffer {
    /// A black framebuffer; None when the size is absurd or the host has no memory for
    /// it (the guest chooses the size: failing must not abort QEMU).
    pub(crate) fn new(width: u32, height: u32) -> Option<Framebuffer> {
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return None;
        }
        let pixels = zeroed(Self::bytes_for(width, height)).ok()?;
        Some(Framebuffer {
            width,
            height,
            alpha: false,
            argb: false,
            rgb_bits: None,
            pixels: Arc::new(pixels),
        })
    }

    /// The bytes a `width` x `height` framebuffer takes.
    pub(crate) fn bytes_for(width: u32, height: u32) -> usize {
        width as usize * height as usize * BYTES_PER_PIXEL
    }

    /// Makes the pixels this framebuffer's own (copying them if a video frame still holds
    /// them), failing instead of aborting when the host has no memory for the copy.
    pub(crate) fn make_unique(&mut self) -> Result<(), TryReserveError> {
        if Arc::get_mut(&mut self.pixels).is_none() {
            let mut copy = Vec::new();
            copy.try_reserve_exact(self.pixels.len())?;
            copy.extend_from_slice(&self.pixels);
            self.pixels = Arc::new(copy);
        }
        Ok(())
    }

    pub(crate) fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels to draw on (copied first if a video frame still holds them).
    pub(crate) fn pixels_mut(&mut self) -> &mut [u8] {
        Arc::make_mut(&mut self.pixels).as_mut_slice()
    }

    /// `area` as a video frame sharing this framebuffer's pixels.
    pub(crate) fn share(&self, area: Area, mm_time: u32) -> Frame {
        let area = area.intersect(&self.bounds());
        Frame {
            width: area.width(),
            height: area.height(),
            pixels: self.pixels.clone(),
            offset: area.top as usize * self.stride() + area.left as usize * BYTES_PER_PIXEL,
            stride: self.stride(),
            mm_time,
        }
    }

    /// Whether a frame shared earlier is still held (by the encoder or its queue).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.pixels) > 1
    }

    pub(crate) fn stride(&self) -> usize {
        self.width as usize * BYTES_PER_PIXEL
    }

    pub(crate) fn bounds(&self) -> Area {
        Area::new(0, 0, self.width, self.height)
    }

    /// Copies `src` rows (each `src_stride` bytes apart, top-down) into `dest`, clipped to
    /// the surface. `src` must hold `dest.height()` rows of `dest.width()` pixels.
    pub(crate) fn blit(&mut self, dest: Area, src: &[u8], src_stride: usize) -> Area {
        let clipped = dest.intersect(&self.bounds());
        if clipped.is_empty() {
            return clipped;
        }
        let row_bytes = clipped.width() as usize * BYTES_PER_PIXEL;
        let skip_x = (clipped.left - dest.left) as usize * BYTES_PER_PIXEL;
        let skip_y = (clipped.top - dest.top) as usize;
        let stride = self.stride();
        for row in 0..clipped.height() as usize {
            let s = (skip_y + row) * src_stride + skip_x;
            let Some(src_row) = src.get(s..s + row_bytes) else {
                break;
            };
            let d = (clipped.top as usize + row) * stride + clipped.left as usize * BYTES_PER_PIXEL;
            self.pixels_mut()[d..d + row_bytes].copy_from_slice(src_row);
        }
        clipped
    }

    /// The pixels of `area` (inside the surface), packed rows.
    pub(crate) fn read(&self, area: Area) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_into(area, &mut out);
        out
    }

    /// The pixels of `area` (inside the surface), packed rows, appended to `out`.
    pub(crate) fn read_into(&self, area: Area, out: &mut Vec<u8>) {
        let area = area.intersect(&self.bounds());
        let row_bytes = area.width() as usize * BYTES_PER_PIXEL;
        out.reserve(row_bytes * area.height() as usize);
        for y in area.top..area.bottom {
            let start = y as usize * self.stride() + area.left as usize * BYTES_PER_PIXEL;
            out.extend_from_slice(&self.pixels[start..start + row_bytes]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blit_clips_to_the_surface() {
        let mut fb = Framebuffer::new(4, 4).unwrap();
        let src = vec![0xAB; 3 * 3 * 4];
        let drawn = fb.blit(Area::new(2, 2, 5, 5), &src, 12);
        assert_eq!(drawn, Area::new(2, 2, 4, 4));
        assert_eq!(fb.read(Area::new(2, 2, 4, 4)), vec![0xAB; 16]);
        assert_eq!(fb.read(Area::new(0, 0, 2, 2)), vec![0; 16]);
    }

    #[test]
    fn short_source_draws_what_it_has() {
        let mut fb = Framebuffer::new(4, 4).unwrap();
        fb.blit(Area::new(0, 0, 4, 4), &[1u8; 16], 16);
        assert_eq!(fb.read(Area::new(0, 0, 4, 1)), vec![1; 16]);
        assert_eq!(fb.read(Area::new(0, 1, 4, 2)), vec![0; 16]);
    }

    #[test]
    fn a_shared_framebuffer_is_copied_once_before_drawing() {
        let mut fb = Framebuffer::new(2, 2).unwrap();
        let frame = fb.share(fb.bounds(), 0);
        fb.make_unique().unwrap();
        assert!(!fb.is_shared());
        fb.pixels_mut()[0] = 9;
        assert_eq!(frame.pixels[0], 0, "the frame keeps what it captured");
        assert!(
            zeroed(usize::MAX).is_err(),
            "an impossible size fails, not aborts"
        );
    }

    #[test]
    fn refuses_absurd_surfaces() {
        assert!(Framebuffer::new(0, 10).is_none());
        assert!(Framebuffer::new(MAX_DIMENSION + 1, 10).is_none());
    }
}
