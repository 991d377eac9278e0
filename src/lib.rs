//! spice-rs: libspice-server.so.1 in Rust.
//!
//! The C API (`ffi`) is the library's only public interface; everything else is private
//! to the crate. ARCHITECTURE.md says where things live and how they fit together.
//!
//! The floors the compiler holds: no `unsafe` outside `ffi` and the guest-memory accessor
//! (`qxl::guest`), and no `pub` item that the crate does not export.
#![deny(unsafe_code)]
#![deny(unreachable_pub)]

#[macro_use]
pub(crate) mod log;

pub(crate) mod agent;
pub(crate) mod audio;
pub(crate) mod canvas;
pub(crate) mod channel;
pub(crate) mod display;
#[allow(unsafe_code)]
pub mod ffi;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod geometry;
pub(crate) mod image;
pub(crate) mod net;
pub(crate) mod proto;
pub(crate) mod qxl;
pub(crate) mod replay;
pub(crate) mod server;
pub(crate) mod video;
pub(crate) mod worker;
