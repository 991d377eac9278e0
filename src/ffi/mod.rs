//! The C boundary: every exported function and every `#[repr(C)]` type.
#[macro_use]
mod symver;

#[no_mangle]
pub extern "C" fn spice_get_current_compat_version() -> libc::c_int {
    1
}
symver!(spice_get_current_compat_version, "SPICE_SERVER_0.6.1");
