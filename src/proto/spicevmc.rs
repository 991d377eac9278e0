//! spicevmc channel messages (usbredir, port, webdav): opaque device bytes both ways,
//! optionally LZ4-compressed, and the port channel's init and open/close events.

use super::msg::spicevmc as m;
use super::outgoing::ServerMessage;
use super::wire::{Reader, Writer};

/// What a client sent on a spicevmc channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VmcClientMessage<'a> {
    /// `SPICEVMC_DATA`: bytes for the device, as they are.
    Data(&'a [u8]),
    /// `SPICEVMC_COMPRESSED_DATA`, already decompressed.
    Decompressed(Vec<u8>),
    /// `PORT_EVENT`: `SPICE_PORT_EVENT_*` for the device.
    PortEvent(u8),
}

/// Why a client message was refused (the channel is closed, as spice-server does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadVmc(pub &'static str);

/// Parses one client message; `max_data` bounds the size a compressed message may
/// announce (nothing is allocated for a larger one). `Ok(None)`: not a spicevmc message.
pub(crate) fn parse(
    msg_type: u16,
    body: &[u8],
    max_data: usize,
) -> Result<Option<VmcClientMessage<'_>>, BadVmc> {
    Ok(Some(match msg_type {
        m::C_DATA => VmcClientMessage::Data(body),
        m::C_COMPRESSED_DATA => VmcClientMessage::Decompressed(decompress(body, max_data)?),
        m::C_PORT_EVENT => match body {
            [event] => VmcClientMessage::PortEvent(*event),
            _ => return Err(BadVmc("port event is not one byte")),
        },
        _ => return Ok(None),
    }))
}

/// The body of a `COMPRESSED_DATA`: u8 type, u32 uncompressed size unless the type is
/// NONE, then the data to its end.
fn decompress(body: &[u8], max_data: usize) -> Result<Vec<u8>, BadVmc> {
    let truncated = |_| BadVmc("compressed data header truncated");
    let mut r = Reader::new(body);
    match r.u8().map_err(truncated)? {
        m::COMPRESSION_NONE => Ok(body[1..].to_vec()),
        m::COMPRESSION_LZ4 => {
            let size = r.u32().map_err(truncated)? as usize;
            if size > max_data {
                return Err(BadVmc("uncompressed size over the limit"));
            }
            let data = &body[5..];
            let out = lz4_flex::block::decompress(data, size)
                .map_err(|_| BadVmc("LZ4 data does not decode"))?;
            if out.len() != size {
                return Err(BadVmc("LZ4 data is not its announced size"));
            }
            Ok(out)
        }
        _ => Err(BadVmc("unknown compression type")),
    }
}

/// Below this many bytes spice-server sends data as it is (`COMPRESS_THRESHOLD`).
pub(crate) const COMPRESS_THRESHOLD: usize = 1000;

/// What a spicevmc channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VmcMessage<'a> {
    /// `SPICEVMC_DATA`: device bytes.
    Data(&'a [u8]),
    /// `SPICEVMC_COMPRESSED_DATA` (LZ4 block) of `uncompressed_size` device bytes.
    Compressed {
        uncompressed_size: u32,
        lz4: &'a [u8],
    },
    /// `PORT_INIT`: the port's name and whether the guest has it open.
    PortInit { name: &'a str, opened: bool },
    /// `PORT_EVENT`: the guest opened or closed the port.
    PortEvent(u8),
}

impl ServerMessage for VmcMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            VmcMessage::Data(_) => m::DATA,
            VmcMessage::Compressed { .. } => m::COMPRESSED_DATA,
            VmcMessage::PortInit { .. } => m::PORT_INIT,
            VmcMessage::PortEvent(_) => m::PORT_EVENT,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            VmcMessage::Data(data) => {
                w.bytes(data);
            }
            VmcMessage::Compressed {
                uncompressed_size,
                lz4,
            } => {
                w.u8(m::COMPRESSION_LZ4).u32(uncompressed_size).bytes(lz4);
            }
            VmcMessage::PortInit { name, opened } => {
                // u32 name_size (with its NUL), u32 offset of the name from the body's
                // start, u8 opened, then the name.
                let name_size = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
                let start = w.len();
                w.u32(name_size).u32(0).u8(u8::from(opened));
                let offset = u32::try_from(w.len() - start).unwrap_or(u32::MAX);
                w.patch_u32(start + 4, offset);
                w.bytes(name.as_bytes()).u8(0);
            }
            VmcMessage::PortEvent(event) => {
                w.u8(event);
            }
        }
    }
}

