//! GLZ (spice-server's `glz-encoder*.c`, spice-gtk's `decode-glz.c`): LZ whose matches
//! may also copy from earlier images of a dictionary the server and the client keep in
//! step, one per client, shared by its display channels.
//!
//! Each image carries its id (ids count from 0, one per GLZ image sent, never skipping:
//! spice-gtk releases images only up to its first missing id and waits for a missing
//! image that is referenced) and `win_head_dist`, how far back the oldest image this
//! and later images may reference is; the client drops everything older. The window
//! holds at most `limit` pixels: before an image is added the oldest ones leave until
//! it fits, so the client's window (its `glz-window-size`, which gave the limit) always
//! holds what we reference.
//!
//! A match: byte 0 = length (3 bits, as LZ) | "offset needs more than 12 bits" | offset's
//! low 4 bits; [length extension]; offset bits 4..12; then with a short offset one byte
//! of 2 bits (extra image-distance bytes) and 6 image-distance bits, else one byte of
//! 2 bits (image-distance bytes), "offset needs 25 bits" and offset bits 12..17, then
//! the image distance little-endian and offset bits 17..25. The offset is the distance
//! back minus 1 inside the image itself (image distance 0), else the pixel's index in
//! the referenced image.

use super::lz::{MAGIC, VERSION};
use super::matcher::{hash3, match_len, Plane, Stream};
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// `LZ_IMAGE_TYPE_RGB32`, and `1 << LZ_IMAGE_TYPE_LOG` for top-down.
const TYPE_RGB32: u8 = 8;
const TOP_DOWN: u8 = 1 << 4;
/// Offsets below this take 12 bits; below `MEDIUM` 17; the largest 25.
const SHORT: usize = 1 << 12;
const MEDIUM: usize = 1 << 17;
const LONG: usize = 1 << 25;
/// Image distances with a short offset take 6, 14, 22 or 30 bits; with a longer one 8,
/// 16 or 24.
const FAR_IMAGE_DIST: u64 = 1 << 24;
const HASH_BITS: u32 = 16;
/// Matches stop here (the next one takes over where it ends, for a few bytes): every
/// candidate is compared at most this far.
const MAX_MATCH: usize = 4096;
/// Places remembered per hash: text repeats its three-pixel patterns everywhere, and the
/// one that continues longest (the same line, scrolled) is often not the newest. Each
/// way is a candidate to check at every match start, the search's main cost: on the
/// desktop's scrolled text 8 ways send 11 % fewer bytes than 4 for 20 % more time.
const WAYS: usize = 4;
/// Most pixels we keep, whatever the client offers (its window is 3M to 16M pixels by
/// default): 8M pixels are 32 MiB per client, two 4K screens' worth.
pub(crate) const MAX_WINDOW: usize = 8 << 20;

struct WindowImage {
    id: u64,
    keys: Vec<u32>,
}

/// One client's dictionary.
pub(crate) struct Dictionary {
    limit: usize,
    next_id: u64,
    images: VecDeque<WindowImage>,
    pixels: usize,
    /// Hash of three pixels → the last `WAYS` places they were seen. `next` says which
    /// way the next place replaces.
    table: Vec<[Place; WAYS]>,
    next: Vec<u8>,
}

pub(crate) type SharedDictionary = Arc<parking_lot::Mutex<Dictionary>>;

impl Dictionary {
    /// A dictionary for a client whose window holds `window` pixels.
    pub(crate) fn new(window: usize) -> Dictionary {
        Dictionary {
            limit: window.min(MAX_WINDOW),
            next_id: 0,
            images: VecDeque::new(),
            pixels: 0,
            table: vec![[Place::default(); WAYS]; 1 << HASH_BITS],
            next: vec![0; 1 << HASH_BITS],
        }
    }

    /// Whether an image of `pixels` pixels can go in (C: smaller than the window).
    pub(crate) fn takes(&self, pixels: usize) -> bool {
        pixels > 0 && pixels < self.limit
    }

