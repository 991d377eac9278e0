//! `extern "C"` callbacks we hand to QEMU, each forwarding into safe Rust.
//! No panic may unwind out of them into QEMU.

use crate::ffi::core::Watch;
use crate::server::mainloop::{self, Inner};
use std::ffi::c_void;
use std::sync::Arc;

unsafe extern "C" fn mainloop_ready(_fd: i32, _event: i32, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Arc<Inner>` pointer leaked by `watch_mainloop`; it is
    // reclaimed only by `unwatch_mainloop`, after QEMU removed this watch.
    let inner = unsafe { &*(opaque as *const Inner) };
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mainloop::run_pending(inner)
    }))
    .is_err()
    {
        crate::log_error!("panic in a main loop job; the job was dropped");
    }
}

/// Registers the main loop wakeup watch; keeps one `Arc` reference alive for QEMU.
pub fn watch_mainloop(inner: &Arc<Inner>) -> Option<Watch> {
    let opaque = Arc::into_raw(inner.clone()) as *mut c_void;
    // SAFETY: `opaque` is an Arc reference kept alive until `unwatch_mainloop`.
    let watch = unsafe {
        inner
            .core_ref()
            .watch_add_read(inner.wake_fd(), mainloop_ready, opaque)
    };
    if watch.is_none() {
        // SAFETY: QEMU did not take the pointer; reclaim the reference we leaked.
        drop(unsafe { Arc::from_raw(opaque as *const Inner) });
    }
    watch
}

/// Drops the reference `watch_mainloop` gave QEMU; call after removing the watch.
pub fn unwatch_mainloop(inner: &Arc<Inner>) {
    // SAFETY: balances the `Arc::into_raw` in `watch_mainloop`; QEMU no longer holds it.
    drop(unsafe { Arc::from_raw(Arc::as_ptr(inner)) });
}
