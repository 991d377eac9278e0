//! What LZ and GLZ share: the pixel planes they code, the literal runs, the length field
//! of a match, and the hash that finds match candidates.

/// One pass over an image's pixels. RGBA images are coded as an `Rgb` pass followed by
/// an `Alpha` pass over the same pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plane {
    /// 32-bit pixels' blue, green, red (3 literal bytes; matches of 1+ pixels).
    Rgb,
    /// 32-bit pixels' top byte (1 literal byte; matches of 3+ pixels).
    Alpha,
    /// 16-bit pixels, big-endian literals (matches of 2+ pixels).
    Rgb16,
}

impl Plane {
    /// The value compared when matching: what the client's decoder copies.
    pub(crate) fn key(self, pixel: u32) -> u32 {
        match self {
            Plane::Rgb => pixel & 0x00ff_ffff,
            Plane::Alpha => pixel >> 24,
            Plane::Rgb16 => pixel & 0xffff,
        }
    }

    pub(crate) fn literal_bytes(self) -> usize {
        match self {
            Plane::Rgb => 3,
            Plane::Alpha => 1,
            Plane::Rgb16 => 2,
        }
    }

    /// The shortest match the length field can say (its value 1).
    pub(crate) fn min_match(self) -> usize {
        match self {
            Plane::Rgb => 1,
            Plane::Alpha => 3,
            Plane::Rgb16 => 2,
        }
    }
}

/// Most pixels one literal run holds (`MAX_COPY`).
const MAX_LITERALS: u8 = 32;

/// The output stream: literal runs (a count byte below 32, then the pixels) between
/// matches (a first byte of 32 or more).
pub(crate) struct Stream<'a> {
    pub out: &'a mut Vec<u8>,
    plane: Plane,
    /// Where the open literal run's count byte is, and how many pixels it holds.
    run: Option<(usize, u8)>,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, plane: Plane) -> Stream<'a> {
        Stream {
            out,
            plane,
            run: None,
        }
    }

    pub(crate) fn literal(&mut self, key: u32) {
        let (at, count) = match self.run {
            Some((at, count)) if count < MAX_LITERALS => (at, count),
            _ => {
                self.out.push(0);
                (self.out.len() - 1, 0)
            }
        };
        self.out[at] = count; // biased: 0 means one pixel
        self.run = Some((at, count + 1));
        match self.plane {
            Plane::Rgb => self.out.extend_from_slice(&key.to_le_bytes()[..3]),
            Plane::Alpha => self.out.push(key as u8),
            Plane::Rgb16 => self.out.extend_from_slice(&(key as u16).to_be_bytes()),
        }
    }

    /// Ends the open literal run; a match follows.
    pub(crate) fn end_literals(&mut self) {
        self.run = None;
    }

    /// The match length as the first byte's top 3 bits say it (`field`, 1..=7) and the
    /// extension bytes that follow when it is 7.
    pub(crate) fn length_field(&self, len: usize) -> (u8, Option<usize>) {
        let value = len + 1 - self.plane.min_match();
        debug_assert!(value >= 1);
        if value < 7 {
            (value as u8, None)
        } else {
            (7, Some(value - 7))
        }
    }

    /// Bytes the length's extension takes.
    pub(crate) fn length_cost(&self, len: usize) -> usize {
        match self.length_field(len).1 {
            Some(rest) => rest / 255 + 1,
            None => 0,
        }
    }

    pub(crate) fn length_extension(&mut self, rest: usize) {
        let mut rest = rest;
        while rest >= 255 {
            self.out.push(255);
            rest -= 255;
        }
        self.out.push(rest as u8);
    }
}

/// Hash of the three keys from `at` (callers make sure they exist).
pub(crate) fn hash3(keys: &[u32], at: usize, bits: u32) -> usize {
    let h = keys[at].wrapping_mul(0x9E37_79B1)
        ^ keys[at + 1].wrapping_mul(0x85EB_CA77).rotate_left(11)
        ^ keys[at + 2].wrapping_mul(0xC2B2_AE3D).rotate_left(22);
    (h.wrapping_mul(0x2745_937F) >> (32 - bits)) as usize
}

/// How many keys match from `a[ai..]` and `b[bi..]`, up to `limit`. The two may be the
/// same slice with `ai < bi` (an overlapping match, which the decoders copy forward).
#[inline]
pub(crate) fn match_len(a: &[u32], ai: usize, b: &[u32], bi: usize, limit: usize) -> usize {
    let limit = limit.min(a.len() - ai).min(b.len() - bi);
    let (x, y) = (&a[ai..ai + limit], &b[bi..bi + limit]);
    // Eight keys at a time (two vector compares), then key by key in the eight that
    // differ.
    let mut n = 0;
    while n + CHUNK <= limit {
        let p: &[u32; CHUNK] = x[n..n + CHUNK].try_into().expect("CHUNK keys");
        let q: &[u32; CHUNK] = y[n..n + CHUNK].try_into().expect("CHUNK keys");
        if p != q {
            break;
        }
        n += CHUNK;
    }
    n + x[n..]
        .iter()
        .zip(&y[n..])
        .take_while(|(p, q)| p == q)
        .count()
}

const CHUNK: usize = 8;
