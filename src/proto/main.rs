//! Main channel messages.

use super::msg::{base, main as m};
use super::outgoing::{self, ServerMessage};
use super::wire::{Reader, Truncated, Writer};

/// `SPICE_MOUSE_MODE_*`.
pub(crate) const MOUSE_MODE_SERVER: u32 = 1;
pub(crate) const MOUSE_MODE_CLIENT: u32 = 2;

/// `MAIN_INIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Init {
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
    fn encode(&self, w: &mut Writer) {
        w.u32(self.session_id).u32(self.display_channels_hint);
        w.u32(self.supported_mouse_modes)
            .u32(self.current_mouse_mode);
        w.u32(u32::from(self.agent_connected))
            .u32(self.agent_tokens);
        w.u32(self.multi_media_time).u32(self.ram_hint);
    }
}

/// What the main channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MainMessage<'a> {
    Init(Init),
    /// The network test: u32 id, u64 timestamp, then `padding` zero bytes.
    Ping {
        id: u32,
        timestamp: u64,
        padding: usize,
    },
    /// u32 length including the NUL, then the bytes and the NUL.
    Name(&'a str),
    Uuid(&'a [u8; 16]),
    /// u32 count, then (u8 type, u8 id) pairs.
    ChannelsList(&'a [(u8, u8)]),
    /// u16 supported, u16 current.
    MouseMode {
        supported: u32,
        current: u32,
    },
    MultiMediaTime(u32),
    /// One encoded agent message (`agent::encode`).
    AgentData(&'a [u8]),
    /// Tokens given back to the client for its agent messages.
    AgentToken(u32),
    /// An agent is there (clients without AGENT_CONNECTED_TOKENS).
    AgentConnected,
    /// An agent is there, and the client's window starts again at this many tokens.
    AgentConnectedTokens(u32),
    /// The agent went: u32 error code (`SPICE_LINK_ERR_OK`).
    AgentDisconnected,
}

impl ServerMessage for MainMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            MainMessage::Init(_) => m::INIT,
            MainMessage::Ping { .. } => base::PING,
            MainMessage::Name(_) => m::NAME,
            MainMessage::Uuid(_) => m::UUID,
            MainMessage::ChannelsList(_) => m::CHANNELS_LIST,
            MainMessage::MouseMode { .. } => m::MOUSE_MODE,
            MainMessage::MultiMediaTime(_) => m::MULTI_MEDIA_TIME,
            MainMessage::AgentData(_) => m::AGENT_DATA,
            MainMessage::AgentToken(_) => m::AGENT_TOKEN,
            MainMessage::AgentConnected => m::AGENT_CONNECTED,
            MainMessage::AgentConnectedTokens(_) => m::AGENT_CONNECTED_TOKENS,
            MainMessage::AgentDisconnected => m::AGENT_DISCONNECTED,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            MainMessage::Init(init) => init.encode(w),
            MainMessage::Ping {
                id,
                timestamp,
                padding,
            } => outgoing::ping(w, id, timestamp, padding),
            MainMessage::Name(text) => {
                w.u32(text.len() as u32 + 1).bytes(text.as_bytes()).u8(0);
            }
            MainMessage::Uuid(uuid) => {
                w.bytes(uuid);
            }
            MainMessage::ChannelsList(channels) => {
                w.u32(channels.len() as u32);
                for &(t, id) in channels {
                    w.u8(t).u8(id);
                }
            }
            MainMessage::MouseMode { supported, current } => {
                w.u16(supported as u16).u16(current as u16);
            }
            MainMessage::MultiMediaTime(time)
            | MainMessage::AgentToken(time)
            | MainMessage::AgentConnectedTokens(time) => {
                w.u32(time);
            }
            MainMessage::AgentConnected => {}
            MainMessage::AgentDisconnected => {
                w.u32(0);
            }
            MainMessage::AgentData(data) => {
                w.bytes(data);
            }
        }
    }
}

/// Client `PONG`: u32 id, u64 timestamp.
pub(crate) fn parse_pong(body: &[u8]) -> Result<(u32, u64), Truncated> {
    let mut r = Reader::new(body);
    Ok((r.u32()?, r.u64()?))
}

/// Client `MOUSE_MODE_REQUEST`: u16 mode.
pub(crate) fn parse_mouse_mode_request(body: &[u8]) -> Result<u32, Truncated> {
    Ok(u32::from(Reader::new(body).u16()?))
}

/// A u32 body (agent start / token, ack sync generation).
pub(crate) fn parse_u32(body: &[u8]) -> Result<u32, Truncated> {
    Reader::new(body).u32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

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
        let b = body_of(&MainMessage::Init(init));
        assert_eq!(b.len(), 32);
        assert_eq!(&b[20..24], &10u32.to_le_bytes());
    }

    #[test]
    fn list_name_ping_and_their_types() {
        let list = MainMessage::ChannelsList(&[(2, 0), (3, 0)]);
        assert_eq!(list.msg_type(), m::CHANNELS_LIST);
        assert_eq!(body_of(&list), vec![2, 0, 0, 0, 2, 0, 3, 0]);
        assert_eq!(
            body_of(&MainMessage::Name("vm")),
            vec![3, 0, 0, 0, b'v', b'm', 0]
        );
        let ping = MainMessage::Ping {
            id: 1,
            timestamp: 2,
            padding: 3,
        };
        assert_eq!((ping.msg_type(), body_of(&ping).len()), (base::PING, 15));
        let mode = MainMessage::MouseMode {
            supported: 3,
            current: 2,
        };
        assert_eq!(body_of(&mode), vec![3, 0, 2, 0]);
        assert_eq!(parse_mouse_mode_request(&[2, 0]), Ok(2));
        assert!(parse_pong(&[0; 5]).is_err());
    }
}
