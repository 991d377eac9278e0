//! Cursor channel messages.

use super::msg::{base, cursor as m};
use super::outgoing::{self, ServerMessage};
use super::wire::Writer;

/// `SPICE_CURSOR_FLAGS_NONE`: no shape follows.
pub(crate) const CURSOR_FLAGS_NONE: u16 = 1;
/// `SPICE_CURSOR_TYPE_ALPHA`: 32-bit ARGB pixels.
pub(crate) const CURSOR_TYPE_ALPHA: u8 = 0;

/// A cursor shape (ARGB pixels, w·h·4 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
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

/// What the cursor channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorMessage<'a> {
    /// The ack window: u32 generation, u32 window.
    SetAck {
        generation: u32,
        window: u32,
    },
    /// Point16 position, u16 trail length, u16 trail frequency, u8 visible, Cursor.
    Init {
        x: i16,
        y: i16,
        visible: bool,
        shape: Option<&'a Shape>,
    },
    /// Point16 position, u8 visible, Cursor.
    Set {
        x: i16,
        y: i16,
        visible: bool,
        shape: Option<&'a Shape>,
    },
    /// Point16 position.
    Move {
        x: i16,
        y: i16,
    },
    Hide,
}

impl ServerMessage for CursorMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            CursorMessage::SetAck { .. } => base::SET_ACK,
            CursorMessage::Init { .. } => m::INIT,
            CursorMessage::Set { .. } => m::SET,
            CursorMessage::Move { .. } => m::MOVE,
            CursorMessage::Hide => m::HIDE,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            CursorMessage::SetAck { generation, window } => {
                outgoing::set_ack(w, generation, window)
            }
            CursorMessage::Init {
                x,
                y,
                visible,
                shape,
            } => {
                w.u16(x as u16)
                    .u16(y as u16)
                    .u16(0)
                    .u16(0)
                    .u8(u8::from(visible));
                cursor(w, shape);
            }
            CursorMessage::Set {
                x,
                y,
                visible,
                shape,
            } => {
                w.u16(x as u16).u16(y as u16).u8(u8::from(visible));
                cursor(w, shape);
            }
            CursorMessage::Move { x, y } => {
                w.u16(x as u16).u16(y as u16);
            }
            CursorMessage::Hide => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

    #[test]
    fn layouts() {
        let init = CursorMessage::Init {
            x: 1,
            y: 2,
            visible: true,
            shape: None,
        };
        assert_eq!(init.msg_type(), m::INIT);
        assert_eq!(body_of(&init), vec![1, 0, 2, 0, 0, 0, 0, 0, 1, 1, 0]);
        let shape = Shape {
            unique: 0,
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            pixels: vec![1, 2, 3, 4],
        };
        let set = CursorMessage::Set {
            x: 0,
            y: 0,
            visible: true,
            shape: Some(&shape),
        };
        assert_eq!(body_of(&set).len(), 5 + 2 + 17 + 4);
        let to = CursorMessage::Move { x: -1, y: 3 };
        assert_eq!(body_of(&to), vec![0xff, 0xff, 3, 0]);
        assert_eq!(body_of(&CursorMessage::Hide), Vec::<u8>::new());
    }
}