    /// Pixels held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.pixels
    }

    /// Encodes a top-down 32-bit image (0x..RRGGBB pixels) as `GLZ_RGB` data and adds it
    /// to the window; none when it does not fit the window (`takes`).
    pub(crate) fn encode(&mut self, width: u32, height: u32, pixels: &[u32]) -> Option<Vec<u8>> {
        if !self.fits(width, height, pixels.len()) {
            return None;
        }
        let keys = pixels.iter().map(|&p| Plane::Rgb.key(p)).collect();
        Some(self.encode_keys(width, height, keys))
    }

    /// `encode` for pixels the caller gives up: they become the window's copy (no second
    /// one of a band's half megabyte). Refused (and handed back) as `encode` refuses.
    pub(crate) fn encode_owned(
        &mut self,
        width: u32,
        height: u32,
        mut pixels: Vec<u32>,
    ) -> Result<Vec<u8>, Vec<u32>> {
        if !self.fits(width, height, pixels.len()) {
            return Err(pixels);
        }
        for p in &mut pixels {
            *p = Plane::Rgb.key(*p);
        }
        Ok(self.encode_keys(width, height, pixels))
    }

    fn fits(&self, width: u32, height: u32, n: usize) -> bool {
        self.takes(n) && n == width as usize * height as usize
    }

    fn encode_keys(&mut self, width: u32, height: u32, keys: Vec<u32>) -> Vec<u8> {
        let n = keys.len();
        while self.pixels + n > self.limit {
            let gone = self
                .images
                .pop_front()
                .expect("window holds the pixels it counts");
            self.pixels -= gone.keys.len();
        }
        let id = self.next_id;
        self.next_id += 1;
        let head = self.images.front().map_or(id, |image| image.id);
        // Desktop images code to a tenth of their pixels' bytes or less.
        let mut out = Vec::with_capacity(33 + n / 2);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.push(TYPE_RGB32 | TOP_DOWN);
        for word in [width, height, width * 4] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&((id - head) as u32).to_be_bytes());
        self.compress(id, &keys, &mut Stream::new(&mut out, Plane::Rgb));
        self.pixels += n;
        self.images.push_back(WindowImage { id, keys });
        out
    }

    fn remember(&mut self, slot: usize, id: u64, at: usize) {
        let way = usize::from(self.next[slot]);
        self.table[slot][way] = Place {
            tag: (id as u32).wrapping_add(1),
            at: at as u32,
        };
        self.next[slot] = ((way + 1) % WAYS) as u8;
    }

    /// The keys of window image `image` (`first` is the oldest's id) and its distance
    /// back from image `id`, when still held and near enough to be referenced.
    fn source(&self, id: u64, first: u64, image: u64) -> Option<(&[u32], u64)> {
        let image_dist = id - image;
        let index = usize::try_from(image.checked_sub(first)?).ok()?;
        let keys = self.images.get(index)?.keys.as_slice();
        (image_dist < FAR_IMAGE_DIST).then_some((keys, image_dist))
    }

    fn compress(&mut self, id: u64, keys: &[u32], s: &mut Stream<'_>) {
        let n = keys.len();
        let first = self.images.front().map_or(id, |image| image.id);
        let mut i = 0;
        // Where the last match's source continues (image id, index), kept aligned with
        // `i` across literals: a scrolled picture is one long match with a few changed
        // pixels, which the hash alone would find only piece by piece.
        let mut rep: Option<(u64, usize)> = None;
        while i < n {
            let mut best: Option<Choice> = None;
            if i > 0 && keys[i] == keys[i - 1] {
                consider(&mut best, s, keys, i, keys, 0, i - 1, id);
            }
            if let Some((image, at)) = rep {
                if image == id {
                    if at < i && i - at <= LONG {
                        consider(&mut best, s, keys, i, keys, 0, at, id);
                    }
                } else if let Some((source, dist)) = self.source(id, first, image) {
                    consider(&mut best, s, keys, i, source, dist, at, image);
                }
            }
            if i + 3 <= n {
                let slot = hash3(keys, i, HASH_BITS);
                let ways = self.table[slot];
                // Newest first: on a tie the nearer source wins.
                let newest = usize::from(self.next[slot]) + WAYS - 1;
                for back in 0..WAYS {
                    let place = ways[(newest - back) % WAYS];
                    if place.tag == 0 {
                        continue;
                    }
                    // The newest image whose id has these low bits (older ones have left
                    // the window, or fail the lookup).
                    let image = id - u64::from((id as u32).wrapping_sub(place.tag - 1));
                    let at = place.at as usize;
                    if image == id {
                        if at < i && i - at <= LONG {
                            consider(&mut best, s, keys, i, keys, 0, at, id);
                        }
                    } else if let Some((source, dist)) = self.source(id, first, image) {
                        consider(&mut best, s, keys, i, source, dist, at, image);
                    }
                }
                self.remember(slot, id, i);
            }
            match best {
                Some(Choice {
                    len,
                    image_dist,
                    offset,
                    source: (image, at),
                    ..
                }) => {
                    s.end_literals();
                    put_match(s, len, image_dist, offset);
                    for at in (i + len).saturating_sub(2)..(i + len) {
                        if at > i && at + 3 <= n {
                            self.remember(hash3(keys, at, HASH_BITS), id, at);
                        }
                    }
                    rep = Some((image, at + len));
                    i += len;
                }
                None => {
                    s.literal(keys[i]);
                    rep = rep.map(|(image, at)| (image, at + 1));
                    i += 1;
                }
            }
        }
    }
}

