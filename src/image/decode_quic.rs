//! A decoder for what `quic` writes, following spice-common's `quic_decode` (what
//! spice-gtk runs): it refuses bad magic, version, type, sizes and runs with an error,
//! never a panic. Used by tests and the fuzz targets.

use super::decode::Decoded;
use super::quic::{
    halving_trigger, predict, run_starts, GroupState, Model, FAMILY, MAGIC, VERSION,
};

/// Images larger than this are refused (C refuses 512 Mi pixels; ours keeps fuzzing
/// memory bounded).
const MAX_PIXELS: u64 = 1 << 24;

/// The inverse of `quic::fold` (`xlatL2U`).
#[inline]
fn unfold(folded: u8) -> u8 {
    if folded & 1 == 1 {
        255 - (folded >> 1)
    } else {
        folded >> 1
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    /// Bits consumed.
    at: usize,
}

impl BitReader<'_> {
    fn bit(&self, n: usize) -> u32 {
        // Bit `n` of the stream: words are little-endian, bits most significant first.
        let (word, bit) = (n / 32, n % 32);
        let byte = word * 4 + 3 - bit / 8;
        self.data
            .get(byte)
            .map_or(0, |b| u32::from(b >> (7 - bit % 8)) & 1)
    }

    /// The next `len` (<= 32) bits without consuming them (zeros past the end).
    fn peek(&self, len: u32) -> u32 {
        let mut v = 0u32;
        for k in 0..len as usize {
            v = (v << 1) | self.bit(self.at + k);
        }
        v
    }

    fn take(&mut self, len: u32) -> Result<u32, &'static str> {
        let v = self.peek(len);
        self.at += len as usize;
        // C reads one word ahead of what it consumes.
        if self.at.div_ceil(32) + 1 > self.data.len() / 4 {
            return Err("truncated");
        }
        Ok(v)
    }

    fn leading_zeros(&self, most: u32) -> u32 {
        (0..most)
            .find(|&k| self.bit(self.at + k as usize) == 1)
            .unwrap_or(most)
    }

    /// A value in Golomb-Rice code `l` (`golomb_decoding`).
    fn golomb(&mut self, l: usize) -> Result<u8, &'static str> {
        let prefix = FAMILY.escape_prefix[l];
        let zeros = self.leading_zeros(prefix);
        if zeros < prefix {
            self.take(zeros + 1)?;
            let low = if l > 0 { self.take(l as u32)? } else { 0 };
            Ok(((zeros << l) | low) as u8)
        } else {
            let v = self.take(prefix + FAMILY.escape_suffix[l])?;
            // C keeps the low byte of an escape past 255.
            Ok((FAMILY.gr_limit[l] + v) as u8)
        }
    }

    /// A run length (`decode_state_run`).
    fn run(&mut self, state: &mut GroupState) -> Result<usize, &'static str> {
        let mut run = 0usize;
        while self.take(1)? == 1 {
            run += 1 << state.run_order();
            state.run_state_up();
        }
        let order = state.run_order();
        if order > 0 {
            run += self.take(order)? as usize;
        }
        state.run_state_down();
        Ok(run)
    }
}

struct Group<const N: usize> {
    models: [Model; N],
    state: GroupState,
}

