//! The link handshake that opens every channel (`spice/protocol.h`: `SpiceLinkHeader`,
//! `SpiceLinkMess`, `SpiceLinkReply`). Little-endian, packed.

/// `SPICE_MAGIC`: "REDQ" read as a little-endian u32.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"REDQ");
pub(crate) const VERSION_MAJOR: u32 = 2;
pub(crate) const VERSION_MINOR: u32 = 2;
/// `SpiceLinkHeader`: magic, major, minor, size — 4 × u32.
pub(crate) const HEADER_SIZE: usize = 16;
/// The largest link message we accept; real clients send well under 100 bytes.
pub(crate) const MAX_LINK_MESSAGE: u32 = 4096;
/// `SPICE_TICKET_PUBKEY_BYTES`: a DER SubjectPublicKeyInfo of an RSA-1024 key.
pub(crate) const PUBKEY_BYTES: usize = 162;

/// `SpiceLinkErr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum LinkError {
    Ok = 0,
    Error = 1,
    InvalidMagic = 2,
    InvalidData = 3,
    VersionMismatch = 4,
    NeedSecured = 5,
    // Sent once a TLS port exists (`plaintext-channel=` reached over TLS).
    #[allow(dead_code)]
    NeedUnsecured = 6,
    PermissionDenied = 7,
    BadConnectionId = 8,
    ChannelNotAvailable = 9,
}

/// A parsed `SpiceLinkHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkHeader {
    pub major: u32,
    pub minor: u32,
    /// Size of the message that follows.
    pub size: u32,
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl LinkHeader {
    /// Parses and checks a header; the error is what the client must be told.
    pub(crate) fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<LinkHeader, LinkError> {
        let field =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        if field(0) != MAGIC {
            return Err(LinkError::InvalidMagic);
        }
        let header = LinkHeader {
            major: field(4),
            minor: field(8),
            size: field(12),
        };
        if header.major != VERSION_MAJOR {
            return Err(LinkError::VersionMismatch);
        }
        if header.size < LinkMess::FIXED_SIZE as u32 || header.size > MAX_LINK_MESSAGE {
            return Err(LinkError::InvalidData);
        }
        Ok(header)
    }

    pub(crate) fn encode(size: u32) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        out[8..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        out[12..16].copy_from_slice(&size.to_le_bytes());
        out
    }
}

/// A parsed `SpiceLinkMess`: which channel the client wants and its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkMess {
    pub connection_id: u32,
    pub channel_type: u8,
    pub channel_id: u8,
    pub common_caps: Vec<u32>,
    pub channel_caps: Vec<u32>,
}

impl LinkMess {
    /// A request for channel 0 of `channel_type` in session `connection_id`, no caps.
    #[cfg(test)]
    pub(crate) fn plain(connection_id: u32, channel_type: u8) -> LinkMess {
        LinkMess {
            connection_id,
            channel_type,
            channel_id: 0,
            common_caps: vec![],
            channel_caps: vec![],
        }
    }

    /// connection_id u32, channel_type u8, channel_id u8, num_common_caps u32,
    /// num_channel_caps u32, caps_offset u32.
    pub(crate) const FIXED_SIZE: usize = 18;

