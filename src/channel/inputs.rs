//! The inputs channel: keyboard and mouse from the client onto QEMU's input devices.

use super::{malformed, Channel, ChannelError, Outbox};
use crate::proto::inputs::{self as wire, InputMessage, InputsMessage, BUTTON_DOWN, BUTTON_UP};
use crate::proto::msg::inputs as m;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Where input goes (QEMU's keyboard, mouse and tablet, reached on QEMU's main loop).
/// Buttons are already in QEMU's layout.
pub(crate) trait InputSink: Send + Sync {
    fn scancodes(&self, bytes: Vec<u8>);
    fn mouse_motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32);
    fn mouse_buttons(&self, buttons: u32);
    fn tablet_position(&self, x: i32, y: i32, buttons: u32);
    fn tablet_wheel(&self, dz: i32, buttons: u32);
    fn tablet_buttons(&self, buttons: u32);
    /// Keyboard LEDs as the guest set them, and a counter bumped on every change.
    fn leds(&self) -> (u8, u64);
    /// A client-mode mouse state for the guest agent (buttons in the agent's layout);
    /// false when no agent takes the mouse (the tablet does).
    fn agent_mouse(&self, _x: u32, _y: u32, _buttons: u32, _display_id: u8) -> bool {
        false
    }
}

/// SPICE button state to `VDAgentMouseState.buttons` (one bit higher).
fn agent_buttons(buttons: u32) -> u32 {
    buttons << 1
}
/// `VD_AGENT_UBUTTON_MASK`, `VD_AGENT_DBUTTON_MASK`.
const AGENT_WHEEL_UP: u32 = 1 << 4;
const AGENT_WHEEL_DOWN: u32 = 1 << 5;

/// `SPICE_MOUSE_MODE_CLIENT`, shared with the main channel.
pub(crate) const MOUSE_MODE_CLIENT: u32 = 2;

/// Lock keys: (LED bit, scancode).
const LOCKS: [(u16, u8); 3] = [(1, 0x46), (2, 0x45), (4, 0x3a)];

pub(crate) struct InputsChannel {
    sink: Arc<dyn InputSink>,
    mouse_mode: Arc<AtomicU32>,
    motions: u32,
    leds_seen: u64,
    /// Keys held down (scancode, with 0xE0 prefix as 0x100), released on disconnect.
    pressed: BTreeSet<u16>,
    extended: bool,
    /// The last client-mode position (x, y, display), for button events to the agent.
    position: (u32, u32, u8),
}

impl InputsChannel {
    pub(crate) fn new(sink: Arc<dyn InputSink>, mouse_mode: Arc<AtomicU32>) -> InputsChannel {
        InputsChannel {
            sink,
            mouse_mode,
            motions: 0,
            leds_seen: 0,
            pressed: BTreeSet::new(),
            extended: false,
            position: (0, 0, 0),
        }
    }

    fn client_mode(&self) -> bool {
        self.mouse_mode.load(Ordering::Relaxed) == MOUSE_MODE_CLIENT
    }

    /// Remembers which keys are down so they can be released if the client vanishes.
    fn track(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                0xe0 => {
                    self.extended = true;
                    continue;
                }
                0xe1 => {}
                _ => {
                    let key = u16::from(b & 0x7f) | if self.extended { 0x100 } else { 0 };
                    if b & 0x80 == 0 {
                        self.pressed.insert(key);
                    } else {
                        self.pressed.remove(&key);
                    }
                }
            }
            self.extended = false;
        }
    }

    fn keys(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.track(&bytes);
        self.sink.scancodes(bytes);
    }

    /// In client mode, a button change goes to the agent at the last position.
    fn buttons_to_agent(&self, buttons: u32) -> bool {
        let (x, y, display) = self.position;
        self.client_mode() && self.sink.agent_mouse(x, y, buttons, display)
    }

    fn motion_ack(&mut self, out: &mut Outbox) {
        self.motions += 1;
        if self.motions.is_multiple_of(m::MOTION_ACK_BUNCH) {
            out.send(&InputsMessage::MouseMotionAck);
        }
    }
}

