//! Calls into QEMU's keyboard, mouse and tablet interfaces.
//!
//! Each takes the instance address recorded by `spice_server_add_interface` and must run
//! on QEMU's main loop with its lock held (these callbacks inject input into QEMU), and
//! only while that instance is registered: the callers read the registration under the
//! same lock, so it cannot be removed underneath them.

use crate::channel::inputs::InputSink;
use crate::server::session::{InputInstances, Session};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

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

/// Input from the inputs channel, delivered to QEMU's devices on its main loop.
pub struct QemuInputs {
    session: Weak<Session>,
}

impl QemuInputs {
    pub fn new(session: Weak<Session>) -> QemuInputs {
        QemuInputs { session }
    }

    fn with(
        &self,
        f: impl FnOnce(InputInstances, Option<(u32, u32)>, &Arc<Mutex<InputInstances>>) + Send + 'static,
    ) {
        let Some(session) = self.session.upgrade() else {
            return;
        };
        let instances = session.inputs.clone();
        let size = session.primary_size();
        session.on_main_loop(move |_core| {
            let current = *instances.lock();
            f(current, size, &instances);
        });
    }

    fn tablet(&self, call: TabletCall) {
        self.with(move |i, size, shared| {
            let Some(instance) = i.tablet else {
                return;
            };
            // The tablet maps positions onto the guest's screen size: keep it current.
            if let Some((w, h)) = size {
                if i.tablet_size != Some((w, h)) {
                    // SAFETY: read under QEMU's lock from the registry; still registered.
                    unsafe { tablet(instance, TabletCall::LogicalSize(w as i32, h as i32)) };
                    shared.lock().tablet_size = Some((w, h));
                }
            }
            // SAFETY: as above.
            unsafe { tablet(instance, call) };
        });
    }
}

impl InputSink for QemuInputs {
    fn scancodes(&self, bytes: Vec<u8>) {
        self.with(move |i, _, _| {
            if let Some(kbd) = i.keyboard {
                // SAFETY: the keyboard is registered (checked under QEMU's lock).
                unsafe { kbd_push(kbd, &bytes) };
            }
        });
    }

    fn mouse_motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32) {
        self.with(move |i, _, _| {
            if let Some(mouse) = i.mouse {
                // SAFETY: the mouse is registered (checked under QEMU's lock).
                unsafe { mouse_motion(mouse, dx, dy, dz, buttons) };
            }
        });
    }

    fn mouse_buttons(&self, buttons: u32) {
        self.with(move |i, _, _| {
            if let Some(mouse) = i.mouse {
                // SAFETY: as above.
                unsafe { mouse_buttons(mouse, buttons) };
            }
        });
    }

    fn tablet_position(&self, x: i32, y: i32, buttons: u32) {
        self.tablet(TabletCall::Position(x, y, buttons));
    }

    fn tablet_wheel(&self, dz: i32, buttons: u32) {
        self.tablet(TabletCall::Wheel(dz, buttons));
    }

    fn tablet_buttons(&self, buttons: u32) {
        self.tablet(TabletCall::Buttons(buttons));
    }

    fn leds(&self) -> (u8, u64) {
        self.session.upgrade().map_or((0, 0), |s| *s.leds.lock())
    }
}
