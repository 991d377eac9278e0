//! SASL authentication of a link, as spice-server's `red-stream.cpp` and spice-gtk speak
//! it, sans I/O. After the client selects `SPICE_COMMON_CAP_AUTH_SASL`:
//!
//! server: u32 length + mechanism list (",A,B,")
//! client: u32 length + mechanism name; u32 length + data (length counts a trailing NUL;
//!         0 means no data, which SASL tells apart from empty data)
//! server: u32 length + data (with its NUL, or 0) + u8 complete; the client steps again
//!         until complete. Then u32 0 (accepted), or u32 1 + u32 length + "Authentication
//!         failed\0" when a plain link did not get a security layer of at least 56 bits.
//!
//! Over TLS the cipher's bits are the external SSF and no layer runs. On a plain link the
//! negotiated layer (`sasl_encode`/`sasl_decode`) wraps every byte after the u32 0.

use crate::proto::link::{encode_link_error, LinkError};
use std::io::{self, ErrorKind, Read, Write};

/// spice-server's `SASL_MAX_MECHNAME_LEN`.
pub(crate) const MAX_MECHNAME_LEN: usize = 100;
/// spice-server's `SASL_DATA_MAX_LEN`: each client message and server reply.
pub(crate) const MAX_DATA_LEN: usize = 1024 * 1024;
/// Without TLS a security layer at least this strong is required (DES, "good for
/// Kerberos", as spice-server and spice-gtk both demand).
pub(crate) const MIN_PLAIN_SSF: u32 = 56;
const REJECTED: &[u8] = b"Authentication failed\0";

/// What libsasl2 answered to a start or step.
pub(crate) struct Output {
    pub data: Vec<u8>,
    /// SASL_OK (the exchange is over on our side) rather than SASL_CONTINUE.
    pub done: bool,
}

/// One link's SASL server context: libsasl2 in the server, a fake in tests.
pub(crate) trait Backend: Send {
    fn mechanisms(&mut self) -> Result<String, String>;
    fn start(&mut self, mechanism: &str, client: Option<&[u8]>) -> Result<Output, String>;
    fn step(&mut self, client: Option<&[u8]>) -> Result<Output, String>;
    /// The negotiated security layer's strength.
    fn ssf(&self) -> Option<u32>;
    fn username(&self) -> Option<String>;
    /// The largest plaintext `encode` takes at once.
    fn max_out(&self) -> usize;
    fn encode(&mut self, plain: &[u8]) -> Result<Vec<u8>, String>;
    fn decode(&mut self, wire: &[u8]) -> Result<Vec<u8>, String>;
}

impl Backend for crate::ffi::sasl::Conn {
    fn mechanisms(&mut self) -> Result<String, String> {
        crate::ffi::sasl::Conn::mechanisms(self)
    }
    fn start(&mut self, mechanism: &str, client: Option<&[u8]>) -> Result<Output, String> {
        let out = crate::ffi::sasl::Conn::start(self, mechanism, client)?;
        Ok(Output {
            data: out.data,
            done: out.done,
        })
    }
    fn step(&mut self, client: Option<&[u8]>) -> Result<Output, String> {
        let out = crate::ffi::sasl::Conn::step(self, client)?;
        Ok(Output {
            data: out.data,
            done: out.done,
        })
    }
    fn ssf(&self) -> Option<u32> {
        crate::ffi::sasl::Conn::ssf(self)
    }
    fn username(&self) -> Option<String> {
        crate::ffi::sasl::Conn::username(self)
    }
    fn max_out(&self) -> usize {
        // spice-gtk asks for 100000, we for 8192: libsasl2 reports the peer's.
        self.max_out()
            .map_or(4096, |n| n.clamp(1, 1 << 16) as usize)
    }
    fn encode(&mut self, plain: &[u8]) -> Result<Vec<u8>, String> {
        crate::ffi::sasl::Conn::encode(self, plain)
    }
    fn decode(&mut self, wire: &[u8]) -> Result<Vec<u8>, String> {
        crate::ffi::sasl::Conn::decode(self, wire)
    }
}

/// `sasl_server_init` with QEMU's app name (spice-server's default: "spice").
pub(crate) fn init(appname: Option<&str>) -> Result<(), String> {
    crate::ffi::sasl::init(appname.unwrap_or("spice"))
}

