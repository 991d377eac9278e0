//! The link handshake of one connection, sans I/O: fed bytes, it says what to send and
//! when the channel is ready (or refused).
//!
//! request → (hub checks it) → reply with a fresh RSA key → auth mechanism (when the
//! client can select) → encrypted ticket → result. With SASL on, the mechanism is SASL
//! and its exchange (`sasl.rs`) replaces the ticket.

use super::auth::{KeyPool, TicketKey, TICKET_BYTES};
use super::sasl::{Backend, Exchange, Progress, SecurityLayer};
use crate::proto::caps::{common, Caps};
use crate::proto::link::{
    encode_link_error, encode_link_reply, LinkError, LinkHeader, LinkMess, HEADER_SIZE,
    PUBKEY_BYTES,
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

/// `SPICE_COMMON_CAP_AUTH_SPICE` and `_SASL` as the mechanism word.
const MECHANISM_SPICE: u32 = common::AUTH_SPICE;
const MECHANISM_SASL: u32 = common::AUTH_SASL;

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
    /// The client chose SASL: hand `start_sasl` a libsasl2 context for this link.
    StartSasl,
    /// SASL authenticated the client: send these bytes as they are, put the security
    /// layer (`take_security_layer`) under everything after them, and open the channel
    /// without a ticket.
    SaslAccepted(Vec<u8>),
}

enum Phase {
    Request(LinkReader),
    Mechanism(Vec<u8>),
    Ticket(Vec<u8>),
    /// Waiting for the connection to call `start_sasl`.
    SaslStarting,
    Sasl(Box<Exchange>),
    Done,
}

pub(crate) struct Link {
    phase: Phase,
    request: Option<LinkMess>,
    key: Option<TicketKey>,
    /// Where the ticket key comes from (none: generated when the request arrives).
    keys: Option<KeyPool>,
    /// The host vouched for the client (`add_client` with `skip_auth`): no SASL either.
    skip_auth: bool,
    /// SASL is on (`spice_server_set_sasl`), as the hub said with the request.
    sasl: bool,
    /// The finished exchange, kept for its security layer.
    sasl_done: Option<Box<Exchange>>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            phase: Phase::Request(LinkReader::default()),
            request: None,
            key: None,
            keys: None,
            skip_auth: false,
            sasl: false,
            sasl_done: None,
        }
    }
}

/// The server's caps for a link reply: common caps and the channel's own.
pub(crate) struct ServerCaps {
    pub common: Vec<u32>,
    pub channel: Vec<u32>,
    /// SASL replaces the ticket (`spice_server_set_sasl`).
    pub sasl: bool,
}

impl Link {
    /// A link whose ticket key comes from `keys`, made ahead off the reactor thread.
    pub(crate) fn with_keys(keys: KeyPool) -> Link {
        Link {
            keys: Some(keys),
            ..Link::default()
        }
    }

    /// A client the host vouched for (`skip_auth`): neither ticket nor SASL.
    pub(crate) fn vouched(mut self, skip_auth: bool) -> Link {
        self.skip_auth = skip_auth;
        self
    }

    pub(crate) fn wanted(&self) -> usize {
        match &self.phase {
            Phase::Request(r) => r.wanted(),
            Phase::Mechanism(b) => 4 - b.len(),
            Phase::Ticket(b) => TICKET_BYTES - b.len(),
            Phase::Sasl(e) => e.wanted(),
            Phase::SaslStarting | Phase::Done => 0,
        }
    }

    /// SASL authenticates this link (the server has it on, the host did not vouch).
    fn uses_sasl(&self) -> bool {
        self.sasl && !self.skip_auth
    }

    /// After `Step::StartSasl`: runs the exchange over `backend` (`plain`: no TLS under
    /// the link, so a security layer is required). Returns the mechanism list to send.
    pub(crate) fn start_sasl(
        &mut self,
        backend: Result<Box<dyn Backend>, String>,
        plain: bool,
    ) -> Step {
        if !matches!(self.phase, Phase::SaslStarting) {
            return Step::Continue;
        }
        match backend.and_then(|b| Exchange::begin(b, plain)) {
            Ok((exchange, mechanisms)) => {
                self.phase = Phase::Sasl(Box::new(exchange));
                Step::Send(mechanisms)
            }
            Err(e) => {
                crate::log_warn!("cannot start SASL: {e}");
                self.phase = Phase::Done;
                Step::Fail(vec![])
            }
        }
    }

