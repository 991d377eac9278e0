//! QXL images (`QXLImage`) decoded into 32-bit pixels, whatever their format.
//!
//! Every bitmap format a guest driver may use: 1/4/8 bpp with a palette (both bit
//! orders), 16 bpp (x1r5g5b5), 24 bpp, 32 bpp (xRGB), RGBA, and 8-bit alpha; chunked or
//! direct data; top-down or bottom-up. An image may also name an off-screen surface.

use super::command::{GuestMemory, ParseError};

pub(crate) fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Largest image side accepted.
pub(crate) const MAX_SIDE: u32 = 16384;
/// Largest image accepted, in pixels (a 4K screen is 8.3 Mpx).
pub(crate) const MAX_PIXELS: u64 = 16 << 20;
/// Chunk lists longer than this are treated as cyclic.
const MAX_CHUNKS: usize = 65536;
/// The host refused memory for what the guest sent: the command fails, QEMU carries on.
pub(crate) const NO_MEMORY: ParseError = ParseError::Invalid("no host memory for it");
const CHUNK_HEADER: usize = 20;
const DESCRIPTOR: usize = 18;
const BITMAP: usize = 30;
const RGB_WHITE: u32 = 0x00ff_ffff;

/// `SPICE_BITMAP_FMT_*`.
pub(crate) mod fmt {
    pub(crate) const BIT1_LE: u8 = 1;
    pub(crate) const BIT1_BE: u8 = 2;
    pub(crate) const BIT4_LE: u8 = 3;
    pub(crate) const BIT4_BE: u8 = 4;
    pub(crate) const BIT8: u8 = 5;
    pub(crate) const BIT16: u8 = 6;
    pub(crate) const BIT24: u8 = 7;
    pub(crate) const BIT32: u8 = 8;
    pub(crate) const RGBA: u8 = 9;
    pub(crate) const BIT8_A: u8 = 10;
}

const TYPE_BITMAP: u8 = 0;
const TYPE_SURFACE: u8 = 104;
const BITMAP_DIRECT: u8 = 1;
const BITMAP_TOP_DOWN: u8 = 4;

/// Decoded pixels: 0xAARRGGBB, rows top-down. `alpha` says whether A is meaningful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u32>,
    pub alpha: bool,
    /// 1 bpp images keep their two palette colours so masks and brushes can use the
    /// index rather than the colour.
    pub format: u8,
}

impl Pixels {
    pub(crate) fn get(&self, x: u32, y: u32) -> u32 {
        self.data[(y * self.width + x) as usize]
    }
}

/// Where a drawing operation takes its source from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Image {
    Pixels(Pixels),
    /// The current contents of another surface.
    Surface(u32),
}

/// Where the `len` bytes of a chunk list starting at the chunk at `address` lie: the
/// (guest address, length) of each chunk's data, in order.
fn chunk_segments(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    len: usize,
) -> Result<Vec<(u64, usize)>, ParseError> {
    // The chunks must hold exactly `len` bytes, as spice-server requires: a list that
    // holds more (a cycle) or less (a short one) is refused.
    let mut segments = Vec::new();
    let mut found = 0usize;
    let mut next = address;
    for _ in 0..MAX_CHUNKS {
        if next == 0 {
            break;
        }
        let header = mem.read(group, next, CHUNK_HEADER)?;
        let size = u32_at(&header, 0) as usize;
        if size > len - found {
            return Err(ParseError::Invalid("data longer than its size"));
        }
        let data_address = next
            .checked_add(CHUNK_HEADER as u64)
            .ok_or(ParseError::Invalid("chunk address"))?;
        if size > 0 {
            segments.push((data_address, size));
        }
        found += size;
        next = u64_at(&header, 12);
    }
    if found < len || next != 0 {
        return Err(ParseError::Invalid("data shorter than its size"));
    }
    Ok(segments)
}

/// Reads `len` bytes of a chunk list starting at the chunk at `address`.
pub(crate) fn read_chunks(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    len: usize,
) -> Result<Vec<u8>, ParseError> {
    let segments = chunk_segments(mem, group, address, len)?;
    let mut out = Vec::new();
    out.try_reserve_exact(segments.iter().map(|s| s.1).sum())
        .map_err(|_| NO_MEMORY)?;
    for (at, size) in segments {
        out.extend_from_slice(&mem.read(group, at, size)?);
    }
    Ok(out)
}

