//! The link handshake of one connection, sans I/O: fed bytes, it says what to send and
//! when the channel is ready (or refused).
//!
//! request → (hub checks it) → reply with a fresh RSA key → auth mechanism (when the
//! client can select) → encrypted ticket → result.

use super::auth::{KeyPool, TicketKey, TICKET_BYTES};
use crate::proto::caps::{common, Caps};
use crate::proto::link::{
    encode_link_error, encode_link_reply, LinkError, LinkHeader, LinkMess, HEADER_SIZE,
};

#[derive(Default)]
pub(crate) struct LinkReader {
    header: Option<LinkHeader>,
    buf: Vec<u8>,
}

impl LinkReader {
    /// How many more bytes the reader wants (never more than the link message size).
    pub(crate) fn wanted(&self) -> usize {
        match &self.header {
            None => HEADER_SIZE - self.buf.len(),
            Some(h) => h.size as usize - self.buf.len(),
        }
    }

    /// Feeds at most `wanted()` bytes. Returns the request when complete.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<Option<LinkMess>, LinkError> {
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

/// `SPICE_COMMON_CAP_AUTH_SPICE` as the mechanism word.
const MECHANISM_SPICE: u32 = 1;

/// What the connection must do after feeding bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep reading.
    Continue,
    /// Send these bytes and keep reading.
    Send(Vec<u8>),
    /// Send these bytes, then close.
    Fail(Vec<u8>),
    /// Authenticated: the ticket's password for the hub to check.
    Authenticate(Vec<u8>),
}

enum Phase {
    Request(LinkReader),
    Mechanism(Vec<u8>),
    Ticket(Vec<u8>),
    Done,
}

pub(crate) struct Link {
    phase: Phase,
    request: Option<LinkMess>,
    key: Option<TicketKey>,
    /// Where the ticket key comes from (none: generated when the request arrives).
    keys: Option<KeyPool>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            phase: Phase::Request(LinkReader::default()),
            request: None,
            key: None,
            keys: None,
        }
    }
}

/// The server's caps for a link reply: common caps and the channel's own.
pub(crate) struct ServerCaps {
    pub common: Vec<u32>,
    pub channel: Vec<u32>,
}

impl Link {
    /// A link whose ticket key comes from `keys`, made ahead off the reactor thread.
    pub(crate) fn with_keys(keys: KeyPool) -> Link {
        Link {
            keys: Some(keys),
            ..Link::default()
        }
    }

    pub(crate) fn wanted(&self) -> usize {
        match &self.phase {
            Phase::Request(r) => r.wanted(),
            Phase::Mechanism(b) => 4 - b.len(),
            Phase::Ticket(b) => TICKET_BYTES - b.len(),
            Phase::Done => 0,
        }
    }

    pub(crate) fn request(&self) -> Option<&LinkMess> {
        self.request.as_ref()
    }

    /// Feeds at most `wanted()` bytes. `check` decides whether the request may proceed
    /// and with which caps.
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        check: impl FnOnce(&LinkMess) -> Result<ServerCaps, LinkError>,
    ) -> Step {
        match &mut self.phase {
            Phase::Request(reader) => match reader.feed(data) {
                Ok(None) => Step::Continue,
                Err(e) => {
                    crate::log_warn!("bad link request: {e:?}");
                    Step::Fail(encode_link_error(e))
                }
                Ok(Some(request)) => {
                    let caps = match check(&request) {
                        Ok(caps) => caps,
                        Err(e) => return Step::Fail(encode_link_error(e)),
                    };
                    let key = match self
                        .keys
                        .as_ref()
                        .map_or_else(TicketKey::generate, KeyPool::take)
                    {
                        Ok(k) => k,
                        Err(e) => {
                            crate::log_error!("cannot make a ticket key: {e:?}");
                            return Step::Fail(encode_link_error(LinkError::Error));
                        }
                    };
                    let reply = encode_link_reply(key.public_der(), &caps.common, &caps.channel);
                    let selects = Caps(request.common_caps.clone()).has(common::AUTH_SELECTION);
                    self.phase = if selects {
                        Phase::Mechanism(Vec::new())
                    } else {
                        Phase::Ticket(Vec::new())
                    };
                    self.key = Some(key);
                    self.request = Some(request);
                    Step::Send(reply)
                }
            },
            Phase::Mechanism(buf) => {
                buf.extend_from_slice(data);
                if buf.len() < 4 {
                    return Step::Continue;
                }
                let mechanism = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if mechanism != MECHANISM_SPICE {
                    crate::log_warn!("client asked for auth mechanism {mechanism}; only spice tickets are served");
                    self.phase = Phase::Done;
                    return Step::Fail(result(LinkError::InvalidData));
                }
                self.phase = Phase::Ticket(Vec::new());
                Step::Continue
            }
            Phase::Ticket(buf) => {
                buf.extend_from_slice(data);
                if buf.len() < TICKET_BYTES {
                    return Step::Continue;
                }
                let decrypted = self.key.as_ref().map(|k| k.decrypt(buf));
                self.phase = Phase::Done;
                match decrypted {
                    Some(Ok(password)) => Step::Authenticate(password),
                    _ => {
                        crate::log_warn!("client ticket does not decrypt");
                        Step::Fail(result(LinkError::PermissionDenied))
                    }
                }
            }
            Phase::Done => Step::Continue,
        }
    }
}

