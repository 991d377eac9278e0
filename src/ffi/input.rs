//! QEMU's keyboard, mouse and tablet interfaces behind the server's device traits.
//!
//! Each wraps the instance address `spice_server_add_interface` received. The server
//! calls them only from jobs on QEMU's main loop (these callbacks inject input into QEMU
//! and need its lock), and drops them in `spice_server_remove_interface`, under the same
//! lock: an instance is never called after QEMU removed it.

use super::abi::{
    SpiceKbdInstance, SpiceKbdInterface, SpiceMouseInstance, SpiceMouseInterface,
    SpiceTabletInstance, SpiceTabletInterface,
};
use crate::server::host::{KeyboardDevice, MouseDevice, TabletDevice};

pub(crate) struct QemuKeyboard(pub *mut SpiceKbdInstance);
pub(crate) struct QemuMouse(pub *mut SpiceMouseInstance);
pub(crate) struct QemuTablet(pub *mut SpiceTabletInstance);

// SAFETY: the pointers are only dereferenced on QEMU's main loop under its lock (module
// comment), whichever thread moved the wrapper there.
unsafe impl Send for QemuKeyboard {}
// SAFETY: as above.
unsafe impl Sync for QemuKeyboard {}
// SAFETY: as above.
unsafe impl Send for QemuMouse {}
// SAFETY: as above.
unsafe impl Sync for QemuMouse {}
// SAFETY: as above.
unsafe impl Send for QemuTablet {}
// SAFETY: as above.
unsafe impl Sync for QemuTablet {}

impl QemuKeyboard {
    fn interface(&self) -> &SpiceKbdInterface {
        // SAFETY: a registered instance and its interface table are live (module comment).
        unsafe { &*(*self.0).base.sif.cast::<SpiceKbdInterface>() }
    }
}

impl KeyboardDevice for QemuKeyboard {
    fn push_scancode(&self, code: u8) {
        if let Some(push) = self.interface().push_scan_freg {
            // SAFETY: QEMU's callback on its registered instance, under its lock.
            unsafe { push(self.0, code) };
        }
    }
}

impl QemuMouse {
    fn interface(&self) -> &SpiceMouseInterface {
        // SAFETY: as for the keyboard.
        unsafe { &*(*self.0).base.sif.cast::<SpiceMouseInterface>() }
    }
}

impl MouseDevice for QemuMouse {
    fn motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32) {
        if let Some(f) = self.interface().motion {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, dx, dy, dz, buttons) };
        }
    }

    fn buttons(&self, buttons: u32) {
        if let Some(f) = self.interface().buttons {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, buttons) };
        }
    }
}

impl QemuTablet {
    fn interface(&self) -> &SpiceTabletInterface {
        // SAFETY: as for the keyboard.
        unsafe { &*(*self.0).base.sif.cast::<SpiceTabletInterface>() }
    }
}

impl TabletDevice for QemuTablet {
    fn set_logical_size(&self, width: i32, height: i32) {
        if let Some(f) = self.interface().set_logical_size {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, width, height) };
        }
    }

    fn position(&self, x: i32, y: i32, buttons: u32) {
        if let Some(f) = self.interface().position {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, x, y, buttons) };
        }
    }

    fn wheel(&self, dz: i32, buttons: u32) {
        if let Some(f) = self.interface().wheel {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, dz, buttons) };
        }
    }

    fn buttons(&self, buttons: u32) {
        if let Some(f) = self.interface().buttons {
            // SAFETY: as for the keyboard.
            unsafe { f(self.0, buttons) };
        }
    }
}
