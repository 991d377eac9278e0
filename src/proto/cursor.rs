//! Cursor channel messages.

use super::wire::Writer;

/// `SPICE_CURSOR_FLAGS_NONE`: no shape follows.
pub const CURSOR_FLAGS_NONE: u16 = 1;
/// `SPICE_CURSOR_TYPE_ALPHA`: 32-bit ARGB pixels.
pub const CURSOR_TYPE_ALPHA: u8 = 0;

/// A cursor shape (ARGB pixels, w·h·4 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub unique: u64,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub pixels: Vec<u8>,
}

fn cursor(w: &mut Writer, shape: Option<&Shape>) {
    match shape {
        None => {
            w.u16(CURSOR_FLAGS_NONE);
        }
        Some(s) => {
            // Not cached: flags 0, header, data to the end of the message.
            w.u16(0).u64(s.unique).u8(CURSOR_TYPE_ALPHA);
            w.u16(s.width).u16(s.height).u16(s.hot_x).u16(s.hot_y);
            w.bytes(&s.pixels);
        }
    }
}

/// `CURSOR_INIT`: Point16 position, u16 trail length, u16 trail frequency, u8 visible,
/// Cursor.
pub fn init(x: i16, y: i16, visible: bool, shape: Option<&Shape>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(x as u16)
        .u16(y as u16)
        .u16(0)
        .u16(0)
        .u8(u8::from(visible));
    cursor(&mut w, shape);
    w.into_inner()
}

/// `CURSOR_SET`: Point16 position, u8 visible, Cursor.
pub fn set(x: i16, y: i16, visible: bool, shape: Option<&Shape>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(x as u16).u16(y as u16).u8(u8::from(visible));
    cursor(&mut w, shape);
    w.into_inner()
}

/// `CURSOR_MOVE`: Point16 position.
pub fn move_to(x: i16, y: i16) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(x as u16).u16(y as u16);
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(
            init(1, 2, true, None),
            vec![1, 0, 2, 0, 0, 0, 0, 0, 1, 1, 0]
        );
        let shape = Shape {
            unique: 0,
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            pixels: vec![1, 2, 3, 4],
        };
        let s = set(0, 0, true, Some(&shape));
        assert_eq!(s.len(), 5 + 2 + 17 + 4);
        assert_eq!(move_to(-1, 3), vec![0xff, 0xff, 3, 0]);
    }
}
