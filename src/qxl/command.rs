//! QXL commands parsed out of guest memory into owned, validated values.
//!
//! Layouts are `spice/qxl_dev.h`'s packed structs. Every read goes through a
//! `GuestMemory`, which checks bounds; every size is bounded before allocation.

use super::memslot::MemError;

/// Reads guest memory (`group`, QXL address) into an owned buffer, bounds-checked.
pub(crate) trait GuestMemory {
    fn read(&self, group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError>;

    /// Copies `out.len()` bytes at `address` into `out` (a 32-bit bitmap row straight
    /// into the surface).
    fn read_into(&self, group: u32, address: u64, out: &mut [u8]) -> Result<(), MemError> {
        out.copy_from_slice(&self.read(group, address, out.len())?);
        Ok(())
    }

    /// Whether `len` bytes at `address` may be read (a bitmap left in guest memory is
    /// checked whole before any row of it is drawn).
    fn check(&self, group: u32, address: u64, len: usize) -> Result<(), MemError> {
        self.read(group, address, len).map(drop)
    }

    /// Appends the `count` little-endian 32-bit words at `address` to `out` (the pixel
    /// rows of 32-bit bitmaps: one copy, straight into the decoded image).
    fn append_words(
        &self,
        group: u32,
        address: u64,
        count: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), MemError> {
        let bytes = self.read(group, address, count * 4)?;
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
        );
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
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

use super::image::{u16_at, u32_at, u64_at};

/// Most heads a monitors config may describe (QEMU's qxl supports 64).
const MAX_HEADS: usize = 64;

/// A guest driver's monitor layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MonitorsConfig {
    pub heads: Vec<crate::proto::display::Head>,
    /// How many monitors the driver can drive.
    pub max_allowed: u16,
}

/// Parses a `QXLMonitorsConfig` (u16 count, u16 max_allowed, then 28-byte heads). A count
/// over max_allowed is refused, as spice-server does.
pub(crate) fn parse_monitors(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<MonitorsConfig, ParseError> {
    let head = mem.read(group, address, 4)?;
    let count = usize::from(u16_at(&head, 0));
    let max_allowed = u16_at(&head, 2);
    if count > MAX_HEADS || count > usize::from(max_allowed) {
        return Err(ParseError::Invalid("monitor count"));
    }
    let raw = mem.read(group, address + 4, count * 28)?;
    let field = |i: usize, f: usize| u32_at(&raw, 28 * i + 4 * f);
    let heads = (0..count)
        .map(|i| crate::proto::display::Head {
            id: field(i, 0),
            surface_id: field(i, 1),
            width: field(i, 2),
            height: field(i, 3),
            x: field(i, 4),
            y: field(i, 5),
            flags: field(i, 6),
        })
        .filter(|h| h.width > 0 && h.height > 0)
        .collect();
    Ok(MonitorsConfig { heads, max_allowed })
}

/// A `QXLUpdateCmd`: the guest asks that `area` of a surface be in its memory, and to be
/// told `update_id` once it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpdateCommand {
    pub area: crate::geometry::Rect,
    pub update_id: u32,
    pub surface_id: u32,
}

pub(crate) fn parse_update(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<UpdateCommand, ParseError> {
    // release_info (8), area (top, left, bottom, right), update_id, surface_id.
    let b = mem.read(group, address, 32)?;
    let at = |o: usize| u32_at(&b, o);
    Ok(UpdateCommand {
        area: crate::geometry::Rect {
            top: at(8) as i32,
            left: at(12) as i32,
            bottom: at(16) as i32,
            right: at(20) as i32,
        },
        update_id: at(24),
        surface_id: at(28),
    })
}

/// `QXL_CURSOR_*` command types.
pub(crate) mod cursor_cmd {
    pub(crate) const SET: u8 = 0;
    pub(crate) const MOVE: u8 = 1;
    pub(crate) const HIDE: u8 = 2;
    pub(crate) const TRAIL: u8 = 3;
}

/// A parsed `QXLCursorCmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CursorCommand {
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

/// `SPICE_CURSOR_TYPE_*`: how a cursor shape's data is laid out.
pub(crate) mod cursor_type {
    pub(crate) const ALPHA: u16 = 0;
    pub(crate) const MONO: u16 = 1;
    pub(crate) const COLOR4: u16 = 2;
    pub(crate) const COLOR8: u16 = 3;
    pub(crate) const COLOR16: u16 = 4;
    pub(crate) const COLOR24: u16 = 5;
    pub(crate) const COLOR32: u16 = 6;
}

/// A cursor shape as the guest gave it: `data` is laid out as `kind` says and is
/// forwarded to clients unchanged, as spice-server does (each client decodes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorShape {
    pub unique: u64,
    /// `SPICE_CURSOR_TYPE_*`.
    pub kind: u16,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub data: Vec<u8>,
}

/// Largest cursor side accepted.
const MAX_CURSOR_SIDE: u16 = 512;
const CURSOR_CMD_SIZE: usize = 22;
const CURSOR_HEADER_SIZE: usize = 22;

/// The bytes a shape of this type and size holds, as spice-gtk's `set_cursor` reads them:
/// the pixels, then for indexed types the palette (u32 entries), then for the types with
/// transparency a 1-bit AND mask (`(w + 7) / 8` bytes a row). MONO is an AND mask and an
/// XOR mask of that size. None for a type that is not a SPICE cursor type.
pub(crate) fn cursor_data_len(kind: u16, width: u16, height: u16) -> Option<usize> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mask = w.div_ceil(8) * h;
    Some(match kind {
        cursor_type::ALPHA => w * h * 4,
        cursor_type::MONO => 2 * mask,
        cursor_type::COLOR4 => w.div_ceil(2) * h + 16 * 4 + mask,
        cursor_type::COLOR8 => w * h + 256 * 4 + mask,
        cursor_type::COLOR16 => w * h * 2 + mask,
        cursor_type::COLOR24 => w * h * 3 + mask,
        cursor_type::COLOR32 => w * h * 4 + mask,
        _ => return None,
    })
}

