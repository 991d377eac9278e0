//! The cursor channel: the guest's pointer shape and position.

use super::{AckWindow, Channel, ChannelError, Outbox, ACK_WINDOW};
use crate::display::pointer::{CursorState, Pointer};
use crate::proto::cursor::{CursorMessage, Shape};
use crate::qxl::command::CursorShape;

pub(crate) struct CursorChannel {
    pointer: Pointer,
    shape_seen: u64,
    move_seen: u64,
}

/// The shape as the guest gave it (spice-server forwards it too; the client decodes
/// MONO and the COLOR types itself). Never cached: unique 0.
fn wire_shape(s: &CursorShape) -> Shape<'_> {
    Shape {
        unique: 0,
        kind: s.kind as u8,
        width: s.width,
        height: s.height,
        hot_x: s.hot_x,
        hot_y: s.hot_y,
        data: &s.data,
    }
}

impl CursorChannel {
    pub(crate) fn new(pointer: Pointer) -> CursorChannel {
        CursorChannel {
            pointer,
            shape_seen: 0,
            move_seen: 0,
        }
    }

    fn seen(&mut self, s: &CursorState) {
        self.shape_seen = s.shape_generation;
        self.move_seen = s.move_generation;
    }
}

impl Channel for CursorChannel {
    fn start(&mut self, out: &mut Outbox) {
        out.ack = Some(AckWindow::new(ACK_WINDOW));
        out.send(&CursorMessage::SetAck {
            generation: 1,
            window: ACK_WINDOW,
        });
        let s = self.pointer.snapshot();
        let shape = s.shape.as_deref().map(wire_shape);
        out.send(&CursorMessage::Init {
            x: s.x,
            y: s.y,
            visible: s.visible,
            shape: shape.as_ref(),
        });
        self.seen(&s);
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        _body: &[u8],
        _out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        Err(ChannelError::BadMessage {
            msg_type,
            reason: "the cursor channel takes no messages",
        })
    }

    fn produce(&mut self, out: &mut Outbox) {
        if !out.has_room() {
            return;
        }
        let s = self.pointer.snapshot();
        if s.shape_generation != self.shape_seen {
            if s.visible {
                let shape = s.shape.as_deref().map(wire_shape);
                out.send(&CursorMessage::Set {
                    x: s.x,
                    y: s.y,
                    visible: true,
                    shape: shape.as_ref(),
                });
            } else {
                out.send(&CursorMessage::Hide);
            }
        } else if s.move_generation != self.move_seen {
            out.send(&CursorMessage::Move { x: s.x, y: s.y });
        }
        self.seen(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::testing::drain_types;
    use crate::proto::frame::HeaderKind;
    use crate::proto::msg::{base, cursor as m};
    use crate::qxl::command::CursorCommand;

    #[test]
    fn init_then_only_the_latest_change() {
        let pointer = Pointer::default();
        let mut ch = CursorChannel::new(pointer.clone());
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.start(&mut out);
        assert_eq!(drain_types(&mut out), vec![base::SET_ACK, m::INIT]);
        let shape = CursorShape {
            unique: 1,
            kind: 0,
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            data: vec![0; 4],
        };
        pointer.apply(CursorCommand::Set {
            x: 1,
            y: 1,
            visible: true,
            shape: Some(shape),
        });
        pointer.apply(CursorCommand::Move { x: 2, y: 2 });
        ch.produce(&mut out);
        assert_eq!(drain_types(&mut out), vec![m::SET]);
        pointer.apply(CursorCommand::Move { x: 3, y: 3 });
        ch.produce(&mut out);
        assert_eq!(drain_types(&mut out), vec![m::MOVE]);
        pointer.apply(CursorCommand::Hide);
        ch.produce(&mut out);
        ch.produce(&mut out);
        assert_eq!(drain_types(&mut out), vec![m::HIDE]);
    }
}
