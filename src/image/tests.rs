//! Round trips through our decoders (which accept what the clients accept), over random
//! and desktop-like images from seeds.

use super::choose::{choose, graduality, ClientCodecs, Codec, Graduality, ImageCompression};
use super::decode::{self, GlzWindow};
use super::decode_quic;
use super::glz::{Dictionaries, Dictionary};
use super::lz::{self, LzType};
use super::quic::{self, QuicType};

/// xorshift64*: reproducible images without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Noise, flat areas, text-like strokes on a background, repeated tiles and gradients,
/// mixed by seed.
fn image(rng: &mut Rng, width: u32, height: u32) -> Vec<u32> {
    let n = (width * height) as usize;
    let palette: Vec<u32> = (0..1 + rng.below(6)).map(|_| rng.next() as u32).collect();
    let style = rng.below(5);
    let mut px = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (i as u32 % width, i as u32 / width);
        let p = match style {
            0 => rng.next() as u32,
            1 => palette[rng.below(palette.len() as u64) as usize],
            2 => {
                if rng.below(9) == 0 {
                    palette[0]
                } else {
                    0xffff_ffff
                }
            }
            3 => palette[((x / 3 + y / 2) % palette.len() as u32) as usize],
            _ => 0xff00_0000 | (x * 255 / width.max(1)) << 16 | (y * 255 / height.max(1)) << 8,
        };
        px.push(p);
    }
    px
}

fn sizes(rng: &mut Rng) -> (u32, u32) {
    match rng.below(4) {
        0 => (1 + rng.below(4) as u32, 1 + rng.below(4) as u32),
        1 => (1 + rng.below(40) as u32, 1 + rng.below(40) as u32),
        2 => (100 + rng.below(300) as u32, 1 + rng.below(30) as u32),
        _ => (1 + rng.below(3) as u32, 100 + rng.below(500) as u32),
    }
}

#[test]
fn lz_round_trips_rgb32_rgba_and_rgb16() {
    for seed in 1..400u64 {
        let mut rng = Rng(seed * 0x9E37_79B9);
        let (w, h) = sizes(&mut rng);
        let px = image(&mut rng, w, h);
        for kind in [LzType::Rgb32, LzType::Rgba, LzType::Rgb16] {
            let input: Vec<u32> = match kind {
                LzType::Rgb16 => px.iter().map(|p| p & 0x7fff).collect(),
                _ => px.clone(),
            };
            let data = lz::encode(kind, w, h, &input);
            let out = decode::lz(&data).unwrap_or_else(|e| panic!("seed {seed} {kind:?}: {e}"));
            let want: Vec<u32> = match kind {
                LzType::Rgb32 => input.iter().map(|p| p & 0x00ff_ffff).collect(),
                _ => input,
            };
            assert_eq!((out.width, out.height), (w, h));
            assert!(out.pixels == want, "seed {seed} {kind:?} {w}x{h}");
        }
    }
}

#[test]
fn lz_uses_far_matches_and_long_runs() {
    // A 100-row image whose rows repeat with a period far beyond 13 bits.
    let w = 9000;
    let mut rng = Rng(7);
    let row: Vec<u32> = (0..w).map(|_| rng.next() as u32).collect();
    let mut px: Vec<u32> = row.iter().chain(&row).copied().collect();
    px.extend(std::iter::repeat_n(0x123456, w as usize * 3));
    let data = lz::encode(LzType::Rgb32, w, 5, &px);
    assert!(data.len() < w as usize * 3 + 600, "{} bytes", data.len());
    let out = decode::lz(&data).unwrap();
    assert!(out.pixels.iter().zip(&px).all(|(a, b)| *a == b & 0xffffff));
}

#[test]
fn lz_shrinks_a_desktop_like_image() {
    let (w, h) = (640, 480);
    let mut rng = Rng(3);
    let mut px = vec![0xffee_eeeeu32; (w * h) as usize];
    for _ in 0..4000 {
        let at = rng.below(u64::from(w * h)) as usize;
        px[at] = 0xff00_0000;
    }
    let data = lz::encode(LzType::Rgb32, w, h, &px);
    assert!(data.len() * 20 < px.len() * 4, "{} bytes", data.len());
}

