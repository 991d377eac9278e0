//! The SPICE wire format: pure functions from bytes to typed messages and back.
//! No I/O here; the reactor feeds bytes in and writes what comes out.

pub mod caps;
pub mod frame;
pub mod link;
pub mod msg;
pub mod wire;
