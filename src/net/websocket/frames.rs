//! RFC 6455 frames, sans I/O: the client's frames decoded into the SPICE byte stream,
//! and the headers of ours.
//!
//! Data frames are relayed as they arrive, never assembled, so a frame costs no memory
//! whatever its length; only a control frame's payload (at most 125 bytes) is kept, and
//! only the latest ping's pong waits to be sent. Client frames must be masked and binary
//! (SPICE is binary; spice-server also accepts text and unmasked frames, we close).

use std::fmt;

/// The longest client data frame accepted. SPICE client messages are small (the biggest,
/// agent data, come in chunks of at most 2 KiB); the cap only refuses absurd lengths,
/// since payloads are relayed, not buffered.
pub(crate) const MAX_CLIENT_FRAME: u64 = 1 << 24;
/// RFC 6455 section 5.5.
const MAX_CONTROL: usize = 125;
/// Room for the longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASKED: u8 = 0x80;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Close status codes (RFC 6455 section 7.4.1).
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const TOO_BIG: u16 = 1009;

/// A client frame that breaks the protocol (or our limits): the connection is closed
/// with `close_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    Unmasked,
    Text,
    ReservedBits,
    UnknownOpcode(u8),
    FragmentedControl,
    LongControl(u64),
    TooLong(u64),
    ContinuationWithoutStart,
    DataInsideFragmentedMessage,
}

impl Violation {
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Violation::Text => UNSUPPORTED_DATA,
            Violation::TooLong(_) => TOO_BIG,
            _ => PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Unmasked => write!(f, "client frame not masked"),
            Violation::Text => write!(f, "text frame (SPICE is binary)"),
            Violation::ReservedBits => write!(f, "frame with reserved bits set"),
            Violation::UnknownOpcode(op) => write!(f, "frame with unknown opcode {op:#x}"),
            Violation::FragmentedControl => write!(f, "fragmented control frame"),
            Violation::LongControl(n) => write!(f, "control frame of {n} bytes"),
            Violation::TooLong(n) => {
                write!(f, "frame of {n} bytes (limit {MAX_CLIENT_FRAME})")
            }
            Violation::ContinuationWithoutStart => write!(f, "continuation frame out of place"),
            Violation::DataInsideFragmentedMessage => {
                write!(f, "new data frame inside a fragmented message")
            }
        }
    }
}

/// The frame being received.
#[derive(Debug, Clone, Copy)]
struct Frame {
    opcode: u8,
    mask: [u8; 4],
    len: u64,
    /// Payload bytes received so far.
    done: u64,
}

impl Frame {
    fn left(&self) -> u64 {
        self.len - self.done
    }

    /// Unmasks `bytes`, the payload from offset `done` on.
    fn unmask(&self, bytes: &mut [u8]) {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b ^= self.mask[((self.done + i as u64) % 4) as usize];
        }
    }
}

/// What one `decode` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Decoded {
    /// Input bytes used (the rest must be given again).
    pub consumed: usize,
    /// SPICE bytes written to the output.
    pub produced: usize,
}

/// The client's frames, decoded.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    header: [u8; MAX_HEADER],
    header_len: usize,
    frame: Option<Frame>,
    /// A data message was begun without FIN: continuation frames follow.
    fragmented: bool,
    control: Vec<u8>,
    /// The latest ping's payload, to answer (an older unanswered ping is dropped, as
    /// RFC 6455 section 5.5.3 allows).
    pong: Option<Vec<u8>>,
    /// The client sent a close frame: our answer's payload (its status code, if any).
    close: Option<Vec<u8>>,
    close_sent: bool,
}

impl Decoder {
    /// Decodes `input` into `out` until the input is used up, `out` is full or the
    /// client closed. Control frames are handled here (see `replies`).
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<Decoded, Violation> {
        let mut d = Decoded::default();
        while d.consumed < input.len() && !self.peer_closed() {
            let rest = &input[d.consumed..];
            let Some(mut frame) = self.frame else {
                d.consumed += self.take_header(rest)?;
                continue;
            };
            let n = usize::try_from(frame.left())
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let n = if frame.opcode & CLOSE == 0 {
                let n = n.min(out.len() - d.produced);
                if n == 0 {
                    break;
                }
                let dst = &mut out[d.produced..d.produced + n];
                dst.copy_from_slice(&rest[..n]);
                frame.unmask(dst);
                d.produced += n;
                n
            } else {
                let start = self.control.len();
                self.control.extend_from_slice(&rest[..n]);
                frame.unmask(&mut self.control[start..]);
                n
            };
            d.consumed += n;
            frame.done += n as u64;
            self.frame = Some(frame);
            if frame.left() == 0 {
                self.end_frame(frame);
            }
        }
        Ok(d)
    }

    /// Reads header bytes from `rest`; returns how many it took.
    fn take_header(&mut self, rest: &[u8]) -> Result<usize, Violation> {
        let need = self.header_needed() - self.header_len;
        let n = need.min(rest.len());
        self.header[self.header_len..self.header_len + n].copy_from_slice(&rest[..n]);
        self.header_len += n;
        if self.header_len == self.header_needed() {
            let frame = self.parse_header()?;
            self.header_len = 0;
            self.frame = Some(frame);
            if frame.len == 0 {
                self.end_frame(frame);
            }
        }
        Ok(n)
    }

