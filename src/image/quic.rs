//! spice-common's QUIC format (`quic.c`, `quic_tmpl.c`), as `QUIC` images carry it: a
//! lossless coder for photographs (SFALIC).
//!
//! Each colour component is predicted from its left and upper neighbours; the residual,
//! folded to a small unsigned number, is Golomb-Rice coded with the code that has been
//! cheapest so far in the "bucket" of the previous residual's size. Buckets learn only at
//! pseudo-random pixels (fewer as the image goes on). Where the row above repeats and the
//! row so far repeats too, equal pixels are run-length coded instead. R, G and B share
//! one run/learning state and alpha (RGBA) has its own, coded a row after each RGB row.
//!
//! Bits are written most significant first into 32-bit words stored little-endian; the
//! header is five such words (magic, version, type, width, height).
//!
//! The model (tables, buckets, states) is shared with our decoder (`decode_quic`), which
//! tests check against this encoder; the tables follow the constants of `quic.c`, where a
//! difference would make spice-gtk decode other pixels.

/// `QUIC_MAGIC` ("QUIC" read as a little-endian u32) and `QUIC_VERSION` (0.0).
pub(crate) const MAGIC: u32 = 0x4349_5551;
pub(crate) const VERSION: u32 = 0;

/// `QuicImageType` values we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuicType {
    Rgb32 = 4,
    Rgba = 5,
}

/// Bits per component: all our images have 8.
pub(crate) const BPC: usize = 8;
const LEVELS: usize = 1 << BPC;
/// Codewords are at most this long (`DEFmaxclen`).
const MAX_CODE_LEN: u32 = 26;

/// The Golomb-Rice code family for 8-bit residuals (`family_init`): code `l` writes
/// `n >> l` zeros, a one and the low `l` bits of `n`, except that values from
/// `gr_limit[l]` on are an escape: `escape_prefix[l]` zeros and `n - gr_limit[l]` in
/// `escape_suffix[l]` bits.
pub(crate) struct Family {
    pub gr_limit: [u32; BPC],
    pub escape_prefix: [u32; BPC],
    pub escape_suffix: [u32; BPC],
    /// (codeword, length) by value and code.
    pub code: [[(u32, u32); BPC]; LEVELS],
}

const fn bits_for(count: u32) -> u32 {
    // ceil(log2(count)), 0 for 1.
    if count <= 1 {
        0
    } else {
        32 - (count - 1).leading_zeros()
    }
}

const fn family() -> Family {
    let mut f = Family {
        gr_limit: [0; BPC],
        escape_prefix: [0; BPC],
        escape_suffix: [0; BPC],
        code: [[(0, 0); BPC]; LEVELS],
    };
    let mut l = 0;
    while l < BPC {
        let mut prefix = MAX_CODE_LEN - BPC as u32;
        let most = (1u32 << (BPC - l)) - 1;
        if prefix > most {
            prefix = most;
        }
        let gr_limit = prefix << l;
        f.gr_limit[l] = gr_limit;
        f.escape_prefix[l] = prefix;
        f.escape_suffix[l] = bits_for(LEVELS as u32 - gr_limit);
        let mut n = 0u32;
        while n < LEVELS as u32 {
            f.code[n as usize][l] = if n < gr_limit {
                ((1 << l) | (n & ((1 << l) - 1)), (n >> l) + l as u32 + 1)
            } else {
                (n - gr_limit, prefix + f.escape_suffix[l])
            };
            n += 1;
        }
        l += 1;
    }
    f
}

pub(crate) static FAMILY: Family = family();

/// Folds a residual (mod 256) to small numbers for small magnitudes: 0, -1, 1, -2, ...
/// become 0, 1, 2, 3, ... (`xlatU2L`).
#[inline]
pub(crate) fn fold(residual: u8) -> u8 {
    if residual < 128 {
        residual << 1
    } else {
        ((255 - residual) << 1) | 1
    }
}

