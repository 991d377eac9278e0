//! QXL commands parsed out of guest memory into owned, validated values.
//!
//! Layouts are `spice/qxl_dev.h`'s packed structs. Every read goes through a
//! `GuestMemory`, which checks bounds; every size is bounded before allocation.

use super::memslot::MemError;

/// Reads guest memory (`group`, QXL address) into an owned buffer, bounds-checked.
pub(crate) trait GuestMemory {
    fn read(&self, group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError>;

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

use super::image::{u16_at, u64_at};

/// Most heads a monitors config may describe (QEMU's qxl supports 64).
const MAX_HEADS: usize = 64;

/// Parses a `QXLMonitorsConfig` (u16 count, u16 max_allowed, then 28-byte heads).
pub(crate) fn parse_monitors(
    mem: &dyn GuestMemory,
    group: u32,
    address: u64,
) -> Result<Vec<crate::proto::display::Head>, ParseError> {
    let head = mem.read(group, address, 4)?;
    let count = usize::from(u16_at(&head, 0));
    if count > MAX_HEADS {
        return Err(ParseError::Invalid("monitor count"));
    }
    let raw = mem.read(group, address + 4, count * 28)?;
    let field = |i: usize, f: usize| super::image::u32_at(&raw, 28 * i + 4 * f);
    Ok((0..count)
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
        .collect())
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

/// An ALPHA cursor shape (ARGB pixels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorShape {
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
    if u16_at(&h, 8) != 0 {
        return Err(ParseError::Unsupported("cursor type"));
    }
    let (width, height) = (u16_at(&h, 10), u16_at(&h, 12));
    if width == 0 || height == 0 || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE {
        return Err(ParseError::Invalid("cursor size"));
    }
    let len = width as usize * height as usize * 4;
    let pixels = super::image::read_chunks(mem, group, address + CURSOR_HEADER_SIZE as u64, len)?;
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
        let heads = parse_monitors(&m, 0, 0x100).unwrap();
        assert_eq!(heads.len(), 2);
        assert_eq!((heads[1].width, heads[1].x), (800, 640));
        m.0.insert(0x400, vec![0xff, 0xff, 0, 0]);
        assert_eq!(
            parse_monitors(&m, 0, 0x400),
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
        assert_eq!(s.pixels, vec![9, 9, 9, 9]);
    }
}
