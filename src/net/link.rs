//! Reads a client's link request from a byte stream (sans I/O: fed bytes, returns the
//! request once complete or the link error to answer with).

use crate::proto::link::{LinkError, LinkHeader, LinkMess, HEADER_SIZE};

#[derive(Default)]
pub struct LinkReader {
    header: Option<LinkHeader>,
    buf: Vec<u8>,
}

impl LinkReader {
    /// How many more bytes the reader wants (never more than the link message size).
    pub fn wanted(&self) -> usize {
        match &self.header {
            None => HEADER_SIZE - self.buf.len(),
            Some(h) => h.size as usize - self.buf.len(),
        }
    }

    /// Feeds at most `wanted()` bytes. Returns the request when complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<LinkMess>, LinkError> {
        debug_assert!(data.len() <= self.wanted());
        self.buf.extend_from_slice(data);
        if self.header.is_none() && self.buf.len() == HEADER_SIZE {
            let mut raw = [0u8; HEADER_SIZE];
            raw.copy_from_slice(&self.buf);
            self.header = Some(LinkHeader::parse(&raw)?);
            self.buf.clear();
        }
        match &self.header {
            Some(h) if self.buf.len() == h.size as usize => LinkMess::parse(&self.buf).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Vec<u8> {
        let mut body = vec![0u8; 18];
        body[4] = 1; // main channel
        body[14] = 18; // caps offset
        let mut out = LinkHeader::encode(body.len() as u32).to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn byte_by_byte() {
        let bytes = request();
        let mut r = LinkReader::default();
        let mut result = None;
        for b in &bytes {
            assert!(r.wanted() >= 1);
            result = r.feed(&[*b]).unwrap();
        }
        assert_eq!(result.unwrap().channel_type, 1);
    }

    #[test]
    fn bad_magic_is_reported_after_the_header() {
        let mut bytes = request();
        bytes[1] = 0;
        let mut r = LinkReader::default();
        assert_eq!(r.feed(&bytes[..16]), Err(LinkError::InvalidMagic));
    }
}
