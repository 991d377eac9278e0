//! Calls into QEMU's keyboard, mouse and tablet interfaces.
//!
//! Each takes the instance address recorded by `spice_server_add_interface` and must run
//! on QEMU's main loop with its lock held (these callbacks inject input into QEMU), and
//! only while that instance is registered: the callers read the registration under the
//! same lock, so it cannot be removed underneath them.

use super::abi::{
    SpiceKbdInstance, SpiceKbdInterface, SpiceMouseInstance, SpiceMouseInterface,
    SpiceTabletInstance, SpiceTabletInterface,
};

/// # Safety
/// `kbd` is a registered keyboard instance; QEMU's lock is held.
pub unsafe fn kbd_push(kbd: usize, bytes: &[u8]) {
    let sin = kbd as *mut SpiceKbdInstance;
    // SAFETY: per the contract the instance and its interface table are live.
    unsafe {
        let sif = &*(*sin).base.sif.cast::<SpiceKbdInterface>();
        if let Some(push) = sif.push_scan_freg {
            for &b in bytes {
                push(sin, b);
            }
        }
    }
}

/// # Safety
/// `mouse` is a registered mouse instance; QEMU's lock is held.
pub unsafe fn mouse_motion(mouse: usize, dx: i32, dy: i32, dz: i32, buttons: u32) {
    let sin = mouse as *mut SpiceMouseInstance;
    // SAFETY: as above.
    unsafe {
        let sif = &*(*sin).base.sif.cast::<SpiceMouseInterface>();
        if let Some(f) = sif.motion {
            f(sin, dx, dy, dz, buttons);
        }
    }
}

/// # Safety
/// As for `mouse_motion`.
pub unsafe fn mouse_buttons(mouse: usize, buttons: u32) {
    let sin = mouse as *mut SpiceMouseInstance;
    // SAFETY: as above.
    unsafe {
        let sif = &*(*sin).base.sif.cast::<SpiceMouseInterface>();
        if let Some(f) = sif.buttons {
            f(sin, buttons);
        }
    }
}

/// The tablet operations QEMU implements.
pub enum TabletCall {
    LogicalSize(i32, i32),
    Position(i32, i32, u32),
    Wheel(i32, u32),
    Buttons(u32),
}

/// # Safety
/// `tablet` is a registered tablet instance; QEMU's lock is held.
pub unsafe fn tablet(tablet: usize, call: TabletCall) {
    let sin = tablet as *mut SpiceTabletInstance;
    // SAFETY: as above.
    unsafe {
        let sif = &*(*sin).base.sif.cast::<SpiceTabletInterface>();
        match call {
            TabletCall::LogicalSize(w, h) => {
                if let Some(f) = sif.set_logical_size {
                    f(sin, w, h);
                }
            }
            TabletCall::Position(x, y, b) => {
                if let Some(f) = sif.position {
                    f(sin, x, y, b);
                }
            }
            TabletCall::Wheel(dz, b) => {
                if let Some(f) = sif.wheel {
                    f(sin, dz, b);
                }
            }
            TabletCall::Buttons(b) => {
                if let Some(f) = sif.buttons {
                    f(sin, b);
                }
            }
        }
    }
}
