//! The guest agent protocol as the main channel carries it (`spice/vd_agent.h`):
//! `VDAgentMessage` {u32 protocol, u32 type, u64 opaque, u32 size} + payload, split
//! across AGENT_DATA messages of at most 2048 bytes.

/// `VD_AGENT_PROTOCOL`.
pub(crate) const PROTOCOL: u32 = 1;
/// `VD_AGENT_MONITORS_CONFIG`.
pub(crate) const MONITORS_CONFIG: u32 = 2;
/// `VD_AGENT_ANNOUNCE_CAPABILITIES`.
pub(crate) const ANNOUNCE_CAPABILITIES: u32 = 6;
/// `VD_AGENT_CAP_MONITORS_CONFIG`.
pub(crate) const CAP_MONITORS_CONFIG: u32 = 1;

const HEADER: usize = 20;
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
