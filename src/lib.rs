//! spice-rs: libspice-server.so.1 in Rust.
//!
//! Where things live: `ffi` is the C boundary (the only module that trusts C),
//! `server` the SpiceServer object, `net` the sockets and the reactor thread, `proto`
//! the wire format, `worker` the per-QXL-device thread, `qxl` guest memory, `video` the
//! stream encoders.

#[macro_use]
pub mod log;

pub mod canvas;
pub mod channel;
pub mod display;
pub mod ffi;
pub mod geometry;
pub mod net;
pub mod proto;
pub mod qxl;
pub mod replay;
pub mod server;
pub mod video;
pub mod worker;