    /// After `Step::SaslAccepted`: the security layer, when SASL negotiated one (plain
    /// links). `first`: bytes queued before it, which go out as they are.
    pub(crate) fn take_security_layer(&mut self, first: Vec<u8>) -> Option<SecurityLayer> {
        self.sasl_done.take().and_then(|e| e.into_layer(first))
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
                    let mut caps = match check(&request) {
                        Ok(caps) => caps,
                        Err(e) => return Step::Fail(encode_link_error(e)),
                    };
                    self.sasl = caps.sasl;
                    let client = Caps(request.common_caps.clone());
                    if self.uses_sasl() {
                        // As spice-server: SASL is offered instead of the ticket.
                        let mut common = Caps(std::mem::take(&mut caps.common));
                        common.clear(common::AUTH_SPICE);
                        common.set(common::AUTH_SASL);
                        caps.common = common.0;
                    }
                    // A client choosing SASL never reads the ticket key (spice-server
                    // sends zeros then, which also spares the key).
                    let key = if self.uses_sasl() && client.has(common::AUTH_SASL) {
                        None
                    } else {
                        match self
                            .keys
                            .as_ref()
                            .map_or_else(TicketKey::generate, KeyPool::take)
                        {
                            Ok(k) => Some(k),
                            Err(e) => {
                                crate::log_error!("cannot make a ticket key: {e:?}");
                                return Step::Fail(encode_link_error(LinkError::Error));
                            }
                        }
                    };
                    let public = key.as_ref().map_or([0; PUBKEY_BYTES], |k| *k.public_der());
                    let reply = encode_link_reply(&public, &caps.common, &caps.channel);
                    let selects = client.has(common::AUTH_SELECTION);
                    self.key = key;
                    self.request = Some(request);
                    if !selects && self.uses_sasl() {
                        crate::log_warn!(
                            "SASL enabled, but peer supports only spice authentication"
                        );
                        self.phase = Phase::Done;
                        let mut out = reply;
                        out.extend(encode_link_error(LinkError::VersionMismatch));
                        return Step::Fail(out);
                    }
                    self.phase = if selects {
                        Phase::Mechanism(Vec::new())
                    } else {
                        Phase::Ticket(Vec::new())
                    };
                    Step::Send(reply)
                }
            },
            Phase::Mechanism(buf) => {
                buf.extend_from_slice(data);
                if buf.len() < 4 {
                    return Step::Continue;
                }
                let mechanism = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                match mechanism {
                    MECHANISM_SASL if self.sasl => {
                        self.phase = Phase::SaslStarting;
                        Step::StartSasl
                    }
                    MECHANISM_SPICE if !self.uses_sasl() && self.key.is_some() => {
                        self.phase = Phase::Ticket(Vec::new());
                        Step::Continue
                    }
                    _ => {
                        crate::log_warn!(
                            "client asked for auth mechanism {mechanism}; {} served",
                            if self.uses_sasl() {
                                "only SASL is"
                            } else {
                                "only spice tickets are"
                            }
                        );
                        self.phase = Phase::Done;
                        Step::Fail(result(LinkError::InvalidData))
                    }
                }
            }
            Phase::Sasl(exchange) => match exchange.feed(data) {
                Progress::Continue => Step::Continue,
                Progress::Send(bytes) => Step::Send(bytes),
                Progress::Close(bytes) => {
                    self.phase = Phase::Done;
                    Step::Fail(bytes)
                }
                Progress::Accepted(bytes) => {
                    if let Phase::Sasl(e) = std::mem::replace(&mut self.phase, Phase::Done) {
                        self.sasl_done = Some(e);
                    }
                    Step::SaslAccepted(bytes)
                }
            },
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
            Phase::SaslStarting | Phase::Done => Step::Continue,
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
    use crate::net::sasl::tests::{mechanism, message, Fake};
    use crate::server::link_policy::LinkPolicy;
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
            sasl: false,
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

    fn with_sasl(_: &LinkMess) -> Result<ServerCaps, LinkError> {
        Ok(ServerCaps {
            common: LinkPolicy::common_caps(),
            channel: vec![],
            sasl: true,
        })
    }

    fn feed_sasl(link: &mut Link, bytes: &[u8]) -> Vec<Step> {
        let mut steps = vec![];
        let mut rest = bytes;
        while !rest.is_empty() && link.wanted() > 0 {
            let n = link.wanted().min(rest.len());
            let step = link.feed(&rest[..n], with_sasl);
            rest = &rest[n..];
            if step != Step::Continue {
                steps.push(step);
            }
        }
        steps
    }

    fn reply_caps(reply: &[u8]) -> (Caps, &[u8]) {
        let common = u32::from_le_bytes(reply[16 + 4 + 162 + 12..][..4].try_into().unwrap());
        (Caps(vec![common]), &reply[20..20 + 162])
    }

    const SASL_CLIENT: u32 = 0b1111; // selection, spice, sasl, mini header

    #[test]
    fn with_sasl_on_sasl_replaces_the_ticket() {
        let mut link = Link::default();
        let steps = feed_sasl(&mut link, &request(SASL_CLIENT));
        let [Step::Send(reply)] = &steps[..] else {
            panic!("{steps:?}")
        };
        let (caps, key) = reply_caps(reply);
        assert!(caps.has(common::AUTH_SASL) && !caps.has(common::AUTH_SPICE));
        assert!(caps.has(common::AUTH_SELECTION) && caps.has(common::MINI_HEADER));
        assert!(
            key.iter().all(|&b| b == 0),
            "no ticket key for a SASL client"
        );
        assert_eq!(
            feed_sasl(&mut link, &2u32.to_le_bytes()),
            vec![Step::StartSasl]
        );
        assert_eq!(link.wanted(), 0, "nothing read until SASL runs");
        let Step::Send(list) = link.start_sasl(Ok(Box::new(Fake::new(128))), true) else {
            panic!()
        };
        assert_eq!(&list[4..], b",FAKE,OTHER,");
        let mut hello = mechanism("FAKE");
        hello.extend(message(None));
        assert!(matches!(&feed_sasl(&mut link, &hello)[..], [Step::Send(_)]));
        let steps = feed_sasl(&mut link, &message(Some(b"right")));
        let [Step::SaslAccepted(last)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert_eq!(&last[last.len() - 4..], &0u32.to_le_bytes(), "accepted");
        assert!(link.take_security_layer(vec![]).is_some(), "plain: a layer");
        assert_eq!(link.request().unwrap().channel_type, 1);
    }

    #[test]
    fn with_sasl_on_tickets_are_refused_unless_the_host_vouched() {
        let mut link = Link::default();
        feed_sasl(&mut link, &request(0b1011));
        assert_eq!(
            feed_sasl(&mut link, &1u32.to_le_bytes()),
            vec![Step::Fail(result(LinkError::InvalidData))],
            "a ticket instead of SASL"
        );

        let mut link = Link::default();
        let steps = feed_sasl(&mut link, &request(0));
        let [Step::Fail(bytes)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert!(
            bytes.ends_with(&encode_link_error(LinkError::VersionMismatch)),
            "a client that cannot select is told so after the reply"
        );

        let mut link = Link::default().vouched(true);
        let steps = feed_sasl(&mut link, &request(SASL_CLIENT));
        let [Step::Send(reply)] = &steps[..] else {
            panic!()
        };
        let (caps, _) = reply_caps(reply);
        assert!(caps.has(common::AUTH_SPICE) && !caps.has(common::AUTH_SASL));
        let mut rest = 1u32.to_le_bytes().to_vec();
        rest.extend(encrypt(reply, b"\0"));
        assert_eq!(
            feed_sasl(&mut link, &rest),
            vec![Step::Authenticate(vec![])],
            "skip_auth: the ticket path, whose password the hub ignores"
        );
    }

    #[test]
    fn a_sasl_context_that_cannot_start_closes_the_link() {
        let mut link = Link::default();
        feed_sasl(&mut link, &request(SASL_CLIENT));
        feed_sasl(&mut link, &2u32.to_le_bytes());
        assert_eq!(
            link.start_sasl(Err("no conf".into()), false),
            Step::Fail(vec![])
        );
        assert_eq!(link.wanted(), 0);
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
