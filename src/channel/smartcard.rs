//! The smartcard channel (8): VSC messages between one client's card reader and a
//! `ccid-card-passthru` device, as spice-server's smartcard.cpp and
//! smartcard-channel-client.cpp serve them.
//!
//! Each smartcard device is one reader; its reader id is its channel id (spice-server
//! numbers its readers in the order they are added, at most 10). A client that links is
//! attached to the device if no other client has it; its `VSC_ReaderAdd` (or a later one,
//! once the device is free) attaches it too, and is written to the device with the
//! device's reader id. The device's answers go to the attached client with that reader
//! id (the device knows only itself), except `VSC_Init`, which the server keeps.
//!
//! Two halves, as the spicevmc channels: `SmartcardDevice` is the device's `DeviceSink`
//! (QEMU's thread: frame, queue, wake); `SmartcardChannel` the client's state machine on
//! the reactor. Both directions are bounded the same way as there.

use super::device_queue::{self, DeviceQueue, Queued};
use super::{Channel, ChannelError, Outbox};
use crate::proto::smartcard::{
    self as wire, vsc, DeviceFramer, FromDevice, VscHeader, VscMessage, HEADER_SIZE, MAX_PAYLOAD,
};
use crate::server::char_device::{DeviceSink, GuestPort};
use parking_lot::Mutex;
use std::sync::Arc;

/// Readers a server serves (`SMARTCARD_MAX_READERS`).
pub(crate) const MAX_READERS: u8 = 10;

struct State {
    reader_id: u32,
    /// A client's channel holds this reader.
    attached: bool,
    /// `VSC_ReaderAdd` was written to the device and not yet removed.
    reader_added: bool,
    /// QEMU removed the device.
    detached: bool,
    framer: DeviceFramer,
    to_client: DeviceQueue<VscMessage>,
}

impl State {
    fn room(&self) -> usize {
        if self.detached {
            0
        } else if !self.attached {
            // Nobody to send to: read and drop, one message at a time, so the framing
            // stays in step for the next client.
            HEADER_SIZE + MAX_PAYLOAD
        } else {
            self.to_client.room()
        }
    }
}

impl AsMut<DeviceQueue<VscMessage>> for State {
    fn as_mut(&mut self) -> &mut DeviceQueue<VscMessage> {
        &mut self.to_client
    }
}

impl Queued for VscMessage {
    fn bytes(&self) -> usize {
        HEADER_SIZE + self.data.len()
    }
}

/// One smartcard device, its reader and its channel side (for the device's lifetime).
pub(crate) struct SmartcardDevice {
    state: Mutex<State>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl SmartcardDevice {
    pub(crate) fn new(reader_id: u8, wake: Arc<dyn Fn() + Send + Sync>) -> Arc<SmartcardDevice> {
        Arc::new(SmartcardDevice {
            state: Mutex::new(State {
                reader_id: reader_id.into(),
                attached: false,
                reader_added: false,
                detached: false,
                framer: DeviceFramer::default(),
                to_client: DeviceQueue::default(),
            }),
            wake,
        })
    }

    /// Takes the reader for a client; false when another client has it or the device
    /// is gone.
    fn attach_client(&self) -> bool {
        let mut s = self.state.lock();
        if s.attached || s.detached {
            return false;
        }
        s.attached = true;
        s.to_client.reset();
        true
    }

    fn reader_id(&self) -> u32 {
        self.state.lock().reader_id
    }
}

impl DeviceSink for SmartcardDevice {
    fn room(&self) -> usize {
        let mut s = self.state.lock();
        let room = s.room();
        s.to_client.answered_room(room)
    }

    fn received(&self, data: &[u8]) {
        let mut queued_any = false;
        {
            let mut s = self.state.lock();
            if s.detached {
                return;
            }
            for item in s.framer.push(data) {
                let mut msg = match item {
                    FromDevice::Message(msg) => msg,
                    FromDevice::Oversized(h) => {
                        crate::log_warn!(
                            "smartcard: the device announced a {}-byte VSC message of type \
                             {} (limit {MAX_PAYLOAD}): its data is dropped",
                            h.length,
                            h.msg_type
                        );
                        continue;
                    }
                };
                // The device's Init answers its chardev opening, not a client.
                if msg.header.msg_type == vsc::INIT || !s.attached {
                    continue;
                }
                // The device knows only itself; the client knows it by our reader id.
                msg.header.reader_id = s.reader_id;
                s.to_client.push(msg);
                queued_any = true;
            }
        }
        if queued_any {
            (self.wake)();
        }
    }

    fn written(&self, _tag: u64) {
        let blocked = self.state.lock().to_client.guest_took_input();
        if blocked {
            (self.wake)();
        }
    }

