//! What the server needs from QEMU, as traits: `ffi/` implements them over QEMU's C
//! interfaces, tests implement them with fakes. (The QXL worker's side of a device is
//! `worker::Device`.)
//!
//! Except where a method says otherwise, QEMU allows these calls only on its main loop
//! with its global lock held: the server makes them from `MainLoop` jobs, and from QEMU's
//! own calls into the library.

use crate::net::stream::Endpoints;
use crate::qxl::memslot::Layout;
use std::os::fd::RawFd;

/// A connection's life as QEMU hears it (`channel_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelEvent {
    Connected(Endpoints),
    Initialized {
        session_id: u32,
        channel_type: u8,
        channel_id: u8,
    },
    Disconnected,
}

/// QEMU's core interface (`SpiceCoreInterface`).
pub(crate) trait Core: Send + Sync {
    /// Calls `ready` on QEMU's main loop whenever `fd` is readable, until the watch is
    /// removed. None when QEMU refuses.
    fn watch_read(&self, fd: RawFd, ready: Box<dyn Fn() + Send + Sync>) -> Option<Box<dyn Watch>>;

    /// Reports an event of connection `conn` (the reactor's id); its CONNECTED,
    /// INITIALIZED and DISCONNECTED describe the same connection.
    fn channel_event(&self, conn: u64, event: ChannelEvent);
}

/// A registered fd watch.
pub(crate) trait Watch: Send {
    fn remove(self: Box<Self>);
}

/// QEMU's keyboard (`SpiceKbdInterface`).
pub(crate) trait KeyboardDevice: Send + Sync {
    fn push_scancode(&self, code: u8);
}

/// QEMU's relative mouse (`SpiceMouseInterface`).
pub(crate) trait MouseDevice: Send + Sync {
    fn motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32);
    fn buttons(&self, buttons: u32);
}

/// QEMU's absolute pointer (`SpiceTabletInterface`).
pub(crate) trait TabletDevice: Send + Sync {
    fn set_logical_size(&self, width: i32, height: i32);
    fn position(&self, x: i32, y: i32, buttons: u32);
    fn wheel(&self, dz: i32, buttons: u32);
    fn buttons(&self, buttons: u32);
}

/// A QXL instance's callbacks outside the worker (`QXLInterface`).
pub(crate) trait QxlHost: Send + Sync {
    /// The memslot layout and RAM size the device announces (`get_init_info`).
    fn init_info(&self) -> (Layout, u32);
    fn attached_worker(&self);
    fn set_compression_level(&self, level: i32);
    /// Hands the client's `VDAgentMonitorsConfig` to the device; false when it cannot
    /// take one. `config` is complete (`monitors_config_is_complete`).
    fn client_monitors_config(&self, config: &[u8]) -> bool;
}

/// A guest char device's callbacks (`SpiceCharDeviceInterface`): the vdagent port,
/// `spicevmc` (usbredir, smartcard) and `spiceport` chardevs. Main loop / global lock
/// only, or re-entrantly inside QEMU's own `spice_server_char_device_wakeup` call.
pub(crate) trait CharDeviceHost: Send + Sync {
    /// A client attached to (true) or left (false) the device's channel.
    fn state(&self, connected: bool);
    /// Client → guest bytes; returns how many the device took now (may be 0).
    fn write(&self, data: &[u8]) -> usize;
    /// Guest → client bytes into `buf`; 0 when the guest has nothing staged.
    fn read(&self, buf: &mut [u8]) -> usize;
    /// A port event from the client (`SPICE_PORT_EVENT_BREAK`).
    fn event(&self, event: u8);
}

/// Most monitors a client may describe (QEMU's qxl handles up to 16 heads per device).
const MAX_CLIENT_MONITORS: usize = 16;

/// Checks a client's `VDAgentMonitorsConfig` (u32 count, u32 flags, 20-byte monitors,
/// then 4-byte physical sizes when flag 2 is set) is complete, so QEMU never reads past it.
pub(crate) fn monitors_config_is_complete(config: &[u8]) -> bool {
    if config.len() < 8 {
        return false;
    }
    let count = u32::from_le_bytes([config[0], config[1], config[2], config[3]]) as usize;
    let flags = u32::from_le_bytes([config[4], config[5], config[6], config[7]]);
    let per_monitor = if flags & 2 != 0 { 24 } else { 20 };
    count <= MAX_CLIENT_MONITORS && config.len() >= 8 + count * per_monitor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_config_completeness() {
        let mut config = vec![1, 0, 0, 0, 0, 0, 0, 0];
        assert!(!monitors_config_is_complete(&config));
        config.extend([0; 20]);
        assert!(monitors_config_is_complete(&config));
        config[4] = 2; // physical sizes follow
        assert!(!monitors_config_is_complete(&config));
        config.extend([0; 4]);
        assert!(monitors_config_is_complete(&config));
        let mut many = vec![17, 0, 0, 0, 0, 0, 0, 0];
        many.extend([0; 17 * 20]);
        assert!(!monitors_config_is_complete(&many));
    }
}
