//! A smaller picture for a thin link: a frame's BGRX pixels averaged over 2x2 or 4x4
//! blocks (a box filter, so the smaller picture does not alias). The client scales
//! each decoded frame to the stream's destination (spice-gtk's canvas does), so a
//! stream's frames may be encoded at a fraction of its size: a 720p JPEG at half
//! size costs about a third of the bytes of the full one at the same quality.

use super::encoder::rows_fit;

/// Shrinks frames into buffers it keeps, so a stream's frames reuse warm memory (a
/// quarter of a 720p frame is two halvings, through a 0.9 MB half-size picture).
#[derive(Default)]
pub(crate) struct Shrinker {
    half: Vec<u8>,
    quarter: Vec<u8>,
}

impl Shrinker {
    /// Averages `divisor` x `divisor` blocks of the `width` x `height` BGRX picture in
    /// `pixels` (rows `stride` apart); a divisor of 4 is two halvings. Returns the
    /// shrunk picture (packed rows) and its size, or None when the buffer does not hold
    /// the picture, the divisor is not 2 or 4, or the picture is smaller than a block.
    pub(crate) fn shrink_bgrx(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        stride: usize,
        divisor: u8,
    ) -> Option<(&[u8], u32, u32)> {
        if !rows_fit(pixels.len(), width, height, stride) {
            return None;
        }
        match divisor {
            2 => {
                let (w, h) = halve(pixels, width, height, stride, &mut self.half)?;
                Some((&self.half, w, h))
            }
            4 => {
                let (w, h) = halve(pixels, width, height, stride, &mut self.half)?;
                let (w, h) = halve(&self.half, w, h, w as usize * 4, &mut self.quarter)?;
                Some((&self.quarter, w, h))
            }
            _ => None,
        }
    }
}

/// One halving: each output pixel is the rounded mean of a 2x2 block (an odd last row
/// or column is left out).
fn halve(
    pixels: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    out: &mut Vec<u8>,
) -> Option<(u32, u32)> {
    let (w, h) = (width as usize / 2, height as usize / 2);
    if w == 0 || h == 0 {
        return None;
    }
    out.clear();
    out.resize(w * h * 4, 0);
    for (y, row) in out.chunks_exact_mut(w * 4).enumerate() {
        let top = &pixels[2 * y * stride..][..w * 8];
        let bottom = &pixels[(2 * y + 1) * stride..][..w * 8];
        for ((px, a), b) in row
            .chunks_exact_mut(4)
            .zip(top.chunks_exact(8))
            .zip(bottom.chunks_exact(8))
        {
            for c in 0..4 {
                let sum =
                    u16::from(a[c]) + u16::from(a[c + 4]) + u16::from(b[c]) + u16::from(b[c + 4]);
                px[c] = ((sum + 2) / 4) as u8;
            }
        }
    }
    Some((w as u32, h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture whose pixel (x, y) is (x, y, x + y, 255), in a padded buffer.
    fn ramp(width: u32, height: u32, stride: usize) -> Vec<u8> {
        let mut px = vec![0xee; stride * height as usize];
        for y in 0..height as usize {
            for x in 0..width as usize {
                px[y * stride + x * 4..][..4].copy_from_slice(&[
                    x as u8,
                    y as u8,
                    (x + y) as u8,
                    255,
                ]);
            }
        }
        px
    }

    #[test]
    fn halving_averages_each_two_by_two_block() {
        let px = ramp(6, 4, 6 * 4 + 8);
        let mut s = Shrinker::default();
        let (out, w, h) = s.shrink_bgrx(&px, 6, 4, 32, 2).expect("halved");
        assert_eq!((w, h), (3, 2));
        // Block (1, 1) covers x 2..4, y 2..4: means 2.5, 2.5, 5 round to 3, 3, 5.
        assert_eq!(&out[(3 + 1) * 4..][..4], &[3, 3, 5, 255]);
        assert_eq!(&out[..4], &[1, 1, 1, 255], "the padding is never read");
        assert_eq!(out.len(), 3 * 2 * 4);
    }

    #[test]
    fn a_quarter_is_two_halvings_and_odd_edges_are_left_out() {
        let px = ramp(9, 9, 9 * 4);
        let mut s = Shrinker::default();
        let (out, w, h) = s.shrink_bgrx(&px, 9, 9, 36, 4).expect("quartered");
        assert_eq!((w, h), (2, 2));
        // Output (1, 0) covers x 4..8, y 0..4: means 5.5, 1.5, 7 (halvings round up).
        assert_eq!(&out[4..8], &[6, 2, 7, 255]);
    }

    #[test]
    fn what_cannot_be_shrunk_is_refused() {
        let px = ramp(4, 4, 16);
        let mut s = Shrinker::default();
        assert_eq!(s.shrink_bgrx(&px, 4, 4, 16, 3), None, "divisor");
        assert_eq!(s.shrink_bgrx(&px, 1, 4, 16, 2), None, "one column");
        assert_eq!(s.shrink_bgrx(&px, 2, 2, 16, 4), None, "one block of 2");
        assert_eq!(s.shrink_bgrx(&px[..40], 4, 4, 16, 2), None, "short");
        assert_eq!(s.shrink_bgrx(&px, 4, 4, 8, 2), None, "stride");
    }
}
