//! `spice-char.h`: guest char devices (vdagent, smartcard, usbredir, spiceport).

use crate::ffi::abi::SpiceCharDeviceInstance;
use crate::ffi::{guard, instances};
use std::ffi::c_char;

/// A NULL-terminated array of C strings that lives forever.
#[repr(transparent)]
struct StaticNames([*const c_char; 4]);

// SAFETY: the pointers refer to 'static, immutable string literals.
unsafe impl Sync for StaticNames {}

/// The `-chardev spicevmc,name=` values this server accepts, in spice-server's order.
static SUBTYPES: StaticNames = StaticNames([
    c"vdagent".as_ptr(),
    c"smartcard".as_ptr(),
    c"usbredir".as_ptr(),
    std::ptr::null(),
]);

#[no_mangle]
pub extern "C" fn spice_server_char_device_recognized_subtypes() -> *mut *const c_char {
    // QEMU only reads the list; the signature is non-const for API compatibility.
    SUBTYPES.0.as_ptr() as *mut *const c_char
}
symver!(
    spice_server_char_device_recognized_subtypes,
    "SPICE_SERVER_0.6.0"
);

/// QEMU staged guest bytes (read them before returning) or its frontend can take more.
#[no_mangle]
pub unsafe extern "C" fn spice_server_char_device_wakeup(sin: *mut SpiceCharDeviceInstance) {
    // SAFETY: QEMU passes NULL or an instance it registered with `add_interface`.
    if let Some(device) = unsafe { instances::char_device(sin) } {
        guard("spice_server_char_device_wakeup", (), || device.wakeup());
    }
}
symver!(spice_server_char_device_wakeup, "SPICE_SERVER_0.6.0");

/// The guest opened (`SPICE_PORT_EVENT_OPENED`) or closed its end of a spiceport.
#[no_mangle]
pub unsafe extern "C" fn spice_server_port_event(sin: *mut SpiceCharDeviceInstance, event: u8) {
    // SAFETY: as above.
    if let Some(device) = unsafe { instances::char_device(sin) } {
        guard("spice_server_port_event", (), || device.port_event(event));
    }
}
symver!(spice_server_port_event, "SPICE_SERVER_0.12.2");