    pub(crate) fn parse(body: &[u8]) -> Result<LinkMess, LinkError> {
        let bad = LinkError::InvalidData;
        if body.len() < Self::FIXED_SIZE {
            return Err(bad);
        }
        let num_common = u32_at(body, 6).ok_or(bad)? as usize;
        let num_channel = u32_at(body, 10).ok_or(bad)? as usize;
        let caps_offset = u32_at(body, 14).ok_or(bad)? as usize;
        let caps_words = num_common.checked_add(num_channel).ok_or(bad)?;
        let caps_end = caps_words
            .checked_mul(4)
            .and_then(|n| n.checked_add(caps_offset))
            .ok_or(bad)?;
        if caps_offset < Self::FIXED_SIZE || caps_end > body.len() {
            return Err(bad);
        }
        let word = |i: usize| u32_at(body, caps_offset + 4 * i).ok_or(bad);
        Ok(LinkMess {
            connection_id: u32_at(body, 0).ok_or(bad)?,
            channel_type: body[4],
            channel_id: body[5],
            common_caps: (0..num_common).map(word).collect::<Result<_, _>>()?,
            channel_caps: (num_common..caps_words)
                .map(word)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Encodes header + a successful `SpiceLinkReply`: the ticket key and our caps.
pub(crate) fn encode_link_reply(
    public_key: &[u8; PUBKEY_BYTES],
    common_caps: &[u32],
    channel_caps: &[u32],
) -> Vec<u8> {
    let fixed = 4 + PUBKEY_BYTES + 12;
    let size = fixed + 4 * (common_caps.len() + channel_caps.len());
    let mut out = LinkHeader::encode(size as u32).to_vec();
    out.extend_from_slice(&(LinkError::Ok as u32).to_le_bytes());
    out.extend_from_slice(public_key);
    out.extend_from_slice(&(common_caps.len() as u32).to_le_bytes());
    out.extend_from_slice(&(channel_caps.len() as u32).to_le_bytes());
    out.extend_from_slice(&(fixed as u32).to_le_bytes());
    for cap in common_caps.iter().chain(channel_caps) {
        out.extend_from_slice(&cap.to_le_bytes());
    }
    out
}

/// Encodes header + `SpiceLinkReply` carrying only an error (no key, no caps).
pub(crate) fn encode_link_error(error: LinkError) -> Vec<u8> {
    // error u32, pub_key[162], num_common_caps u32, num_channel_caps u32, caps_offset u32
    let reply_size = 4 + PUBKEY_BYTES + 12;
    let mut out = LinkHeader::encode(reply_size as u32).to_vec();
    out.extend_from_slice(&(error as u32).to_le_bytes());
    out.resize(HEADER_SIZE + reply_size, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_mess(caps_offset: u32, common: &[u32], channel: &[u32]) -> Vec<u8> {
        let mut m = vec![];
        m.extend_from_slice(&7u32.to_le_bytes());
        m.push(2);
        m.push(0);
        m.extend_from_slice(&(common.len() as u32).to_le_bytes());
        m.extend_from_slice(&(channel.len() as u32).to_le_bytes());
        m.extend_from_slice(&caps_offset.to_le_bytes());
        for c in common.iter().chain(channel) {
            m.extend_from_slice(&c.to_le_bytes());
        }
        m
    }

    #[test]
    fn header_round_trip_and_checks() {
        let bytes = LinkHeader::encode(40);
        let h = LinkHeader::parse(&bytes).unwrap();
        assert_eq!((h.major, h.minor, h.size), (2, 2, 40));

        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(LinkHeader::parse(&bad), Err(LinkError::InvalidMagic));
        let mut old = bytes;
        old[4] = 1;
        assert_eq!(LinkHeader::parse(&old), Err(LinkError::VersionMismatch));
        let huge = LinkHeader::encode(MAX_LINK_MESSAGE + 1);
        assert_eq!(LinkHeader::parse(&huge), Err(LinkError::InvalidData));
    }

    #[test]
    fn link_mess_parses_caps() {
        let m = LinkMess::parse(&link_mess(18, &[0xb], &[0x1, 0x2])).unwrap();
        assert_eq!(m.connection_id, 7);
        assert_eq!(m.channel_type, 2);
        assert_eq!(m.common_caps, vec![0xb]);
        assert_eq!(m.channel_caps, vec![1, 2]);
    }

    #[test]
    fn link_mess_rejects_caps_outside_the_message() {
        let mut m = link_mess(18, &[1], &[]);
        m[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(LinkMess::parse(&m), Err(LinkError::InvalidData));
        assert_eq!(
            LinkMess::parse(&link_mess(4, &[1], &[])),
            Err(LinkError::InvalidData)
        );
        assert_eq!(LinkMess::parse(&[0; 5]), Err(LinkError::InvalidData));
    }

    #[test]
    fn ok_reply_layout() {
        let r = encode_link_reply(&[7; PUBKEY_BYTES], &[0xb], &[0x12]);
        assert_eq!(r.len(), 16 + 178 + 8);
        assert_eq!(&r[16..20], &[0, 0, 0, 0]);
        assert_eq!(r[20], 7);
        let caps_offset = u32::from_le_bytes([r[190], r[191], r[192], r[193]]);
        assert_eq!(caps_offset, 178);
        assert_eq!(&r[194..198], &[0xb, 0, 0, 0]);
    }

    #[test]
    fn error_reply_layout() {
        let r = encode_link_error(LinkError::PermissionDenied);
        assert_eq!(r.len(), 16 + 178);
        assert_eq!(&r[0..4], b"REDQ");
        assert_eq!(u32::from_le_bytes([r[12], r[13], r[14], r[15]]), 178);
        assert_eq!(r[16], 7);
    }
}
