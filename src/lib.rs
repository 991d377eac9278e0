//! spice-rs: libspice-server.so.1 in Rust.
//!
//! `ffi` is the only module that trusts C; everything else is safe Rust.

pub mod ffi;