pub(crate) fn parse_cursor(
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
    let kind = u16_at(&h, 8);
    let (width, height) = (u16_at(&h, 10), u16_at(&h, 12));
    if width == 0 || height == 0 || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE {
        return Err(ParseError::Invalid("cursor size"));
    }
    let len = cursor_data_len(kind, width, height).ok_or(ParseError::Unsupported("cursor type"))?;
    // The guest's data_size may be larger than the shape needs (a driver's padding); the
    // bytes past what the shape uses are never read. A shorter one is refused: a client
    // decodes `len` bytes whatever the message holds.
    if (u32_at(&h, 18) as usize) < len {
        return Err(ParseError::Invalid("cursor data shorter than its shape"));
    }
    let data =
        super::image::read_chunks_prefix(mem, group, address + CURSOR_HEADER_SIZE as u64, len)?;
    Ok(CursorShape {
        unique: u64_at(&h, 0),
        kind,
        width,
        height,
        hot_x: u16_at(&h, 14),
        hot_y: u16_at(&h, 16),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::qxl::testmem::{chunk, FakeMemory};

    #[test]
    fn monitors_config_heads_and_bounds() {
        let mut raw = vec![2, 0, 4, 0];
        for (w, x) in [(640u32, 0u32), (800, 640)] {
            for v in [0, 0, w, 480, x, 0, 0] {
                raw.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut m = FakeMemory::default();
        m.0.insert(0x100, raw);
        let config = parse_monitors(&m, 0, 0x100).unwrap();
        let heads = config.heads;
        assert_eq!((heads.len(), config.max_allowed), (2, 4));
        assert_eq!((heads[1].width, heads[1].x), (800, 640));
        m.0.insert(0x400, vec![0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            parse_monitors(&m, 0, 0x400),
            Err(ParseError::Invalid("monitor count"))
        );
        // More heads than the driver says it can drive.
        m.0.insert(0x500, [&[3, 0, 2, 0][..], &[0; 3 * 28]].concat());
        assert_eq!(
            parse_monitors(&m, 0, 0x500),
            Err(ParseError::Invalid("monitor count"))
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
        assert_eq!(s.data, vec![9, 9, 9, 9]);
    }

    /// A SET command at 0x100 whose shape at 0x2000 is `kind`, `w`x`h`, declaring
    /// `data_size`, with its data in the given chunks (each: address, bytes).
    fn set_with_shape(
        kind: u16,
        w: u16,
        h: u16,
        data_size: u32,
        chunks: &[(u64, Vec<u8>)],
    ) -> FakeMemory {
        let mut cmd = vec![0u8; CURSOR_CMD_SIZE];
        cmd[8] = cursor_cmd::SET;
        cmd[13] = 1;
        cmd[14..22].copy_from_slice(&0x2000u64.to_le_bytes());
        let mut raw = vec![0u8; 18];
        raw[0] = 7; // unique
        raw[8..10].copy_from_slice(&kind.to_le_bytes());
        raw[10..12].copy_from_slice(&w.to_le_bytes());
        raw[12..14].copy_from_slice(&h.to_le_bytes());
        raw[14] = 3; // hot spot x
        raw[16] = 4; // hot spot y
        raw.extend_from_slice(&data_size.to_le_bytes());
        let mut m = FakeMemory::default();
        m.0.insert(0x100, cmd);
        for (i, (at, bytes)) in chunks.iter().enumerate() {
            let next = chunks.get(i + 1).map_or(0, |c| c.0);
            let c = chunk(bytes.len() as u32, next, bytes);
            if i == 0 {
                raw.extend(c);
            } else {
                m.0.insert(*at, c);
            }
        }
        m.0.insert(0x2000, raw);
        m
    }

    fn shape_of(m: &FakeMemory) -> Result<Option<CursorShape>, ParseError> {
        match parse_cursor(m, 0, 0x100)? {
            CursorCommand::Set { shape, .. } => Ok(shape),
            other => panic!("expected a cursor set, got {other:?}"),
        }
    }

    #[test]
    fn mono_and_color_shapes_are_kept_as_the_guest_gave_them() {
        // MONO 10x2: AND then XOR mask, 2 bytes a row each: 8 bytes, in two chunks, and
        // a padded data_size (more than the shape needs) as drivers may give.
        let bytes: Vec<u8> = (1..=8).collect();
        let m = set_with_shape(
            cursor_type::MONO,
            10,
            2,
            12,
            &[
                (0, bytes[..3].to_vec()),
                (0x5000, [&bytes[3..], &[0xee; 4][..]].concat()),
            ],
        );
        let s = shape_of(&m).unwrap().unwrap();
        assert_eq!(
            (s.kind, s.width, s.height, s.hot_x, s.hot_y, s.unique),
            (1, 10, 2, 3, 4, 7)
        );
        assert_eq!(s.data, bytes, "the padding past the shape is not taken");
        // Each COLOR type: pixels, palette (indexed types), 1-bit mask.
        for (kind, len) in [
            (cursor_type::COLOR4, 2 * 3 + 64 + 3),
            (cursor_type::COLOR8, 9 + 1024 + 3),
            (cursor_type::COLOR16, 18 + 3),
            (cursor_type::COLOR24, 27 + 3),
            (cursor_type::COLOR32, 36 + 3),
            (cursor_type::ALPHA, 36),
        ] {
            let data = vec![kind as u8; len];
            let m = set_with_shape(kind, 3, 3, len as u32, &[(0, data.clone())]);
            let s = shape_of(&m).unwrap().unwrap();
            assert_eq!((s.kind, s.data), (kind, data), "type {kind}");
        }
    }

    #[test]
    fn hostile_cursor_shapes_are_refused() {
        // Data shorter than the shape (in the chunks, or as data_size says).
        let m = set_with_shape(cursor_type::COLOR32, 4, 4, 68, &[(0, vec![0; 60])]);
        assert_eq!(
            shape_of(&m),
            Err(ParseError::Invalid("data shorter than its size"))
        );
        let m = set_with_shape(cursor_type::COLOR32, 4, 4, 10, &[(0, vec![0; 68])]);
        assert_eq!(
            shape_of(&m),
            Err(ParseError::Invalid("cursor data shorter than its shape"))
        );
        // Sides past the bound, or zero: nothing is read or allocated.
        for (w, h) in [(513, 1), (1, 65535), (0, 4)] {
            let m = set_with_shape(cursor_type::MONO, w, h, u32::MAX, &[(0, vec![0; 8])]);
            assert_eq!(shape_of(&m), Err(ParseError::Invalid("cursor size")));
        }
        // A chunk claiming 4 GiB with a cyclic next: only the shape's bytes are read.
        let mut m = set_with_shape(cursor_type::ALPHA, 1, 1, 4, &[(0, vec![1, 2, 3, 4])]);
        let raw = m.0.get_mut(&0x2000).unwrap();
        raw[22..26].copy_from_slice(&u32::MAX.to_le_bytes());
        raw[34..42].copy_from_slice(&0x2000u64.to_le_bytes());
        assert_eq!(shape_of(&m).unwrap().unwrap().data, vec![1, 2, 3, 4]);
        // An unknown type: no shape (the client is told there is none), not an error.
        let m = set_with_shape(7, 2, 2, 16, &[(0, vec![0; 16])]);
        assert_eq!(shape_of(&m), Ok(None));
    }
}
