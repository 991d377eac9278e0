//! WebSocket (RFC 6455) on the SPICE ports, for browser clients such as spice-html5.
//!
//! As spice-server does it: a connection whose first bytes are an HTTP `GET` instead of
//! the `REDQ` link magic is upgraded, and the SPICE link then runs inside binary frames,
//! on the plain port and inside TLS alike. `handshake.rs` answers the upgrade request,
//! `frames.rs` decodes client frames and encodes ours (both sans I/O), `stream.rs` wraps
//! a `Stream` so the reactor and the channels keep seeing a byte stream.

pub(crate) mod frames;
pub(crate) mod handshake;
pub(crate) mod stream;

pub(crate) use stream::WebSocket;

/// The first byte of an HTTP `GET`; a SPICE link starts with `R` (`REDQ`).
pub(crate) fn looks_like_http(first_bytes: &[u8]) -> bool {
    first_bytes.first() == Some(&b'G')
}
