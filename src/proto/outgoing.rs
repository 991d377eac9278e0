//! Server → client messages as values. Each channel has an enum of the messages it sends;
//! a variant knows its type number and encodes its own body, so a message type can never
//! travel with another message's body. The channel's `Outbox` frames them in place.

use super::wire::Writer;

/// One message a channel sends.
pub(crate) trait ServerMessage {
    /// The `SPICE_MSG_*` number.
    fn msg_type(&self) -> u16;
    /// Appends the body (everything after the data header).
    fn encode_body(&self, w: &mut Writer);
}

/// `SET_ACK` (every channel with an ack window): u32 generation, u32 window.
pub(crate) fn set_ack(w: &mut Writer, generation: u32, window: u32) {
    w.u32(generation).u32(window);
}

/// `PING`: u32 id, u64 timestamp, optional padding.
pub(crate) fn ping(w: &mut Writer, id: u32, timestamp: u64, padding: usize) {
    w.u32(id).u64(timestamp);
    w.0.resize(w.0.len() + padding, 0);
}

/// The body of `msg` on its own.
#[cfg(test)]
pub(crate) fn body_of(msg: &impl ServerMessage) -> Vec<u8> {
    let mut w = Writer::new();
    msg.encode_body(&mut w);
    w.into_inner()
}