/// Buckets of previous residuals sharing statistics: sizes 1, 2, 4, ... and the last
/// takes the rest once the next would pass the end (`find_model_params` with evolution 3).
const BUCKETS: usize = 8;

const fn bucket_table() -> [u8; LEVELS] {
    let mut table = [0u8; LEVELS];
    let (mut start, mut size, mut bucket) = (0usize, 1usize, 0u8);
    loop {
        let mut end = start + size - 1;
        if end + size >= LEVELS {
            end = LEVELS - 1;
        }
        let mut v = start;
        while v <= end {
            table[v] = bucket;
            v += 1;
        }
        if end == LEVELS - 1 {
            return table;
        }
        start = end + 1;
        size *= 2;
        bucket += 1;
    }
}

static BUCKET_OF: [u8; LEVELS] = bucket_table();

/// `tabrand_chaos`: the pseudo-random sequence choosing where models learn.
const CHAOS: [u32; 256] = [
    0x02c57542, 0x35427717, 0x2f5a2153, 0x9244f155, 0x7bd26d07, 0x354c6052, 0x57329b28, 0x2993868e,
    0x6cd8808c, 0x147b46e0, 0x99db66af, 0xe32b4cac, 0x1b671264, 0x9d433486, 0x62a4c192, 0x06089a4b,
    0x9e3dce44, 0xdaabee13, 0x222425ea, 0xa46f331d, 0xcd589250, 0x8bb81d7f, 0xc8b736b9, 0x35948d33,
    0xd7ac7fd0, 0x5fbe2803, 0x2cfbc105, 0x013dbc4e, 0x7a37820f, 0x39f88e9e, 0xedd58794, 0xc5076689,
    0xfcada5a4, 0x64c2f46d, 0xb3ba3243, 0x8974b4f9, 0x5a05aebd, 0x20afcd00, 0x39e2b008, 0x88a18a45,
    0x600bde29, 0xf3971ace, 0xf37b0a6b, 0x7041495b, 0x70b707ab, 0x06beffbb, 0x4206051f, 0xe13c4ee3,
    0xc1a78327, 0x91aa067c, 0x8295f72a, 0x732917a6, 0x1d871b4d, 0x4048f136, 0xf1840e7e, 0x6a6048c1,
    0x696cb71a, 0x7ff501c3, 0x0fc6310b, 0x57e0f83d, 0x8cc26e74, 0x11a525a2, 0x946934c7, 0x7cd888f0,
    0x8f9d8604, 0x4f86e73b, 0x04520316, 0xdeeea20c, 0xf1def496, 0x67687288, 0xf540c5b2, 0x22401484,
    0x3478658a, 0xc2385746, 0x01979c2c, 0x5dad73c8, 0x0321f58b, 0xf0fedbee, 0x92826ddf, 0x284bec73,
    0x5b1a1975, 0x03df1e11, 0x20963e01, 0xa17cf12b, 0x740d776e, 0xa7a6bf3c, 0x01b5cce4, 0x1118aa76,
    0xfc6fac0a, 0xce927e9b, 0x00bf2567, 0x806f216c, 0xbca69056, 0x795bd3e9, 0xc9dc4557, 0x8929b6c2,
    0x789d52ec, 0x3f3fbf40, 0xb9197368, 0xa38c15b5, 0xc3b44fa8, 0xca8333b0, 0xb7e8d590, 0xbe807feb,
    0xbf5f8360, 0xd99e2f5c, 0x372928e1, 0x7c757c4c, 0x0db5b154, 0xc01ede02, 0x1fc86e78, 0x1f3985be,
    0xb4805c77, 0x00c880fa, 0x974c1b12, 0x35ab0214, 0xb2dc840d, 0x5b00ae37, 0xd313b026, 0xb260969d,
    0x7f4c8879, 0x1734c4d3, 0x49068631, 0xb9f6a021, 0x6b863e6f, 0xcee5debf, 0x29f8c9fb, 0x53dd6880,
    0x72b61223, 0x1f67a9fd, 0x0a0f6993, 0x13e59119, 0x11cca12e, 0xfe6b6766, 0x16b6effc, 0x97918fc4,
    0xc2b8a563, 0x94f2f741, 0x0bfa8c9a, 0xd1537ae8, 0xc1da349c, 0x873c60ca, 0x95005b85, 0x9b5c080e,
    0xbc8abbd9, 0xe1eab1d2, 0x6dac9070, 0x4ea9ebf1, 0xe0cf30d4, 0x1ef5bd7b, 0xd161043e, 0x5d2fa2e2,
    0xff5d3cae, 0x86ed9f87, 0x2aa1daa1, 0xbd731a34, 0x9e8f4b22, 0xb1c2c67a, 0xc21758c9, 0xa182215d,
    0xccb01948, 0x8d168df7, 0x04238cfe, 0x368c3dbc, 0x0aeadca5, 0xbad21c24, 0x0a71fee5, 0x9fc5d872,
    0x54c152c6, 0xfc329483, 0x6783384a, 0xeddb3e1c, 0x65f90e30, 0x884ad098, 0xce81675a, 0x4b372f7d,
    0x68bf9a39, 0x43445f1e, 0x40f8d8cb, 0x90d5acb6, 0x4cd07282, 0x349eeb06, 0x0c9d5332, 0x520b24ef,
    0x80020447, 0x67976491, 0x2f931ca3, 0xfe9b0535, 0xfcd30220, 0x61a9e6cc, 0xa487d8d7, 0x3f7c5dd1,
    0x7d0127c5, 0x48f51d15, 0x60dea871, 0xc9a91cb7, 0x58b53bb3, 0x9d5e0b2d, 0x624a78b4, 0x30dbee1b,
    0x9bdf22e7, 0x1df5c299, 0x2d5643a7, 0xf4dd35ff, 0x03ca8fd6, 0x53b47ed8, 0x6f2c19aa, 0xfeb0c1f4,
    0x49e54438, 0x2f2577e6, 0xbf876969, 0x72440ea9, 0xfa0bafb8, 0x74f5b3a0, 0x7dd357cd, 0x89ce1358,
    0x6ef2cdda, 0x1e7767f3, 0xa6be9fdb, 0x4f5f88f8, 0xba994a3a, 0x08ca6b65, 0xe0893818, 0x9e00a16a,
    0xf42bfc8f, 0x9972eedc, 0x749c8b51, 0x32c05f5e, 0xd706805f, 0x6bfbb7cf, 0xd9210a10, 0x31a1db97,
    0x923a9559, 0x37a7a1f6, 0x059f8861, 0xca493e62, 0x65157e81, 0x8f6467dd, 0xab85ff9f, 0x9331aff2,
    0x8616b9f5, 0xedbd5695, 0xee7e29b1, 0x313ac44f, 0xb903112f, 0x432ef649, 0xdc0a36c0, 0x61cf2bba,
    0x81474925, 0xa8b6c7ad, 0xee5931de, 0xb2f8158d, 0x59fb7409, 0x2e3dfaed, 0x9af25a3f, 0xe1fed4d5,
];