/// The bare u32 link result sent after the ticket.
pub(crate) fn result(error: LinkError) -> Vec<u8> {
    (error as u32).to_le_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::{PKey, Public};
    use openssl::rsa::Padding;

    fn request(common_caps: u32) -> Vec<u8> {
        let mut body = vec![0u8; 18];
        body[4] = 1; // main channel
        body[6] = 1; // one common cap word
        body[14] = 18; // caps offset
        body.extend_from_slice(&common_caps.to_le_bytes());
        let mut out = LinkHeader::encode(body.len() as u32).to_vec();
        out.extend(body);
        out
    }

    fn ok(_: &LinkMess) -> Result<ServerCaps, LinkError> {
        Ok(ServerCaps {
            common: vec![0xb],
            channel: vec![],
        })
    }

    fn feed_all(link: &mut Link, bytes: &[u8]) -> Vec<Step> {
        let mut steps = vec![];
        let mut rest = bytes;
        while !rest.is_empty() && link.wanted() > 0 {
            let n = link.wanted().min(rest.len());
            let step = link.feed(&rest[..n], ok);
            rest = &rest[n..];
            if step != Step::Continue {
                steps.push(step);
            }
        }
        steps
    }

    fn encrypt(reply: &[u8], password: &[u8]) -> Vec<u8> {
        let key: PKey<Public> = PKey::public_key_from_der(&reply[20..20 + 162]).unwrap();
        let rsa = key.rsa().unwrap();
        let mut out = vec![0u8; 128];
        rsa.public_encrypt(password, &mut out, Padding::PKCS1_OAEP)
            .unwrap();
        out
    }

    #[test]
    fn full_handshake_with_auth_selection() {
        let mut link = Link::default();
        let steps = feed_all(&mut link, &request(0b1011));
        let [Step::Send(reply)] = &steps[..] else {
            panic!("expected a reply, got {steps:?}")
        };
        let mut rest = 1u32.to_le_bytes().to_vec();
        rest.extend(encrypt(reply, b"pw\0"));
        assert_eq!(
            feed_all(&mut link, &rest),
            vec![Step::Authenticate(b"pw".to_vec())]
        );
        assert_eq!(link.request().unwrap().channel_type, 1);
    }

    #[test]
    fn old_clients_send_the_ticket_directly() {
        let mut link = Link::default();
        let steps = feed_all(&mut link, &request(0));
        let [Step::Send(reply)] = &steps[..] else {
            panic!()
        };
        let ticket = encrypt(reply, b"\0");
        assert_eq!(
            feed_all(&mut link, &ticket),
            vec![Step::Authenticate(vec![])]
        );
    }

    #[test]
    fn sasl_and_garbage_tickets_fail() {
        let mut link = Link::default();
        feed_all(&mut link, &request(0b1011));
        assert_eq!(
            feed_all(&mut link, &2u32.to_le_bytes()),
            vec![Step::Fail(result(LinkError::InvalidData))]
        );

        let mut link = Link::default();
        feed_all(&mut link, &request(0));
        assert_eq!(
            feed_all(&mut link, &[0x55; 128]),
            vec![Step::Fail(result(LinkError::PermissionDenied))]
        );
    }

    #[test]
    fn refused_request_gets_a_link_error() {
        let mut link = Link::default();
        let bytes = request(0);
        let step = link.feed(&bytes[..16], ok);
        assert_eq!(step, Step::Continue);
        let step = link.feed(&bytes[16..], |_| Err(LinkError::ChannelNotAvailable));
        assert_eq!(
            step,
            Step::Fail(encode_link_error(LinkError::ChannelNotAvailable))
        );
    }
}
