//! QXL commands parsed out of guest memory into owned, validated values.
//!
//! Layouts are `spice/qxl_dev.h`'s packed structs. Every read goes through a
//! `GuestMemory`, which checks bounds; every size is bounded before allocation.

use super::memslot::MemError;

/// Reads guest memory (`group`, QXL address) into an owned buffer, bounds-checked.
pub trait GuestMemory {
    fn read(&self, group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Memory(MemError),
    Unsupported(&'static str),
    Invalid(&'static str),
}

impl From<MemError> for ParseError {
    fn from(e: MemError) -> Self {
        ParseError::Memory(e)
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Memory(e) => write!(f, "{e}"),
            ParseError::Unsupported(what) => write!(f, "unsupported {what}"),
            ParseError::Invalid(what) => write!(f, "invalid {what}"),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn i32_at(b: &[u8], o: usize) -> i32 {
    u32_at(b, o) as i32
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// `QXLRect` (top, left, bottom, right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QxlRect {
    pub top: i32,
    pub left: i32,
    pub bottom: i32,
    pub right: i32,
}

impl QxlRect {
    fn at(b: &[u8], o: usize) -> QxlRect {
        QxlRect {
            top: i32_at(b, o),
            left: i32_at(b, o + 4),
            bottom: i32_at(b, o + 8),
            right: i32_at(b, o + 12),
        }
    }

    pub fn width(&self) -> i64 {
        i64::from(self.right) - i64::from(self.left)
    }

    pub fn height(&self) -> i64 {
        i64::from(self.bottom) - i64::from(self.top)
    }
}

/// `QXL_DRAW_*` values.
pub const DRAW_COPY: u8 = 3;
const DRAWABLE_SIZE: usize = 191;
const IMAGE_SIZE: usize = 48;
const CHUNK_HEADER: usize = 20;
/// `QXL_IMAGE_TYPE_BITMAP`.
const IMAGE_TYPE_BITMAP: u8 = 0;
/// `QXL_BITMAP_*` flags.
const BITMAP_DIRECT: u8 = 1;
const BITMAP_TOP_DOWN: u8 = 4;
/// `SPICE_BITMAP_FMT_32BIT` / `RGBA`.
const FMT_32BIT: u8 = 8;
const FMT_RGBA: u8 = 9;
/// Largest image accepted (pixels per side).
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// Chunk lists longer than this are treated as cyclic.
const MAX_CHUNKS: usize = 65536;

/// A drawable's header and, for the draw types we render, its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawable {
    pub surface_id: u32,
    pub draw_type: u8,
    pub bbox: QxlRect,
    /// For DRAW_COPY: the source image address and the area of it to copy.
    pub copy: Option<(u64, QxlRect)>,
}

pub fn parse_drawable(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<Drawable, ParseError> {
    let b = mem.read(group, address, DRAWABLE_SIZE)?;
    let draw_type = b[13];
    let copy = (draw_type == DRAW_COPY).then(|| (u64_at(&b, 123), QxlRect::at(&b, 131)));
    Ok(Drawable {
        surface_id: u32_at(&b, 8),
        draw_type,
        bbox: QxlRect::at(&b, 31),
        copy,
    })
}

/// A 32-bit bitmap copied out of guest memory, rows top-down, stride = width * 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Reads `len` bytes of a chunk list starting at the chunk at `address`.
fn read_chunks(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
    len: usize,
) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(len);
    let mut next = address;
    for _ in 0..MAX_CHUNKS {
        if out.len() >= len || next == 0 {
            break;
        }
        let header = mem.read(group, next, CHUNK_HEADER)?;
        let size = (u32_at(&header, 0) as usize).min(len - out.len());
        let data_address = next
            .checked_add(CHUNK_HEADER as u64)
            .ok_or(ParseError::Invalid("chunk address"))?;
        out.extend(mem.read(group, data_address, size)?);
        next = u64_at(&header, 12);
    }
    if out.len() < len {
        return Err(ParseError::Invalid("bitmap shorter than its size"));
    }
    Ok(out)
}

/// Parses a `QXLImage` holding a 32-bit bitmap (what QEMU's simple display and the
/// guest drivers use for screen updates). Other image types come with the QXL path.
pub fn parse_bitmap(mem: &dyn GuestMemory, group: u32, address: u64) -> Result<Bitmap, ParseError> {
    let b = mem.read(group, address, IMAGE_SIZE)?;
    if b[8] != IMAGE_TYPE_BITMAP {
        return Err(ParseError::Unsupported("image type"));
    }
    let (format, flags) = (b[18], b[19]);
    if format != FMT_32BIT && format != FMT_RGBA {
        return Err(ParseError::Unsupported("bitmap format"));
    }
    let (width, height, stride) = (u32_at(&b, 20), u32_at(&b, 24), u32_at(&b, 28) as usize);
    if width == 0 || height == 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(ParseError::Invalid("bitmap size"));
    }
    let row = width as usize * 4;
    if stride < row {
        return Err(ParseError::Invalid("bitmap stride"));
    }
    let total = stride
        .checked_mul(height as usize)
        .ok_or(ParseError::Invalid("bitmap size"))?;
    let data_address = u64_at(&b, 40);
    let raw = if flags & BITMAP_DIRECT != 0 {
        mem.read(group, data_address, total)?
    } else {
        read_chunks(mem, group, data_address, total)?
    };
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let src_row = if flags & BITMAP_TOP_DOWN != 0 {
            y
        } else {
            height as usize - 1 - y
        };
        pixels.extend_from_slice(&raw[src_row * stride..src_row * stride + row]);
    }
    Ok(Bitmap {
        width,
        height,
        pixels,
    })
}

/// `QXL_CURSOR_*` command types.
pub mod cursor_cmd {
    pub const SET: u8 = 0;
    pub const MOVE: u8 = 1;
    pub const HIDE: u8 = 2;
    pub const TRAIL: u8 = 3;
}

/// A parsed `QXLCursorCmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorCommand {
    Set {
        x: i16,
        y: i16,
        visible: bool,
        shape: Option<CursorShape>,
    },
    Move {
        x: i16,
        y: i16,
    },
    Hide,
    Trail,
}

/// An ALPHA cursor shape (ARGB pixels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    pub unique: u64,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub pixels: Vec<u8>,
}