/// Models learn at one pixel in `2^wait_index` (at random), the index growing by one
/// every `WAIT_STEP` pixels of a group up to `WAIT_INDEX_MAX`.
const WAIT_STEP: usize = 2048;
const WAIT_INDEX_MAX: u32 = 6;
/// Counters are halved once the best code's total passes this, by wait index
/// (`besttrigtab` for evolution 3).
const HALVING_TRIGGER: [u32; 11] = [110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140];
/// Run-length coder states: in state `s` a one bit stands for `2^RUN_ORDER[s]` pixels.
const RUN_ORDER: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// What a group of components (R, G and B, or alpha) shares: when its models learn next
/// and its run-length coder.
pub(crate) struct GroupState {
    pub wait: usize,
    seed: u32,
    pub wait_index: u32,
    pub wait_left: usize,
    halving_trigger: u32,
    pub run_state: usize,
}

impl GroupState {
    pub(crate) fn new() -> Self {
        GroupState {
            wait: 0,
            seed: 0xff,
            wait_index: 0,
            wait_left: WAIT_STEP,
            halving_trigger: HALVING_TRIGGER[0],
            run_state: 0,
        }
    }

    pub(crate) fn random(&mut self) -> u32 {
        self.seed = self.seed.wrapping_add(1);
        CHAOS[(self.seed & 0xff) as usize]
    }