#[test]
fn lz_refuses_hostile_streams_without_panicking() {
    let mut rng = Rng(11);
    let px = image(&mut rng, 37, 21);
    let good = lz::encode(LzType::Rgba, 37, 21, &px);
    for seed in 0..2000u64 {
        let mut bad = good.clone();
        let mut r = Rng(seed + 1);
        for _ in 0..1 + r.below(4) {
            let at = 28 + r.below((bad.len() - 28) as u64) as usize;
            bad[at] = r.next() as u8;
        }
        let _ = decode::lz(&bad);
        let cut = r.below(bad.len() as u64) as usize;
        assert!(decode::lz(&bad[..cut]).is_err() || cut == bad.len());
    }
}

/// One client: encodes each image in its dictionary and decodes it in its window.
fn glz_session(seed: u64, window: usize, images: usize) -> (usize, usize) {
    let mut rng = Rng(seed);
    let mut dict = Dictionary::new(window);
    let mut client = GlzWindow::default();
    let mut earlier: Vec<Vec<u32>> = Vec::new();
    let (mut raw, mut sent) = (0, 0);
    for k in 0..images {
        let (w, h) = (20 + rng.below(200) as u32, 1 + rng.below(40) as u32);
        // Desktop-like: pieces of earlier images (scrolled text), or new content.
        let px: Vec<u32> = if !earlier.is_empty() && rng.below(3) != 0 {
            let src = &earlier[rng.below(earlier.len() as u64) as usize];
            let shift = rng.below(src.len() as u64) as usize;
            (0..(w * h) as usize)
                .map(|i| {
                    if rng.below(50) == 0 {
                        rng.next() as u32
                    } else {
                        src[(i + shift) % src.len()]
                    }
                })
                .collect()
        } else {
            image(&mut rng, w, h)
        };
        let Some(data) = dict.encode(w, h, &px) else {
            continue;
        };
        let (id, out) = client
            .decode(&data)
            .unwrap_or_else(|e| panic!("seed {seed} image {k}: {e}"));
        assert_eq!(id, k as u64, "ids count from 0 without gaps");
        let want: Vec<u32> = px.iter().map(|p| p & 0x00ff_ffff).collect();
        assert!(out.pixels == want, "seed {seed} image {k} {w}x{h}");
        assert!(dict.held() <= window);
        raw += px.len() * 4;
        sent += data.len();
        earlier.push(px);
        if earlier.len() > 8 {
            earlier.remove(0);
        }
    }
    (raw, sent)
}

#[test]
fn glz_round_trips_against_the_clients_window() {
    for seed in 1..60u64 {
        glz_session(seed, 30_000, 60);
    }
}

#[test]
fn glz_evicts_as_the_client_releases_and_never_references_what_it_dropped() {
    // A window of a few images: every reference must still be held by the client.
    for seed in 100..140u64 {
        glz_session(seed, 9_000, 80);
    }
}

#[test]
fn glz_references_earlier_images() {
    let mut dict = Dictionary::new(1 << 20);
    let mut client = GlzWindow::default();
    let mut rng = Rng(5);
    let first: Vec<u32> = (0..200 * 30)
        .map(|_| rng.next() as u32 & 0xffffff)
        .collect();
    let a = dict.encode(200, 30, &first).unwrap();
    client.decode(&a).unwrap();
    // The same text scrolled by 7 rows: almost all of it is in the first image.
    let second: Vec<u32> = first[200 * 7..]
        .iter()
        .chain(&first[..200 * 7])
        .copied()
        .collect();
    let b = dict.encode(200, 30, &second).unwrap();
    assert!(b.len() < 200, "{} bytes", b.len());
    assert_eq!(client.decode(&b).unwrap().1.pixels, second);
}

#[test]
fn glz_refuses_images_larger_than_the_window() {
    let mut dict = Dictionary::new(100);
    assert!(dict.encode(10, 10, &[0; 100]).is_none());
    assert!(dict.encode(9, 10, &[0; 90]).is_some());
}

#[test]
fn glz_dictionary_is_shared_per_session_while_a_channel_holds_it() {
    let dicts = Dictionaries::default();
    assert!(dicts.get(1, 0).is_none(), "no window, no GLZ");
    let a = dicts.get(1, 1 << 20).unwrap();
    let b = dicts.get(1, 5).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let other = dicts.get(2, 1 << 20).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &other));
    drop((a, b));
    let again = dicts.get(1, 1 << 20).unwrap();
    assert_eq!(again.lock().held(), 0);
}

