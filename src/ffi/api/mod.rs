//! The exported C functions, one file per public header.

pub mod audio;
pub mod char_device;
pub mod input;
pub mod migration;
pub mod qxl;
pub mod replay;
pub mod server;