    pub(crate) fn wait_mask(&self) -> usize {
        (1usize << self.wait_index) - 1
    }

    fn next_wait_index(&mut self) {
        self.wait_index += 1;
        self.halving_trigger = HALVING_TRIGGER[(self.wait_index as usize).min(10)];
        self.wait_left = WAIT_STEP;
    }

    /// Splits a row of `width` pixels into segments of one wait index each, as
    /// `compress_row` does: `(start, end, wait_mask)`.
    pub(crate) fn segments(&mut self, width: usize, mut each: impl FnMut(&mut Self, usize, usize)) {
        let (mut pos, mut left) = (0, width);
        while self.wait_index < WAIT_INDEX_MAX && self.wait_left <= left {
            if self.wait_left > 0 {
                let n = self.wait_left;
                each(self, pos, pos + n);
                pos += n;
                left -= n;
            }
            self.next_wait_index();
        }
        if left > 0 {
            each(self, pos, pos + left);
            if self.wait_index < WAIT_INDEX_MAX {
                self.wait_left -= left;
            }
        }
    }

    pub(crate) fn run_order(&self) -> u32 {
        RUN_ORDER[self.run_state]
    }

    pub(crate) fn run_state_up(&mut self) {
        if self.run_state < RUN_ORDER.len() - 1 {
            self.run_state += 1;
        }
    }

    pub(crate) fn run_state_down(&mut self) {
        self.run_state = self.run_state.saturating_sub(1);
    }
}

/// One component's statistics: per bucket, the total code length each code would have
/// spent, and the best code so far.
pub(crate) struct Model {
    counters: [[u32; BPC]; BUCKETS],
    best: [u8; BUCKETS],
    /// The folded residuals of the row being coded at `1..=width`; slot 0 is the one
    /// "left of" the first pixel (the row above's first). Pixels coded as runs leave
    /// their slots as the row above left them, as in C.
    pub residuals: Vec<u8>,
}

impl Model {
    pub(crate) fn new(width: usize) -> Self {
        Model {
            counters: [[0; BPC]; BUCKETS],
            best: [BPC as u8 - 1; BUCKETS],
            residuals: vec![0; width + 1],
        }
    }

    /// The code for pixel `i`'s residual: the best of the bucket of the residual before.
    #[inline]
    pub(crate) fn code_at(&self, i: usize) -> usize {
        usize::from(self.best[usize::from(BUCKET_OF[usize::from(self.residuals[i])])])
    }

    /// Learns pixel `i`'s residual (`update_model`).
    pub(crate) fn learn(&mut self, i: usize, trigger: u32) {
        let bucket = usize::from(BUCKET_OF[usize::from(self.residuals[i])]);
        let value = usize::from(self.residuals[i + 1]);
        let counters = &mut self.counters[bucket];
        let mut best = BPC - 1;
        counters[best] += FAMILY.code[value][best].1;
        let mut best_len = counters[best];
        for code in (0..BPC - 1).rev() {
            counters[code] += FAMILY.code[value][code].1;
            if counters[code] < best_len {
                best = code;
                best_len = counters[code];
            }
        }
        self.best[bucket] = best as u8;
        if best_len > trigger {
            for c in counters.iter_mut() {
                *c >>= 1;
            }
        }
    }