/// Largest cursor side accepted.
const MAX_CURSOR_SIDE: u16 = 512;
const CURSOR_CMD_SIZE: usize = 22;
const CURSOR_HEADER_SIZE: usize = 22;

pub fn parse_cursor(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<CursorCommand, ParseError> {
    let b = mem.read(group, address, CURSOR_CMD_SIZE)?;
    let (x, y) = (u16_at(&b, 9) as i16, u16_at(&b, 11) as i16);
    Ok(match b[8] {
        cursor_cmd::SET => {
            let shape = match parse_cursor_shape(mem, group, u64_at(&b, 14)) {
                Ok(s) => Some(s),
                Err(ParseError::Unsupported(_)) => None,
                Err(e) => return Err(e),
            };
            CursorCommand::Set {
                x,
                y,
                visible: b[13] != 0,
                shape,
            }
        }
        cursor_cmd::MOVE => CursorCommand::Move { x, y },
        cursor_cmd::HIDE => CursorCommand::Hide,
        cursor_cmd::TRAIL => CursorCommand::Trail,
        _ => return Err(ParseError::Invalid("cursor command type")),
    })
}

fn parse_cursor_shape(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<CursorShape, ParseError> {
    let h = mem.read(group, address, CURSOR_HEADER_SIZE)?;
    if u16_at(&h, 8) != 0 {
        return Err(ParseError::Unsupported("cursor type"));
    }
    let (width, height) = (u16_at(&h, 10), u16_at(&h, 12));
    if width == 0 || height == 0 || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE {
        return Err(ParseError::Invalid("cursor size"));
    }
    let len = width as usize * height as usize * 4;
    let pixels = read_chunks(mem, group, address + CURSOR_HEADER_SIZE as u64, len)?;
    Ok(CursorShape {
        unique: u64_at(&h, 0),
        width,
        height,
        hot_x: u16_at(&h, 14),
        hot_y: u16_at(&h, 16),
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Guest memory as a few byte ranges at fake addresses.
    #[derive(Default)]
    struct FakeMemory(BTreeMap<u64, Vec<u8>>);

    impl GuestMemory for FakeMemory {
        fn read(&self, _group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
            let out = MemError::OutOfSlot {
                address,
                size: len as u64,
            };
            let (start, bytes) = self.0.range(..=address).next_back().ok_or(out)?;
            let off = (address - start) as usize;
            bytes.get(off..off + len).map(<[u8]>::to_vec).ok_or(out)
        }
    }

    fn image(addr: u64, w: u32, h: u32, flags: u8, data: u64) -> (u64, Vec<u8>) {
        let mut b = vec![0u8; IMAGE_SIZE];
        b[18] = FMT_32BIT;
        b[19] = flags;
        b[20..24].copy_from_slice(&w.to_le_bytes());
        b[24..28].copy_from_slice(&h.to_le_bytes());
        b[28..32].copy_from_slice(&(w * 4).to_le_bytes());
        b[40..48].copy_from_slice(&data.to_le_bytes());
        (addr, b)
    }

    fn chunk(size: u32, next: u64, data: &[u8]) -> Vec<u8> {
        let mut c = size.to_le_bytes().to_vec();
        c.extend_from_slice(&0u64.to_le_bytes());
        c.extend_from_slice(&next.to_le_bytes());
        c.extend_from_slice(data);
        c
    }

    #[test]
    fn direct_top_down_bitmap() {
        let mut m = FakeMemory::default();
        let (a, b) = image(0x1000, 2, 1, BITMAP_DIRECT | BITMAP_TOP_DOWN, 0x2000);
        m.0.insert(a, b);
        m.0.insert(0x2000, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let bmp = parse_bitmap(&m, 0, 0x1000).unwrap();
        assert_eq!((bmp.width, bmp.height), (2, 1));
        assert_eq!(bmp.pixels, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn chunked_bottom_up_bitmap_is_flipped() {
        let mut m = FakeMemory::default();
        let (a, b) = image(0x1000, 1, 2, 0, 0x2000);
        m.0.insert(a, b);
        m.0.insert(0x2000, chunk(4, 0x3000, &[1, 1, 1, 1]));
        m.0.insert(0x3000, chunk(4, 0, &[2, 2, 2, 2]));
        assert_eq!(
            parse_bitmap(&m, 0, 0x1000).unwrap().pixels,
            vec![2, 2, 2, 2, 1, 1, 1, 1]
        );
    }

    #[test]
    fn cyclic_or_short_chunk_lists_are_rejected() {
        let mut m = FakeMemory::default();
        let (a, b) = image(0x1000, 1, 2, 0, 0x2000);
        m.0.insert(a, b);
        // An empty chunk pointing at itself never delivers the data.
        m.0.insert(0x2000, chunk(0, 0x2000, &[]));
        assert_eq!(
            parse_bitmap(&m, 0, 0x1000),
            Err(ParseError::Invalid("bitmap shorter than its size"))
        );
    }

    #[test]
    fn absurd_sizes_and_unknown_formats_are_rejected() {
        let mut m = FakeMemory::default();
        let (a, b) = image(0x1000, MAX_IMAGE_SIDE + 1, 1, BITMAP_DIRECT, 0x2000);
        m.0.insert(a, b);
        assert_eq!(
            parse_bitmap(&m, 0, 0x1000),
            Err(ParseError::Invalid("bitmap size"))
        );
        let (a, mut b) = image(0x5000, 1, 1, BITMAP_DIRECT, 0x2000);
        b[18] = 5;
        m.0.insert(a, b);
        assert_eq!(
            parse_bitmap(&m, 0, 0x5000),
            Err(ParseError::Unsupported("bitmap format"))
        );
        assert!(matches!(
            parse_bitmap(&m, 0, 0x9_0000),
            Err(ParseError::Memory(_))
        ));
    }

    #[test]
    fn drawable_copy_fields() {
        let mut d = vec![0u8; DRAWABLE_SIZE];
        d[13] = DRAW_COPY;
        d[31..35].copy_from_slice(&10i32.to_le_bytes()); // bbox.top
        d[123..131].copy_from_slice(&0x1000u64.to_le_bytes());
        d[143..147].copy_from_slice(&7i32.to_le_bytes()); // src_area.right
        let mut m = FakeMemory::default();
        m.0.insert(0x100, d);
        let drawable = parse_drawable(&m, 0, 0x100).unwrap();
        assert_eq!(drawable.bbox.top, 10);
        assert_eq!(
            drawable.copy,
            Some((
                0x1000,
                QxlRect {
                    top: 0,
                    left: 0,
                    bottom: 0,
                    right: 7
                }
            ))
        );
    }

    #[test]
    fn cursor_set_with_alpha_shape() {
        let mut cmd = vec![0u8; CURSOR_CMD_SIZE];
        cmd[8] = cursor_cmd::SET;
        cmd[9..11].copy_from_slice(&5u16.to_le_bytes());
        cmd[13] = 1;
        cmd[14..22].copy_from_slice(&0x2000u64.to_le_bytes());
        // QXLCursor: 18-byte header (1x1 ALPHA), u32 data_size, then the first chunk.
        let mut raw = vec![0u8; 18];
        raw[10] = 1; // width
        raw[12] = 1; // height
        raw.extend_from_slice(&4u32.to_le_bytes());
        raw.extend(chunk(4, 0, &[9, 9, 9, 9]));
        let mut m = FakeMemory::default();
        m.0.insert(0x100, cmd);
        m.0.insert(0x2000, raw);
        let CursorCommand::Set {
            x: 5,
            visible: true,
            shape: Some(s),
            ..
        } = parse_cursor(&m, 0, 0x100).unwrap()
        else {
            panic!("expected a cursor set")
        };
        assert_eq!(s.pixels, vec![9, 9, 9, 9]);
    }
}