/// `data` as the message that carries it: LZ4 when the client takes it, the data is
/// above the threshold and compression makes it smaller. Returns the compressed block.
pub(crate) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() <= COMPRESS_THRESHOLD {
        return None;
    }
    let block = lz4_flex::block::compress(data);
    (block.len() < data.len()).then_some(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

    #[test]
    fn port_init_layout() {
        let body = body_of(&VmcMessage::PortInit {
            name: "org.example.test",
            opened: true,
        });
        let mut expect = Vec::new();
        expect.extend_from_slice(&17u32.to_le_bytes());
        expect.extend_from_slice(&9u32.to_le_bytes());
        expect.push(1);
        expect.extend_from_slice(b"org.example.test\0");
        assert_eq!(body, expect);
        assert_eq!(
            VmcMessage::PortInit {
                name: "",
                opened: false
            }
            .msg_type(),
            201
        );
    }

    #[test]
    fn data_event_and_compressed_layouts() {
        assert_eq!(body_of(&VmcMessage::Data(b"abc")), b"abc");
        assert_eq!(VmcMessage::Data(b"").msg_type(), 101);
        assert_eq!(body_of(&VmcMessage::PortEvent(1)), [1]);
        assert_eq!(VmcMessage::PortEvent(1).msg_type(), 202);
        let msg = VmcMessage::Compressed {
            uncompressed_size: 0x0102_0304,
            lz4: &[9, 8],
        };
        assert_eq!(msg.msg_type(), 102);
        assert_eq!(body_of(&msg), [1, 4, 3, 2, 1, 9, 8]);
    }

    #[test]
    fn client_messages_parse() {
        assert_eq!(
            parse(101, b"hello", 10),
            Ok(Some(VmcClientMessage::Data(b"hello")))
        );
        assert_eq!(
            parse(201, &[0], 10),
            Ok(Some(VmcClientMessage::PortEvent(0)))
        );
        assert!(parse(201, &[], 10).is_err());
        assert!(parse(201, &[0, 1], 10).is_err());
        assert_eq!(parse(150, &[], 10), Ok(None));
    }

    #[test]
    fn compressed_data_round_trips_within_its_bound() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let block = compress(&data).expect("repetitive data compresses");
        let body = body_of(&VmcMessage::Compressed {
            uncompressed_size: data.len() as u32,
            lz4: &block,
        });
        assert_eq!(
            parse(102, &body, 5000),
            Ok(Some(VmcClientMessage::Decompressed(data.clone())))
        );
        assert_eq!(
            parse(102, &body, 4999),
            Err(BadVmc("uncompressed size over the limit"))
        );
        // A size that lies either way is refused.
        let mut lying = body.clone();
        lying[1..5].copy_from_slice(&4000u32.to_le_bytes());
        assert!(parse(102, &lying, 5000).is_err());
        lying[1..5].copy_from_slice(&4999u32.to_le_bytes());
        assert!(parse(102, &lying, 5000).is_err());
        assert!(parse(102, &[1, 0, 0], 5000).is_err());
        assert!(parse(102, &[7, 0, 0, 0, 0], 5000).is_err());
        assert_eq!(
            parse(102, &[0, 5, 6], 5000),
            Ok(Some(VmcClientMessage::Decompressed(vec![5, 6])))
        );
    }

    #[test]
    fn small_or_random_data_is_not_compressed() {
        assert_eq!(compress(&[0; COMPRESS_THRESHOLD]), None);
        assert!(compress(&[0; COMPRESS_THRESHOLD + 1]).is_some());
        let mut x = 1u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }
}
