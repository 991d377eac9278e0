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
/// one that continues longest (the same line, scrolled) is rarely the newest.
const WAYS: usize = 8;
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
    /// Hash of three pixels → the last `WAYS` places they were seen, as (image id + 1,
    /// index); 0 is empty. `next` says which way the next place replaces.
    table: Vec<[(u64, u32); WAYS]>,
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
            table: vec![[(0, 0); WAYS]; 1 << HASH_BITS],
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
        let n = pixels.len();
        if !self.takes(n) || n != width as usize * height as usize {
            return None;
        }
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
        let mut out = Vec::with_capacity(33 + n);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.push(TYPE_RGB32 | TOP_DOWN);
        for word in [width, height, width * 4] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&((id - head) as u32).to_be_bytes());
        let keys: Vec<u32> = pixels.iter().map(|&p| Plane::Rgb.key(p)).collect();
        self.compress(id, &keys, &mut Stream::new(&mut out, Plane::Rgb));
        self.pixels += n;
        self.images.push_back(WindowImage { id, keys });
        Some(out)
    }

    fn remember(&mut self, slot: usize, id: u64, at: usize) {
        let way = usize::from(self.next[slot]);
        self.table[slot][way] = (id + 1, at as u32);
        self.next[slot] = ((way + 1) % WAYS) as u8;
    }

    fn image(&self, id: u64) -> Option<&[u32]> {
        let first = self.images.front()?.id;
        let index = usize::try_from(id.checked_sub(first)?).ok()?;
        self.images.get(index).map(|image| image.keys.as_slice())
    }

    fn compress(&mut self, id: u64, keys: &[u32], s: &mut Stream<'_>) {
        let n = keys.len();
        let mut i = 0;
        // Where the last match's source continues (image id, index), kept aligned with
        // `i` across literals: a scrolled picture is one long match with a few changed
        // pixels, which the hash alone would find only piece by piece.
        let mut rep: Option<(u64, usize)> = None;
        while i < n {
            let mut candidates = [(0u64, 0usize); 2 + WAYS];
            let mut count = 0;
            if i > 0 && keys[i] == keys[i - 1] {
                candidates[count] = (id, i - 1);
                count += 1;
            }
            if let Some(r) = rep {
                candidates[count] = r;
                count += 1;
            }
            if i + 3 <= n {
                let slot = hash3(keys, i, HASH_BITS);
                for &(tagged, at) in &self.table[slot] {
                    if tagged != 0 {
                        candidates[count] = (tagged - 1, at as usize);
                        count += 1;
                    }
                }
                self.remember(slot, id, i);
            }
            let mut best: Option<Choice> = None;
            for &(image, at) in &candidates[..count] {
                let (source, image_dist) = if image == id {
                    if at >= i || i - at > LONG {
                        continue;
                    }
                    (keys, 0)
                } else {
                    let image_dist = id - image;
                    match self.image(image) {
                        Some(source) if image_dist < FAR_IMAGE_DIST && at < source.len() => {
                            (source, image_dist)
                        }
                        _ => continue,
                    }
                };
                // Only a match at least as long as the best so far can beat it.
                let reach = best.map_or(0, |b| b.len);
                if reach == MAX_MATCH
                    || i + reach >= n
                    || source.get(at + reach) != Some(&keys[i + reach])
                    || source[at] != keys[i]
                {
                    continue;
                }
                let len = match_len(source, at, keys, i, MAX_MATCH);
                if len == 0 {
                    continue;
                }
                let offset = if image_dist == 0 { i - at - 1 } else { at };
                let cost = match_cost(s, len, image_dist, offset);
                if cost < len * 3 && best.is_none_or(|b| len * 3 - cost > b.gain) {
                    best = Some(Choice {
                        gain: len * 3 - cost,
                        len,
                        image_dist,
                        offset,
                        source: (image, at),
                    });
                }
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