    /// Starts a row: slot 0 becomes the previous row's first residual (0 on the first).
    pub(crate) fn start_row(&mut self, first_row: bool) {
        self.residuals[0] = if first_row { 0 } else { self.residuals[1] };
    }
}

/// The predicted value of a component from its left and upper neighbours.
#[inline]
pub(crate) fn predict(left: Option<u8>, above: Option<u8>) -> u8 {
    match (left, above) {
        (None, None) => 0,
        (Some(v), None) | (None, Some(v)) => v,
        (Some(l), Some(a)) => ((u16::from(l) + u16::from(a)) >> 1) as u8,
    }
}

/// Whether pixel `i` of a row below the first starts a run: the row above repeats there
/// and the two pixels before are equal (`RLE_PRED_IMP`).
#[inline]
pub(crate) fn run_starts<P: PartialEq>(prev: &[P], cur: &[P], i: usize, run_index: usize) -> bool {
    prev[i - 1] == prev[i] && run_index != i && i > 2 && cur[i - 1] == cur[i - 2]
}

pub(crate) fn halving_trigger(state: &GroupState) -> u32 {
    state.halving_trigger
}

struct BitWriter {
    out: Vec<u8>,
    word: u64,
    bits: u32,
}

impl BitWriter {
    #[inline]
    fn put(&mut self, value: u32, len: u32) {
        debug_assert!(len <= 32 && (len == 32 || value >> len == 0));
        self.word = (self.word << len) | u64::from(value);
        self.bits += len;
        if self.bits >= 32 {
            self.bits -= 32;
            let w = (self.word >> self.bits) as u32;
            self.out.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn ones(&mut self, mut n: u32) {
        while n >= 32 {
            self.put(u32::MAX, 32);
            n -= 32;
        }
        if n > 0 {
            self.put((1 << n) - 1, n);
        }
    }

    /// Pads the last word and adds one of zeros: C's decoder reads a word ahead.
    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.put(0, 32 - self.bits);
        }
        self.put(0, 32);
        self.out
    }
}

/// A group of `N` components coded together: their models and shared state.
struct Group<const N: usize> {
    models: [Model; N],
    state: GroupState,
}

impl<const N: usize> Group<N> {
    fn new(width: usize) -> Self {
        Group {
            models: std::array::from_fn(|_| Model::new(width)),
            state: GroupState::new(),
        }
    }

    fn row(&mut self, out: &mut BitWriter, prev: Option<&[[u8; N]]>, cur: &[[u8; N]]) {
        for m in &mut self.models {
            m.start_row(prev.is_none());
        }
        let mut state = std::mem::replace(&mut self.state, GroupState::new());
        state.segments(cur.len(), |state, start, end| {
            self.segment(state, out, prev, cur, start, end);
        });
        self.state = state;
    }

    #[inline]
    fn code_pixel(
        &mut self,
        out: &mut BitWriter,
        prev: Option<&[[u8; N]]>,
        cur: &[[u8; N]],
        i: usize,
    ) {
        let left = i.checked_sub(1).map(|l| cur[l]);
        let above = prev.map(|p| p[i]);
        for (c, model) in self.models.iter_mut().enumerate() {
            let predicted = predict(left.map(|p| p[c]), above.map(|p| p[c]));
            let residual = fold(cur[i][c].wrapping_sub(predicted));
            model.residuals[i + 1] = residual;
            let (word, len) = FAMILY.code[usize::from(residual)][model.code_at(i)];
            out.put(word, len);
        }
    }

    fn learn(&mut self, state: &GroupState, i: usize) {
        let trigger = halving_trigger(state);
        for m in &mut self.models {
            m.learn(i, trigger);
        }
    }

