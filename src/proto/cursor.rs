//! Cursor channel messages.

use super::msg::{base, cursor as m};
use super::outgoing::{self, ServerMessage};
use super::wire::Writer;

/// `SPICE_CURSOR_FLAGS_NONE`: no shape follows.
pub(crate) const CURSOR_FLAGS_NONE: u16 = 1;

/// A cursor shape: `data` laid out as its `SPICE_CURSOR_TYPE_*` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape<'a> {
    pub unique: u64,
    pub kind: u8,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub data: &'a [u8],
}

fn cursor(w: &mut Writer, shape: Option<&Shape<'_>>) {
    match shape {
        None => {
            w.u16(CURSOR_FLAGS_NONE);
        }
        Some(s) => {
            // Not cached: flags 0, header, data to the end of the message.
            w.u16(0).u64(s.unique).u8(s.kind);
            w.u16(s.width).u16(s.height).u16(s.hot_x).u16(s.hot_y);
            w.bytes(s.data);
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
        shape: Option<&'a Shape<'a>>,
    },
    /// Point16 position, u8 visible, Cursor.
    Set {
        x: i16,
        y: i16,
        visible: bool,
        shape: Option<&'a Shape<'a>>,
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
            kind: 1,
            width: 2,
            height: 3,
            hot_x: 1,
            hot_y: 2,
            data: &[1, 2, 3, 4, 5, 6],
        };
        let set = CursorMessage::Set {
            x: 0,
            y: 0,
            visible: true,
            shape: Some(&shape),
        };
        let body = body_of(&set);
        // position, visible, flags 0, unique, type MONO, 2x3, hot spot (1, 2), the data.
        assert_eq!(
            body,
            vec![
                0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 3, 0, 1, 0, 2, 0, 1, 2, 3, 4,
                5, 6
            ]
        );
        let to = CursorMessage::Move { x: -1, y: 3 };
        assert_eq!(body_of(&to), vec![0xff, 0xff, 3, 0]);
        assert_eq!(body_of(&CursorMessage::Hide), Vec::<u8>::new());
    }
}