    /// The header's full length, as far as its bytes so far tell.
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let length_bytes = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & MASKED != 0 { 4 } else { 0 };
        2 + length_bytes + mask
    }

    fn parse_header(&mut self) -> Result<Frame, Violation> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let fin = b0 & FIN != 0;
        let opcode = b0 & 0x0F;
        if b0 & RSV != 0 {
            return Err(Violation::ReservedBits);
        }
        match opcode {
            TEXT => return Err(Violation::Text),
            CONTINUATION | BINARY | CLOSE | PING | PONG => {}
            other => return Err(Violation::UnknownOpcode(other)),
        }
        if b1 & MASKED == 0 {
            return Err(Violation::Unmasked);
        }
        let (len, at) = match b1 & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                4,
            ),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.header[2..10]);
                (u64::from_be_bytes(be), 10)
            }
            n => (u64::from(n), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&self.header[at..at + 4]);
        if opcode & CLOSE != 0 {
            if !fin {
                return Err(Violation::FragmentedControl);
            }
            if len > MAX_CONTROL as u64 {
                return Err(Violation::LongControl(len));
            }
            self.control.clear();
        } else {
            if len > MAX_CLIENT_FRAME {
                return Err(Violation::TooLong(len));
            }
            match (opcode, self.fragmented) {
                (CONTINUATION, false) => return Err(Violation::ContinuationWithoutStart),
                (BINARY, true) => return Err(Violation::DataInsideFragmentedMessage),
                _ => {}
            }
            self.fragmented = !fin;
        }
        Ok(Frame {
            opcode,
            mask,
            len,
            done: 0,
        })
    }

    fn end_frame(&mut self, frame: Frame) {
        self.frame = None;
        match frame.opcode {
            PING => self.pong = Some(std::mem::take(&mut self.control)),
            // The status code back, without the reason (RFC 6455 section 5.5.1).
            CLOSE => self.close = Some(self.control.get(..2).unwrap_or_default().to_vec()),
            _ => {}
        }
    }

    /// The client sent a close frame: nothing after it is read.
    pub(crate) fn peer_closed(&self) -> bool {
        self.close.is_some()
    }

    /// Control frames owed to the client (a pong, the close answer), taken once.
    pub(crate) fn replies(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(payload) = self.pong.take() {
            control_frame(PONG, &payload, &mut out);
        }
        if let Some(payload) = self.close.as_ref().filter(|_| !self.close_sent) {
            control_frame(CLOSE, payload, &mut out);
            self.close_sent = true;
        }
        out
    }

    pub(crate) fn has_replies(&self) -> bool {
        self.pong.is_some() || (self.close.is_some() && !self.close_sent)
    }
}

fn control_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let payload = &payload[..payload.len().min(MAX_CONTROL)];
    out.push(FIN | opcode);
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
}

/// Our close frame for a client that broke the protocol.
pub(crate) fn close_frame(code: u16) -> Vec<u8> {
    let mut out = Vec::new();
    control_frame(CLOSE, &code.to_be_bytes(), &mut out);
    out
}

