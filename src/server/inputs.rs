//! QEMU's input devices as the server holds them, and the relay that delivers what the
//! inputs channel decodes to them on QEMU's main loop.

use super::host::{KeyboardDevice, MouseDevice, TabletDevice};
use super::mainloop::MainLoopHandle;
use crate::channel::inputs::InputSink;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};

/// The registered devices (`spice_server_add_interface`); each is called only from a
/// main-loop job, so never while QEMU removes it.
#[derive(Default)]
pub struct InputDevices {
    pub keyboard: Option<Arc<dyn KeyboardDevice>>,
    pub mouse: Option<Arc<dyn MouseDevice>>,
    pub tablet: Option<Arc<dyn TabletDevice>>,
    /// The size last given to the tablet's `set_logical_size`.
    pub tablet_size: Option<(u32, u32)>,
}

/// The guest's keyboard LEDs and a counter bumped on every change.
pub type Leds = Arc<Mutex<(u8, u64)>>;

/// Input from one inputs channel, posted to QEMU's main loop.
pub struct InputRelay {
    pub(super) mainloop: Arc<OnceLock<MainLoopHandle>>,
    pub(super) devices: Arc<Mutex<InputDevices>>,
    pub(super) leds: Leds,
    /// The guest screen's size now, which the tablet maps positions onto.
    pub(super) screen_size: Arc<dyn Fn() -> Option<(u32, u32)> + Send + Sync>,
}

impl InputRelay {
    fn post(&self, job: impl FnOnce(&Mutex<InputDevices>) + Send + 'static) {
        let devices = self.devices.clone();
        match self.mainloop.get() {
            Some(m) => m.post(Box::new(move |_core| job(&devices))),
            None => crate::log_debug!("main loop not attached; event dropped"),
        }
    }

    fn tablet(&self, call: impl FnOnce(&dyn TabletDevice) + Send + 'static) {
        let size = (self.screen_size)();
        self.post(move |devices| {
            let (tablet, resize) = {
                let mut d = devices.lock();
                let Some(tablet) = d.tablet.clone() else {
                    return;
                };
                // Keep the tablet's idea of the screen current.
                let resize = size.filter(|s| d.tablet_size != Some(*s));
                if resize.is_some() {
                    d.tablet_size = resize;
                }
                (tablet, resize)
            };
            if let Some((w, h)) = resize {
                tablet.set_logical_size(w as i32, h as i32);
            }
            call(&*tablet);
        });
    }
}

impl InputSink for InputRelay {
    fn scancodes(&self, bytes: Vec<u8>) {
        self.post(move |devices| {
            let keyboard = devices.lock().keyboard.clone();
            if let Some(keyboard) = keyboard {
                bytes.iter().for_each(|&b| keyboard.push_scancode(b));
            }
        });
    }

    fn mouse_motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32) {
        self.post(move |devices| {
            let mouse = devices.lock().mouse.clone();
            if let Some(mouse) = mouse {
                mouse.motion(dx, dy, dz, buttons);
            }
        });
    }

    fn mouse_buttons(&self, buttons: u32) {
        self.post(move |devices| {
            let mouse = devices.lock().mouse.clone();
            if let Some(mouse) = mouse {
                mouse.buttons(buttons);
            }
        });
    }

    fn tablet_position(&self, x: i32, y: i32, buttons: u32) {
        self.tablet(move |t| t.position(x, y, buttons));
    }

    fn tablet_wheel(&self, dz: i32, buttons: u32) {
        self.tablet(move |t| t.wheel(dz, buttons));
    }

    fn tablet_buttons(&self, buttons: u32) {
        self.tablet(move |t| t.buttons(buttons));
    }

    fn leds(&self) -> (u8, u64) {
        *self.leds.lock()
    }
}
