//! `spice-char.h`: char device interface (vdagent, usbredir, smartcard and spiceport
//! channels backed by a QEMU chardev).

use super::core::{SpiceBaseInstance, SpiceBaseInterface};
use std::ffi::{c_char, c_int};
use std::marker::{PhantomData, PhantomPinned};

/// `SpiceBaseInterface.type` of the char device interface.
pub const SPICE_INTERFACE_CHAR_DEVICE: &str = "char_device";
/// Major version of the char device interface.
pub const SPICE_INTERFACE_CHAR_DEVICE_MAJOR: u32 = 1;
/// Minor version of the char device interface.
pub const SPICE_INTERFACE_CHAR_DEVICE_MINOR: u32 = 3;

/// The library's char device state behind `SpiceCharDeviceInstance.st`.
pub struct SpiceCharDeviceState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `enum spice_char_device_flags` (an integer here because C hands it to us).
pub type spice_char_device_flags = u32;
/// The device calls `spice_server_char_device_wakeup` when it can take more data, so
/// the library need not poll `write`.
pub const SPICE_CHAR_DEVICE_NOTIFY_WRITABLE: spice_char_device_flags = 1 << 0;

/// Char device interface (`SPICE_INTERFACE_CHAR_DEVICE`, 1.3).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceCharDeviceInterface {
    /// "char_device", 1.3.
    pub base: SpiceBaseInterface,
    /// A client (dis)connected to the channel: `connected` is 0 or 1. 0 also tells the
    /// device it is not usable any more.
    pub state: Option<unsafe extern "C" fn(sin: *mut SpiceCharDeviceInstance, connected: c_int)>,
    /// Client → device data, non-blocking: returns the bytes taken from `buf` (may be
    /// fewer than `len`, even 0) or < 0 on error.
    pub write: Option<
        unsafe extern "C" fn(
            sin: *mut SpiceCharDeviceInstance,
            buf: *const u8,
            len: c_int,
        ) -> c_int,
    >,
    /// Device → client data, non-blocking: returns the bytes copied into `buf`, 0 if
    /// none are available, < 0 on error.
    pub read: Option<
        unsafe extern "C" fn(sin: *mut SpiceCharDeviceInstance, buf: *mut u8, len: c_int) -> c_int,
    >,
    /// A port event from the client (`SPICE_PORT_EVENT_*`; QEMU handles BREAK).
    pub event: Option<unsafe extern "C" fn(sin: *mut SpiceCharDeviceInstance, event: u8)>,
    /// `SPICE_CHAR_DEVICE_*` bits.
    pub flags: spice_char_device_flags,
}

/// A char device instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceCharDeviceInstance {
    /// `base.sif` points to a `SpiceCharDeviceInterface`.
    pub base: SpiceBaseInstance,
    /// "vdagent", "smartcard", "usbredir" or "port".
    pub subtype: *const c_char,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceCharDeviceState,
    /// The port name for subtype "port", else NULL.
    pub portname: *const c_char,
}
