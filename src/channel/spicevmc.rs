//! The spicevmc channels (usbredir, port, webdav): bytes between one client and one
//! guest char device, as spice-server's spicevmc.cpp serves them.
//!
//! Two halves. `VmcDevice` is the device's `DeviceSink`, shared with the char device
//! and called on QEMU's thread: it queues what the guest wrote and wakes the reactor.
//! `VmcChannel` is the linked client's state machine on the reactor: it frames queued
//! guest bytes into the outbox and hands the client's bytes to the device.
//!
//! Both directions are bounded as `device_queue` describes.

use super::device_queue::{self, DeviceQueue, Queued};
use super::{Channel, ChannelError, Outbox};
use crate::proto::msg::spicevmc as m;
use crate::proto::spicevmc::{self as wire, VmcClientMessage, VmcMessage};
use crate::server::char_device::{DeviceSink, GuestPort};
use parking_lot::Mutex;
use std::sync::Arc;

/// Largest data message accepted from the client, after decompression. usbredir packs
/// one USB transfer per message; spice-gtk's port channel one `write_async` buffer.
pub(crate) const MAX_CLIENT_DATA: usize = 8 << 20;
/// Guest bytes merged into one message (spice-server reads 64 KiB at a time).
const MAX_MESSAGE_DATA: usize = 64 << 10;
/// Guest port events kept for the client; past this only the newest state is kept.
const MAX_EVENTS: usize = 16;

/// What the guest side produced, in order.
enum FromGuest {
    Data(Vec<u8>),
    Event(u8),
}

impl Queued for FromGuest {
    fn bytes(&self) -> usize {
        match self {
            FromGuest::Data(data) => data.len(),
            FromGuest::Event(_) => 0,
        }
    }
}

#[derive(Default)]
struct Shared {
    /// A client's channel is linked.
    linked: bool,
    /// QEMU removed the device.
    detached: bool,
    /// The guest has the port open (`spice_server_port_event`), client or not.
    guest_open: bool,
    queue: DeviceQueue<FromGuest>,
}

impl Shared {
    fn room(&self) -> usize {
        if !self.linked || self.detached {
            return 0;
        }
        self.queue.room()
    }
}

impl AsMut<DeviceQueue<FromGuest>> for Shared {
    fn as_mut(&mut self) -> &mut DeviceQueue<FromGuest> {
        &mut self.queue
    }
}

/// The device's side of a spicevmc channel (one per device, for its lifetime).
pub(crate) struct VmcDevice {
    shared: Mutex<Shared>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl VmcDevice {
    pub(crate) fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Arc<VmcDevice> {
        Arc::new(VmcDevice {
            shared: Mutex::default(),
            wake,
        })
    }

    /// Takes the device for a client; false when another client has it (spice-server
    /// refuses a second connection to a spicevmc channel) or the device is gone.
    pub(crate) fn claim(&self) -> bool {
        let mut s = self.shared.lock();
        if s.linked || s.detached {
            return false;
        }
        s.linked = true;
        s.queue.reset();
        true
    }
}

impl DeviceSink for VmcDevice {
    fn room(&self) -> usize {
        let mut s = self.shared.lock();
        let room = s.room();
        s.queue.answered_room(room)
    }

    fn received(&self, data: &[u8]) {
        {
            let mut s = self.shared.lock();
            if !s.linked || s.detached || data.is_empty() {
                return;
            }
            let merged = s.queue.try_merge(data.len(), |last| match last {
                FromGuest::Data(last) if last.len() + data.len() <= MAX_MESSAGE_DATA => {
                    last.extend_from_slice(data);
                    true
                }
                _ => false,
            });
            if !merged {
                s.queue.push(FromGuest::Data(data.to_vec()));
            }
        }
        (self.wake)();
    }

    fn written(&self, _tag: u64) {
        let blocked = self.shared.lock().queue.guest_took_input();
        if blocked {
            (self.wake)();
        }
    }

    fn guest_event(&self, opened: bool) {
        let event = if opened {
            m::PORT_EVENT_OPENED
        } else {
            m::PORT_EVENT_CLOSED
        };
        {
            let mut s = self.shared.lock();
            s.guest_open = opened;
            if !s.linked {
                return;
            }
            // A guest flapping its port cannot grow the queue: the newest state wins.
            let events = s.queue.items().filter(|i| matches!(i, FromGuest::Event(_)));
            let newest_wins = events.count() >= MAX_EVENTS
                && s.queue.try_merge(0, |last| match last {
                    FromGuest::Event(last) => {
                        *last = event;
                        true
                    }
                    FromGuest::Data(_) => false,
                });
            if !newest_wins {
                s.queue.push(FromGuest::Event(event));
            }
        }
        (self.wake)();
    }

