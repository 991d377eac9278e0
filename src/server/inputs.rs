//! QEMU's input devices as the server holds them, and the relay that delivers what the
//! inputs channel decodes to them on QEMU's main loop.

use super::host::{KeyboardDevice, MouseDevice, TabletDevice};
use super::mainloop::{MainLoopSlot, Urgency};
use crate::channel::inputs::InputSink;
use parking_lot::Mutex;
use std::sync::Arc;

/// The registered devices (`spice_server_add_interface`); each is called only from a
/// main-loop job, so never while QEMU removes it.
#[derive(Default)]
struct InputDevices {
    keyboard: Option<Arc<dyn KeyboardDevice>>,
    mouse: Option<Arc<dyn MouseDevice>>,
    tablet: Option<Arc<dyn TabletDevice>>,
    /// The size last given to the tablet's `set_logical_size`.
    tablet_size: Option<(u32, u32)>,
}

/// The guest's keyboard LEDs and a counter bumped on every change.
type Leds = Arc<Mutex<(u8, u64)>>;

/// QEMU's input side: its devices and the keyboard LEDs the guest set.
#[derive(Default)]
pub(crate) struct Inputs {
    devices: Arc<Mutex<InputDevices>>,
    leds: Leds,
}

impl Inputs {
    pub(crate) fn set_keyboard(&self, keyboard: Option<Arc<dyn KeyboardDevice>>) {
        self.devices.lock().keyboard = keyboard;
    }

    pub(crate) fn set_mouse(&self, mouse: Option<Arc<dyn MouseDevice>>) {
        self.devices.lock().mouse = mouse;
    }

    pub(crate) fn set_tablet(&self, tablet: Option<Arc<dyn TabletDevice>>) {
        let mut d = self.devices.lock();
        d.tablet = tablet;
        d.tablet_size = None;
    }

    /// `spice_server_kbd_leds`.
    pub(crate) fn set_leds(&self, leds: u8) {
        let mut l = self.leds.lock();
        l.0 = leds;
        l.1 += 1;
    }

    /// The sink one inputs channel delivers to. `screen_size`: the guest screen's size
    /// now, which the tablet maps positions onto.
    pub(crate) fn relay(
        &self,
        mainloop: MainLoopSlot,
        screen_size: Arc<dyn Fn() -> Option<(u32, u32)> + Send + Sync>,
    ) -> InputRelay {
        InputRelay {
            mainloop,
            devices: self.devices.clone(),
            leds: self.leds.clone(),
            screen_size,
            agent: None,
        }
    }
}

/// Input from one inputs channel, posted to QEMU's main loop.
pub(crate) struct InputRelay {
    mainloop: MainLoopSlot,
    devices: Arc<Mutex<InputDevices>>,
    leds: Leds,
    screen_size: Arc<dyn Fn() -> Option<(u32, u32)> + Send + Sync>,
    /// Client-mode mouse goes to the guest agent when it takes it (agent-mouse).
    agent: Option<Arc<crate::agent::AgentHub>>,
}

impl InputRelay {
    pub(crate) fn with_agent(mut self, agent: Arc<crate::agent::AgentHub>) -> InputRelay {
        self.agent = Some(agent);
        self
    }

    fn post(&self, job: impl FnOnce(&Mutex<InputDevices>) + Send + 'static) {
        self.post_as(Urgency::Input, job);
    }

    fn post_as(&self, urgency: Urgency, job: impl FnOnce(&Mutex<InputDevices>) + Send + 'static) {
        let devices = self.devices.clone();
        self.mainloop.post_as(urgency, move |_core| job(&devices));
    }

    fn tablet(&self, urgency: Urgency, call: impl FnOnce(&dyn TabletDevice) + Send + 'static) {
        let size = (self.screen_size)();
        self.post_as(urgency, move |devices| {
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
        self.post_as(Urgency::Motion, move |devices| {
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
        self.tablet(Urgency::Motion, move |t| t.position(x, y, buttons));
    }

    fn tablet_wheel(&self, dz: i32, buttons: u32) {
        self.tablet(Urgency::Input, move |t| t.wheel(dz, buttons));
    }

    fn tablet_buttons(&self, buttons: u32) {
        self.tablet(Urgency::Input, move |t| t.buttons(buttons));
    }

    fn agent_mouse(&self, x: u32, y: u32, buttons: u32, display_id: u8) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|a| a.mouse_state(x, y, buttons, display_id))
    }

    fn leds(&self) -> (u8, u64) {
        *self.leds.lock()
    }
}
