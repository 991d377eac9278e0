//! Message framing after the link: `SpiceMiniDataHeader` (u16 type, u32 size) when both
//! sides announced MINI_HEADER, `SpiceDataHeader` (u64 serial, u16 type, u32 size,
//! u32 sub_list) otherwise.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Mini,
    Full,
}

impl HeaderKind {
    pub(crate) const fn header_len(self) -> usize {
        match self {
            HeaderKind::Mini => 6,
            HeaderKind::Full => 18,
        }
    }

    /// Where the body size sits in the header (after the type, and in the full header
    /// after the serial too).
    pub(crate) const fn size_offset(self) -> usize {
        match self {
            HeaderKind::Mini => 2,
            HeaderKind::Full => 10,
        }
    }

    /// Appends a header for a body of `size` bytes.
    pub(crate) fn encode(self, serial: u64, msg_type: u16, size: u32, out: &mut Vec<u8>) {
        if self == HeaderKind::Full {
            out.extend_from_slice(&serial.to_le_bytes());
        }
        out.extend_from_slice(&msg_type.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        if self == HeaderKind::Full {
            out.extend_from_slice(&0u32.to_le_bytes());
        }
    }

    /// (type, size) from exactly `len()` bytes.
    fn decode(self, h: &[u8]) -> (u16, u32) {
        let at = if self == HeaderKind::Full { 8 } else { 0 };
        (
            u16::from_le_bytes([h[at], h[at + 1]]),
            u32::from_le_bytes([h[at + 2], h[at + 3], h[at + 4], h[at + 5]]),
        )
    }
}

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub msg_type: u16,
    pub body: Vec<u8>,
}

/// Appends one framed message to `out`.
#[cfg(test)]
pub(crate) fn encode(kind: HeaderKind, serial: u64, msg_type: u16, body: &[u8], out: &mut Vec<u8>) {
    encode_in_place(kind, serial, msg_type, out, |o| o.extend_from_slice(body));
}

/// Appends one framed message whose body `write_body` appends to `out` in place (no
/// intermediate buffer); the header's size is filled in afterwards.
pub(crate) fn encode_in_place(
    kind: HeaderKind,
    serial: u64,
    msg_type: u16,
    out: &mut Vec<u8>,
    write_body: impl FnOnce(&mut Vec<u8>),
) {
    let header_at = out.len();
    kind.encode(serial, msg_type, 0, out);
    let body_at = out.len();
    write_body(out);
    let size = (out.len() - body_at) as u32;
    let size_at = header_at + kind.size_offset();
    out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    pub msg_type: u16,
    pub size: u32,
}

/// Splits a received byte stream into messages; bodies larger than `max_body` are an
/// error (the connection must be closed), so a client cannot make us buffer gigabytes.
pub(crate) struct Deframer {
    kind: HeaderKind,
    max_body: usize,
    buf: Vec<u8>,
}

impl Deframer {
    pub(crate) fn new(kind: HeaderKind, max_body: usize) -> Deframer {
        Deframer {
            kind,
            max_body,
            buf: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if any.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, TooLarge> {
        let hl = self.kind.header_len();
        if self.buf.len() < hl {
            return Ok(None);
        }
        let (msg_type, size) = self.kind.decode(&self.buf[..hl]);
        if size as usize > self.max_body {
            return Err(TooLarge { msg_type, size });
        }
        let total = hl + size as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let body = self.buf[hl..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(Message { msg_type, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mini_round_trip_split_anywhere() {
        let mut bytes = Vec::new();
        encode(HeaderKind::Mini, 1, 104, &[], &mut bytes);
        encode(HeaderKind::Mini, 2, 105, &[1, 0], &mut bytes);
        for split in 0..bytes.len() {
            let mut d = Deframer::new(HeaderKind::Mini, 64);
            d.push(&bytes[..split]);
            let mut got = vec![];
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            d.push(&bytes[split..]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            assert_eq!(got.len(), 2);
            assert_eq!(
                got[1],
                Message {
                    msg_type: 105,
                    body: vec![1, 0]
                }
            );
        }
    }

    #[test]
    fn size_is_filled_in_after_the_body() {
        for kind in [HeaderKind::Mini, HeaderKind::Full] {
            let mut bytes = vec![0xAA];
            encode_in_place(kind, 5, 7, &mut bytes, |o| o.extend_from_slice(&[1, 2, 3]));
            let mut d = Deframer::new(kind, 16);
            d.push(&bytes[1..]);
            let m = d.next_message().unwrap().unwrap();
            assert_eq!((m.msg_type, m.body), (7, vec![1, 2, 3]));
            assert_eq!(d.next_message().unwrap(), None);
        }
    }

    #[test]
    fn full_header_layout() {
        let mut bytes = Vec::new();
        encode(HeaderKind::Full, 7, 3, &[9], &mut bytes);
        assert_eq!(bytes.len(), 18 + 1);
        assert_eq!(bytes[0], 7);
        assert_eq!(&bytes[8..10], &[3, 0]);
        let mut d = Deframer::new(HeaderKind::Full, 16);
        d.push(&bytes);
        assert_eq!(d.next_message().unwrap().unwrap().body, vec![9]);
    }

    #[test]
    fn oversized_body_is_refused_before_buffering() {
        let mut d = Deframer::new(HeaderKind::Mini, 16);
        let mut bytes = Vec::new();
        HeaderKind::Mini.encode(0, 1, u32::MAX, &mut bytes);
        d.push(&bytes);
        assert_eq!(
            d.next_message(),
            Err(TooLarge {
                msg_type: 1,
                size: u32::MAX
            })
        );
    }
}
