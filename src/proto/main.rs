//! Main channel messages.

use super::wire::{Reader, Truncated, Writer};

/// `SPICE_MOUSE_MODE_*`.
pub const MOUSE_MODE_SERVER: u32 = 1;
pub const MOUSE_MODE_CLIENT: u32 = 2;

/// `MAIN_INIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init {
    pub session_id: u32,
    pub display_channels_hint: u32,
    pub supported_mouse_modes: u32,
    pub current_mouse_mode: u32,
    pub agent_connected: bool,
    pub agent_tokens: u32,
    pub multi_media_time: u32,
    pub ram_hint: u32,
}

impl Init {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.session_id).u32(self.display_channels_hint);
        w.u32(self.supported_mouse_modes)
            .u32(self.current_mouse_mode);
        w.u32(u32::from(self.agent_connected))
            .u32(self.agent_tokens);
        w.u32(self.multi_media_time).u32(self.ram_hint);
        w.into_inner()
    }
}

/// `CHANNELS_LIST`: u32 count, then (u8 type, u8 id) pairs.
pub fn channels_list(channels: &[(u8, u8)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(channels.len() as u32);
    for &(t, id) in channels {
        w.u8(t).u8(id);
    }
    w.into_inner()
}

/// `MOUSE_MODE`: u16 supported, u16 current.
pub fn mouse_mode(supported: u32, current: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(supported as u16).u16(current as u16);
    w.into_inner()
}

/// `NAME`: u32 length including the NUL, then the bytes and the NUL.
pub fn name(text: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(text.len() as u32 + 1).bytes(text.as_bytes()).u8(0);
    w.into_inner()
}

/// `PING`: u32 id, u64 timestamp, optional padding.
pub fn ping(id: u32, timestamp: u64, padding: usize) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(id).u64(timestamp);
    w.0.resize(12 + padding, 0);
    w.into_inner()
}

/// Client `PONG`: u32 id, u64 timestamp.
pub fn parse_pong(body: &[u8]) -> Result<(u32, u64), Truncated> {
    let mut r = Reader::new(body);
    Ok((r.u32()?, r.u64()?))
}

/// Client `MOUSE_MODE_REQUEST`: u16 mode.
pub fn parse_mouse_mode_request(body: &[u8]) -> Result<u32, Truncated> {
    Ok(u32::from(Reader::new(body).u16()?))
}

/// A u32 body (agent start / token, ack sync generation).
pub fn parse_u32(body: &[u8]) -> Result<u32, Truncated> {
    Reader::new(body).u32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_32_bytes_in_field_order() {
        let init = Init {
            session_id: 1,
            display_channels_hint: 2,
            supported_mouse_modes: 3,
            current_mouse_mode: 1,
            agent_connected: false,
            agent_tokens: 10,
            multi_media_time: 7,
            ram_hint: 8,
        };
        let b = init.encode();
        assert_eq!(b.len(), 32);
        assert_eq!(&b[20..24], &10u32.to_le_bytes());
    }

    #[test]
    fn list_and_name() {
        assert_eq!(
            channels_list(&[(2, 0), (3, 0)]),
            vec![2, 0, 0, 0, 2, 0, 3, 0]
        );
        assert_eq!(name("vm"), vec![3, 0, 0, 0, b'v', b'm', 0]);
        assert_eq!(ping(1, 2, 3).len(), 15);
        assert_eq!(parse_mouse_mode_request(&[2, 0]), Ok(2));
        assert!(parse_pong(&[0; 5]).is_err());
    }
}
