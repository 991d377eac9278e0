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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Work that must run on QEMU's main loop, with its lock held.
pub(crate) type Job = Box<dyn FnOnce(&dyn Core) + Send>;

/// How much a job may be dropped when QEMU's main loop falls behind a client's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Channel events and the like: never dropped (their number is bounded by the
    /// connections, not by what clients send).
    Essential,
    /// Keys and buttons: dropped only past `MAX_QUEUED_JOBS`, with a log line.
    Input,
    /// Mouse and tablet motion: the oldest queued one goes first once the queue holds
    /// `MOTION_ROOM` jobs (the newest position matters most).
    Motion,
}

/// Past this many queued jobs, motion replaces the oldest queued motion.
const MOTION_ROOM: usize = 256;
/// Past this many queued jobs, client input is dropped (a few MiB at most).
const MAX_QUEUED_JOBS: usize = 16384;

struct Inner {
    core: Arc<dyn Core>,
    jobs: Mutex<VecDeque<(Urgency, Job)>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    /// Dropped input was logged once (QEMU's stderr must not fill up either).
    warned: AtomicBool,
}

/// Cloneable handle any thread may use to queue main-loop work.
#[derive(Clone)]
pub(crate) struct MainLoopHandle(Arc<Inner>);

impl MainLoopHandle {
    pub(crate) fn post_as(&self, urgency: Urgency, job: Job) {
        if !enqueue(&mut self.0.jobs.lock(), urgency, job)
            && !self.0.warned.swap(true, Ordering::Relaxed)
        {
            crate::log_warn!(
                "QEMU's main loop is not keeping up with client input: dropping input"
            );
        }
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
        self.post_as(Urgency::Essential, job);
    }

    /// Queues client input, which a slow main loop may see thinned (`Urgency`).
    pub(crate) fn post_as(&self, urgency: Urgency, job: impl FnOnce(&dyn Core) + Send + 'static) {
        match self.0.get() {
            Some(m) => m.post_as(urgency, Box::new(job)),
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
            warned: AtomicBool::new(false),
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

/// Queues `job` within the bounds; false when input had to be dropped.
fn enqueue(jobs: &mut VecDeque<(Urgency, Job)>, urgency: Urgency, job: Job) -> bool {
    match urgency {
        Urgency::Essential => {}
        Urgency::Motion if jobs.len() >= MOTION_ROOM => {
            // Motion is replaced, not dropped: no log for it.
            match jobs.iter().position(|(u, _)| *u == Urgency::Motion) {
                Some(oldest) => {
                    jobs.remove(oldest);
                }
                None if jobs.len() >= MAX_QUEUED_JOBS => return false,
                None => {}
            }
        }
        _ if jobs.len() >= MAX_QUEUED_JOBS => return false,
        _ => {}
    }
    jobs.push_back((urgency, job));
    true
}

/// Called from the watch callback on QEMU's main loop.
fn run_pending(inner: &Inner) {
    let mut buf = [0u8; 256];
    while matches!((&inner.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    loop {
        let Some((_, job)) = inner.jobs.lock().pop_front() else {
            break;
        };
        job(&*inner.core);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::fake::{CoreHandle, FakeCore};
    use std::sync::atomic::AtomicUsize;

    fn counter(n: &Arc<AtomicUsize>) -> impl FnOnce(&dyn Core) + Send + 'static {
        let n = n.clone();
        move |_| {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_client_flooding_input_cannot_grow_the_queue_without_bound() {
        let fake = Arc::new(FakeCore::default());
        let main_loop = MainLoop::start(Arc::new(CoreHandle(fake.clone()))).unwrap();
        let slot = MainLoopSlot::default();
        slot.attach(main_loop.handle());
        let (events, motions) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let keys = Arc::new(Mutex::new(Vec::new()));
        slot.post(counter(&events));
        for i in 0..100_000 {
            slot.post_as(Urgency::Motion, counter(&motions));
            if i % 4 == 0 {
                let keys = keys.clone();
                slot.post_as(Urgency::Input, move |_| keys.lock().push(i));
            }
        }
        slot.post(counter(&events));
        let queued = main_loop.handle.0.jobs.lock().len();
        assert!(queued <= MAX_QUEUED_JOBS + 1, "{queued} jobs queued");
        fake.run_main_loop();
        assert_eq!(
            events.load(Ordering::Relaxed),
            2,
            "channel events are never dropped"
        );
        let motions = motions.load(Ordering::Relaxed);
        assert!(
            motions > 0 && motions <= MOTION_ROOM,
            "{motions} motions ran"
        );
        let keys = keys.lock();
        assert!(
            keys.len() >= MAX_QUEUED_JOBS - MOTION_ROOM,
            "{} keys ran",
            keys.len()
        );
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "input keeps its order"
        );
        assert!(
            main_loop.handle.0.warned.load(Ordering::Relaxed),
            "the drop was logged"
        );
    }

    #[test]
    fn a_keeping_up_main_loop_loses_nothing() {
        let fake = Arc::new(FakeCore::default());
        let main_loop = MainLoop::start(Arc::new(CoreHandle(fake.clone()))).unwrap();
        let slot = MainLoopSlot::default();
        slot.attach(main_loop.handle());
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            for _ in 0..100 {
                slot.post_as(Urgency::Motion, counter(&ran));
                slot.post_as(Urgency::Input, counter(&ran));
            }
            fake.run_main_loop();
        }
        assert_eq!(ran.load(Ordering::Relaxed), 2000);
        assert!(!main_loop.handle.0.warned.load(Ordering::Relaxed));
    }
}
