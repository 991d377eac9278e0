//! Is an area a picture (photo, video) or text/UI? The content test behind
//! `streaming-video=filter`: only picture-like areas become video streams, since JPEG
//! and video codecs blur text and waste bits on flat fills.
//!
//! The idea is spice-server's "graduality": natural images change a little from one
//! pixel to the next almost everywhere, while rendered text and UI are mostly runs of
//! identical pixels broken by sharp edges. We look at a sparse grid of sample points
//! and sort each sample's pairs with its right and lower neighbours into identical,
//! contrasting (a sharp edge) and similar (a small, gradual change).

/// Samples taken from an area, whatever its size: about 10 000, which keeps a 1080p area
/// well under a millisecond and still counts a few thousand pairs.
const TARGET_SAMPLES: usize = 10_000;
/// A channel difference at least this big is an edge (spice-server uses the same value).
const CONTRAST: u8 = 60;
/// Weights of the score against one similar pair. Identical pairs weigh little, so
/// video with flat parts (letterbox bars, a dark scene) still counts; a page of text is
/// nearly all identical pairs and still loses. Sharp edges weigh most: text and UI.
const IDENTICAL_WEIGHT: f32 = 0.5;
const CONTRAST_WEIGHT: f32 = 2.0;
/// Score above which an area counts as a picture.
const PICTURE_THRESHOLD: f32 = 0.1;

/// How the sampled neighbour pairs of an area fell out.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct PictureScore {
    pub identical: u32,
    pub contrasting: u32,
    pub similar: u32,
    /// (similar − identical/2 − 2·contrasting) / pairs, in −2..=1; higher is more
    /// picture-like.
    pub score: f32,
}

impl PictureScore {
    pub(crate) fn pairs(&self) -> u32 {
        self.identical + self.contrasting + self.similar
    }

    pub(crate) fn is_picture_like(&self) -> bool {
        self.pairs() > 0 && self.score > PICTURE_THRESHOLD
    }
}

/// Scores a BGRX area (`stride` bytes per row). `None` when the buffer does not hold the
/// area or the area is too small to have neighbour pairs.
pub(crate) fn picture_score(
    pixels: &[u8],
    width: u32,
    height: u32,
    stride: usize,
) -> Option<PictureScore> {
    let (w, h) = (width as usize, height as usize);
    if w < 2 || h < 2 || stride < w * 4 {
        return None;
    }
    let needed = stride.checked_mul(h - 1)?.checked_add(w * 4)?;
    if pixels.len() < needed {
        return None;
    }
    // Sample spacing in both directions so about TARGET_SAMPLES points are visited.
    let area = w * h;
    let step = (((area / TARGET_SAMPLES) as f64).sqrt().ceil() as usize).max(1);
    let mut counts = PictureScore::default();
    let mut row_index = 0;
    let mut y = 0;
    while y + 1 < h {
        // Shift each sampled row so regular patterns (character cells, grids) are not
        // always hit at the same phase.
        let mut x = (row_index * 7) % step;
        let row = &pixels[y * stride..];
        let below = &pixels[(y + 1) * stride..];
        while x + 1 < w {
            let here = pixel(row, x);
            count_pair(&mut counts, here, pixel(row, x + 1));
            count_pair(&mut counts, here, pixel(below, x));
            x += step;
        }
        y += step;
        row_index += 1;
    }
    let pairs = counts.pairs();
    if pairs == 0 {
        return None;
    }
    counts.score = (counts.similar as f32
        - IDENTICAL_WEIGHT * counts.identical as f32
        - CONTRAST_WEIGHT * counts.contrasting as f32)
        / pairs as f32;
    Some(counts)
}

/// True for photos and video, false for text, UI, terminals and flat fills (and for
/// areas too small to judge).
pub(crate) fn is_picture_like(pixels: &[u8], width: u32, height: u32, stride: usize) -> bool {
    picture_score(pixels, width, height, stride).is_some_and(|s| s.is_picture_like())
}

