//! Channel logic: one state machine per SPICE channel, fed decoded messages and writing
//! encoded ones into an `Outbox`. No sockets here (the reactor owns them) and no QEMU
//! calls (input reaches QEMU through `InputSink`, which runs on QEMU's main loop).

pub(crate) mod cursor;
pub(crate) mod delivery;
pub(crate) mod device_queue;
pub(crate) mod display;
pub(crate) mod inputs;
pub(crate) mod main;
pub(crate) mod playback;
pub(crate) mod record;
pub(crate) mod smartcard;
pub(crate) mod spicevmc;

use crate::proto::frame::{self, HeaderKind};
use crate::proto::msg::base;
use crate::proto::outgoing::ServerMessage;
use crate::proto::wire::Truncated;
use crate::proto::wire::Writer;
use delivery::SendQueue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChannelError {
    /// A message the channel does not know or cannot parse: spice-server disconnects.
    BadMessage { msg_type: u16, reason: &'static str },
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::BadMessage { msg_type, reason } => {
                write!(f, "message {msg_type}: {reason}")
            }
        }
    }
}

pub(crate) fn malformed(msg_type: u16) -> impl FnOnce(Truncated) -> ChannelError {
    move |_| ChannelError::BadMessage {
        msg_type,
        reason: "malformed",
    }
}

/// The ack window graphics channels use: the client acks every `window` messages, and
/// the server stops producing once `2 * window` are unacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckWindow {
    pub window: u32,
    unacked: u32,
}

/// `NARROW_CLIENT_ACK_WINDOW`.
pub(crate) const ACK_WINDOW: u32 = 20;

impl AckWindow {
    pub(crate) fn new(window: u32) -> AckWindow {
        AckWindow { window, unacked: 0 }
    }

    pub(crate) fn open(&self) -> bool {
        self.unacked < 2 * self.window
    }

    fn sent(&mut self) {
        self.unacked = self.unacked.saturating_add(1);
    }

    fn acked(&mut self) {
        self.unacked = self.unacked.saturating_sub(self.window);
    }
}

/// Encoded messages waiting for the socket.
pub(crate) struct Outbox {
    header: HeaderKind,
    serial: u64,
    bytes: Vec<u8>,
    written: usize,
    /// Bytes the socket took in all (what the delivery rate is measured from).
    taken: u64,
    /// A new cap on the unsent bytes the kernel holds (`TCP_NOTSENT_LOWAT`), until the
    /// reactor sets it.
    unsent_request: Option<u32>,
    /// The socket's queue when the reactor last looked (display channels only).
    send_queue: Option<SendQueue>,
    pub ack: Option<AckWindow>,
}

/// Past this many queued bytes channels stop producing (the screen keeps the damage).
pub(crate) const OUTBOX_HIGH_WATER: usize = 4 << 20;

impl Outbox {
    pub(crate) fn new(header: HeaderKind) -> Outbox {
        Outbox {
            header,
            serial: 0,
            bytes: Vec::new(),
            written: 0,
            taken: 0,
            unsent_request: None,
            send_queue: None,
            ack: None,
        }
    }

    /// Queues one message, framed in place.
    pub(crate) fn send(&mut self, msg: &impl ServerMessage) {
        self.serial += 1;
        frame::encode_in_place(
            self.header,
            self.serial,
            msg.msg_type(),
            &mut self.bytes,
            |o| {
                // The Writer takes the buffer for the body and gives it back (no copy).
                let mut w = Writer(std::mem::take(o));
                msg.encode_body(&mut w);
                *o = w.into_inner();
            },
        );
        if let Some(ack) = &mut self.ack {
            ack.sent();
        }
    }

    /// Queues bytes that are not a framed message (the link result).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// True when a channel may queue more optional output now.
    pub(crate) fn has_room(&self) -> bool {
        self.pending() < OUTBOX_HIGH_WATER && self.ack.is_none_or(|a| a.open())
    }

    pub(crate) fn pending(&self) -> usize {
        self.bytes.len() - self.written
    }

    /// Bytes not yet written.
    pub(crate) fn unwritten(&self) -> &[u8] {
        &self.bytes[self.written..]
    }

    /// The kernel should hold at most `bytes` unsent from now on (the reactor sets it
    /// after `produce`): on a thin link a fixed cap is a long wait in front of every
    /// frame. The channel asks only when the cap changes.
    pub(crate) fn want_unsent(&mut self, bytes: u32) {
        self.unsent_request = Some(bytes);
    }

    /// A cap the channel asked for and the socket does not have yet.
    pub(crate) fn unsent_change(&mut self) -> Option<u32> {
        self.unsent_request.take()
    }

    /// The reactor's look at the socket before `produce`, if the socket tells.
    pub(crate) fn note_send_queue(&mut self, queue: Option<SendQueue>) {
        self.send_queue = queue;
    }

    /// The socket's queue as of the reactor's last look (none: it does not tell).
    pub(crate) fn send_queue(&self) -> Option<SendQueue> {
        self.send_queue
    }

    /// Bytes written to the socket since the channel opened.
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }

    pub(crate) fn consumed(&mut self, n: usize) {
        self.written += n;
        self.taken += n as u64;
        if self.written == self.bytes.len() {
            self.bytes.clear();
            self.written = 0;
        } else if self.written > (1 << 20) && self.written * 2 > self.bytes.len() {
            self.bytes.drain(..self.written);
            self.written = 0;
        }
    }
}

/// What a channel does with each message.
pub(crate) trait Channel: Send {
    /// Largest message body accepted from the client.
    fn max_body(&self) -> usize {
        4096
    }

    /// Messages queued right after the link succeeded.
    fn start(&mut self, out: &mut Outbox);

