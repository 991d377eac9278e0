//! The C boundary: every exported function and every `#[repr(C)]` type.
//!
//! Each entry point checks its pointers, catches panics (none may unwind into QEMU),
//! converts arguments to Rust values and calls into safe code. Symbol versions are
//! attached next to each export with `symver!`.

#[macro_use]
mod symver;

pub mod abi;
pub mod api;
pub(crate) mod audio;
pub(crate) mod char_device;
pub(crate) mod core;
pub(crate) mod input;
pub(crate) mod instances;
pub(crate) mod qxl_device;
pub(crate) mod sasl;
pub(crate) mod socket;
pub(crate) mod thread;

use crate::server::Server;
use parking_lot::Mutex;
use std::ffi::{c_char, CStr};
use std::sync::Arc;

/// What a `SpiceServer *` points to.
pub(crate) struct ServerHandle {
    pub(crate) server: Arc<Mutex<Server>>,
}

/// Runs `body`, turning a panic into `fallback` and one log line.
pub(crate) fn guard<R>(function: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(_) => {
            crate::log_error!("{function}: internal error (panic caught at the C boundary)");
            fallback
        }
    }
}

/// Borrows the server behind a `SpiceServer *`.
///
/// # Safety
/// `s` must be null or a pointer returned by `spice_server_new` and not yet destroyed.
pub(crate) unsafe fn server<'a>(s: *mut abi::SpiceServer) -> Option<&'a ServerHandle> {
    // SAFETY: per the contract, a non-null `s` is a live Box<ServerHandle>.
    unsafe { (s as *const ServerHandle).as_ref() }
}

/// Copies a C string; `None` for NULL. Invalid UTF-8 is replaced, not rejected.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string.
pub(crate) unsafe fn string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Runs `body` on the locked server, or returns `fallback` for a NULL handle.
///
/// # Safety
/// As for [`server`].
pub(crate) unsafe fn with_server<R>(
    function: &str,
    s: *mut abi::SpiceServer,
    fallback: R,
    body: impl FnOnce(&mut Server) -> R,
) -> R
where
    R: Copy,
{
    // SAFETY: forwarded contract.
    let Some(handle) = (unsafe { server(s) }) else {
        crate::log_warn!("{function}: NULL server");
        return fallback;
    };
    guard(function, fallback, || {
        let mut server = handle.server.lock();
        let r = body(&mut server);
        // Setters change what clients are checked against; keep the session current.
        server.sync_session();
        r
    })
}