    fn detached(&self) {
        {
            let mut s = self.state.lock();
            s.detached = true;
            s.to_client.clear();
        }
        (self.wake)();
    }
}

/// One client's smartcard channel.
pub(crate) struct SmartcardChannel {
    device: Arc<SmartcardDevice>,
    port: Arc<dyn GuestPort>,
    /// This client holds the device's reader.
    attached: bool,
    /// A message came for a reader this client does not hold (logged once).
    warned_unattached: bool,
    next_tag: u64,
}

impl SmartcardChannel {
    /// Opens a client's channel, attached to the device when nobody else holds it.
    pub(crate) fn open(device: Arc<SmartcardDevice>, port: Arc<dyn GuestPort>) -> SmartcardChannel {
        let attached = device.attach_client();
        if !attached {
            crate::log_warn!(
                "smartcard: reader {} is held by another client: this one has no reader",
                device.reader_id()
            );
        }
        SmartcardChannel {
            device,
            port,
            attached,
            warned_unattached: false,
            next_tag: 0,
        }
    }

    fn on_attached(&self) {
        self.port.set_client_connected(true);
        // The device may have paused reading while it dropped messages for nobody.
        self.port.resume_reading();
    }

    fn write_to_device(&mut self, msg: &VscMessage) {
        if self.device.state.lock().detached {
            return;
        }
        self.next_tag += 1;
        self.port.to_guest(msg.to_device(), self.next_tag);
    }

    fn reader_add(&mut self, out: &mut Outbox) {
        if !self.attached {
            if !self.device.attach_client() {
                out.send(&VscMessage::error(
                    vsc::UNDEFINED_READER_ID,
                    vsc::CANNOT_ADD_MORE_READERS,
                ));
                return;
            }
            self.attached = true;
            self.on_attached();
        }
        let reader_id = {
            let mut s = self.device.state.lock();
            s.reader_added = true;
            s.reader_id
        };
        // The device answers with a VSC_Error, which reaches the client as its reader id.
        self.write_to_device(&VscMessage::new(vsc::READER_ADD, reader_id, Vec::new()));
    }

    fn reader_remove(&mut self, asked: u32, out: &mut Outbox) {
        let removed = self.attached && {
            let mut s = self.device.state.lock();
            let ok = s.reader_id == asked && s.reader_added;
            if ok {
                s.reader_added = false;
            }
            ok
        };
        if removed {
            self.write_to_device(&VscMessage::new(vsc::READER_REMOVE, asked, Vec::new()));
        } else {
            out.send(&VscMessage::error(asked, vsc::GENERAL_ERROR));
        }
    }

    /// ATR, APDU, CardRemove and Error go to the device as they are.
    fn forward(&mut self, header: VscHeader, data: &[u8]) -> Result<(), &'static str> {
        if !self.attached {
            if !std::mem::replace(&mut self.warned_unattached, true) {
                crate::log_warn!(
                    "smartcard: VSC message of type {} from a client without a reader: \
                     dropped (and any more like it)",
                    header.msg_type
                );
            }
            return Ok(());
        }
        if header.reader_id != self.device.reader_id() {
            return Err("VSC message for a reader this client does not have");
        }
        self.write_to_device(&VscMessage::new(
            header.msg_type,
            header.reader_id,
            data.to_vec(),
        ));
        Ok(())
    }

    /// Gives the reader back (once): the guest hears the client and its reader left.
    fn release(&mut self) {
        if !std::mem::replace(&mut self.attached, false) {
            return;
        }
        let (remove, resume) = {
            let mut s = self.device.state.lock();
            s.attached = false;
            let resume = s.to_client.release();
            (
                std::mem::take(&mut s.reader_added).then_some(s.reader_id),
                resume,
            )
        };
        self.port.set_client_connected(false);
        if let Some(reader_id) = remove {
            self.write_to_device(&VscMessage::new(vsc::READER_REMOVE, reader_id, Vec::new()));
        }
        if resume {
            self.port.resume_reading();
        }
    }
}

impl Channel for SmartcardChannel {
    fn max_body(&self) -> usize {
        HEADER_SIZE + MAX_PAYLOAD
    }

    fn start(&mut self, _out: &mut Outbox) {
        if self.attached {
            self.on_attached();
        }
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        let bad = |reason| ChannelError::BadMessage { msg_type, reason };
        if msg_type != wire::DATA {
            return Err(bad("unknown smartcard message"));
        }
        let (header, data) = wire::parse_client(body).map_err(|e| bad(e.0))?;
        match header.msg_type {
            vsc::READER_ADD => self.reader_add(out),
            vsc::READER_REMOVE => self.reader_remove(header.reader_id, out),
            // The server, not the client, speaks VSC_Init with the device.
            vsc::INIT => {}
            vsc::ERROR | vsc::ATR | vsc::CARD_REMOVE | vsc::APDU => {
                self.forward(header, data).map_err(bad)?
            }
            other => crate::log_warn!("smartcard: unexpected VSC message type {other}: ignored"),
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        if !self.attached {
            return;
        }
        device_queue::drain(&self.device.state, &*self.port, out, |msg, out| {
            out.send(&msg)
        });
    }

    fn wants_input(&mut self) -> bool {
        device_queue::guest_has_room(&self.device.state, &*self.port)
    }

    fn finished(&self) -> bool {
        let gone = self.device.state.lock().detached;
        if gone {
            crate::log_info!("smartcard: the device was removed, closing its channel");
        }
        gone
    }

    fn closed(&mut self) {
        self.release();
    }
}

impl Drop for SmartcardChannel {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
#[path = "smartcard_tests.rs"]
mod tests;
