//! Where a TLS connection's writes end: at SPICE message boundaries.
//!
//! spice-gtk reads a TLS channel message by message and, after each, waits for the socket
//! to become readable before it reads the next one. Bytes that OpenSSL already decrypted
//! into its own buffer do not make the socket readable, so a TLS record that carries the
//! start of the next message leaves that message waiting until more data arrives (seen as
//! a display band shown a second late). The C server writes message by message; so do we:
//! one `SSL_write` never crosses the end of a message.

use crate::proto::frame::HeaderKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageBoundaries {
    header: HeaderKind,
    /// Bytes left before the next boundary; 0 = a header starts the unwritten bytes.
    left: usize,
}

impl MessageBoundaries {
    /// After `raw_prefix` bytes that are not framed (the link result).
    pub(crate) fn new(header: HeaderKind, raw_prefix: usize) -> MessageBoundaries {
        MessageBoundaries {
            header,
            left: raw_prefix,
        }
    }

    /// How much of `unwritten` the next write may take.
    pub(crate) fn limit(&mut self, unwritten: &[u8]) -> usize {
        if self.left == 0 {
            let header_len = self.header.header_len();
            let size_at = self.header.size_offset();
            let Some(size) = unwritten
                .get(size_at..size_at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
            else {
                // The outbox only holds whole messages; never stall on a short one.
                return unwritten.len();
            };
            self.left = header_len + size as usize;
        }
        self.left.min(unwritten.len())
    }

    /// `n` bytes (at most the last `limit`) went out.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.left = self.left.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::encode;

    /// The write sizes a connection makes when each write takes everything it may.
    fn writes(header: HeaderKind, bytes: &[u8], raw: usize, max_write: usize) -> Vec<usize> {
        let mut b = MessageBoundaries::new(header, raw);
        let mut at = 0;
        let mut sizes = Vec::new();
        while at < bytes.len() {
            let n = b.limit(&bytes[at..]).min(max_write);
            b.wrote(n);
            at += n;
            sizes.push(n);
        }
        sizes
    }

    #[test]
    fn writes_end_at_each_message() {
        for header in [HeaderKind::Mini, HeaderKind::Full] {
            let h = header.header_len();
            let mut bytes = vec![0, 0, 0, 0]; // link result
            encode(header, 1, 101, &[7; 10], &mut bytes);
            encode(header, 2, 102, &[], &mut bytes);
            encode(header, 3, 103, &[8; 3], &mut bytes);
            assert_eq!(
                writes(header, &bytes, 4, usize::MAX),
                vec![4, h + 10, h, h + 3]
            );
            // A short write resumes inside the same message.
            assert_eq!(
                writes(header, &bytes, 4, 5),
                [vec![4], chunks(h + 10, 5), chunks(h, 5), chunks(h + 3, 5)].concat()
            );
        }
    }

    fn chunks(total: usize, max: usize) -> Vec<usize> {
        (0..total)
            .step_by(max)
            .map(|s| max.min(total - s))
            .collect()
    }
}