/// Reads the first `len` bytes of a chunk list whose chunks may hold more (a cursor's
/// data, whose guest size may include padding): stops once `len` bytes are read, so
/// nothing past them is allocated or followed; fewer than `len` bytes is an error.
pub(crate) fn read_chunks_prefix(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    len: usize,
) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| NO_MEMORY)?;
    let mut next = address;
    for _ in 0..MAX_CHUNKS {
        if next == 0 || out.len() == len {
            break;
        }
        let header = mem.read(group, next, CHUNK_HEADER)?;
        let size = (u32_at(&header, 0) as usize).min(len - out.len());
        let data_address = next
            .checked_add(CHUNK_HEADER as u64)
            .ok_or(ParseError::Invalid("chunk address"))?;
        out.extend_from_slice(&mem.read(group, data_address, size)?);
        next = u64_at(&header, 12);
    }
    if out.len() < len {
        return Err(ParseError::Invalid("data shorter than its size"));
    }
    Ok(out)
}

/// A bitmap's data in guest memory, read a row at a time (never copied whole).
#[derive(Debug)]
struct GuestData {
    group: u32,
    segments: Vec<(u64, usize)>,
    /// Offset of each segment's first byte in the data.
    starts: Vec<usize>,
}

impl GuestData {
    fn new(group: u32, segments: Vec<(u64, usize)>) -> Self {
        let starts = segments
            .iter()
            .scan(0, |at, &(_, size)| {
                let start = *at;
                *at += size;
                Some(start)
            })
            .collect();
        Self {
            group,
            segments,
            starts,
        }
    }

    /// The segment holding byte `offset`, and where in it that byte is.
    fn locate(&self, offset: usize) -> (usize, usize) {
        let i = self.starts.partition_point(|&s| s <= offset) - 1;
        (i, offset - self.starts[i])
    }

    /// The guest address of `len` bytes at `offset` when one chunk holds them all.
    fn contiguous(&self, offset: usize, len: usize) -> Option<u64> {
        let (i, within) = self.locate(offset);
        let (at, size) = self.segments[i];
        (within + len <= size).then_some(at + within as u64)
    }

    /// Copies `len` bytes at `offset` (which may span chunks) into `out`.
    fn gather(
        &self,
        mem: &dyn GuestMemory,
        offset: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ParseError> {
        out.clear();
        let (mut i, mut within) = self.locate(offset);
        while out.len() < len {
            let (at, size) = self.segments[i];
            let n = (size - within).min(len - out.len());
            out.extend_from_slice(&mem.read(self.group, at + within as u64, n)?);
            i += 1;
            within = 0;
        }
        Ok(())
    }
}

/// A bitmap left in guest memory: its header and chunk list checked as `parse_image`
/// checks them, its rows read and decoded only when asked for. The video path draws
/// them straight onto the surface (the C server encodes from them in place), with no
/// decoded copy of the whole image in between. Valid while the guest has not had the
/// command back (until it is released).
#[derive(Debug)]
pub(crate) struct GuestBitmap {
    pub width: u32,
    pub height: u32,
    pub format: u8,
    top_down: bool,
    stride: usize,
    row: usize,
    palette: Vec<u32>,
    data: GuestData,
}

impl GuestBitmap {
    /// Whether rows are 32-bit words that `copy_words` copies as they are.
    pub(crate) fn has_words(&self) -> bool {
        matches!(self.format, fmt::BIT32 | fmt::RGBA)
    }

    /// Whether the words carry alpha (RGBA); BIT32's fourth byte is padding.
    pub(crate) fn has_alpha(&self) -> bool {
        self.format == fmt::RGBA
    }

