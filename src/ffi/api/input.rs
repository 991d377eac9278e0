//! `spice-input.h`.

use crate::ffi::abi::SpiceKbdInstance;
use crate::ffi::instances;
use std::ffi::c_int;

/// The guest changed its keyboard LEDs; clients learn it through the inputs channel.
#[no_mangle]
pub unsafe extern "C" fn spice_server_kbd_leds(sin: *mut SpiceKbdInstance, leds: c_int) -> c_int {
    // SAFETY: `sin` is NULL or the keyboard QEMU registered.
    unsafe {
        instances::with_instance_server("spice_server_kbd_leds", sin.cast(), |srv| {
            srv.session.set_leds((leds & 0x7) as u8);
        })
    };
    0
}
symver!(spice_server_kbd_leds, "SPICE_SERVER_0.6.0");
