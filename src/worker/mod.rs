//! One worker thread per QXL instance: it drains the guest's command rings, keeps the
//! memory slots and surfaces, and answers QEMU's synchronous and asynchronous requests.
//!
//! QEMU holds its global lock while it waits for the synchronous requests, so nothing
//! here may wait for QEMU's main loop. The worker talks to the device only through the
//! `Device` trait; `ffi::qxl_device` implements it over QEMU's callbacks.

mod device;
mod handle;
pub mod pointer;
pub mod region;
pub mod screen;

pub use device::{Command, Device, Rect, CLIENT_CAPS_BYTES};
pub use handle::{Done, Msg, PrimarySurface, WorkerHandle};

use crate::qxl::guest;
use crate::qxl::memslot::{Layout, MemSlots};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How many ring entries to take before looking at QEMU's requests again.
const COMMANDS_PER_ROUND: usize = 64;
/// Upper bound on sleeping with notifications armed (a lost wakeup costs at most this).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// `QXL_CMD_*` ring entry types.
pub mod command_type {
    pub const NOP: u32 = 0;
    pub const DRAW: u32 = 1;
    pub const UPDATE: u32 = 2;
    pub const CURSOR: u32 = 3;
    pub const MESSAGE: u32 = 4;
    pub const SURFACE: u32 = 5;
}

pub struct Worker<D: Device> {
    device: D,
    inbox: Receiver<Msg>,
    slots: MemSlots,
    running: bool,
    primary: Option<PrimarySurface>,
    /// Set when a ring may hold commands we have not taken yet.
    rings_dirty: bool,
    /// Shared with `WorkerHandle::wakeup`, which skips queueing while this is set.
    wakeup_pending: Arc<AtomicBool>,
    pub stats: Stats,
}

/// Counters a test (or a debug log) can read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub commands: u64,
    pub cursor_commands: u64,
    pub released: u64,
    pub rejected: u64,
}

impl<D: Device> Worker<D> {
    pub fn new(
        device: D,
        layout: Layout,
        inbox: Receiver<Msg>,
        wakeup_pending: Arc<AtomicBool>,
    ) -> Worker<D> {
        Worker {
            device,
            inbox,
            slots: MemSlots::new(layout),
            running: false,
            primary: None,
            rings_dirty: false,
            wakeup_pending,
            stats: Stats::default(),
        }
    }

    /// Runs until `Msg::Shutdown` or until every sender is gone.
    pub fn run(&mut self) {
        loop {
            let next = if self.running && self.rings_dirty {
                match self.inbox.try_recv() {
                    Ok(m) => Some(m),
                    Err(crossbeam_channel::TryRecvError::Empty) => None,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.inbox.recv_timeout(IDLE_POLL) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => {
                        self.rings_dirty = self.running;
                        None
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            if let Some(msg) = next {
                if matches!(msg, Msg::Shutdown) {
                    return;
                }
                self.handle_guarded(msg);
            }
            if self.running && self.rings_dirty {
                self.drain_rings();
            }
        }
    }

    fn handle_guarded(&mut self, msg: Msg) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(msg)));
        if outcome.is_err() {
            crate::log_error!("QXL worker: a request panicked and was dropped");
        }
    }

    /// Takes up to a round of commands from both rings; arms notifications when empty.
    fn drain_rings(&mut self) {
        let mut display_empty = false;
        let mut cursor_empty = false;
        for _ in 0..COMMANDS_PER_ROUND {
            if !display_empty {
                match self.device.get_command() {
                    Some(cmd) => {
                        self.stats.commands += 1;
                        self.process(cmd);
                    }
                    None => display_empty = true,
                }
            }
            if !cursor_empty {
                match self.device.get_cursor_command() {
                    Some(cmd) => {
                        self.stats.cursor_commands += 1;
                        self.process(cmd);
                    }
                    None => cursor_empty = true,
                }
            }
            if display_empty && cursor_empty {
                break;
            }
        }
        if display_empty && cursor_empty {
            // The device answers false when commands arrived meanwhile: keep draining.
            let display_idle = self.device.req_cmd_notification();
            let cursor_idle = self.device.req_cursor_notification();
            self.rings_dirty = !(display_idle && cursor_idle);
        }
    }

    /// Handles one ring entry. Until the display channel consumes them, commands are
    /// released right away so the guest (and QEMU's update queue) never backs up.
    fn process(&mut self, cmd: Command) {
        match guest::release_info_address(&self.slots, cmd.group, cmd.data) {
            Ok(info) => {
                self.device.release_resource(info, cmd.group);
                self.stats.released += 1;
            }
            Err(e) => {
                self.stats.rejected += 1;
                crate::log_warn!("QXL command of type {} rejected: {e}", cmd.kind);
            }
        }
    }

    fn finish(&mut self, done: Done) {
        match done {
            Done::Sync(ack) => {
                let _ = ack.send(());
            }
            Done::Async(cookie) => self.device.async_complete(cookie),
            Done::None => {}
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Wakeup => {
                self.wakeup_pending.store(false, Ordering::Release);
                self.rings_dirty = true;
            }
            Msg::Oom => self.rings_dirty = true,
            Msg::Start => {
                self.running = true;
                self.rings_dirty = true;
            }
            Msg::Stop(done) => {
                self.running = false;
                self.finish(done);
            }
            Msg::AddMemslot {
                group,
                slot,
                value,
                done,
            } => {
                if let Err(e) = self.slots.add(group, slot, value) {
                    crate::log_warn!("add_memslot refused: {e}");
                }
                self.finish(done);
            }
            Msg::DelMemslot { group, slot } => {
                if let Err(e) = self.slots.remove(group, slot) {
                    crate::log_warn!("del_memslot refused: {e}");
                }
            }
            Msg::ResetMemslots => self.slots.reset(),
            Msg::CreatePrimary { surface, done } => {
                self.primary = Some(surface);
                self.finish(done);
            }
            Msg::DestroyPrimary { done } | Msg::DestroySurfaces { done } => {
                self.primary = None;
                self.finish(done);
            }
            Msg::UpdateArea {
                surface_id,
                area,
                done,
            } => {
                if let Done::Async(_) = done {
                    self.device.update_area_complete(surface_id, &[area]);
                }
                self.finish(done);
            }
            Msg::DestroySurfaceWait { done, .. }
            | Msg::FlushSurfaces { done }
            | Msg::ResetImageCache { done }
            | Msg::ResetCursor { done }
            | Msg::MonitorsConfig { done }
            | Msg::Loadvm { done }
            | Msg::Nop { done } => self.finish(done),
            Msg::DriverUnload => {}
            Msg::Shutdown => {}
        }
    }

    pub fn primary(&self) -> Option<&PrimarySurface> {
        self.primary.as_ref()
    }
}

#[cfg(test)]
mod tests;