#[test]
fn graduality_tells_photographs_from_text() {
    let (w, h) = (64u32, 64u32);
    let photo: Vec<u32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            ((x * 3 + y) << 16) | ((y * 2 + x / 2) << 8) | ((x + y * 3) / 2)
        })
        .collect();
    assert_eq!(graduality(w, &photo), Graduality::High);
    let mut rng = Rng(9);
    let text: Vec<u32> = (0..w * h)
        .map(|_| if rng.below(5) == 0 { 0 } else { 0xffffff })
        .collect();
    assert_eq!(graduality(w, &text), Graduality::Low);
}

#[test]
fn choice_follows_the_setting_and_the_client() {
    let text = vec![0xffffffu32; 64 * 64];
    let both = ClientCodecs {
        lz4: true,
        glz: true,
        jpeg: false,
    };
    let none = ClientCodecs::default();
    let pick = |s, c| choose(s, 64, 64, &text, c);
    assert_eq!(pick(ImageCompression::AutoGlz, both), Codec::Glz);
    assert_eq!(pick(ImageCompression::AutoGlz, none), Codec::Lz);
    assert_eq!(pick(ImageCompression::AutoLz, both), Codec::Lz);
    assert_eq!(pick(ImageCompression::Lz4, both), Codec::Lz4);
    assert_eq!(pick(ImageCompression::Lz4, none), Codec::Lz);
    assert_eq!(pick(ImageCompression::Off, both), Codec::Raw);
    assert_eq!(pick(ImageCompression::Quic, both), Codec::Quic);
    assert_eq!(
        choose(ImageCompression::AutoGlz, 3, 4, &text[..12], both),
        Codec::Raw
    );
    // QUIC needs 3 rows: thinner images go raw under `quic`, as C sends them.
    assert_eq!(
        choose(ImageCompression::Quic, 64, 2, &text[..128], both),
        Codec::Raw
    );
    let mut rng = Rng(5);
    let photo = photo(&mut rng, 64, 64);
    assert_eq!(graduality(64, &photo), Graduality::High);
    let pick = |s, c| choose(s, 64, 64, &photo, c);
    assert_eq!(pick(ImageCompression::AutoGlz, both), Codec::Quic);
    assert_eq!(pick(ImageCompression::AutoLz, none), Codec::Quic);
    assert_eq!(pick(ImageCompression::Glz, both), Codec::Glz);
    assert_eq!(pick(ImageCompression::Lz, both), Codec::Lz);
    assert_eq!(
        choose(ImageCompression::AutoGlz, 64, 2, &photo[..128], both),
        Codec::Glz
    );
}

/// Smooth colour fields with a little noise, as photographs have.
fn photo(rng: &mut Rng, width: u32, height: u32) -> Vec<u32> {
    let (fx, fy) = (1 + rng.below(7) as u32, 1 + rng.below(5) as u32);
    let noise = 1 + rng.below(12) as u32;
    (0..width * height)
        .map(|i| {
            let (x, y) = (i % width, i / width);
            let r = (x * fx + y) % 256;
            let g = (y * fy + x / 2) % 256;
            let b = ((x + y) * 3 / 2 + rng.below(u64::from(noise)) as u32) % 256;
            let a = 255 - (x * 7 + y) % 256;
            a << 24 | r << 16 | g << 8 | b
        })
        .collect()
}

fn quic_round_trip(kind: QuicType, w: u32, h: u32, px: &[u32], what: &str) -> usize {
    let data = quic::encode(kind, w, h, px);
    let out = decode_quic::quic(&data).unwrap_or_else(|e| panic!("{what} {kind:?}: {e}"));
    let want: Vec<u32> = match kind {
        QuicType::Rgb32 => px.iter().map(|p| p & 0x00ff_ffff).collect(),
        QuicType::Rgba => px.to_vec(),
    };
    assert_eq!((out.width, out.height), (w, h), "{what}");
    if let Some(at) = (0..want.len()).find(|&i| out.pixels[i] != want[i]) {
        panic!(
            "{what} {kind:?} {w}x{h}: pixel {at} is {:08x}, not {:08x}",
            out.pixels[at], want[at]
        );
    }
    data.len()
}