/// The header of one server data frame (binary, final, unmasked) of `len` bytes.
pub(crate) fn data_header(len: usize, out: &mut Vec<u8>) {
    out.push(FIN | BINARY);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// A client frame (masked) as a browser sends it; for tests and the fuzz target.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn client_frame(fin: bool, opcode: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    data_header(payload.len(), &mut out);
    out[0] = if fin { FIN } else { 0 } | opcode;
    out[1] |= MASKED;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Decodes `input` in pieces of `step` into reads of at most `read` bytes.
    fn decode_all(dec: &mut Decoder, input: &[u8], step: usize, read: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut at = 0;
        while at < input.len() && !dec.peer_closed() {
            let end = (at + step).min(input.len());
            let mut chunk_at = at;
            while chunk_at < end {
                let mut out = vec![0u8; read];
                let d = dec.decode(&input[chunk_at..end], &mut out).unwrap();
                got.extend_from_slice(&out[..d.produced]);
                chunk_at += d.consumed;
                if d.consumed == 0 {
                    break;
                }
            }
            at = end;
        }
        got
    }

    #[test]
    fn rfc_example_masked_frame_unmasks() {
        // RFC 6455 section 5.7: a masked "Hello" (sent as binary here).
        let input = [
            0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut out = [0u8; 16];
        let d = Decoder::default().decode(&input, &mut out).unwrap();
        assert_eq!(&out[..d.produced], b"Hello");
        assert_eq!(d.consumed, input.len());
    }

    #[test]
    fn frames_of_every_length_round_trip_in_any_pieces() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let wire = client_frame(true, BINARY, MASK, &payload);
            for (step, read) in [(wire.len(), len.max(1)), (1, 3), (1000, 777), (13, 65536)] {
                let got = decode_all(&mut Decoder::default(), &wire, step, read);
                assert!(got == payload, "len {len} step {step} read {read}");
            }
        }
    }

    #[test]
    fn our_headers_use_the_shortest_length_form() {
        for (len, header) in [
            (5, vec![0x82, 5]),
            (126, vec![0x82, 126, 0, 126]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut out = Vec::new();
            data_header(len, &mut out);
            assert_eq!(out, header);
        }
    }

    #[test]
    fn fragments_join_and_control_frames_between_them_are_answered() {
        let mut wire = client_frame(false, BINARY, MASK, b"SPI");
        wire.extend(client_frame(true, PING, [1, 2, 3, 4], b"are you there"));
        wire.extend(client_frame(false, CONTINUATION, [9, 9, 9, 9], b"CE "));
        wire.extend(client_frame(true, PONG, [5, 5, 5, 5], b"unsolicited"));
        wire.extend(client_frame(true, CONTINUATION, [0, 1, 0, 1], b"link"));
        for step in [1, 5, wire.len()] {
            let mut dec = Decoder::default();
            assert_eq!(decode_all(&mut dec, &wire, step, 4), b"SPICE link");
            let mut pong = Vec::new();
            control_frame(PONG, b"are you there", &mut pong);
            assert_eq!(dec.replies(), pong);
            assert!(!dec.has_replies() && dec.replies().is_empty());
        }
    }

    #[test]
    fn only_the_latest_ping_is_answered() {
        let mut wire = client_frame(true, PING, MASK, b"one");
        wire.extend(client_frame(true, PING, MASK, b"two"));
        let mut dec = Decoder::default();
        decode_all(&mut dec, &wire, wire.len(), 8);
        assert_eq!(dec.replies(), [&[0x8A, 3][..], b"two"].concat());
    }

    #[test]
    fn close_is_answered_with_its_code_and_ends_the_input() {
        let mut wire = client_frame(true, BINARY, MASK, b"ab");
        wire.extend(client_frame(
            true,
            CLOSE,
            MASK,
            &[0x03, 0xE8, b'b', b'y', b'e'],
        ));
        wire.extend(client_frame(true, BINARY, MASK, b"after close"));
        let mut dec = Decoder::default();
        let mut out = [0u8; 64];
        let d = dec.decode(&wire, &mut out).unwrap();
        assert_eq!(&out[..d.produced], b"ab");
        assert!(dec.peer_closed());
        assert!(d.consumed < wire.len(), "nothing after the close is read");
        assert_eq!(dec.replies(), vec![0x88, 2, 0x03, 0xE8]);
        assert!(dec.replies().is_empty(), "one close answer");
    }

    #[test]
    fn malformed_frames_are_violations_with_their_close_code() {
        let mut unmasked = client_frame(true, BINARY, MASK, b"x");
        unmasked[1] &= !MASKED;
        let mut reserved = client_frame(true, BINARY, MASK, b"x");
        reserved[0] |= 0x40;
        let mut huge = vec![0x82, 0xFF];
        huge.extend((MAX_CLIENT_FRAME + 1).to_be_bytes());
        huge.extend(MASK);
        let mut fragmented_ping = client_frame(true, PING, MASK, b"x");
        fragmented_ping[0] &= !FIN;
        let cases = [
            (unmasked, Violation::Unmasked, PROTOCOL_ERROR),
            (
                client_frame(true, TEXT, MASK, b"hi"),
                Violation::Text,
                UNSUPPORTED_DATA,
            ),
            (reserved, Violation::ReservedBits, PROTOCOL_ERROR),
            (
                client_frame(true, 0x3, MASK, b""),
                Violation::UnknownOpcode(3),
                PROTOCOL_ERROR,
            ),
            (huge, Violation::TooLong(MAX_CLIENT_FRAME + 1), TOO_BIG),
            (
                client_frame(true, PING, MASK, &[0; 126]),
                Violation::LongControl(126),
                PROTOCOL_ERROR,
            ),
            (
                fragmented_ping,
                Violation::FragmentedControl,
                PROTOCOL_ERROR,
            ),
            (
                client_frame(true, CONTINUATION, MASK, b"x"),
                Violation::ContinuationWithoutStart,
                PROTOCOL_ERROR,
            ),
            (
                [
                    client_frame(false, BINARY, MASK, b"a"),
                    client_frame(true, BINARY, MASK, b"b"),
                ]
                .concat(),
                Violation::DataInsideFragmentedMessage,
                PROTOCOL_ERROR,
            ),
        ];
        for (wire, violation, code) in cases {
            let mut out = [0u8; 256];
            let mut dec = Decoder::default();
            // Fed byte by byte: the violation shows as soon as the header does.
            let err = wire
                .iter()
                .find_map(|b| dec.decode(std::slice::from_ref(b), &mut out).err());
            assert_eq!(err, Some(violation));
            assert_eq!(violation.close_code(), code);
            assert!(!violation.to_string().is_empty());
            assert_eq!(close_frame(code), [0x88, 2, (code >> 8) as u8, code as u8]);
        }
    }
}