    fn detached(&self) {
        {
            let mut s = self.shared.lock();
            s.detached = true;
            s.queue.clear();
        }
        (self.wake)();
    }
}

/// One client's spicevmc channel.
pub(crate) struct VmcChannel {
    device: Arc<VmcDevice>,
    port: Arc<dyn GuestPort>,
    /// Port and webdav channels: the name `PORT_INIT` carries.
    port_name: Option<String>,
    /// The client decompresses LZ4 (`SPICE_SPICEVMC_CAP_DATA_COMPRESS_LZ4`).
    lz4: bool,
    next_tag: u64,
    released: bool,
}

impl VmcChannel {
    /// The device must have been `claim`ed for this client.
    pub(crate) fn new(
        device: Arc<VmcDevice>,
        port: Arc<dyn GuestPort>,
        port_name: Option<String>,
        lz4: bool,
    ) -> VmcChannel {
        VmcChannel {
            device,
            port,
            port_name,
            lz4,
            next_tag: 0,
            released: false,
        }
    }

    fn forward_to_guest(&mut self, data: Vec<u8>) {
        if data.is_empty() || self.device.shared.lock().detached {
            return;
        }
        self.next_tag += 1;
        self.port.to_guest(data, self.next_tag);
    }

    /// Gives the device back (once): the guest hears the client left.
    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        {
            let mut s = self.device.shared.lock();
            s.linked = false;
            // A client that comes later reads the device again from `start`.
            s.queue.release();
        }
        self.port.set_client_connected(false);
    }
}

/// One data message, LZ4-compressed when the client takes it and it is smaller.
fn send_data(lz4: bool, data: &[u8], out: &mut Outbox) {
    match lz4.then(|| wire::compress(data)).flatten() {
        Some(lz4) => out.send(&VmcMessage::Compressed {
            uncompressed_size: u32::try_from(data.len()).unwrap_or(u32::MAX),
            lz4: &lz4,
        }),
        None => out.send(&VmcMessage::Data(data)),
    }
}

impl Channel for VmcChannel {
    fn max_body(&self) -> usize {
        // A compressed message's header (type, size) comes on top of its data.
        MAX_CLIENT_DATA + 5
    }

    fn start(&mut self, out: &mut Outbox) {
        let opened = self.device.shared.lock().guest_open;
        if let Some(name) = &self.port_name {
            out.send(&VmcMessage::PortInit { name, opened });
        }
        self.port.set_client_connected(true);
        // The device waited for a client before reading the guest.
        self.port.resume_reading();
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        _out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        let bad = |reason| ChannelError::BadMessage { msg_type, reason };
        let msg = wire::parse(msg_type, body, MAX_CLIENT_DATA)
            .map_err(|e| bad(e.0))?
            .ok_or_else(|| bad("unknown spicevmc message"))?;
        match msg {
            VmcClientMessage::Data(data) => self.forward_to_guest(data.to_vec()),
            VmcClientMessage::Decompressed(data) => self.forward_to_guest(data),
            VmcClientMessage::PortEvent(event) => {
                if self.port_name.is_none() {
                    return Err(bad("port event on a channel that is not a port"));
                }
                self.port.send_event(event);
            }
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        let lz4 = self.lz4;
        device_queue::drain(
            &self.device.shared,
            &*self.port,
            out,
            |item, out| match item {
                FromGuest::Data(data) => send_data(lz4, &data, out),
                FromGuest::Event(event) => out.send(&VmcMessage::PortEvent(event)),
            },
        );
    }

    fn wants_input(&mut self) -> bool {
        device_queue::guest_has_room(&self.device.shared, &*self.port)
    }

    fn finished(&self) -> bool {
        let gone = self.device.shared.lock().detached;
        if gone {
            crate::log_info!("spicevmc: the device was removed, closing its channel");
        }
        gone
    }

    fn closed(&mut self) {
        self.release();
    }
}

impl Drop for VmcChannel {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
#[path = "spicevmc_tests.rs"]
mod tests;
