//! spice-common's LZ format (`lz.c`, `lz_common.h`), as `LZ_RGB` images carry it.
//!
//! The stream: a header of seven big-endian u32 (magic "LZ  ", version 1.1, image type,
//! width, height, stride, top-down), then per pass literal runs and matches. A match is
//! a length (3 bits, 7 meaning "add the bytes that follow until one is not 255") and a
//! distance back in pixels, biased by 1: 13 bits, or when the 13 bits are all ones,
//! 8191 plus 16 more bits. RGBA is an RGB pass then an alpha pass over the same pixels.

use super::matcher::{hash3, match_len, Plane, Stream};

/// `LZ_MAGIC`, `LZ_VERSION`.
pub(crate) const MAGIC: u32 = 0x2020_5a4c;
pub(crate) const VERSION: u32 = 0x0001_0001;

/// `LzImageType` values we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LzType {
    /// 16-bit images (the server converts the guest's to 32 bits today; kept for tests).
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    Rgb16 = 6,
    Rgb32 = 8,
    Rgba = 9,
    /// The alpha plane alone (`LZ_IMAGE_TYPE_XXXA`), as JPEG_ALPHA images carry it.
    Xxxa = 10,
}

impl LzType {
    pub(crate) fn bytes_per_pixel(self) -> u32 {
        match self {
            LzType::Rgb16 => 2,
            LzType::Rgb32 | LzType::Rgba | LzType::Xxxa => 4,
        }
    }

    pub(crate) fn planes(self) -> &'static [Plane] {
        match self {
            LzType::Rgb16 => &[Plane::Rgb16],
            LzType::Rgb32 => &[Plane::Rgb],
            LzType::Rgba => &[Plane::Rgb, Plane::Alpha],
            LzType::Xxxa => &[Plane::Alpha],
        }
    }
}

/// Distances up to this are coded in 13 bits (`MAX_DISTANCE`: biased, 8191 is the escape).
const NEAR: usize = 8191;
/// The farthest match (`MAX_FARDISTANCE`): 8191 + 16 bits, biased by 1.
const FAR: usize = NEAR + 65535 + 1;
const HASH_BITS: u32 = 16;

/// Encodes `pixels` (`width * height` values, top-down rows; 32-bit pixels as
/// 0xAARRGGBB, 16-bit ones in the low half) as an `LZ_RGB` image's data.
pub(crate) fn encode(kind: LzType, width: u32, height: u32, pixels: &[u32]) -> Vec<u8> {
    debug_assert_eq!(pixels.len(), width as usize * height as usize);
    let mut out = Vec::with_capacity(28 + pixels.len());
    for word in [
        MAGIC,
        VERSION,
        kind as u32,
        width,
        height,
        width * kind.bytes_per_pixel(),
        1,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    let mut keys = Vec::with_capacity(pixels.len());
    let mut table = vec![u32::MAX; 1 << HASH_BITS];
    for &plane in kind.planes() {
        keys.clear();
        keys.extend(pixels.iter().map(|&p| plane.key(p)));
        table.fill(u32::MAX);
        compress(&keys, plane, &mut table, &mut Stream::new(&mut out, plane));
    }
    out
}

fn compress(keys: &[u32], plane: Plane, table: &mut [u32], s: &mut Stream<'_>) {
    let n = keys.len();
    let mut i = 0;
    // The last match's distance: repeated content (rows of a scrolled window) often
    // continues at it after a few differing pixels.
    let mut rep = 0;
    while i < n {
        let mut candidates = [0usize; 3];
        let mut count = 0;
        if i > 0 && keys[i] == keys[i - 1] {
            candidates[count] = 1;
            count += 1;
        }
        if rep > 1 && rep <= i {
            candidates[count] = rep;
            count += 1;
        }
        if i + 3 <= n {
            let slot = &mut table[hash3(keys, i, HASH_BITS)];
            let candidate = *slot as usize;
            *slot = i as u32;
            if candidate < i && i - candidate <= FAR {
                candidates[count] = i - candidate;
                count += 1;
            }
        }
        // (gain, length, distance)
        let mut best: Option<(usize, usize, usize)> = None;
        for &distance in &candidates[..count] {
            let len = match_len(keys, i - distance, keys, i, n);
            if len < plane.min_match() {
                continue;
            }
            let (cost, worth) = (match_cost(s, len, distance), len * plane.literal_bytes());
            if cost < worth && best.is_none_or(|b| worth - cost > b.0) {
                best = Some((worth - cost, len, distance));
            }
        }
        match best {
            Some((_, len, distance)) => {
                s.end_literals();
                put_match(s, len, distance);
                // Remember where the match ends so the next one can start there.
                for at in (i + len).saturating_sub(2)..(i + len) {
                    if at > i && at + 3 <= n {
                        table[hash3(keys, at, HASH_BITS)] = at as u32;
                    }
                }
                rep = distance;
                i += len;
            }
            None => {
                s.literal(keys[i]);
                i += 1;
            }
        }
    }
}

fn match_cost(s: &Stream<'_>, len: usize, distance: usize) -> usize {
    s.length_cost(len) + if distance <= NEAR { 2 } else { 4 }
}

fn put_match(s: &mut Stream<'_>, len: usize, distance: usize) {
    let (field, rest) = s.length_field(len);
    let d = distance - 1;
    if d < NEAR {
        s.out.push((field << 5) | (d >> 8) as u8);
        if let Some(rest) = rest {
            s.length_extension(rest);
        }
        s.out.push(d as u8);
    } else {
        let far = d - NEAR;
        s.out.push((field << 5) | 31);
        if let Some(rest) = rest {
            s.length_extension(rest);
        }
        s.out.push(255);
        s.out.extend_from_slice(&(far as u16).to_be_bytes());
    }
}
