//! The guest agent protocol as the main channel carries it (`spice/vd_agent.h`):
//! `VDAgentMessage` {u32 protocol, u32 type, u64 opaque, u32 size} + payload, split
//! across AGENT_DATA messages of at most 2048 bytes.

/// `VD_AGENT_PROTOCOL`.
pub(crate) const PROTOCOL: u32 = 1;
/// `VD_AGENT_MAX_DATA_SIZE`: the most one AGENT_DATA (or one device read) carries.
pub(crate) const MAX_DATA_SIZE: usize = 2048;

// Message types (`VD_AGENT_*`).
pub(crate) const MOUSE_STATE: u32 = 1;
pub(crate) const MONITORS_CONFIG: u32 = 2;
pub(crate) const CLIPBOARD: u32 = 4;
pub(crate) const ANNOUNCE_CAPABILITIES: u32 = 6;
pub(crate) const CLIPBOARD_GRAB: u32 = 7;
pub(crate) const CLIPBOARD_REQUEST: u32 = 8;
pub(crate) const CLIPBOARD_RELEASE: u32 = 9;
pub(crate) const FILE_XFER_START: u32 = 10;
pub(crate) const FILE_XFER_STATUS: u32 = 11;
pub(crate) const FILE_XFER_DATA: u32 = 12;
pub(crate) const CLIENT_DISCONNECTED: u32 = 13;
pub(crate) const GRAPHICS_DEVICE_INFO: u32 = 16;

// Capability bits (`VD_AGENT_CAP_*`).
pub(crate) const CAP_MONITORS_CONFIG: u32 = 1;
pub(crate) const CAP_CLIPBOARD: u32 = 3;
pub(crate) const CAP_CLIPBOARD_BY_DEMAND: u32 = 5;
pub(crate) const CAP_CLIPBOARD_SELECTION: u32 = 6;
pub(crate) const CAP_FILE_XFER_DISABLED: u32 = 13;
pub(crate) const CAP_GRAPHICS_DEVICE_INFO: u32 = 15;

/// `VD_AGENT_FILE_XFER_STATUS_DISABLED`.
pub(crate) const FILE_XFER_STATUS_DISABLED: u32 = 7;

/// `VDIChunkHeader.port`: chunks to and from the client, and the server's own.
pub(crate) const PORT_CLIENT: u32 = 1;
pub(crate) const PORT_SERVER: u32 = 2;
/// `VDIChunkHeader`: u32 port, u32 size.
pub(crate) const CHUNK_HEADER: usize = 8;

/// `VDAgentMessage`: u32 protocol, u32 type, u64 opaque, u32 size.
pub(crate) const HEADER: usize = 20;
/// Largest agent message accepted here (a monitors config is a few hundred bytes).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// A complete agent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentMessage {
    pub kind: u32,
    pub payload: Vec<u8>,
}

/// Encodes one agent message.
pub(crate) fn encode(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&PROTOCOL.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The header of a message: (protocol, type, size), or None if `bytes` is shorter.
pub(crate) fn header(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let word = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    Some((word(0)?, word(4)?, word(16)?))
}

/// A `VDIChunkHeader` followed by `data`.
pub(crate) fn chunk(port: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_HEADER + data.len());
    out.extend_from_slice(&port.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// `VDAgentMouseState`: u32 x, u32 y, u32 buttons (agent layout), u8 display id.
pub(crate) fn mouse_state(x: u32, y: u32, buttons: u32, display_id: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(13);
    p.extend_from_slice(&x.to_le_bytes());
    p.extend_from_slice(&y.to_le_bytes());
    p.extend_from_slice(&buttons.to_le_bytes());
    p.push(display_id);
    encode(MOUSE_STATE, &p)
}

/// `VDAgentFileXferStatusMessage` without detail data.
pub(crate) fn file_xfer_status(id: u32, result: u32) -> Vec<u8> {
    let mut p = id.to_le_bytes().to_vec();
    p.extend_from_slice(&result.to_le_bytes());
    encode(FILE_XFER_STATUS, &p)
}

/// One display output of a graphics device, as `VDAgentDeviceDisplayInfo` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DisplayInfo {
    pub channel_id: u32,
    pub monitor_id: u32,
    pub device_display_id: u32,
    pub address: String,
}

/// `VDAgentGraphicsDeviceInfo`: u32 count, then per display u32 channel id, u32 monitor
/// id, u32 device display id, u32 address length (with its NUL), the address and a NUL.
pub(crate) fn graphics_device_info(displays: &[DisplayInfo]) -> Vec<u8> {
    let mut p = (displays.len() as u32).to_le_bytes().to_vec();
    for d in displays {
        for word in [d.channel_id, d.monitor_id, d.device_display_id] {
            p.extend_from_slice(&word.to_le_bytes());
        }
        p.extend_from_slice(&(d.address.len() as u32 + 1).to_le_bytes());
        p.extend_from_slice(d.address.as_bytes());
        p.push(0);
    }
    encode(GRAPHICS_DEVICE_INFO, &p)
}

/// `VDAgentAnnounceCapabilities`: u32 request, then capability words.
pub(crate) fn announce_capabilities(request: bool, caps: &[u32]) -> Vec<u8> {
    let mut payload = u32::from(request).to_le_bytes().to_vec();
    for c in caps {
        payload.extend_from_slice(&c.to_le_bytes());
    }
    encode(ANNOUNCE_CAPABILITIES, &payload)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentError {
    BadProtocol(u32),
    TooLarge(usize),
}

/// Reassembles agent messages from AGENT_DATA pieces.
#[derive(Default)]
pub(crate) struct AgentReader {
    buf: Vec<u8>,
}

impl AgentReader {
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Vec<AgentMessage>, AgentError> {
        self.buf.extend_from_slice(data);
        let mut out = vec![];
        loop {
            if self.buf.len() < HEADER {
                return Ok(out);
            }
            let word = |o: usize| {
                u32::from_le_bytes([
                    self.buf[o],
                    self.buf[o + 1],
                    self.buf[o + 2],
                    self.buf[o + 3],
                ])
            };
            let (protocol, kind, size) = (word(0), word(4), word(16) as usize);
            if protocol != PROTOCOL {
                self.buf.clear();
                return Err(AgentError::BadProtocol(protocol));
            }
            if size > MAX_MESSAGE {
                self.buf.clear();
                return Err(AgentError::TooLarge(size));
            }
            if self.buf.len() < HEADER + size {
                return Ok(out);
            }
            let payload = self.buf[HEADER..HEADER + size].to_vec();
            self.buf.drain(..HEADER + size);
            out.push(AgentMessage { kind, payload });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_pieces() {
        let mut bytes = encode(MONITORS_CONFIG, &[1, 2, 3]);
        bytes.extend(announce_capabilities(true, &[2]));
        let mut r = AgentReader::default();
        let mut got = vec![];
        for piece in bytes.chunks(7) {
            got.extend(r.push(piece).unwrap());
        }
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            AgentMessage {
                kind: MONITORS_CONFIG,
                payload: vec![1, 2, 3]
            }
        );
        assert_eq!(got[1].payload, vec![1, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn bad_protocol_and_huge_messages_are_refused() {
        let mut r = AgentReader::default();
        let mut m = encode(MONITORS_CONFIG, &[]);
        m[0] = 9;
        assert_eq!(r.push(&m), Err(AgentError::BadProtocol(9)));
        let mut m = encode(MONITORS_CONFIG, &[]);
        m[16..20].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert_eq!(r.push(&m), Err(AgentError::TooLarge(1 << 30)));
    }
}