impl<const N: usize> Group<N> {
    fn pixel(
        &mut self,
        input: &mut BitReader<'_>,
        prev: Option<&[[u8; N]]>,
        cur: &mut [[u8; N]],
        i: usize,
    ) -> Result<(), &'static str> {
        for c in 0..N {
            let model = &mut self.models[c];
            let residual = input.golomb(model.code_at(i))?;
            model.residuals[i + 1] = residual;
            let left = i.checked_sub(1).map(|l| cur[l][c]);
            let above = prev.map(|p| p[i][c]);
            cur[i][c] = unfold(residual).wrapping_add(predict(left, above));
        }
        Ok(())
    }

    fn learn(&mut self, state: &GroupState, i: usize) {
        let trigger = halving_trigger(state);
        for m in &mut self.models {
            m.learn(i, trigger);
        }
    }

    fn row(
        &mut self,
        input: &mut BitReader<'_>,
        prev: Option<&[[u8; N]]>,
        cur: &mut [[u8; N]],
    ) -> Result<(), &'static str> {
        for m in &mut self.models {
            m.start_row(prev.is_none());
        }
        let mut state = std::mem::replace(&mut self.state, GroupState::new());
        let mut result = Ok(());
        state.segments(cur.len(), |state, start, end| {
            if result.is_ok() {
                result = self.segment(state, input, prev, cur, start, end);
            }
        });
        self.state = state;
        result
    }

    fn segment(
        &mut self,
        state: &mut GroupState,
        input: &mut BitReader<'_>,
        prev: Option<&[[u8; N]]>,
        cur: &mut [[u8; N]],
        start: usize,
        end: usize,
    ) -> Result<(), &'static str> {
        let mask = state.wait_mask();
        let mut i = start;
        if i == 0 {
            self.pixel(input, prev, cur, 0)?;
            if state.wait > 0 {
                state.wait -= 1;
            } else {
                state.wait = state.random() as usize & mask;
                self.learn(state, 0);
            }
            i = 1;
        }
        let mut stop = i + state.wait;
        let mut run_index = 0;
        loop {
            let mut run_at = None;
            'decoding: {
                while stop < end {
                    while i <= stop {
                        if prev.is_some_and(|p| run_starts(p, cur, i, run_index)) {
                            run_at = Some(i);
                            break 'decoding;
                        }
                        self.pixel(input, prev, cur, i)?;
                        i += 1;
                    }
                    self.learn(state, stop);
                    stop = i + (state.random() as usize & mask);
                }
                while i < end {
                    if prev.is_some_and(|p| run_starts(p, cur, i, run_index)) {
                        run_at = Some(i);
                        break 'decoding;
                    }
                    self.pixel(input, prev, cur, i)?;
                    i += 1;
                }
            }
            let Some(at) = run_at else {
                state.wait = stop - end;
                return Ok(());
            };
            state.wait = stop - at;
            run_index = at;
            let run = input.run(state)?;
            if run > end - i {
                return Err("run past the segment");
            }
            for k in i..i + run {
                cur[k] = cur[k - 1];
            }
            i += run;
            if i == end {
                return Ok(());
            }
            stop = i + state.wait;
        }
    }
}

/// Decodes a `QUIC` image's data to 0xAARRGGBB pixels (alpha 0 unless RGBA, as
/// spice-gtk's RGB32 output leaves it).
pub(crate) fn quic(data: &[u8]) -> Result<Decoded, &'static str> {
    // The client takes whole words only.
    let data = &data[..data.len() / 4 * 4];
    let mut input = BitReader { data, at: 0 };
    let mut header = [0u32; 5];
    for h in &mut header {
        *h = input.take(32)?;
    }
    let [magic, version, kind, width, height] = header;
    if magic != MAGIC {
        return Err("bad magic");
    }
    if version != VERSION {
        return Err("bad version");
    }
    let has_alpha = match kind {
        3 | 4 => false,
        5 => true,
        _ => return Err("unsupported type"),
    };
    if width as i32 <= 0 || height as i32 <= 0 {
        return Err("invalid size");
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err("image too large");
    }
    let w = width as usize;
    let mut colour = Group::<3> {
        models: std::array::from_fn(|_| Model::new(w)),
        state: GroupState::new(),
    };
    let mut alphas = Group::<1> {
        models: [Model::new(w)],
        state: GroupState::new(),
    };
    let (mut prev_rgb, mut cur_rgb) = (vec![[0u8; 3]; w], vec![[0u8; 3]; w]);
    let (mut prev_a, mut cur_a) = (vec![[0u8; 1]; w], vec![[0u8; 1]; w]);
    let mut pixels = Vec::with_capacity(w * height as usize);
    for y in 0..height {
        colour.row(&mut input, (y > 0).then_some(&prev_rgb[..]), &mut cur_rgb)?;
        if has_alpha {
            alphas.row(&mut input, (y > 0).then_some(&prev_a[..]), &mut cur_a)?;
        }
        pixels.extend(cur_rgb.iter().zip(&cur_a).map(|(c, a)| {
            u32::from_be_bytes([if has_alpha { a[0] } else { 0 }, c[0], c[1], c[2]])
        }));
        std::mem::swap(&mut prev_rgb, &mut cur_rgb);
        std::mem::swap(&mut prev_a, &mut cur_a);
    }
    Ok(Decoded {
        width,
        height,
        pixels,
    })
}
