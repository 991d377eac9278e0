//! BGRx to 4:2:0 YUV (I420 or NV12), written straight into the buffer the encoder
//! gets: one pass over the frame instead of a copy into GStreamer and `videoconvert`'s
//! generic path (which has no fast path from BGRx and was a third of x264's time).
//!
//! Limited range (16..235), with GStreamer's default matrix for the frame height
//! (BT.601 up to 576 lines, BT.709 up to 2159, BT.2020 above), which the caps also
//! name, so decoders without colour signalling in the bitstream (VP8) agree; JPEG's
//! full-range BT.601 for JPEG, as every JPEG decoder reads it.

/// Fixed-point (16 fractional bits) coefficients of one matrix.
#[derive(Debug, Clone, Copy)]
pub(super) struct Matrix {
    y: [i32; 3],
    u: [i32; 3],
    v: [i32; 3],
    /// 16 for limited range, 0 for full.
    black: i32,
    /// Chroma's range: 16..=240 limited, 0..=255 full.
    chroma_range: (i32, i32),
    /// The caps' `colorimetry` for it.
    pub colorimetry: &'static str,
}

const ONE: f64 = 65536.0;

impl Matrix {
    fn new(kr: f64, kb: f64, full_range: bool, colorimetry: &'static str) -> Matrix {
        let kg = 1.0 - kr - kb;
        let (ys, cs) = if full_range {
            (1.0, 1.0)
        } else {
            (219.0 / 255.0, 224.0 / 255.0)
        };
        let fix = |x: f64| (x * ONE).round() as i32;
        // U = (B - Y) / (2 (1 - Kb)), V = (R - Y) / (2 (1 - Kr)), in R, G, B order.
        let du = 2.0 * (1.0 - kb);
        let dv = 2.0 * (1.0 - kr);
        Matrix {
            y: [fix(kr * ys), fix(kg * ys), fix(kb * ys)],
            u: [
                fix(-kr / du * cs),
                fix(-kg / du * cs),
                fix((1.0 - kb) / du * cs),
            ],
            v: [
                fix((1.0 - kr) / dv * cs),
                fix(-kg / dv * cs),
                fix(-kb / dv * cs),
            ],
            black: if full_range { 0 } else { 16 },
            chroma_range: if full_range { (0, 255) } else { (16, 240) },
            colorimetry,
        }
    }

    /// GStreamer's default for YUV of this height (`video-info.c`), limited range.
    pub(super) fn for_height(height: u32) -> Matrix {
        if height >= 2160 {
            Matrix::new(0.2627, 0.0593, false, "bt2020")
        } else if height > 576 {
            Matrix::new(0.2126, 0.0722, false, "bt709")
        } else {
            Matrix::new(0.299, 0.114, false, "bt601")
        }
    }

    /// JPEG's (JFIF): BT.601, full range; what `jpegdec` assumes of every image.
    pub(super) fn jpeg() -> Matrix {
        Matrix::new(0.299, 0.114, true, "1:4:0:0")
    }

    #[inline(always)]
    fn luma(&self, px: &[u8]) -> u8 {
        let (b, g, r) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
        let y = self.y[0] * r + self.y[1] * g + self.y[2] * b;
        (((y + (1 << 15)) >> 16) + self.black).min(255) as u8
    }

    /// U and V from the sums of four pixels' channels.
    #[inline(always)]
    fn chroma(&self, b: i32, g: i32, r: i32) -> (u8, u8) {
        let u = self.u[0] * r + self.u[1] * g + self.u[2] * b;
        let v = self.v[0] * r + self.v[1] * g + self.v[2] * b;
        // Arithmetic shifts round towards minus infinity: with the half added, to nearest.
        let u = ((u + (1 << 17)) >> 18) + 128;
        let v = ((v + (1 << 17)) >> 18) + 128;
        let (lo, hi) = self.chroma_range;
        (u.clamp(lo, hi) as u8, v.clamp(lo, hi) as u8)
    }
}

/// Where the planes go in the destination (GStreamer's layout for the format).
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub y_offset: usize,
    pub y_stride: usize,
    /// NV12: the interleaved UV plane; I420: U.
    pub u_offset: usize,
    pub u_stride: usize,
    /// I420 only.
    pub v_offset: usize,
    pub v_stride: usize,
    pub nv12: bool,
    pub size: usize,
}

/// Frames at least this big are converted on two threads.
const PARALLEL_PIXELS: usize = 640 * 480;

/// One run of chroma rows' share of the destination planes; row 0 of each slice is
/// the run's first row.
struct Planes<'a> {
    y: &'a mut [u8],
    u: &'a mut [u8],
    /// Empty for NV12 (U and V interleaved in `u`).
    v: &'a mut [u8],
}

