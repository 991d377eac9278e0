//! Smartcard channel messages: VSC (virtual smartcard, libcacard's `vscard_common.h`)
//! messages between the client and a `ccid-card-passthru` device. Both sides frame a VSC
//! message the same way (u32 type, u32 reader id, u32 length, then `length` bytes), but
//! the SPICE wire carries the header little-endian and the device stream big-endian.

use super::outgoing::ServerMessage;
use super::wire::{Reader, Writer};

/// `SPICE_MSG_SMARTCARD_DATA` / `SPICE_MSGC_SMARTCARD_DATA`.
pub(crate) const DATA: u16 = 101;

/// `VSCMsgType`.
pub(crate) mod vsc {
    pub(crate) const INIT: u32 = 1;
    pub(crate) const ERROR: u32 = 2;
    pub(crate) const READER_ADD: u32 = 3;
    pub(crate) const READER_REMOVE: u32 = 4;
    pub(crate) const ATR: u32 = 5;
    pub(crate) const CARD_REMOVE: u32 = 6;
    pub(crate) const APDU: u32 = 7;
    /// `VSCErrorCode` (the device answers with `VSC_SUCCESS`, 0).
    pub(crate) const GENERAL_ERROR: u32 = 1;
    pub(crate) const CANNOT_ADD_MORE_READERS: u32 = 2;
    /// `VSCARD_UNDEFINED_READER_ID`.
    pub(crate) const UNDEFINED_READER_ID: u32 = u32::MAX;
}

/// `sizeof(VSCMsgHeader)`.
pub(crate) const HEADER_SIZE: usize = 12;
/// Largest VSC payload accepted either way. ccid-card-passthru buffers 64 KiB of input
/// and drops its chardev past that; an extended APDU and its answer fit well below.
pub(crate) const MAX_PAYLOAD: usize = (64 << 10) - HEADER_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VscHeader {
    pub msg_type: u32,
    pub reader_id: u32,
    pub length: u32,
}

impl VscHeader {
    /// The header as the device reads it (network order).
    pub(crate) fn to_device(self) -> [u8; HEADER_SIZE] {
        let mut b = [0; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.msg_type.to_be_bytes());
        b[4..8].copy_from_slice(&self.reader_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    fn from_device(b: &[u8]) -> VscHeader {
        let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        VscHeader {
            msg_type: be(0),
            reader_id: be(4),
            length: be(8),
        }
    }
}

/// One VSC message; `data` is exactly `header.length` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VscMessage {
    pub header: VscHeader,
    pub data: Vec<u8>,
}

impl VscMessage {
    pub(crate) fn new(msg_type: u32, reader_id: u32, data: Vec<u8>) -> VscMessage {
        VscMessage {
            header: VscHeader {
                msg_type,
                reader_id,
                length: data.len() as u32,
            },
            data,
        }
    }

    /// The message as the device reads it.
    pub(crate) fn to_device(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_SIZE + self.data.len());
        b.extend_from_slice(&self.header.to_device());
        b.extend_from_slice(&self.data);
        b
    }

    /// `VSC_Error` made by the server; its code in the client's byte order, as
    /// spice-server writes it.
    pub(crate) fn error(reader_id: u32, code: u32) -> VscMessage {
        VscMessage::new(vsc::ERROR, reader_id, code.to_le_bytes().to_vec())
    }
}

/// `SPICE_MSG_SMARTCARD_DATA`: one VSC message, header little-endian.
impl ServerMessage for VscMessage {
    fn msg_type(&self) -> u16 {
        DATA
    }
    fn encode_body(&self, w: &mut Writer) {
        w.u32(self.header.msg_type)
            .u32(self.header.reader_id)
            .u32(self.data.len() as u32)
            .bytes(&self.data);
    }
}

/// Why a client message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadVsc(pub &'static str);

/// Parses `SPICE_MSGC_SMARTCARD_DATA`: the header, then at least `length` bytes (bytes
/// past them are ignored, as spice-server's demarshaller does).
pub(crate) fn parse_client(body: &[u8]) -> Result<(VscHeader, &[u8]), BadVsc> {
    let mut r = Reader::new(body);
    let truncated = |_| BadVsc("VSC header truncated");
    let header = VscHeader {
        msg_type: r.u32().map_err(truncated)?,
        reader_id: r.u32().map_err(truncated)?,
        length: r.u32().map_err(truncated)?,
    };
    if header.length as usize > MAX_PAYLOAD {
        return Err(BadVsc("VSC message over the size limit"));
    }
    let data = r
        .take(header.length as usize)
        .map_err(|_| BadVsc("VSC data shorter than its header says"))?;
    Ok((header, data))
}

