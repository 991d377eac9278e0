//! Hands work from our threads to QEMU's main loop.
//!
//! QEMU's core interface, input callbacks, char devices and `channel_event` all need
//! QEMU's global lock, which only QEMU's own threads hold. Our threads queue a job and
//! poke a socketpair; a read watch registered with QEMU (under the lock, in
//! `spice_server_init`) runs the queued jobs from QEMU's main loop.

use super::host::{Core, Watch};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

/// Work that must run on QEMU's main loop, with its lock held.
pub(crate) type Job = Box<dyn FnOnce(&dyn Core) + Send>;

struct Inner {
    core: Arc<dyn Core>,
    jobs: Mutex<VecDeque<Job>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

/// Cloneable handle any thread may use to queue main-loop work.
#[derive(Clone)]
pub(crate) struct MainLoopHandle(Arc<Inner>);

impl MainLoopHandle {
    pub(crate) fn post(&self, job: Job) {
        self.0.jobs.lock().push_back(job);
        // A full socket buffer already means "wake up"; nothing else can fail usefully.
        match (&self.0.wake_tx).write(&[1]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => crate::log_warn!("main loop wakeup failed: {e}"),
        }
    }
}

/// Where the main loop will be once `spice_server_init` ran; shared by whoever posts.
#[derive(Clone, Default)]
pub(crate) struct MainLoopSlot(Arc<OnceLock<MainLoopHandle>>);

impl MainLoopSlot {
    pub(crate) fn attach(&self, handle: MainLoopHandle) {
        let _ = self.0.set(handle);
    }

    /// Queues work for QEMU's main loop (dropped before `spice_server_init`).
    pub(crate) fn post(&self, job: impl FnOnce(&dyn Core) + Send + 'static) {
        match self.0.get() {
            Some(m) => m.post(Box::new(job)),
            None => crate::log_debug!("main loop not attached; event dropped"),
        }
    }
}

/// The registered watch; owned by the server, dropped under the BQL.
pub(crate) struct MainLoop {
    handle: MainLoopHandle,
    watch: Option<Box<dyn Watch>>,
}

impl MainLoop {
    /// Registers the wakeup watch. Must run under the BQL.
    pub(crate) fn start(core: Arc<dyn Core>) -> std::io::Result<MainLoop> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let inner = Arc::new(Inner {
            core,
            jobs: Mutex::new(VecDeque::new()),
            wake_tx,
            wake_rx,
        });
        let ready = {
            let inner = inner.clone();
            Box::new(move || run_pending(&inner))
        };
        let watch = inner
            .core
            .watch_read(inner.wake_rx.as_raw_fd(), ready)
            .ok_or_else(|| std::io::Error::other("QEMU refused the main loop watch"))?;
        Ok(MainLoop {
            handle: MainLoopHandle(inner),
            watch: Some(watch),
        })
    }

    pub(crate) fn handle(&self) -> MainLoopHandle {
        self.handle.clone()
    }

    /// Runs what is queued now; used where we already hold the BQL and must flush
    /// (e.g. before destroy).
    pub(crate) fn run_pending_now(&self) {
        run_pending(&self.handle.0);
    }

    /// Removes the watch. Must run under the BQL. Jobs still queued are run first so that
    /// e.g. DISCONNECTED events are not lost.
    pub(crate) fn stop(&mut self) {
        self.run_pending_now();
        if let Some(watch) = self.watch.take() {
            watch.remove();
        }
    }
}

/// Called from the watch callback on QEMU's main loop.
fn run_pending(inner: &Inner) {
    let mut buf = [0u8; 256];
    while matches!((&inner.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    loop {
        let Some(job) = inner.jobs.lock().pop_front() else {
            break;
        };
        job(&*inner.core);
    }
}
