//! The exported C functions, one file per public header.
//!
//! Their safety contract is the C API's: every pointer argument is NULL or what the
//! spice-server documentation says it is (an object this library returned, or an
//! instance or struct the caller owns for the duration of the call). That is stated
//! once here rather than on each of the 97 functions.
#![allow(clippy::missing_safety_doc)]

pub mod audio;
pub mod char_device;
pub mod input;
pub mod migration;
pub mod qxl;
pub mod replay;
pub mod server;
