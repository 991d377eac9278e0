//! The QEMU side of a worker: the request queue and the thread.

use super::{Device, Outputs, Worker};
use crate::geometry::Rect;
use crate::qxl::memslot::{Layout, Slot};
use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How a request reports completion.
pub(crate) enum Done {
    /// The caller blocks until the worker acks.
    Sync(Sender<()>),
    /// `async_complete(cookie)` on the worker, exactly once.
    Async(u64),
    /// Nothing to report (tests).
    #[cfg(test)]
    None,
}

/// A primary surface as QEMU describes it (`QXLDevSurfaceCreate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrimarySurface {
    pub width: u32,
    pub height: u32,
    pub stride: i32,
    pub format: u32,
    pub mouse_mode: u32,
    pub flags: u32,
    pub mem: u64,
    pub group: u32,
}

pub(crate) enum Msg {
    Wakeup,
    /// The guest is out of memory for commands; the flag is cleared once handled (one
    /// notice queued at a time, as red-qxl.cpp's RED_DISPATCHER_PENDING_OOM).
    Oom(Arc<AtomicBool>),
    Start,
    Stop(Done),
    AddMemslot {
        group: u32,
        slot: u32,
        value: Slot,
        done: Done,
    },
    DelMemslot {
        group: u32,
        slot: u32,
    },
    ResetMemslots,
    CreatePrimary {
        surface: PrimarySurface,
        done: Done,
    },
    DestroyPrimary {
        done: Done,
    },
    DestroySurfaces {
        done: Done,
    },
    DestroySurfaceWait {
        surface_id: u32,
        done: Done,
    },
    UpdateArea {
        surface_id: u32,
        area: Rect,
        done: Done,
    },
    FlushSurfaces {
        done: Done,
    },
    ResetImageCache {
        done: Done,
    },
    ResetCursor {
        done: Done,
    },
    MonitorsConfig {
        /// The device's monitor count (`set_device_info`; `u32::MAX` when never given).
        max_monitors: u32,
        /// Guest address of a `QXLMonitorsConfig` and its memslot group.
        address: u64,
        group: u32,
        done: Done,
    },
    /// Commands to apply without releasing them (`loadvm_commands`).
    Loadvm {
        commands: Vec<super::Command>,
        done: Done,
    },
    DriverUnload,
    /// A display client came or went (its display caps as a byte bitmap).
    ClientPresence {
        present: bool,
        caps: [u8; super::CLIENT_CAPS_BYTES],
    },
    /// Only completes `done` (a malformed request still owes QEMU its cookie).
    Nop {
        done: Done,
    },
    Shutdown,
}

impl Msg {
    /// The async cookie this request owes QEMU, if any.
    pub(crate) fn async_cookie(&self) -> Option<u64> {
        let done = match self {
            Msg::Stop(done)
            | Msg::AddMemslot { done, .. }
            | Msg::CreatePrimary { done, .. }
            | Msg::DestroyPrimary { done }
            | Msg::DestroySurfaces { done }
            | Msg::DestroySurfaceWait { done, .. }
            | Msg::UpdateArea { done, .. }
            | Msg::FlushSurfaces { done }
            | Msg::ResetImageCache { done }
            | Msg::ResetCursor { done }
            | Msg::MonitorsConfig { done, .. }
            | Msg::Loadvm { done, .. }
            | Msg::Nop { done } => done,
            _ => return None,
        };
        match done {
            Done::Async(cookie) => Some(*cookie),
            _ => None,
        }
    }
}

/// What the library keeps per QXL instance.
pub(crate) struct WorkerHandle {
    pub id: i32,
    requests: Sender<Msg>,
    /// Coalesces wakeups: QEMU's simple display calls wakeup ~33 times a second.
    wakeup_pending: Arc<AtomicBool>,
    /// An out-of-memory notice is queued and not handled yet.
    oom_pending: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    pub(crate) fn spawn<D: Device + 'static>(
        id: i32,
        device: D,
        layout: Layout,
        outputs: Outputs,
        prepare_thread: fn(),
    ) -> std::io::Result<WorkerHandle> {
        let (requests, inbox) = unbounded();
        let wakeup_pending = Arc::new(AtomicBool::new(false));
        let pending = wakeup_pending.clone();
        let thread = std::thread::Builder::new()
            .name(format!("spice-qxl-{id}"))
            .spawn(move || {
                prepare_thread();
                Worker::new(device, layout, inbox, pending, outputs).run();
            })?;
        Ok(WorkerHandle {
            id,
            requests,
            wakeup_pending,
            oom_pending: Arc::default(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a request that completes on its own (async cookie or nothing).
    pub(crate) fn post(&self, msg: Msg) {
        if self.requests.send(msg).is_err() {
            crate::log_warn!("QXL worker {} is gone; request dropped", self.id);
        }
    }

    pub(crate) fn wakeup(&self) {
        if !self.wakeup_pending.swap(true, Ordering::AcqRel) {
            self.post(Msg::Wakeup);
        }
    }

    /// `spice_qxl_oom`: a guest repeating the notice while one waits adds nothing.
    pub(crate) fn oom(&self) {
        if !self.oom_pending.swap(true, Ordering::AcqRel) {
            self.post(Msg::Oom(self.oom_pending.clone()));
        }
    }

    /// Queues a request and waits until the worker has carried it out.
    pub(crate) fn call(&self, make: impl FnOnce(Done) -> Msg) {
        let (ack, done) = bounded(1);
        if self.requests.send(make(Done::Sync(ack))).is_err() {
            crate::log_warn!("QXL worker {} is gone; request dropped", self.id);
            return;
        }
        // An error means the worker died; QEMU must not hang on it.
        let _ = done.recv();
    }

    /// Stops the thread and waits for it.
    pub(crate) fn shutdown(&self) {
        let _ = self.requests.send(Msg::Shutdown);
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                crate::log_error!("QXL worker {} panicked", self.id);
            }
        }
    }
}