/// A libsasl2 context for one link. `external_ssf`: the TLS cipher's bits, none on a
/// plain link (then a layer of `MIN_PLAIN_SSF` is required).
pub(crate) fn new_backend(
    local: Option<std::net::SocketAddr>,
    remote: Option<std::net::SocketAddr>,
    external_ssf: Option<u32>,
) -> Result<Box<dyn Backend>, String> {
    let name = |a: std::net::SocketAddr| format!("{};{}", a.ip(), a.port());
    let conn = crate::ffi::sasl::Conn::new(
        local.map(name).as_deref(),
        remote.map(name).as_deref(),
        external_ssf,
    )?;
    Ok(Box::new(conn))
}

/// What the connection must do after feeding the exchange.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Continue,
    Send(Vec<u8>),
    /// Send these bytes (maybe none), then close.
    Close(Vec<u8>),
    /// Authenticated: send these bytes as they are; after them, the security layer if
    /// `Exchange::into_layer` gives one.
    Accepted(Vec<u8>),
}

enum Phase {
    MechanismLength,
    Mechanism(usize),
    DataLength,
    Data(usize),
    Over,
}

pub(crate) struct Exchange {
    backend: Box<dyn Backend>,
    /// No TLS under us: a security layer is required.
    plain: bool,
    mechanisms: String,
    /// The client's choice until `start` ran with it.
    mechanism: Option<String>,
    phase: Phase,
    buf: Vec<u8>,
    layer: bool,
}

fn u32_le(bytes: &[u8]) -> usize {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
}

impl Exchange {
    /// Starts the exchange: the mechanism list to send, or why SASL cannot run.
    pub(crate) fn begin(
        mut backend: Box<dyn Backend>,
        plain: bool,
    ) -> Result<(Exchange, Vec<u8>), String> {
        let mechanisms = backend.mechanisms()?;
        let mut out = (mechanisms.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(mechanisms.as_bytes());
        let exchange = Exchange {
            backend,
            plain,
            mechanisms,
            mechanism: None,
            phase: Phase::MechanismLength,
            buf: Vec::new(),
            layer: false,
        };
        Ok((exchange, out))
    }

    pub(crate) fn wanted(&self) -> usize {
        let total = match self.phase {
            Phase::MechanismLength | Phase::DataLength => 4,
            Phase::Mechanism(n) | Phase::Data(n) => n,
            Phase::Over => return 0,
        };
        total - self.buf.len()
    }

    fn close(&mut self, why: &str, bytes: Vec<u8>) -> Progress {
        crate::log_warn!("SASL authentication failed: {why}");
        self.phase = Phase::Over;
        Progress::Close(bytes)
    }

    /// Feeds at most `wanted()` bytes.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Progress {
        self.buf.extend_from_slice(data);
        if self.wanted() > 0 {
            return Progress::Continue;
        }
        let buf = std::mem::take(&mut self.buf);
        match self.phase {
            Phase::MechanismLength => {
                let len = u32_le(&buf);
                if !(1..=MAX_MECHNAME_LEN).contains(&len) {
                    return self.close(&format!("mechanism name of {len} bytes"), vec![]);
                }
                self.phase = Phase::Mechanism(len);
                Progress::Continue
            }
            Phase::Mechanism(_) => {
                let name = String::from_utf8_lossy(&buf).into_owned();
                let listed = self.mechanisms.contains(&format!(",{name},"));
                if name.contains(',') || name.contains('\0') || !listed {
                    return self.close(
                        &format!("mechanism '{name}' is not one of '{}'", self.mechanisms),
                        encode_link_error(LinkError::InvalidData),
                    );
                }
                self.mechanism = Some(name);
                self.phase = Phase::DataLength;
                Progress::Continue
            }
            Phase::DataLength => {
                let len = u32_le(&buf);
                if len > MAX_DATA_LEN {
                    // As spice-server: a link error before start, a hang-up after.
                    let bytes = if self.mechanism.is_some() {
                        encode_link_error(LinkError::InvalidData)
                    } else {
                        vec![]
                    };
                    return self.close(&format!("{len} bytes of client data"), bytes);
                }
                if len == 0 {
                    return self.run(None);
                }
                self.phase = Phase::Data(len);
                Progress::Continue
            }
            Phase::Data(_) => self.run(Some(buf)),
            Phase::Over => Progress::Continue,
        }
    }