    /// `compress_row_seg` / `compress_row0_seg`: pixels `start..end` of a row.
    fn segment(
        &mut self,
        state: &mut GroupState,
        out: &mut BitWriter,
        prev: Option<&[[u8; N]]>,
        cur: &[[u8; N]],
        start: usize,
        end: usize,
    ) {
        let mask = state.wait_mask();
        let mut i = start;
        if i == 0 {
            self.code_pixel(out, prev, cur, 0);
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
        let starts_run =
            |i: usize, run_index: usize| prev.is_some_and(|p| run_starts(p, cur, i, run_index));
        loop {
            // Code pixels, learning at each `stop`, until a run starts or the segment ends.
            let mut run_at = None;
            'coding: {
                while stop < end {
                    while i <= stop {
                        if starts_run(i, run_index) {
                            run_at = Some(i);
                            break 'coding;
                        }
                        self.code_pixel(out, prev, cur, i);
                        i += 1;
                    }
                    self.learn(state, stop);
                    stop = i + (state.random() as usize & mask);
                }
                while i < end {
                    if starts_run(i, run_index) {
                        run_at = Some(i);
                        break 'coding;
                    }
                    self.code_pixel(out, prev, cur, i);
                    i += 1;
                }
            }
            let Some(at) = run_at else {
                state.wait = stop - end;
                return;
            };
            run_index = at;
            state.wait = stop - at;
            let mut run = 0;
            while cur[i] == cur[i - 1] {
                run += 1;
                i += 1;
                if i == end {
                    encode_run(out, state, run);
                    return;
                }
            }
            encode_run(out, state, run);
            stop = i + state.wait;
        }
    }
}

/// `encode_state_run`: a one per full `2^order` pixels (the order growing with each),
/// then a zero and the rest in `order` bits.
fn encode_run(out: &mut BitWriter, state: &mut GroupState, mut run: usize) {
    let mut hits = 0;
    while run >= 1 << state.run_order() {
        hits += 1;
        run -= 1 << state.run_order();
        state.run_state_up();
    }
    out.ones(hits);
    out.put(run as u32, state.run_order() + 1);
    state.run_state_down();
}

#[inline]
fn rgb(p: u32) -> [u8; 3] {
    [(p >> 16) as u8, (p >> 8) as u8, p as u8]
}

#[inline]
fn alpha(p: u32) -> [u8; 1] {
    [(p >> 24) as u8]
}

/// Encodes `pixels` (`width * height` values 0xAARRGGBB, top-down rows) as a `QUIC`
/// image's data. `width` and `height` must not be 0.
pub(crate) fn encode(kind: QuicType, width: u32, height: u32, pixels: &[u32]) -> Vec<u8> {
    let w = width as usize;
    debug_assert!(w > 0 && height > 0 && pixels.len() == w * height as usize);
    let mut out = BitWriter {
        out: Vec::with_capacity(pixels.len() * 2 + 32),
        word: 0,
        bits: 0,
    };
    for word in [MAGIC, VERSION, kind as u32, width, height] {
        out.put(word, 32);
    }
    let mut colour = Group::<3>::new(w);
    let mut alphas = (kind == QuicType::Rgba).then(|| Group::<1>::new(w));
    let (mut prev_rgb, mut cur_rgb) = (Vec::with_capacity(w), Vec::with_capacity(w));
    let (mut prev_a, mut cur_a) = (Vec::with_capacity(w), Vec::with_capacity(w));
    for (y, row) in pixels.chunks_exact(w).enumerate() {
        cur_rgb.clear();
        cur_rgb.extend(row.iter().map(|&p| rgb(p)));
        colour.row(&mut out, (y > 0).then_some(&prev_rgb[..]), &cur_rgb);
        std::mem::swap(&mut prev_rgb, &mut cur_rgb);
        if let Some(group) = alphas.as_mut() {
            cur_a.clear();
            cur_a.extend(row.iter().map(|&p| alpha(p)));
            group.row(&mut out, (y > 0).then_some(&prev_a[..]), &cur_a);
            std::mem::swap(&mut prev_a, &mut cur_a);
        }
    }
    out.finish()
}
