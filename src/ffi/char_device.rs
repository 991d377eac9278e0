//! QEMU's char device interface (`SpiceCharDeviceInterface`) behind `CharDeviceHost`.
//!
//! The wrapper holds the instance address `spice_server_add_interface` received. The
//! server calls it only on QEMU's thread with its lock held (inside QEMU's own
//! `spice_server_char_device_wakeup` call, or from main-loop jobs) and stops calling it
//! in `spice_server_remove_interface`, under the same lock.

use super::abi::{SpiceCharDeviceInstance, SpiceCharDeviceInterface};
use crate::server::host::CharDeviceHost;
use std::ffi::c_int;

pub(crate) struct QemuCharDevice(pub *mut SpiceCharDeviceInstance);

// SAFETY: the pointer is only dereferenced on QEMU's thread under its lock (module
// comment), whichever thread moved the wrapper there.
unsafe impl Send for QemuCharDevice {}
// SAFETY: as above.
unsafe impl Sync for QemuCharDevice {}

impl QemuCharDevice {
    fn interface(&self) -> &SpiceCharDeviceInterface {
        // SAFETY: a registered instance and its interface table are live (module comment).
        unsafe { &*(*self.0).base.sif.cast::<SpiceCharDeviceInterface>() }
    }
}

/// C lengths are ints: never hand QEMU more than it can count.
fn c_len(len: usize) -> c_int {
    len.min(c_int::MAX as usize) as c_int
}

impl CharDeviceHost for QemuCharDevice {
    fn state(&self, connected: bool) {
        if let Some(state) = self.interface().state {
            // SAFETY: QEMU's callback on its registered instance, under its lock.
            unsafe { state(self.0, c_int::from(connected)) };
        }
    }

    fn write(&self, data: &[u8]) -> usize {
        let Some(write) = self.interface().write else {
            return 0;
        };
        // SAFETY: as above; `data` is valid for its length during the call.
        let n = unsafe { write(self.0, data.as_ptr(), c_len(data.len())) };
        usize::try_from(n).unwrap_or(0).min(data.len())
    }

    fn read(&self, buf: &mut [u8]) -> usize {
        let Some(read) = self.interface().read else {
            return 0;
        };
        // SAFETY: as above; `buf` is valid and writable for its length during the call.
        let n = unsafe { read(self.0, buf.as_mut_ptr(), c_len(buf.len())) };
        usize::try_from(n).unwrap_or(0).min(buf.len())
    }

    fn event(&self, event: u8) {
        if let Some(f) = self.interface().event {
            // SAFETY: as above.
            unsafe { f(self.0, event) };
        }
    }
}