    /// One `start` or `step` with the client's data (its trailing NUL dropped).
    fn run(&mut self, data: Option<Vec<u8>>) -> Progress {
        let client = data.as_deref().map(|d| &d[..d.len() - 1]);
        let result = match self.mechanism.take() {
            Some(mechanism) => self.backend.start(&mechanism, client),
            None => self.backend.step(client),
        };
        let output = match result {
            Ok(o) => o,
            Err(e) => return self.close(&e, vec![]),
        };
        if output.data.len() > MAX_DATA_LEN {
            return self.close("the server's reply is too long", vec![]);
        }
        let mut out = Vec::with_capacity(output.data.len() + 6);
        if output.data.is_empty() {
            out.extend_from_slice(&0u32.to_le_bytes());
        } else {
            out.extend_from_slice(&(output.data.len() as u32 + 1).to_le_bytes());
            out.extend_from_slice(&output.data);
            out.push(0);
        }
        out.push(u8::from(output.done));
        if !output.done {
            self.phase = Phase::DataLength;
            return Progress::Send(out);
        }
        self.phase = Phase::Over;
        if self.plain {
            let ssf = self.backend.ssf().unwrap_or(0);
            if ssf < MIN_PLAIN_SSF {
                crate::log_warn!(
                    "SASL authentication rejected: a security layer of {ssf} bits on a link without TLS (at least {MIN_PLAIN_SSF} needed)"
                );
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&(REJECTED.len() as u32).to_le_bytes());
                out.extend_from_slice(REJECTED);
                return Progress::Close(out);
            }
            self.layer = true;
        }
        crate::log_info!(
            "SASL authentication of '{}' succeeded{}",
            self.backend.username().unwrap_or_default(),
            if self.layer {
                " with a security layer"
            } else {
                ""
            }
        );
        out.extend_from_slice(&(LinkError::Ok as u32).to_le_bytes());
        Progress::Accepted(out)
    }

    /// The security layer every later byte goes through (plain links only).
    /// `first`: bytes already queued that go out as they are, before the layer.
    pub(crate) fn into_layer(self, first: Vec<u8>) -> Option<SecurityLayer> {
        self.layer.then(|| SecurityLayer {
            backend: self.backend,
            wire: first,
            written: 0,
            encoded_from: 0,
            decoded: Vec::new(),
            taken: 0,
        })
    }
}

/// `sasl_encode` on the way out, `sasl_decode` on the way in, over a non-blocking
/// socket. A write reports the caller's bytes as written only once all of their encoding
/// went out; until then it answers `WouldBlock` and expects the same bytes again.
pub(crate) struct SecurityLayer {
    backend: Box<dyn Backend>,
    /// Bytes for the socket and how many of them went out.
    wire: Vec<u8>,
    written: usize,
    /// How many of the caller's bytes `wire` encodes (0 for bytes queued before the layer).
    encoded_from: usize,
    decoded: Vec<u8>,
    taken: usize,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl SecurityLayer {
    /// Encoded bytes not yet on the socket.
    pub(crate) fn pending(&self) -> usize {
        self.wire.len() - self.written
    }

    /// Writes what is encoded already. Ok(false) when the socket is full.
    pub(crate) fn flush(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.pending() > 0 {
            match socket.write(&self.wire[self.written..]) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "peer closed")),
                Ok(n) => self.written += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    pub(crate) fn write(&mut self, socket: &mut impl Write, buf: &[u8]) -> io::Result<usize> {
        loop {
            if !self.flush(socket)? {
                return Err(ErrorKind::WouldBlock.into());
            }
            let done = std::mem::take(&mut self.encoded_from);
            self.wire.clear();
            self.written = 0;
            if done > 0 {
                return Ok(done);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            let n = buf.len().min(self.backend.max_out());
            self.wire = self.backend.encode(&buf[..n]).map_err(io::Error::other)?;
            self.encoded_from = n;
        }
    }

    pub(crate) fn read(&mut self, socket: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.taken < self.decoded.len() {
                let n = buf.len().min(self.decoded.len() - self.taken);
                buf[..n].copy_from_slice(&self.decoded[self.taken..self.taken + n]);
                self.taken += n;
                return Ok(n);
            }
            let mut wire = [0u8; 4096];
            let n = socket.read(&mut wire)?;
            if n == 0 {
                return Ok(0);
            }
            self.decoded = self.backend.decode(&wire[..n]).map_err(io::Error::other)?;
            self.taken = 0;
        }
    }
}

#[cfg(test)]
#[path = "sasl_tests.rs"]
pub(crate) mod tests;
