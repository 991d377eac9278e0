//! `spice-char.h`: guest char devices (vdagent, usbredir, spiceport).

use crate::ffi::abi::SpiceCharDeviceInstance;
use std::ffi::c_char;

/// A NULL-terminated array of C strings that lives forever.
#[repr(transparent)]
struct StaticNames([*const c_char; 3]);

// SAFETY: the pointers refer to 'static, immutable string literals.
unsafe impl Sync for StaticNames {}

/// The `-chardev spicevmc,name=` values this server accepts (no smartcard support, as a
/// spice-server built without libcacard).
static SUBTYPES: StaticNames =
    StaticNames([c"vdagent".as_ptr(), c"usbredir".as_ptr(), std::ptr::null()]);

#[no_mangle]
pub extern "C" fn spice_server_char_device_recognized_subtypes() -> *mut *const c_char {
    // QEMU only reads the list; the signature is non-const for API compatibility.
    SUBTYPES.0.as_ptr() as *mut *const c_char
}
symver!(
    spice_server_char_device_recognized_subtypes,
    "SPICE_SERVER_0.6.0"
);

/// No client channel is attached to any char device yet, so guest data stays queued
/// in QEMU (it retries) and there is nothing to write to the guest.
#[no_mangle]
pub unsafe extern "C" fn spice_server_char_device_wakeup(sin: *mut SpiceCharDeviceInstance) {
    let _ = sin;
}
symver!(spice_server_char_device_wakeup, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_port_event(sin: *mut SpiceCharDeviceInstance, event: u8) {
    let _ = (sin, event);
}
symver!(spice_server_port_event, "SPICE_SERVER_0.12.2");