    /// A channel-specific message (base messages are handled before this).
    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), ChannelError>;

    /// Called when the channel was woken or its output drained: queue what is due.
    fn produce(&mut self, _out: &mut Outbox) {}

    /// False while the channel cannot take more client messages (a device behind it is
    /// full): the reactor stops reading the socket, and reads again after a wake.
    fn wants_input(&mut self) -> bool {
        true
    }

    /// True once the channel has nothing more to serve (its device is gone): the
    /// reactor closes the connection.
    fn finished(&self) -> bool {
        false
    }

    /// The client answered one of our PINGs.
    fn on_pong(&mut self, _id: u32, _timestamp: u64) {}

    /// The connection is gone.
    fn closed(&mut self) {}

    /// The kernel send buffer the socket should have (None: the system's), set once at
    /// link: a channel whose data goes stale bounds what waits where it cannot drop it.
    fn send_queue_limit(&self) -> Option<usize> {
        None
    }
}

/// Handles the messages every channel shares (PONG goes to `Channel::on_pong`).
/// Returns `false` for a channel message.
pub(crate) fn handle_base(
    msg_type: u16,
    body: &[u8],
    out: &mut Outbox,
) -> Result<bool, ChannelError> {
    match msg_type {
        base::C_ACK_SYNC => {
            crate::proto::main::parse_u32(body).map_err(malformed(msg_type))?;
            if let Some(ack) = &mut out.ack {
                ack.unacked = 0;
            }
        }
        base::C_ACK => {
            if let Some(ack) = &mut out.ack {
                ack.acked();
            }
        }
        base::C_PONG
        | base::C_DISCONNECTING
        | base::C_MIGRATE_FLUSH_MARK
        | base::C_MIGRATE_DATA => {}
        _ => return Ok(false),
    }
    Ok(true)
}

/// Test helpers shared by the channel tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Outbox;
    use crate::proto::frame::{Deframer, HeaderKind, Message};
    use crate::server::char_device::{DeviceSink, GuestPort};
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A device as the channel sees it: remembers every call, holds the client's bytes until
    /// the test lets the guest take them.
    #[derive(Default)]
    pub(crate) struct FakePort {
        pub sink: Mutex<Option<Arc<dyn DeviceSink>>>,
        pub to_guest: Mutex<Vec<(Vec<u8>, u64)>>,
        pub resumes: AtomicUsize,
        pub connected: Mutex<Vec<bool>>,
        pub events: Mutex<Vec<u8>>,
    }

    impl FakePort {
        /// The guest takes everything queued; the sink hears each tag.
        pub(crate) fn guest_takes_all(&self) -> Vec<u8> {
            let taken = std::mem::take(&mut *self.to_guest.lock());
            let sink = self.sink.lock().clone();
            let mut bytes = Vec::new();
            for (data, tag) in taken {
                bytes.extend(data);
                if let Some(s) = &sink {
                    s.written(tag);
                }
            }
            bytes
        }
    }

    impl GuestPort for FakePort {
        fn attach(&self, sink: Option<Arc<dyn DeviceSink>>) {
            *self.sink.lock() = sink;
        }
        fn to_guest(&self, data: Vec<u8>, tag: u64) {
            self.to_guest.lock().push((data, tag));
        }
        fn queued_to_guest(&self) -> usize {
            self.to_guest.lock().iter().map(|(d, _)| d.len()).sum()
        }
        fn resume_reading(&self) {
            self.resumes.fetch_add(1, Ordering::SeqCst);
        }
        fn set_client_connected(&self, connected: bool) {
            self.connected.lock().push(connected);
        }
        fn send_event(&self, event: u8) {
            self.events.lock().push(event);
        }
    }

    /// Takes everything queued in `out` as decoded messages.
    pub(crate) fn drain(out: &mut Outbox) -> Vec<Message> {
        let mut d = Deframer::new(HeaderKind::Mini, 64 << 20);
        d.push(out.unwritten());
        let n = out.pending();
        out.consumed(n);
        std::iter::from_fn(|| d.next_message().unwrap()).collect()
    }

    /// Takes everything queued in `out`, as message types.
    pub(crate) fn drain_types(out: &mut Outbox) -> Vec<u16> {
        drain(out).iter().map(|m| m.msg_type).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of any type and body, for the outbox's own tests.
    struct Raw(u16, &'static [u8]);

    impl ServerMessage for Raw {
        fn msg_type(&self) -> u16 {
            self.0
        }
        fn encode_body(&self, w: &mut Writer) {
            w.bytes(self.1);
        }
    }

    #[test]
    fn ack_window_closes_and_reopens() {
        let mut out = Outbox::new(HeaderKind::Mini);
        out.ack = Some(AckWindow::new(2));
        for _ in 0..4 {
            assert!(out.has_room());
            out.send(&Raw(1, &[]));
        }
        assert!(!out.has_room());
        handle_base(base::C_ACK, &[], &mut out).unwrap();
        assert!(out.has_room());
    }

    #[test]
    fn outbox_tracks_partial_writes() {
        let mut out = Outbox::new(HeaderKind::Mini);
        out.send(&Raw(7, &[1, 2, 3]));
        assert_eq!(out.pending(), 9);
        out.consumed(4);
        assert_eq!(out.unwritten(), &[0, 0, 1, 2, 3]);
        out.consumed(5);
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn unknown_messages_are_not_base_messages() {
        let mut out = Outbox::new(HeaderKind::Mini);
        assert_eq!(handle_base(101, &[], &mut out), Ok(false));
        assert!(handle_base(base::C_ACK_SYNC, &[1], &mut out).is_err());
    }
}
