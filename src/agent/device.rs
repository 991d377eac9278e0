//! The vdagent char device's side of the hub (`DeviceSide`, the `DeviceSink` one
//! attachment of the device holds).

use super::*;

/// Resumes the device's reads when `port` says they were paused.
pub(super) fn resume_if(port: Option<Arc<dyn GuestPort>>) {
    if let Some(port) = port {
        port.resume_reading();
    }
}

/// The hub as one attachment of the device sees it.
pub(super) struct DeviceSide {
    pub(super) hub: Weak<AgentHub>,
    pub(super) generation: u64,
}

impl DeviceSide {
    fn with<R>(&self, f: impl FnOnce(&mut State, &mut After) -> R) -> Option<R> {
        let hub = self.hub.upgrade()?;
        let mut after = After::default();
        let r = {
            let mut s = hub.state.lock();
            if s.generation != self.generation {
                return None;
            }
            f(&mut s, &mut after)
        };
        hub.finish(after);
        Some(r)
    }
}

impl DeviceSink for DeviceSide {
    fn room(&self) -> usize {
        self.with(|s, _| {
            let room = s.room(Instant::now());
            s.paused = room == 0;
            room
        })
        .unwrap_or(DRAIN)
    }

    fn received(&self, data: &[u8]) {
        self.with(|s, after| {
            s.device_bytes(data);
            after.wake = true;
        });
    }

    fn written(&self, tag: u64) {
        self.with(|s, after| {
            if let Some(id) = s.in_flight.remove(&tag) {
                if let Some(c) = s.clients.get_mut(&id) {
                    c.outstanding = c.outstanding.saturating_sub(1);
                    c.give_back += 1;
                    after.wake = true;
                }
            }
            if let (Some(msg), Some(port)) = (s.pending_mouse.take(), s.device.clone()) {
                port.to_guest(msg, 0);
            }
        });
    }

    fn guest_event(&self, opened: bool) {
        self.with(|s, after| {
            match (opened, s.connected) {
                (true, false) => s.agent_up(),
                (false, true) => s.agent_gone("closed by the guest"),
                _ => return,
            }
            after.mouse = Some(s.mouse_offered());
            after.wake = true;
        });
    }

    fn detached(&self) {
        if let Some(hub) = self.hub.upgrade() {
            if hub.state.lock().generation == self.generation {
                hub.detach_device();
            }
        }
    }
}
