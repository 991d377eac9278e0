//! Inputs channel messages.

use super::msg::inputs as m;
use super::outgoing::ServerMessage;
use super::wire::{Reader, Truncated, Writer};

/// What a client asked the inputs channel to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputMessage {
    /// `KEY_DOWN`/`KEY_UP`: up to 4 set-1 scancode bytes packed LSB first.
    Key {
        code: u32,
    },
    /// `KEY_SCANCODE`: raw set-1 scancode bytes.
    Scancodes(Vec<u8>),
    /// `KEY_MODIFIERS`: the client's lock-key state.
    Modifiers(u16),
    Motion {
        dx: i32,
        dy: i32,
        buttons: u16,
    },
    Position {
        x: u32,
        y: u32,
        buttons: u16,
        display: u8,
    },
    Press {
        button: u8,
        buttons: u16,
    },
    Release {
        button: u8,
        buttons: u16,
    },
}

/// Largest KEY_SCANCODE payload accepted (a real client sends a few bytes).
pub(crate) const MAX_SCANCODES: usize = 64;

pub(crate) fn parse(msg_type: u16, body: &[u8]) -> Result<Option<InputMessage>, Truncated> {
    let mut r = Reader::new(body);
    Ok(Some(match msg_type {
        m::C_KEY_DOWN | m::C_KEY_UP => InputMessage::Key { code: r.u32()? },
        m::C_KEY_SCANCODE => {
            if body.len() > MAX_SCANCODES {
                return Err(Truncated);
            }
            InputMessage::Scancodes(body.to_vec())
        }
        m::C_KEY_MODIFIERS => InputMessage::Modifiers(r.u16()?),
        m::C_MOUSE_MOTION => InputMessage::Motion {
            dx: r.i32()?,
            dy: r.i32()?,
            buttons: r.u16()?,
        },
        m::C_MOUSE_POSITION => InputMessage::Position {
            x: r.u32()?,
            y: r.u32()?,
            buttons: r.u16()?,
            display: r.u8()?,
        },
        m::C_MOUSE_PRESS => InputMessage::Press {
            button: r.u8()?,
            buttons: r.u16()?,
        },
        m::C_MOUSE_RELEASE => InputMessage::Release {
            button: r.u8()?,
            buttons: r.u16()?,
        },
        _ => return Ok(None),
    }))
}

/// What the inputs channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputsMessage {
    /// The keyboard's lock-key LEDs when the channel opens: u16 modifiers.
    Init { modifiers: u16 },
    /// The LEDs changed: u16 modifiers.
    KeyModifiers { modifiers: u16 },
    /// Every `MOTION_ACK_BUNCH` motion messages (no body).
    MouseMotionAck,
}

impl ServerMessage for InputsMessage {
    fn msg_type(&self) -> u16 {
        match self {
            InputsMessage::Init { .. } => m::INIT,
            InputsMessage::KeyModifiers { .. } => m::KEY_MODIFIERS,
            InputsMessage::MouseMotionAck => m::MOUSE_MOTION_ACK,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            InputsMessage::Init { modifiers } | InputsMessage::KeyModifiers { modifiers } => {
                w.u16(modifiers);
            }
            InputsMessage::MouseMotionAck => {}
        }
    }
}

/// Scancode bytes of a KEY_DOWN/KEY_UP code (non-zero bytes, LSB first).
pub(crate) fn key_bytes(code: u32) -> Vec<u8> {
    code.to_le_bytes()
        .into_iter()
        .take_while(|&b| b != 0)
        .collect()
}

/// Protocol button mask → QEMU's: left stays, middle (bit 1) → bit 2, right (bit 2) →
/// bit 1, side/extra (bits 5+) shift left by one; wheel bits are dropped.
pub(crate) fn local_buttons(mask: u16) -> u32 {
    let m = u32::from(mask);
    (m & 1) | ((m & 2) << 1) | ((m & 4) >> 1) | ((m & 0xffe0) << 1)
}

/// Protocol button numbers for the wheel.
pub(crate) const BUTTON_UP: u8 = 4;
pub(crate) const BUTTON_DOWN: u8 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_codes_split_into_bytes() {
        assert_eq!(key_bytes(0x1e), vec![0x1e]);
        assert_eq!(key_bytes(0x48e0), vec![0xe0, 0x48]);
        assert_eq!(key_bytes(0xc8e0), vec![0xe0, 0xc8]);
    }

    #[test]
    fn button_mapping() {
        assert_eq!(local_buttons(1), 1);
        assert_eq!(local_buttons(2), 4);
        assert_eq!(local_buttons(4), 2);
        assert_eq!(local_buttons(8 | 16), 0);
        assert_eq!(local_buttons(32), 64);
    }

    #[test]
    fn parse_messages() {
        let mut w = Writer::new();
        w.i32(-3).i32(4).u16(1);
        assert_eq!(
            parse(m::C_MOUSE_MOTION, &w.into_inner()),
            Ok(Some(InputMessage::Motion {
                dx: -3,
                dy: 4,
                buttons: 1
            }))
        );
        assert!(parse(m::C_MOUSE_MOTION, &[0; 9]).is_err());
        assert_eq!(parse(999, &[]), Ok(None));
        assert!(parse(m::C_KEY_SCANCODE, &[0; 65]).is_err());
    }
}
