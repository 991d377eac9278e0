//! What the worker needs from a QXL device (QEMU's `QXLInterface` callbacks), as a
//! safe trait so the worker can be tested without QEMU.

use crate::geometry::Rect;

/// Bytes of the client capability array passed to `set_client_capabilities`.
pub(crate) const CLIENT_CAPS_BYTES: usize = 58;

/// One ring entry (`QXLCommandExt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Command {
    /// Guest "physical" address of the command structure.
    pub data: u64,
    /// `QXL_CMD_*`.
    pub kind: u32,
    /// Memory slot group the addresses belong to.
    pub group: u32,
    /// `QXL_COMMAND_FLAG_*`.
    pub flags: u32,
}

pub(crate) trait Device: Send {
    fn get_command(&mut self) -> Option<Command>;
    /// True when the device will wake us for new commands; false if some arrived.
    fn req_cmd_notification(&mut self) -> bool;
    fn get_cursor_command(&mut self) -> Option<Command>;
    fn req_cursor_notification(&mut self) -> bool;
    /// `info_address`: host address of the command's `QXLReleaseInfo`.
    fn release_resource(&mut self, info_address: u64, group: u32);
    fn async_complete(&mut self, cookie: u64);
    fn update_area_complete(&mut self, surface_id: u32, rects: &[Rect]);
    /// Pushes released resources to the guest now (after an out-of-memory notice);
    /// returns how many were pending.
    fn flush_resources(&mut self) -> i32 {
        0
    }
    /// A `QXL_CMD_UPDATE` is done: its area is in guest memory (QEMU only logs it).
    fn notify_update(&mut self, _update_id: u32) {}
    /// Tells the guest whether a client is connected and what its display can render.
    fn set_client_capabilities(&mut self, _present: bool, _caps: &[u8; CLIENT_CAPS_BYTES]) {}
}
