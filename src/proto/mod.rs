//! The SPICE wire format: pure functions from bytes to typed messages and back.
//! No I/O here; the reactor feeds bytes in and writes what comes out.

pub(crate) mod agent;
pub(crate) mod audio;
pub(crate) mod caps;
pub(crate) mod cursor;
pub(crate) mod display;
pub(crate) mod frame;
pub(crate) mod inputs;
pub(crate) mod link;
pub(crate) mod main;
pub(crate) mod msg;
pub(crate) mod outgoing;
pub(crate) mod smartcard;
pub(crate) mod spicevmc;
pub(crate) mod wire;