/// What the device stream yielded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FromDevice {
    Message(VscMessage),
    /// A header announced more than `MAX_PAYLOAD`: its payload is skipped, unbuffered.
    Oversized(VscHeader),
}

/// Cuts the device's byte stream into VSC messages. Holds at most one header and one
/// payload of at most `MAX_PAYLOAD` bytes.
#[derive(Debug, Default)]
pub(crate) struct DeviceFramer {
    buf: Vec<u8>,
    /// Payload bytes of an oversized message still to throw away.
    skip: usize,
}

impl DeviceFramer {
    /// Feeds guest bytes; returns the messages they completed, in order.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Vec<FromDevice> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let want = self.wanted();
            let n = want.saturating_sub(self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() < HEADER_SIZE {
                continue;
            }
            let header = VscHeader::from_device(&self.buf);
            if header.length as usize > MAX_PAYLOAD {
                self.buf.clear();
                self.skip = header.length as usize;
                out.push(FromDevice::Oversized(header));
                continue;
            }
            if self.buf.len() == HEADER_SIZE + header.length as usize {
                let data = self.buf.split_off(HEADER_SIZE);
                self.buf.clear();
                out.push(FromDevice::Message(VscMessage { header, data }));
            }
        }
        out
    }

    /// Bytes of the current message: its header, then header and payload.
    fn wanted(&self) -> usize {
        if self.buf.len() < HEADER_SIZE {
            HEADER_SIZE
        } else {
            HEADER_SIZE + VscHeader::from_device(&self.buf).length as usize
        }
    }

    /// Bytes of a partial message held.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

    fn device_bytes(t: u32, r: u32, data: &[u8]) -> Vec<u8> {
        VscMessage::new(t, r, data.to_vec()).to_device()
    }

    #[test]
    fn device_header_is_big_endian() {
        let b = device_bytes(vsc::READER_ADD, 0, &[]);
        assert_eq!(b, [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = device_bytes(vsc::APDU, 2, &[9, 8]);
        assert_eq!(b, [0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 2, 9, 8]);
    }

    #[test]
    fn spice_body_is_little_endian() {
        let body = body_of(&VscMessage::error(0, vsc::CANNOT_ADD_MORE_READERS));
        assert_eq!(body, [2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn client_message_parses() {
        let body = [7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xA0, 0xA4, 0xFF];
        let (h, data) = parse_client(&body).unwrap();
        assert_eq!(
            h,
            VscHeader {
                msg_type: vsc::APDU,
                reader_id: 1,
                length: 2
            }
        );
        assert_eq!(data, [0xA0, 0xA4]);
        assert!(parse_client(&body[..11]).is_err());
        assert!(parse_client(&body[..13]).is_err());
        let huge = [7, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            parse_client(&huge),
            Err(BadVsc("VSC message over the size limit"))
        );
    }

    #[test]
    fn framer_joins_split_messages_and_splits_joined_ones() {
        let mut stream = device_bytes(vsc::INIT, u32::MAX, &[1, 2, 3, 4]);
        stream.extend(device_bytes(vsc::ERROR, 0, &[0, 0, 0, 0]));
        stream.extend(device_bytes(vsc::READER_REMOVE, 0, &[]));
        for cut in 0..stream.len() {
            let mut f = DeviceFramer::default();
            let mut got = f.push(&stream[..cut]);
            got.extend(f.push(&stream[cut..]));
            let types: Vec<u32> = got
                .iter()
                .map(|m| match m {
                    FromDevice::Message(m) => m.header.msg_type,
                    FromDevice::Oversized(_) => 0,
                })
                .collect();
            assert_eq!(types, [vsc::INIT, vsc::ERROR, vsc::READER_REMOVE]);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn oversized_message_is_skipped_not_buffered() {
        let mut f = DeviceFramer::default();
        let mut header = VscHeader {
            msg_type: vsc::APDU,
            reader_id: 0,
            length: (MAX_PAYLOAD + 1) as u32,
        }
        .to_device()
        .to_vec();
        header.extend(vec![0xEE; 1000]);
        let got = f.push(&header);
        assert!(matches!(got[..], [FromDevice::Oversized(_)]));
        assert_eq!(f.buffered(), 0);
        // The rest of its payload is thrown away; the message after it is intact.
        let mut rest = vec![0xEE; MAX_PAYLOAD + 1 - 1000];
        rest.extend(device_bytes(vsc::ERROR, 0, &[0, 0, 0, 0]));
        let got = f.push(&rest);
        assert_eq!(
            got,
            [FromDevice::Message(VscMessage::new(
                vsc::ERROR,
                0,
                vec![0; 4]
            ))]
        );
    }
}