fn pixel(row: &[u8], x: usize) -> [u8; 3] {
    [row[x * 4], row[x * 4 + 1], row[x * 4 + 2]]
}

fn count_pair(counts: &mut PictureScore, a: [u8; 3], b: [u8; 3]) {
    let diff = a
        .iter()
        .zip(b.iter())
        .map(|(p, q)| p.abs_diff(*q))
        .max()
        .unwrap_or(0);
    if diff == 0 {
        counts.identical += 1;
    } else if diff >= CONTRAST {
        counts.contrasting += 1;
    } else {
        counts.similar += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    struct Canvas {
        w: usize,
        h: usize,
        px: Vec<u8>,
    }

    impl Canvas {
        fn filled(w: usize, h: usize, bgr: [u8; 3]) -> Canvas {
            let mut px = Vec::with_capacity(w * h * 4);
            for _ in 0..w * h {
                px.extend_from_slice(&[bgr[0], bgr[1], bgr[2], 0xff]);
            }
            Canvas { w, h, px }
        }

        fn set(&mut self, x: usize, y: usize, bgr: [u8; 3]) {
            let i = (y * self.w + x) * 4;
            self.px[i..i + 3].copy_from_slice(&bgr);
        }

        fn rect(&mut self, x0: usize, y0: usize, w: usize, h: usize, bgr: [u8; 3]) {
            for y in y0..(y0 + h).min(self.h) {
                for x in x0..(x0 + w).min(self.w) {
                    self.set(x, y, bgr);
                }
            }
        }

        fn score(&self) -> PictureScore {
            picture_score(&self.px, self.w as u32, self.h as u32, self.w * 4).expect("a score")
        }
    }

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
    }

    /// Smooth colour gradients, soft blobs and sensor grain, as a video frame.
    fn photo(w: usize, h: usize, grain: i32) -> Canvas {
        let mut c = Canvas::filled(w, h, [0, 0, 0]);
        let mut rng = Rng(0x1234_5678);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let blob = ((fx * 9.0).sin() * (fy * 7.0).cos() * 50.0) as i32;
                let base = [
                    40 + (fx * 150.0) as i32 + blob,
                    60 + (fy * 120.0) as i32,
                    90 + ((fx + fy) * 60.0) as i32 - blob / 2,
                ];
                let n = if grain > 0 {
                    (rng.next() % (2 * grain as u32 + 1)) as i32 - grain
                } else {
                    0
                };
                let px = base.map(|v| (v + n).clamp(0, 255) as u8);
                c.set(x, y, px);
            }
        }
        c
    }

    /// Glyph-like strokes, anti-aliased with two intermediate shades, on a plain page.
    fn text(w: usize, h: usize, fg: [u8; 3], bg: [u8; 3]) -> Canvas {
        let mut c = Canvas::filled(w, h, bg);
        let mix =
            |k: u16| [0, 1, 2].map(|i| ((fg[i] as u16 * k + bg[i] as u16 * (4 - k)) / 4) as u8);
        let (aa_dark, aa_light) = (mix(3), mix(1));
        let mut rng = Rng(99);
        // 8x16 character cells, 2 px line gap.
        for row in 0..h / 18 {
            for col in 0..w / 8 {
                if rng.next().is_multiple_of(6) {
                    continue; // a space
                }
                let (x0, y0) = (col * 8 + 1, row * 18 + 3);
                let glyph = rng.next();
                // Vertical stem, a bar, and a bowl-ish diagonal.
                let stem = x0 + (glyph % 3) as usize;
                c.rect(stem, y0, 1, 11, fg);
                c.rect(stem + 1, y0, 1, 11, aa_dark);
                c.rect(stem + 2, y0, 1, 11, aa_light);
                let bar = y0 + 2 + (glyph >> 4) as usize % 8;
                c.rect(x0, bar, 6, 1, fg);
                for d in 0..5 {
                    if glyph & (1 << (8 + d)) != 0 {
                        c.set(x0 + d, y0 + 6 + d, fg);
                    }
                }
            }
        }
        c
    }

    /// Windows, title bars, buttons and borders in flat colours.
    fn desktop(w: usize, h: usize) -> Canvas {
        let mut c = Canvas::filled(w, h, [0x70, 0x50, 0x30]);
        let mut y = 40;
        while y + 200 < h {
            let mut x = 30;
            while x + 300 < w {
                c.rect(x, y, 300, 200, [0xf0, 0xf0, 0xf0]);
                c.rect(x, y, 300, 24, [0xc0, 0x80, 0x40]);
                c.rect(x + 10, y + 160, 80, 26, [0xd0, 0xd0, 0xd0]);
                c.rect(x + 10, y + 160, 80, 1, [0x80, 0x80, 0x80]);
                x += 340;
            }
            y += 240;
        }
        c
    }

    #[test]
    fn photos_and_video_are_pictures() {
        for (name, c) in [
            ("photo with grain", photo(640, 360, 6)),
            ("clean gradient photo", photo(640, 360, 1)),
            ("1080p frame", photo(1920, 1080, 4)),
            ("detailed, noisy scene", photo(640, 360, 45)),
        ] {
            let s = c.score();
            println!("{name}: {s:?}");
            assert!(s.is_picture_like(), "{name}: {s:?}");
        }
    }

    #[test]
    fn text_ui_terminals_and_fills_are_not() {
        for (name, c) in [
            (
                "black text on white",
                text(800, 600, [0, 0, 0], [255, 255, 255]),
            ),
            (
                "grey terminal on black",
                text(640, 400, [0xaa, 0xaa, 0xaa], [0, 0, 0]),
            ),
            (
                "green terminal",
                text(640, 400, [0x40, 0xff, 0x40], [0x10, 0x10, 0x10]),
            ),
            ("desktop with windows", desktop(1280, 720)),
            ("flat fill", Canvas::filled(500, 300, [12, 34, 56])),
        ] {
            let s = c.score();
            println!("{name}: {s:?}");
            assert!(!s.is_picture_like(), "{name}: {s:?}");
        }
    }

    #[test]
    fn video_with_letterbox_bars_still_counts() {
        let mut c = photo(1280, 720, 4);
        c.rect(0, 0, 1280, 90, [0, 0, 0]);
        c.rect(0, 630, 1280, 90, [0, 0, 0]);
        let s = c.score();
        println!("letterboxed video: {s:?}");
        assert!(s.is_picture_like(), "{s:?}");
    }

    #[test]
    fn strides_and_bad_buffers() {
        // The same photo inside a wider buffer scores the same as packed.
        let c = photo(300, 200, 5);
        let stride = 300 * 4 + 64;
        let mut padded = vec![0xee; stride * 200];
        for y in 0..200 {
            padded[y * stride..y * stride + 1200].copy_from_slice(&c.px[y * 1200..(y + 1) * 1200]);
        }
        assert_eq!(picture_score(&padded, 300, 200, stride), Some(c.score()));
        assert!(
            picture_score(&c.px, 300, 200, 100).is_none(),
            "stride too small"
        );
        assert!(
            picture_score(&c.px[..1000], 300, 200, 1200).is_none(),
            "short"
        );
        assert!(picture_score(&c.px, 1, 200, 1200).is_none(), "no pairs");
        assert!(!is_picture_like(&[], 0, 0, 0));
    }

    #[test]
    fn a_1080p_area_costs_well_under_a_millisecond() {
        let c = photo(1920, 1080, 4);
        let runs = 50;
        let start = Instant::now();
        let mut pairs = 0;
        for _ in 0..runs {
            pairs += c.score().pairs();
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / runs as f64;
        println!("1920x1080: {us:.0} µs per test, {} pairs", pairs / runs);
        assert!(pairs / runs >= 10_000, "enough pairs to judge");
        // Unoptimised test builds run this loop ~40 times slower.
        let limit = if cfg!(debug_assertions) {
            50_000.0
        } else {
            1_000.0
        };
        assert!(us < limit, "{us:.0} µs");
    }
}