impl<'a> Planes<'a> {
    /// Splits after `chroma_rows` chroma rows (twice as many luma rows).
    fn split(self, chroma_rows: usize, l: &Layout) -> (Planes<'a>, Planes<'a>) {
        let (y0, y1) = self
            .y
            .split_at_mut((2 * chroma_rows * l.y_stride).min(self.y.len()));
        let (u0, u1) = self
            .u
            .split_at_mut((chroma_rows * l.u_stride).min(self.u.len()));
        let (v0, v1) = self
            .v
            .split_at_mut((chroma_rows * l.v_stride).min(self.v.len()));
        (
            Planes {
                y: y0,
                u: u0,
                v: v0,
            },
            Planes {
                y: y1,
                u: u1,
                v: v1,
            },
        )
    }
}

/// Converts `width`x`height` BGRx (`width * 4` bytes a row) into `dst` laid out as
/// `l` says (nothing happens if either is too short for the picture).
#[cfg(test)]
pub(super) fn convert(
    src: &[u8],
    width: usize,
    height: usize,
    m: &Matrix,
    l: &Layout,
    dst: &mut [u8],
) {
    convert_strided(src, width * 4, width, height, m, l, dst);
}

/// `convert` of rows `src_stride` bytes apart (a frame inside a larger screen).
pub(super) fn convert_strided(
    src: &[u8],
    src_stride: usize,
    width: usize,
    height: usize,
    m: &Matrix,
    l: &Layout,
    dst: &mut [u8],
) {
    let chroma_rows = height.div_ceil(2);
    let chroma_width = width.div_ceil(2);
    let fits = width > 0
        && height > 0
        && src_stride >= width * 4
        && src.len() >= src_stride * (height - 1) + width * 4
        && dst.len() >= l.size
        && l.y_stride >= width
        && l.u_stride
            >= if l.nv12 {
                2 * chroma_width
            } else {
                chroma_width
            }
        && (l.nv12 || l.v_stride >= chroma_width)
        && l.y_offset + l.y_stride * (height - 1) + width <= l.u_offset
        && if l.nv12 {
            l.u_offset + l.u_stride * chroma_rows <= dst.len()
        } else {
            l.u_offset + l.u_stride * chroma_rows <= l.v_offset
                && l.v_offset + l.v_stride * chroma_rows <= dst.len()
        };
    if !fits {
        return;
    }
    let (head, chroma) = dst.split_at_mut(l.u_offset);
    let y = &mut head[l.y_offset..];
    let (u, v) = if l.nv12 {
        (chroma, &mut [][..])
    } else {
        chroma.split_at_mut(l.v_offset - l.u_offset)
    };
    let planes = Planes { y, u, v };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || width * height < PARALLEL_PIXELS {
        convert_rows(src, src_stride, width, height, m, l, planes, 0..chroma_rows);
        return;
    }
    let half = chroma_rows / 2;
    let (first, second) = planes.split(half, l);
    std::thread::scope(|s| {
        s.spawn(|| convert_rows(src, src_stride, width, height, m, l, first, 0..half));
        convert_rows(
            src,
            src_stride,
            width,
            height,
            m,
            l,
            second,
            half..chroma_rows,
        );
    });
}

/// Chroma rows `rows` (luma rows twice those): each 2x2 block gives four Y and one
/// U, V. A last odd column or row counts twice in its block's average.
#[allow(clippy::too_many_arguments)]
fn convert_rows(
    src: &[u8],
    src_stride: usize,
    width: usize,
    height: usize,
    m: &Matrix,
    l: &Layout,
    planes: Planes<'_>,
    rows: std::ops::Range<usize>,
) {
    let row = width * 4;
    let pairs = width / 2;
    let mut scratch = Vec::new();
    for (i, cy) in rows.enumerate() {
        let y0 = 2 * cy;
        let has_bottom = y0 + 1 < height;
        let top = &src[y0 * src_stride..][..row];
        let bottom = if has_bottom {
            &src[(y0 + 1) * src_stride..][..row]
        } else {
            top
        };
        let luma = &mut planes.y[2 * i * l.y_stride..];
        let (y_top, y_bottom) = luma.split_at_mut(l.y_stride.min(luma.len()));
        let y_top = &mut y_top[..width];
        // The last odd row has no bottom luma row: its values go to scratch.
        let y_bottom: &mut [u8] = if has_bottom {
            &mut y_bottom[..width]
        } else {
            scratch.resize(width, 0);
            &mut scratch[..]
        };
        let u_row = &mut planes.u[i * l.u_stride..];
        let v_row: &mut [u8] = if l.nv12 {
            &mut []
        } else {
            &mut planes.v[i * l.v_stride..]
        };
        // Whole 2x2 blocks, written as iterator chains so there is no bounds check
        // inside the loop.
        let blocks = top
            .chunks_exact(8)
            .zip(bottom.chunks_exact(8))
            .zip(y_top.chunks_exact_mut(2))
            .zip(y_bottom.chunks_exact_mut(2));
        if l.nv12 {
            let uv = u_row[..2 * pairs].chunks_exact_mut(2);
            for ((((t, b), yt), yb), uv) in blocks.zip(uv) {
                let (u, v) = block(m, t, b, yt, yb);
                uv[0] = u;
                uv[1] = v;
            }
        } else {
            let uv = u_row[..pairs].iter_mut().zip(v_row[..pairs].iter_mut());
            for ((((t, b), yt), yb), (u_out, v_out)) in blocks.zip(uv) {
                let (u, v) = block(m, t, b, yt, yb);
                *u_out = u;
                *v_out = v;
            }
        }
        if width % 2 == 1 {
            let x = pairs;
            let (t, b) = (&top[x * 8..x * 8 + 4], &bottom[x * 8..x * 8 + 4]);
            y_top[2 * x] = m.luma(t);
            y_bottom[2 * x] = m.luma(b);
            let sum = |c: usize| 2 * (i32::from(t[c]) + i32::from(b[c]));
            let (u, v) = m.chroma(sum(0), sum(1), sum(2));
            store_chroma(l.nv12, u_row, v_row, x, u, v);
        }
    }
}