#[test]
fn quic_round_trips_random_desktop_and_photo_images() {
    for seed in 1..300u64 {
        let mut rng = Rng(seed * 0x9E37_79B9);
        let (w, h) = sizes(&mut rng);
        let px = if seed % 2 == 0 {
            image(&mut rng, w, h)
        } else {
            photo(&mut rng, w, h)
        };
        for kind in [QuicType::Rgb32, QuicType::Rgba] {
            quic_round_trip(kind, w, h, &px, &format!("seed {seed}"));
        }
    }
}

#[test]
fn quic_round_trips_wide_and_large_images() {
    // Rows past 2048 pixels cross the points where models learn less often; runs cross
    // segment ends.
    let mut rng = Rng(7);
    for (w, h) in [(5000, 3), (1920, 40), (3, 3000), (700, 500)] {
        let px = photo(&mut rng, w, h);
        quic_round_trip(QuicType::Rgba, w, h, &px, "photo");
        let flat: Vec<u32> = px.iter().map(|p| p & 0xfff0_0000).collect();
        quic_round_trip(QuicType::Rgb32, w, h, &flat, "flat");
        let noise = image(&mut rng, w, h);
        quic_round_trip(QuicType::Rgb32, w, h, &noise, "mixed");
    }
}

#[test]
fn quic_compresses_photographs_better_than_lz() {
    let mut rng = Rng(3);
    let (w, h) = (400, 300);
    let px = photo(&mut rng, w, h);
    let quic = quic_round_trip(QuicType::Rgb32, w, h, &px, "photo");
    let lz = lz::encode(LzType::Rgb32, w, h, &px).len();
    assert!(quic * 2 < lz, "quic {quic} lz {lz}");
}

#[test]
fn quic_refuses_hostile_streams_without_panicking() {
    let mut rng = Rng(11);
    let px = photo(&mut rng, 40, 30);
    let data = quic::encode(QuicType::Rgba, 40, 30, &px);
    assert!(decode_quic::quic(&data[..data.len() - 4]).is_err());
    for seed in 0..2000u64 {
        let mut rng = Rng(seed + 1);
        let mut bad = data.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
        }
        let cut = rng.below(bad.len() as u64 + 1) as usize;
        let _ = decode_quic::quic(&bad[..cut.max(bad.len() * (seed % 2) as usize)]);
    }
}

/// Writes encoded images and their pixels to `$QUIC_DUMP` (`N.quic`, `N.px`: u32 LE per
/// pixel, as the client's RGB32/RGBA output) for checking against spice-common's
/// decoder built outside the tree: `QUIC_DUMP=dir cargo test -- --ignored quic_dump`.
#[test]
#[ignore]
fn quic_dump_for_the_c_decoder() {
    let dir = std::env::var("QUIC_DUMP").expect("QUIC_DUMP");
    let mut n = 0;
    let mut dump = |kind: QuicType, w: u32, h: u32, px: &[u32]| {
        let data = quic::encode(kind, w, h, px);
        let want: Vec<u8> = px
            .iter()
            .map(|&p| {
                if kind == QuicType::Rgb32 {
                    p & 0x00ff_ffff
                } else {
                    p
                }
            })
            .flat_map(u32::to_le_bytes)
            .collect();
        std::fs::write(format!("{dir}/{n}.quic"), data).unwrap();
        std::fs::write(format!("{dir}/{n}.px"), want).unwrap();
        n += 1;
    };
    for seed in 1..200u64 {
        let mut rng = Rng(seed * 0x9E37_79B9);
        let (w, h) = sizes(&mut rng);
        let px = if seed % 2 == 0 {
            image(&mut rng, w, h)
        } else {
            photo(&mut rng, w, h)
        };
        dump(QuicType::Rgb32, w, h, &px);
        dump(QuicType::Rgba, w, h, &px);
    }
    let mut rng = Rng(7);
    for (w, h) in [(5000, 3), (1920, 40), (3, 3000), (700, 500)] {
        let px = photo(&mut rng, w, h);
        dump(QuicType::Rgba, w, h, &px);
        let flat: Vec<u32> = px.iter().map(|p| p & 0xfff0_0000).collect();
        dump(QuicType::Rgb32, w, h, &flat);
        let noise = image(&mut rng, w, h);
        dump(QuicType::Rgb32, w, h, &noise);
    }
}