/// A place where three keys were seen: the low 32 bits of its image's id, plus 1 (0 is
/// empty), and its index. 8 bytes: a hash's ways share a cache line.
#[derive(Clone, Copy, Default)]
struct Place {
    tag: u32,
    at: u32,
}

/// Makes the match of `keys[i..]` with `source[at..]` (image `image`, `image_dist` back;
/// 0: `keys` itself) the best when it saves more bytes.
#[allow(clippy::too_many_arguments)]
#[inline]
fn consider(
    best: &mut Option<Choice>,
    s: &Stream<'_>,
    keys: &[u32],
    i: usize,
    source: &[u32],
    image_dist: u64,
    at: usize,
    image: u64,
) {
    // Only a match longer than the best so far can beat it.
    let reach = best.map_or(0, |b| b.len);
    if reach == MAX_MATCH
        || i + reach >= keys.len()
        || source.get(at + reach) != Some(&keys[i + reach])
        || source[at] != keys[i]
    {
        return;
    }
    let len = match_len(source, at, keys, i, MAX_MATCH);
    let offset = if image_dist == 0 { i - at - 1 } else { at };
    let cost = match_cost(s, len, image_dist, offset);
    if cost < len * 3 && best.is_none_or(|b| len * 3 - cost > b.gain) {
        *best = Some(Choice {
            gain: len * 3 - cost,
            len,
            image_dist,
            offset,
            source: (image, at),
        });
    }
}

/// The best match found at a position.
#[derive(Clone, Copy)]
struct Choice {
    /// Bytes saved against literals.
    gain: usize,
    len: usize,
    image_dist: u64,
    /// As coded: distance back minus 1 in the image itself, else the source's index.
    offset: usize,
    /// (image id, index) the match copies from.
    source: (u64, usize),
}

/// Bytes a match takes.
fn match_cost(s: &Stream<'_>, len: usize, image_dist: u64, offset: usize) -> usize {
    let tail = if offset < SHORT {
        match image_dist {
            0..=0x3f => 1,
            0x40..=0x3fff => 2,
            0x4000..=0x3f_ffff => 3,
            _ => 4,
        }
    } else {
        let dist_bytes = match image_dist {
            0 => 0,
            1..=0xff => 1,
            0x100..=0xffff => 2,
            _ => 3,
        };
        1 + dist_bytes + usize::from(offset >= MEDIUM)
    };
    2 + s.length_cost(len) + tail
}

fn put_match(s: &mut Stream<'_>, len: usize, image_dist: u64, offset: usize) {
    debug_assert!(offset < LONG);
    let (field, rest) = s.length_field(len);
    let longer = u8::from(offset >= SHORT);
    s.out
        .push((field << 5) | (longer << 4) | (offset & 0x0f) as u8);
    if let Some(rest) = rest {
        s.length_extension(rest);
    }
    s.out.push((offset >> 4) as u8);
    if offset < SHORT {
        let extra = match image_dist {
            0..=0x3f => 0,
            0x40..=0x3fff => 1,
            0x4000..=0x3f_ffff => 2,
            _ => 3,
        };
        s.out.push((extra << 6) | (image_dist & 0x3f) as u8);
        for k in 0..extra {
            s.out.push((image_dist >> (6 + 8 * k)) as u8);
        }
    } else {
        let bytes: u8 = match image_dist {
            0 => 0,
            1..=0xff => 1,
            0x100..=0xffff => 2,
            _ => 3,
        };
        let long = u8::from(offset >= MEDIUM);
        s.out
            .push((bytes << 6) | (long << 5) | ((offset >> 12) & 31) as u8);
        for k in 0..bytes {
            s.out.push((image_dist >> (8 * k)) as u8);
        }
        if long == 1 {
            s.out.push((offset >> 17) as u8);
        }
    }
}

/// The dictionaries of linked clients, by client session: a client's display channels
/// share one (as spice-server's per-`RedClient` dictionary), which lives while one of
/// them does.
#[derive(Default)]
pub(crate) struct Dictionaries {
    by_session: parking_lot::Mutex<Vec<(u32, Weak<parking_lot::Mutex<Dictionary>>)>>,
}

impl Dictionaries {
    /// The session's dictionary, made with the first channel's window size (in pixels);
    /// none when the client offers no window.
    pub(crate) fn get(&self, session_id: u32, window: i32) -> Option<SharedDictionary> {
        let mut list = self.by_session.lock();
        list.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = list
            .iter()
            .find(|(id, _)| *id == session_id)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Some(shared);
        }
        let window = usize::try_from(window).ok().filter(|&w| w > 1)?;
        let shared = Arc::new(parking_lot::Mutex::new(Dictionary::new(window)));
        list.push((session_id, Arc::downgrade(&shared)));
        Some(shared)
    }
}