/// One 2x2 block: `t` and `b` its two BGRx pixels of the top and bottom rows; writes
/// their luma and returns the block's U, V.
#[inline(always)]
fn block(m: &Matrix, t: &[u8], b: &[u8], yt: &mut [u8], yb: &mut [u8]) -> (u8, u8) {
    yt[0] = m.luma(&t[..4]);
    yt[1] = m.luma(&t[4..8]);
    yb[0] = m.luma(&b[..4]);
    yb[1] = m.luma(&b[4..8]);
    let sum =
        |c: usize| i32::from(t[c]) + i32::from(t[4 + c]) + i32::from(b[c]) + i32::from(b[4 + c]);
    m.chroma(sum(0), sum(1), sum(2))
}

#[inline(always)]
fn store_chroma(nv12: bool, u_row: &mut [u8], v_row: &mut [u8], x: usize, u: u8, v: u8) {
    if nv12 {
        u_row[2 * x] = u;
        u_row[2 * x + 1] = v;
    } else {
        u_row[x] = u;
        v_row[x] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i420(width: usize, height: usize) -> Layout {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        Layout {
            y_offset: 0,
            y_stride: width,
            u_offset: width * height,
            u_stride: cw,
            v_offset: width * height + cw * ch,
            v_stride: cw,
            nv12: false,
            size: width * height + 2 * cw * ch,
        }
    }

    #[test]
    fn grey_white_and_primaries_land_on_their_studio_values() {
        let m = Matrix::for_height(480);
        let l = i420(2, 2);
        let mut out = vec![0u8; l.size];
        // White: Y 235, neutral chroma.
        convert(&[255; 16], 2, 2, &m, &l, &mut out);
        assert_eq!(out, [235, 235, 235, 235, 128, 128]);
        // Black.
        convert(&[0; 16], 2, 2, &m, &l, &mut out);
        assert_eq!(out, [16, 16, 16, 16, 128, 128]);
        // Pure blue in BT.601: Y 41, U 240, V 110 (the textbook values).
        let blue: Vec<u8> = [255u8, 0, 0, 0].repeat(4);
        convert(&blue, 2, 2, &m, &l, &mut out);
        assert_eq!(&out[..4], &[41; 4]);
        assert_eq!((out[4], out[5]), (240, 110));
        // BT.709 red: Y 63, V 240.
        let red: Vec<u8> = [0u8, 0, 255, 0].repeat(4);
        convert(&red, 2, 2, &Matrix::for_height(720), &l, &mut out);
        assert_eq!(out[0], 63);
        assert_eq!(out[5], 240);
    }

    #[test]
    fn jpeg_is_full_range() {
        let m = Matrix::jpeg();
        let l = i420(2, 2);
        let mut out = vec![0u8; l.size];
        convert(&[255; 16], 2, 2, &m, &l, &mut out);
        assert_eq!(out, [255, 255, 255, 255, 128, 128]);
        convert(&[0; 16], 2, 2, &m, &l, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 128, 128]);
        // Pure blue: Y 29, U 255, V 107 (JFIF's equations).
        let blue: Vec<u8> = [255u8, 0, 0, 0].repeat(4);
        convert(&blue, 2, 2, &m, &l, &mut out);
        assert_eq!((out[0], out[4], out[5]), (29, 255, 107));
    }

    #[test]
    fn odd_sizes_average_what_is_there() {
        // 3x1: the last chroma sample covers one pixel only.
        let src = [0u8, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 0];
        let l = i420(3, 1);
        let mut out = vec![0u8; l.size];
        convert(&src, 3, 1, &Matrix::for_height(1), &l, &mut out);
        assert_eq!(&out[..3], &[16, 16, 235]);
        assert_eq!(&out[3..], &[128, 128, 128, 128]);
    }
}