impl Channel for InputsChannel {
    fn start(&mut self, out: &mut Outbox) {
        let (leds, generation) = self.sink.leds();
        self.leds_seen = generation;
        out.send(&InputsMessage::Init {
            modifiers: u16::from(leds),
        });
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        let Some(msg) = wire::parse(msg_type, body).map_err(malformed(msg_type))? else {
            return Err(ChannelError::BadMessage {
                msg_type,
                reason: "unknown inputs message",
            });
        };
        match msg {
            InputMessage::Key { code } => self.keys(wire::key_bytes(code)),
            InputMessage::Scancodes(bytes) => self.keys(bytes),
            InputMessage::Modifiers(wanted) => {
                let (leds, _) = self.sink.leds();
                for (bit, scancode) in LOCKS {
                    let held = self.pressed.contains(&u16::from(scancode));
                    if (u16::from(leds) ^ wanted) & bit != 0 && !held {
                        self.sink.scancodes(vec![scancode, scancode | 0x80]);
                    }
                }
            }
            InputMessage::Motion { dx, dy, buttons } => {
                if !self.client_mode() {
                    self.sink
                        .mouse_motion(dx, dy, 0, wire::local_buttons(buttons));
                }
                self.motion_ack(out);
            }
            InputMessage::Position {
                x,
                y,
                buttons,
                display,
            } => {
                self.position = (x, y, display);
                let to_agent = self.client_mode()
                    && self
                        .sink
                        .agent_mouse(x, y, agent_buttons(u32::from(buttons)), display);
                if self.client_mode() && !to_agent {
                    let (x, y) = (x.min(i32::MAX as u32) as i32, y.min(i32::MAX as u32) as i32);
                    self.sink
                        .tablet_position(x, y, wire::local_buttons(buttons));
                }
                self.motion_ack(out);
            }
            InputMessage::Press { button, buttons } => {
                let dz = match button {
                    BUTTON_UP => -1,
                    BUTTON_DOWN => 1,
                    _ => 0,
                };
                let b = wire::local_buttons(buttons);
                let wheel = match dz {
                    -1 => AGENT_WHEEL_UP,
                    1 => AGENT_WHEEL_DOWN,
                    _ => 0,
                };
                if self.buttons_to_agent(agent_buttons(u32::from(buttons)) | wheel) {
                    return Ok(());
                }
                match (self.client_mode(), dz) {
                    (true, 0) => self.sink.tablet_buttons(b),
                    (true, dz) => self.sink.tablet_wheel(dz, b),
                    (false, dz) => self.sink.mouse_motion(0, 0, dz, b),
                }
            }
            InputMessage::Release { buttons, .. } => {
                if self.buttons_to_agent(agent_buttons(u32::from(buttons))) {
                    return Ok(());
                }
                let b = wire::local_buttons(buttons);
                if self.client_mode() {
                    self.sink.tablet_buttons(b);
                } else {
                    self.sink.mouse_buttons(b);
                }
            }
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        let (leds, generation) = self.sink.leds();
        if generation != self.leds_seen {
            self.leds_seen = generation;
            out.send(&InputsMessage::KeyModifiers {
                modifiers: u16::from(leds),
            });
        }
    }

    fn closed(&mut self) {
        // A client that vanished with keys down must not leave them stuck in the guest.
        let mut release = Vec::new();
        for key in std::mem::take(&mut self.pressed) {
            if key & 0x100 != 0 {
                release.push(0xe0);
            }
            release.push((key & 0x7f) as u8 | 0x80);
        }
        if !release.is_empty() {
            self.sink.scancodes(release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::HeaderKind;
    use crate::proto::wire::Writer;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>, bool);

    impl InputSink for Recorder {
        fn scancodes(&self, bytes: Vec<u8>) {
            self.0.lock().push(format!("keys {bytes:02x?}"));
        }
        fn mouse_motion(&self, dx: i32, dy: i32, dz: i32, buttons: u32) {
            self.0
                .lock()
                .push(format!("motion {dx} {dy} {dz} {buttons}"));
        }
        fn mouse_buttons(&self, buttons: u32) {
            self.0.lock().push(format!("buttons {buttons}"));
        }
        fn tablet_position(&self, x: i32, y: i32, buttons: u32) {
            self.0.lock().push(format!("position {x} {y} {buttons}"));
        }
        fn tablet_wheel(&self, dz: i32, buttons: u32) {
            self.0.lock().push(format!("wheel {dz} {buttons}"));
        }
        fn tablet_buttons(&self, buttons: u32) {
            self.0.lock().push(format!("tbuttons {buttons}"));
        }
        fn leds(&self) -> (u8, u64) {
            (0, 0)
        }
        fn agent_mouse(&self, x: u32, y: u32, buttons: u32, display: u8) -> bool {
            if self.1 {
                self.0
                    .lock()
                    .push(format!("agent {x} {y} {buttons:#x} {display}"));
            }
            self.1
        }
    }

    fn channel() -> (InputsChannel, Arc<Recorder>, Outbox) {
        let rec = Arc::new(Recorder::default());
        let ch = InputsChannel::new(rec.clone(), Arc::new(AtomicU32::new(1)));
        (ch, rec, Outbox::new(HeaderKind::Mini))
    }

    #[test]
    fn extended_key_and_release_on_disconnect() {
        let (mut ch, rec, mut out) = channel();
        ch.on_message(m::C_KEY_DOWN, &0x48e0u32.to_le_bytes(), &mut out)
            .unwrap();
        ch.on_message(m::C_KEY_DOWN, &0x1du32.to_le_bytes(), &mut out)
            .unwrap();
        ch.closed();
        assert_eq!(
            *rec.0.lock(),
            vec!["keys [e0, 48]", "keys [1d]", "keys [9d, e0, c8]"]
        );
    }

    #[test]
    fn every_fourth_motion_is_acked() {
        let (mut ch, rec, mut out) = channel();
        let mut w = Writer::new();
        w.i32(1).i32(-1).u16(4);
        let body = w.into_inner();
        for _ in 0..8 {
            ch.on_message(m::C_MOUSE_MOTION, &body, &mut out).unwrap();
        }
        assert_eq!(out.pending(), 2 * 6, "two empty MOUSE_MOTION_ACKs");
        assert_eq!(rec.0.lock()[0], "motion 1 -1 0 2");
    }

    #[test]
    fn wheel_is_dz_in_server_mode() {
        let (mut ch, rec, mut out) = channel();
        ch.on_message(m::C_MOUSE_PRESS, &[BUTTON_DOWN, 0, 0], &mut out)
            .unwrap();
        ch.on_message(m::C_MOUSE_RELEASE, &[1, 0, 0], &mut out)
            .unwrap();
        assert_eq!(*rec.0.lock(), vec!["motion 0 0 1 0", "buttons 0"]);
    }

    #[test]
    fn client_mode_goes_to_the_agent_when_it_takes_the_mouse() {
        let rec = Arc::new(Recorder(Mutex::default(), true));
        let mut ch = InputsChannel::new(rec.clone(), Arc::new(AtomicU32::new(MOUSE_MODE_CLIENT)));
        let mut out = Outbox::new(HeaderKind::Mini);
        let mut w = Writer::new();
        w.u32(100).u32(50).u16(1).u8(1);
        ch.on_message(m::C_MOUSE_POSITION, &w.into_inner(), &mut out)
            .unwrap();
        ch.on_message(m::C_MOUSE_PRESS, &[BUTTON_UP, 0, 0], &mut out)
            .unwrap();
        ch.on_message(m::C_MOUSE_RELEASE, &[1, 0, 0], &mut out)
            .unwrap();
        assert_eq!(
            *rec.0.lock(),
            vec![
                "agent 100 50 0x2 1",
                "agent 100 50 0x10 1",
                "agent 100 50 0x0 1"
            ]
        );
    }

    #[test]
    fn unknown_or_short_messages_close_the_channel() {
        let (mut ch, _, mut out) = channel();
        assert!(ch.on_message(200, &[], &mut out).is_err());
        assert!(ch.on_message(m::C_KEY_DOWN, &[1], &mut out).is_err());
    }
}
