//! The SPICE wire format: pure functions from bytes to typed messages and back.
//! No I/O here; the reactor feeds bytes in and writes what comes out.

pub mod agent;
pub mod caps;
pub mod cursor;
pub mod display;
pub mod frame;
pub mod inputs;
pub mod link;
pub mod main;
pub mod msg;
pub mod outgoing;
pub mod wire;