    /// Copies pixels `x0..x1` of row `y` of a 32-bit bitmap (`has_words`) as the guest
    /// wrote them (B, G, R, A/padding) into `out`, `4 * (x1 - x0)` bytes: the video
    /// path's one copy. `None` when the row is not 32-bit words in one chunk
    /// (`append_row` then decodes it).
    pub(crate) fn copy_words(
        &self,
        mem: &dyn GuestMemory,
        y: u32,
        x0: u32,
        x1: u32,
        out: &mut [u8],
    ) -> Option<Result<(), ParseError>> {
        if !self.has_words() || y >= self.height || x0 >= x1 || x1 > self.width {
            return None;
        }
        let len = 4 * (x1 - x0) as usize;
        if out.len() != len {
            return None;
        }
        let src = if self.top_down {
            y as usize
        } else {
            (self.height - 1 - y) as usize
        };
        let at = self
            .data
            .contiguous(src * self.stride + 4 * x0 as usize, len)?;
        Some(mem.read_into(self.data.group, at, out).map_err(Into::into))
    }

    /// Appends pixels `x0..x1` of row `y` (0 = the top row), as ARGB exactly as
    /// `parse_image` decodes them, to `out`. `scratch` holds the raw bytes when a row
    /// spans chunks or needs converting.
    pub(crate) fn append_row(
        &self,
        mem: &dyn GuestMemory,
        y: u32,
        x0: u32,
        x1: u32,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u32>,
    ) -> Result<(), ParseError> {
        if y >= self.height || x0 >= x1 || x1 > self.width {
            return Err(ParseError::Invalid("row outside its bitmap"));
        }
        let src = if self.top_down {
            y as usize
        } else {
            (self.height - 1 - y) as usize
        };
        // Whole bytes per pixel: read only the span; packed 1 and 4 bpp rows whole.
        let (skip, take, width) = match self.row / self.width as usize {
            bpp @ 1.. if self.row.is_multiple_of(self.width as usize) => {
                (x0 as usize * bpp, (x1 - x0) as usize * bpp, x1 - x0)
            }
            _ => (0, self.row, self.width),
        };
        let offset = src * self.stride + skip;
        let start = out.len();
        match self.data.contiguous(offset, take) {
            // The video path: 32-bit rows go from guest memory into `out` in one copy.
            Some(at) if matches!(self.format, fmt::BIT32 | fmt::RGBA) => {
                mem.append_words(self.data.group, at, width as usize, out)?;
                if self.format == fmt::BIT32 {
                    out[start..].iter_mut().for_each(|p| *p |= 0xff00_0000);
                }
            }
            _ => {
                self.data.gather(mem, offset, take, scratch)?;
                decode_row(self.format, scratch, width, &self.palette, out);
            }
        }
        if width != x1 - x0 {
            // A packed row decoded whole: keep the span asked for.
            out.truncate(start + x1 as usize);
            out.drain(start..start + x0 as usize);
        }
        Ok(())
    }
}

/// Bytes per row of `width` pixels in `format`.
pub(crate) fn row_bytes(format: u8, width: u32) -> Option<usize> {
    let w = width as usize;
    Some(match format {
        fmt::BIT1_LE | fmt::BIT1_BE => w.div_ceil(8),
        fmt::BIT4_LE | fmt::BIT4_BE => w.div_ceil(2),
        fmt::BIT8 | fmt::BIT8_A => w,
        fmt::BIT16 => w * 2,
        fmt::BIT24 => w * 3,
        fmt::BIT32 | fmt::RGBA => w * 4,
        _ => return None,
    })
}

fn expand5(c: u32) -> u32 {
    (c << 3) | (c >> 2)
}

/// Converts one row of `format` pixels to ARGB.
fn decode_row(format: u8, row: &[u8], width: u32, palette: &[u32], out: &mut Vec<u32>) {
    let w = width as usize;
    let pal = |i: usize| palette.get(i).copied().unwrap_or(0) | 0xff00_0000;
    let word = |p: &[u8]| u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    // One loop per format (the 32-bit ones are the video path and vectorise).
    match format {
        fmt::BIT32 => out.extend(row.chunks_exact(4).take(w).map(|p| word(p) | 0xff00_0000)),
        fmt::RGBA => out.extend(row.chunks_exact(4).take(w).map(word)),
        fmt::BIT24 => {
            out.extend(row.chunks_exact(3).take(w).map(|p| {
                0xff00_0000 | u32::from(p[2]) << 16 | u32::from(p[1]) << 8 | u32::from(p[0])
            }))
        }
        fmt::BIT16 => out.extend(row.chunks_exact(2).take(w).map(|p| {
            let v = u32::from(u16::from_le_bytes([p[0], p[1]]));
            0xff00_0000
                | expand5((v >> 10) & 0x1f) << 16
                | expand5((v >> 5) & 0x1f) << 8
                | expand5(v & 0x1f)
        })),
        fmt::BIT8 => out.extend(row[..w].iter().map(|&i| pal(usize::from(i)))),
        fmt::BIT8_A => out.extend(row[..w].iter().map(|&a| u32::from(a) << 24)),
        fmt::BIT1_LE => out.extend((0..w).map(|x| pal(((row[x / 8] >> (x % 8)) & 1) as usize))),
        fmt::BIT1_BE => out.extend((0..w).map(|x| pal(((row[x / 8] >> (7 - x % 8)) & 1) as usize))),
        fmt::BIT4_LE => {
            out.extend((0..w).map(|x| pal(((row[x / 2] >> (4 * (x % 2))) & 0xf) as usize)))
        }
        fmt::BIT4_BE => {
            out.extend((0..w).map(|x| pal(((row[x / 2] >> (4 * (1 - x % 2))) & 0xf) as usize)))
        }
        _ => out.extend(row.chunks_exact(4).take(w).map(word)),
    }
}

fn read_palette(mem: &dyn GuestMemory, group: u32, address: u64) -> Result<Vec<u32>, ParseError> {
    if address == 0 {
        return Ok(Vec::new());
    }
    let head = mem.read(group, address, 10)?;
    let n = usize::from(u16_at(&head, 8)).min(256);
    let raw = mem.read(group, address + 10, n * 4)?;
    Ok((0..n).map(|i| u32_at(&raw, 4 * i)).collect())
}

/// Parses the `QXLImage` at `address`.
pub(crate) fn parse_image(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<Image, ParseError> {
    let d = mem.read(group, address, DESCRIPTOR)?;
    match d[8] {
        TYPE_SURFACE => {
            let s = mem.read(group, address + DESCRIPTOR as u64, 4)?;
            Ok(Image::Surface(u32_at(&s, 0)))
        }
        TYPE_BITMAP => {
            parse_bitmap_body(mem, group, address + DESCRIPTOR as u64).map(Image::Pixels)
        }
        _ => Err(ParseError::Unsupported("compressed guest image")),
    }
}

/// The bitmap whose `QXLImage` is at `address`, left in guest memory; `None` when the
/// image is not a bitmap (a surface, a compressed image: `parse_image` says which).
pub(crate) fn guest_bitmap(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<Option<GuestBitmap>, ParseError> {
    let d = mem.read(group, address, DESCRIPTOR)?;
    if d[8] != TYPE_BITMAP {
        return Ok(None);
    }
    bitmap_in_guest(mem, group, address + DESCRIPTOR as u64).map(Some)
}

fn bitmap_in_guest(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<GuestBitmap, ParseError> {
    let b = mem.read(group, address, BITMAP)?;
    let (format, flags) = (b[0], b[1]);
    let (width, height, stride) = (u32_at(&b, 2), u32_at(&b, 6), u32_at(&b, 10) as usize);
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(ParseError::Invalid("bitmap size"));
    }
    let row = row_bytes(format, width).ok_or(ParseError::Unsupported("bitmap format"))?;
    if stride < row {
        return Err(ParseError::Invalid("bitmap stride"));
    }
    let palette = match format {
        fmt::BIT1_LE | fmt::BIT1_BE | fmt::BIT4_LE | fmt::BIT4_BE | fmt::BIT8 => {
            let address = u64_at(&b, 14);
            match (address, format) {
                // 1 bpp masks carry no palette: their bits are used as they are.
                (0, fmt::BIT1_LE | fmt::BIT1_BE) => vec![0, RGB_WHITE],
                (0, _) => return Err(ParseError::Invalid("paletted bitmap without a palette")),
                _ => read_palette(mem, group, address)?,
            }
        }
        _ => Vec::new(),
    };
    // A bitmap's data is exactly stride * height bytes (chunk sizes must add up to it).
    let total = stride
        .checked_mul(height as usize)
        .filter(|&n| n <= 64 << 20)
        .ok_or(ParseError::Invalid("bitmap size"))?;
    let data_address = u64_at(&b, 22);
    let segments = if flags & BITMAP_DIRECT != 0 {
        vec![(data_address, total)]
    } else {
        chunk_segments(mem, group, data_address, total)?
    };
    for &(at, size) in &segments {
        mem.check(group, at, size)?;
    }
    Ok(GuestBitmap {
        width,
        height,
        format,
        top_down: flags & BITMAP_TOP_DOWN != 0,
        stride,
        row,
        palette,
        data: GuestData::new(group, segments),
    })
}

fn parse_bitmap_body(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<Pixels, ParseError> {
    let bitmap = bitmap_in_guest(mem, group, address)?;
    let (width, height, format) = (bitmap.width, bitmap.height, bitmap.format);
    let mut data = Vec::new();
    data.try_reserve_exact(width as usize * height as usize)
        .map_err(|_| NO_MEMORY)?;
    let mut scratch = Vec::new();
    for y in 0..height {
        bitmap.append_row(mem, y, 0, width, &mut scratch, &mut data)?;
    }
    let alpha = matches!(format, fmt::RGBA | fmt::BIT8_A);
    Ok(Pixels {
        width,
        height,
        data,
        alpha,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_decode_to_argb() {
        let mut out = vec![];
        decode_row(fmt::BIT16, &[0x1f, 0x7c], 1, &[], &mut out);
        assert_eq!(out, vec![0xffff_00ff]);
        out.clear();
        decode_row(fmt::BIT24, &[1, 2, 3], 1, &[], &mut out);
        assert_eq!(out, vec![0xff03_0201]);
        out.clear();
        let pal = [0x000000, 0xffffff];
        decode_row(fmt::BIT1_LE, &[0b0000_0010], 2, &pal, &mut out);
        decode_row(fmt::BIT1_BE, &[0b0100_0000], 2, &pal, &mut out);
        assert_eq!(
            out,
            vec![0xff00_0000, 0xffff_ffff, 0xff00_0000, 0xffff_ffff]
        );
        out.clear();
        decode_row(fmt::BIT4_BE, &[0x12], 2, &[0, 10, 20], &mut out);
        decode_row(fmt::BIT4_LE, &[0x12], 2, &[0, 10, 20], &mut out);
        assert_eq!(
            out,
            vec![0xff00_000a, 0xff00_0014, 0xff00_0014, 0xff00_000a]
        );
        out.clear();
        decode_row(fmt::RGBA, &[1, 2, 3, 0x80], 1, &[], &mut out);
        assert_eq!(out, vec![0x8003_0201]);
    }

    #[test]
    fn row_sizes() {
        assert_eq!(row_bytes(fmt::BIT1_LE, 9), Some(2));
        assert_eq!(row_bytes(fmt::BIT4_BE, 3), Some(2));
        assert_eq!(row_bytes(fmt::BIT24, 3), Some(9));
        assert_eq!(row_bytes(99, 3), None);
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use crate::qxl::testmem::{bitmap_image, chunk, FakeMemory};

    fn pixels(m: &FakeMemory) -> Result<Pixels, ParseError> {
        match parse_image(m, 0, 0x1000)? {
            Image::Pixels(p) => Ok(p),
            Image::Surface(_) => panic!("not a bitmap"),
        }
    }

    #[test]
    fn direct_top_down_and_chunked_bottom_up() {
        let mut m = FakeMemory::default();
        m.0.insert(0x1000, bitmap_image(fmt::BIT32, 1 | 4, 2, 1, 8, 0x2000));
        m.0.insert(0x2000, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(pixels(&m).unwrap().data, vec![0xff03_0201, 0xff07_0605]);

        let mut m = FakeMemory::default();
        m.0.insert(0x1000, bitmap_image(fmt::BIT32, 0, 1, 2, 4, 0x2000));
        m.0.insert(0x2000, chunk(4, 0x3000, &[1, 1, 1, 0]));
        m.0.insert(0x3000, chunk(4, 0, &[2, 2, 2, 0]));
        assert_eq!(pixels(&m).unwrap().data, vec![0xff02_0202, 0xff01_0101]);
    }

    #[test]
    fn cyclic_short_absurd_and_unknown_are_rejected() {
        let mut m = FakeMemory::default();
        m.0.insert(0x1000, bitmap_image(fmt::BIT32, 0, 1, 2, 4, 0x2000));
        m.0.insert(0x2000, chunk(0, 0x2000, &[]));
        assert_eq!(
            pixels(&m),
            Err(ParseError::Invalid("data shorter than its size"))
        );

        m.0.insert(
            0x1000,
            bitmap_image(fmt::BIT32, 1, MAX_SIDE + 1, 1, 4 * (MAX_SIDE + 1), 0x2000),
        );
        assert_eq!(pixels(&m), Err(ParseError::Invalid("bitmap size")));
        m.0.insert(0x1000, bitmap_image(77, 1, 1, 1, 4, 0x2000));
        assert_eq!(pixels(&m), Err(ParseError::Unsupported("bitmap format")));
        m.0.insert(0x1000, bitmap_image(fmt::BIT32, 1, 2, 1, 4, 0x2000));
        assert_eq!(pixels(&m), Err(ParseError::Invalid("bitmap stride")));
        assert!(matches!(
            parse_image(&m, 0, 0x9_0000),
            Err(ParseError::Memory(_))
        ));
    }

    /// Rows read from a bitmap left in guest memory, any span of them, are the pixels
    /// `parse_image` decodes: every format, chunked bottom-up (rows spanning chunks)
    /// and direct top-down, padded strides.
    #[test]
    fn guest_bitmap_rows_are_the_decoded_pixels() {
        for (format, w) in [
            (fmt::BIT32, 5u32),
            (fmt::RGBA, 5),
            (fmt::BIT24, 5),
            (fmt::BIT16, 5),
            (fmt::BIT8, 5),
            (fmt::BIT4_BE, 5),
            (fmt::BIT1_LE, 11),
            (fmt::BIT1_BE, 1),
        ] {
            let h = 3u32;
            let stride = row_bytes(format, w).unwrap() + 2;
            let bytes: Vec<u8> = (0..stride * h as usize)
                .map(|i| (i * 37 + 11) as u8)
                .collect();
            for (flags, chunked) in [(1 | 4, false), (0, true)] {
                let mut m = FakeMemory::default();
                let mut image = bitmap_image(format, flags, w, h, stride as u32, 0x2000);
                image[32..40].copy_from_slice(&0x5000u64.to_le_bytes());
                m.0.insert(0x1000, image);
                let mut palette = vec![0u8; 8];
                palette.extend_from_slice(&16u16.to_le_bytes());
                palette.extend((0..64u32).map(|i| (i * 29) as u8));
                m.0.insert(0x5000, palette);
                if chunked {
                    let cut = stride + 3;
                    m.0.insert(0x2000, chunk(cut as u32, 0x3000, &bytes[..cut]));
                    let rest = &bytes[cut..];
                    m.0.insert(0x3000, chunk(rest.len() as u32, 0, rest));
                } else {
                    m.0.insert(0x2000, bytes.clone());
                }
                let decoded = pixels(&m).unwrap();
                let bitmap = guest_bitmap(&m, 0, 0x1000).unwrap().expect("a bitmap");
                let (mut scratch, mut out) = (Vec::new(), Vec::new());
                for y in 0..h {
                    for x0 in 0..w {
                        for x1 in x0 + 1..=w {
                            out.clear();
                            bitmap
                                .append_row(&m, y, x0, x1, &mut scratch, &mut out)
                                .unwrap();
                            let s = (y * w) as usize;
                            assert_eq!(
                                out,
                                decoded.data[s + x0 as usize..s + x1 as usize],
                                "format {format} flags {flags} row {y} {x0}..{x1}"
                            );
                        }
                    }
                }
                assert!(bitmap
                    .append_row(&m, h, 0, 1, &mut scratch, &mut out)
                    .is_err());
            }
        }
    }

    /// A chunk outside guest memory refuses the bitmap before any row is drawn.
    #[test]
    fn a_guest_bitmap_with_a_chunk_out_of_memory_is_refused() {
        let mut m = FakeMemory::default();
        m.0.insert(0x1000, bitmap_image(fmt::BIT32, 0, 1, 2, 4, 0x2000));
        m.0.insert(0x2000, chunk(4, 0x3000, &[1, 1, 1, 0]));
        // The second chunk's header is there, its data is not.
        m.0.insert(0x3000, chunk(4, 0, &[]));
        assert!(matches!(
            guest_bitmap(&m, 0, 0x1000),
            Err(ParseError::Memory(_))
        ));
    }
}
