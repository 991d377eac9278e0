//! Guest char devices (QEMU's `-chardev spicevmc,name=vdagent|usbredir|smartcard` and
//! `-chardev spiceport,name=...`) and the contract between a device and whatever serves
//! it to clients: the agent on the main channel, or a spicevmc channel (usbredir 9,
//! port 10, webdav 11, smartcard 8).
//!
//! Two sides, two threads. The device side runs where QEMU allows its callbacks: on
//! QEMU's main loop, or inside QEMU's `spice_server_char_device_wakeup` call, which
//! expects the staged guest bytes to be read before it returns. The channel side runs
//! on the reactor. `GuestPort` is what the channel side holds of the device (any
//! thread; calls into QEMU are queued for its main loop); `DeviceSink` is what the
//! device holds of the channel side (called on QEMU's thread; it must only queue and
//! wake the reactor, never block).

mod device;

pub(crate) use device::CharDevice;
use std::sync::Arc;

/// What a char device serves, from its `subtype` and `portname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    /// `spicevmc,name=vdagent`: the guest agent, served on the main channel.
    Agent,
    /// `spicevmc,name=usbredir`: a usbredir channel (9).
    Usbredir,
    /// `spicevmc,name=smartcard`: the smartcard channel (8).
    Smartcard,
    /// `spiceport,name=org.spice-space.webdav.0`: the webdav channel (11).
    Webdav,
    /// Any other `spiceport,name=...`: a port channel (10) carrying its name.
    Port(String),
}

/// The port name spice-gtk's folder sharing uses.
pub(crate) const WEBDAV_PORT_NAME: &str = "org.spice-space.webdav.0";

impl DeviceKind {
    /// None for a subtype this server does not serve (QEMU only passes the ones
    /// `spice_server_char_device_recognized_subtypes` lists, and "port").
    pub(crate) fn from_subtype(subtype: &str, portname: Option<&str>) -> Option<DeviceKind> {
        match (subtype, portname) {
            ("vdagent", _) => Some(DeviceKind::Agent),
            ("usbredir", _) => Some(DeviceKind::Usbredir),
            ("smartcard", _) => Some(DeviceKind::Smartcard),
            ("port", Some(WEBDAV_PORT_NAME)) => Some(DeviceKind::Webdav),
            ("port", Some(name)) if !name.is_empty() => Some(DeviceKind::Port(name.to_owned())),
            _ => None,
        }
    }
}

/// The channel side of a device, as the device sees it. Every method is called on
/// QEMU's thread with its lock held: queue, wake the reactor, return.
pub(crate) trait DeviceSink: Send + Sync {
    /// How many guest bytes the sink takes now; the device reads no more than this,
    /// and 0 stops reading until the sink calls `GuestPort::resume_reading`.
    fn room(&self) -> usize;
    /// Bytes read from the guest (never more than `room` said).
    fn received(&self, data: &[u8]);
    /// Every byte queued with `GuestPort::to_guest(.., tag)` was taken by the device.
    fn written(&self, _tag: u64) {}
    /// The guest side opened (true) or closed (false) the port (`spice_server_port_event`).
    fn guest_event(&self, _opened: bool) {}
    /// The device is gone (QEMU removed the interface): nothing more comes or goes.
    fn detached(&self) {}
}

/// The device, as the channel side sees it. Cheap to call from any thread: calls into
/// QEMU happen later, on its main loop.
pub(crate) trait GuestPort: Send + Sync {
    /// Makes `sink` the device's channel side (None: nobody serves it now).
    fn attach(&self, sink: Option<Arc<dyn DeviceSink>>);
    /// Queues bytes for the guest; `sink.written(tag)` follows once the device took them
    /// all. The caller bounds what it queues with `queued_to_guest`.
    fn to_guest(&self, data: Vec<u8>, tag: u64);
    /// Bytes queued for the guest and not yet taken by the device.
    fn queued_to_guest(&self) -> usize;
    /// The sink has room again: read what the guest has staged.
    fn resume_reading(&self);
    /// Tells the device a client attached or left (`state`).
    fn set_client_connected(&self, connected: bool);
    /// Passes a client's port event to the device (`event`).
    fn send_event(&self, event: u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_subtypes() {
        assert_eq!(
            DeviceKind::from_subtype("vdagent", None),
            Some(DeviceKind::Agent)
        );
        assert_eq!(
            DeviceKind::from_subtype("usbredir", None),
            Some(DeviceKind::Usbredir)
        );
        assert_eq!(
            DeviceKind::from_subtype("smartcard", None),
            Some(DeviceKind::Smartcard)
        );
        assert_eq!(
            DeviceKind::from_subtype("port", Some(WEBDAV_PORT_NAME)),
            Some(DeviceKind::Webdav)
        );
        assert_eq!(
            DeviceKind::from_subtype("port", Some("org.example.test")),
            Some(DeviceKind::Port("org.example.test".into()))
        );
        assert_eq!(DeviceKind::from_subtype("port", None), None);
        assert_eq!(DeviceKind::from_subtype("tunnel", None), None);
    }
}
