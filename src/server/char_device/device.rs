//! `CharDevice`: one guest char device, serving its channel side through `GuestPort`.
//!
//! Every call into QEMU (`read`, `write`, `state`, `event`) happens on QEMU's thread with
//! its lock held: inside its `spice_server_char_device_wakeup` call, or from a job on its
//! main loop that our threads queue. The pump moves bytes both ways until neither side
//! can take more: queued client bytes into the device (QEMU wakes us when it can take
//! more, `SPICE_CHAR_DEVICE_NOTIFY_WRITABLE`), and staged guest bytes into the sink while
//! the sink has room (a read returning 0 also tells QEMU to offer its data again later).

use super::{DeviceKind, DeviceSink, GuestPort};
use crate::server::host::CharDeviceHost;
use crate::server::mainloop::MainLoopSlot;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// Most guest bytes taken in one read (QEMU hands over what its frontend wrote).
const READ_CHUNK: usize = 64 << 10;
/// Bytes the channel side may have queued for the guest before `to_guest` drops data: a
/// safety net only, channel sides bound themselves with `queued_to_guest` well below it.
const MAX_QUEUED_TO_GUEST: usize = 16 << 20;

pub(crate) struct CharDevice {
    me: Weak<CharDevice>,
    pub kind: DeviceKind,
    mainloop: MainLoopSlot,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// None once QEMU removed the device: nothing calls it any more.
    host: Option<Arc<dyn CharDeviceHost>>,
    sink: Option<Arc<dyn DeviceSink>>,
    /// Client bytes for the guest: (data, bytes already written, tag).
    to_guest: VecDeque<(Vec<u8>, usize, u64)>,
    queued: usize,
    /// A write (or read) runs, possibly further up this thread's stack: a new request
    /// only marks `*_again`, so neither is re-entered from inside its own callback. They
    /// are guarded apart because a device may answer inside our write (ccid-card-passthru
    /// writes its reply from its read handler, and QEMU discards what we do not read
    /// before its `spice_server_char_device_wakeup` returns), as spice-server allows.
    writing: bool,
    write_again: bool,
    reading: bool,
    read_again: bool,
    /// A pump job is queued on QEMU's main loop.
    pump_posted: bool,
}

impl CharDevice {
    pub(crate) fn new(
        kind: DeviceKind,
        host: Arc<dyn CharDeviceHost>,
        mainloop: MainLoopSlot,
    ) -> Arc<CharDevice> {
        Arc::new_cyclic(|me| CharDevice {
            me: me.clone(),
            kind,
            mainloop,
            state: Mutex::new(State {
                host: Some(host),
                ..State::default()
            }),
        })
    }

    /// `spice_server_char_device_wakeup`: QEMU staged guest bytes (read them now, before
    /// it returns) or its frontend can take more client bytes. QEMU's thread.
    pub(crate) fn wakeup(&self) {
        self.pump();
    }

    /// `spice_server_port_event` (`SPICE_PORT_EVENT_OPENED` 0, `CLOSED` 1). QEMU's thread.
    pub(crate) fn port_event(&self, event: u8) {
        let sink = self.state.lock().sink.clone();
        match (event, sink) {
            (0 | 1, Some(sink)) => sink.guest_event(event == 0),
            (0 | 1, None) => {}
            (other, _) => crate::log_warn!("char device: unknown port event {other} ignored"),
        }
    }

    /// QEMU removed the device (QEMU's thread): it is never called again, queued client
    /// bytes are dropped and the channel side hears it.
    pub(crate) fn remove(&self) {
        let sink = {
            let mut s = self.state.lock();
            s.host = None;
            s.to_guest.clear();
            s.queued = 0;
            s.sink.take()
        };
        if let Some(sink) = sink {
            sink.detached();
        }
    }

    /// Moves bytes both ways until neither side takes more. QEMU's thread only; never
    /// holds our lock across a call into QEMU or into the sink.
    fn pump(&self) {
        self.guarded(
            |s| (&mut s.writing, &mut s.write_again),
            || self.write_queued(),
        );
        self.guarded(
            |s| (&mut s.reading, &mut s.read_again),
            || self.read_staged(),
        );
    }

    /// Runs `work` until no request came in meanwhile, unless it already runs further up
    /// the stack (then that run repeats it).
    fn guarded(&self, flags: impl Fn(&mut State) -> (&mut bool, &mut bool), work: impl Fn()) {
        {
            let mut s = self.state.lock();
            let (running, again) = flags(&mut s);
            if *running {
                *again = true;
                return;
            }
            *running = true;
        }
        loop {
            work();
            let mut s = self.state.lock();
            let (running, again) = flags(&mut s);
            if !*again {
                *running = false;
                return;
            }
            *again = false;
        }
    }

    fn write_queued(&self) {
        loop {
            let (host, sink, (data, offset, tag)) = {
                let mut s = self.state.lock();
                let Some(host) = s.host.clone() else { return };
                let Some(front) = s.to_guest.pop_front() else {
                    return;
                };
                (host, s.sink.clone(), front)
            };
            let taken = host.write(&data[offset..]).min(data.len() - offset);
            let done = offset + taken == data.len();
            {
                let mut s = self.state.lock();
                if s.host.is_none() {
                    return;
                }
                s.queued -= taken;
                if !done {
                    s.to_guest.push_front((data, offset + taken, tag));
                }
            }
            if done {
                if let Some(sink) = sink {
                    sink.written(tag);
                }
            } else if taken == 0 {
                // The device is full: QEMU calls wakeup when it can take more.
                return;
            }
        }
    }

    fn read_staged(&self) {
        let mut buf = Vec::new();
        loop {
            let (host, sink) = {
                let s = self.state.lock();
                match (s.host.clone(), s.sink.clone()) {
                    (Some(host), Some(sink)) => (host, sink),
                    _ => return,
                }
            };
            let room = sink.room().min(READ_CHUNK);
            if room == 0 {
                // QEMU keeps what it staged and offers it again once we read.
                return;
            }
            buf.resize(room, 0);
            let n = host.read(&mut buf).min(room);
            if n == 0 {
                return;
            }
            sink.received(&buf[..n]);
        }
    }

    /// Queues a pump on QEMU's main loop (once until it ran).
    fn post_pump(&self) {
        {
            let mut s = self.state.lock();
            if s.pump_posted || s.host.is_none() {
                return;
            }
            s.pump_posted = true;
        }
        let me = self.me.clone();
        self.mainloop.post(move |_core| {
            if let Some(device) = me.upgrade() {
                device.state.lock().pump_posted = false;
                device.pump();
            }
        });
    }

    /// Runs `call` with the host on QEMU's main loop, if the device is still there.
    fn post_host_call(&self, call: impl FnOnce(&dyn CharDeviceHost) + Send + 'static) {
        let me = self.me.clone();
        self.mainloop.post(move |_core| {
            let host = me.upgrade().and_then(|d| d.state.lock().host.clone());
            if let Some(host) = host {
                call(&*host);
            }
        });
    }
}

impl GuestPort for CharDevice {
    fn attach(&self, sink: Option<Arc<dyn DeviceSink>>) {
        let reading = sink.is_some();
        {
            let mut s = self.state.lock();
            if s.host.is_none() {
                drop(s);
                if let Some(sink) = sink {
                    sink.detached();
                }
                return;
            }
            s.sink = sink;
        }
        if reading {
            self.post_pump();
        }
    }

    fn to_guest(&self, data: Vec<u8>, tag: u64) {
        {
            let mut s = self.state.lock();
            if s.host.is_none() {
                return;
            }
            if s.queued + data.len() > MAX_QUEUED_TO_GUEST {
                crate::log_warn!(
                    "char device {:?}: {} bytes for the guest dropped (queue full)",
                    self.kind,
                    data.len()
                );
                return;
            }
            s.queued += data.len();
            s.to_guest.push_back((data, 0, tag));
        }
        self.post_pump();
    }

    fn queued_to_guest(&self) -> usize {
        self.state.lock().queued
    }

    fn resume_reading(&self) {
        self.post_pump();
    }

    fn set_client_connected(&self, connected: bool) {
        self.post_host_call(move |host| host.state(connected));
    }

    fn send_event(&self, event: u8) {
        self.post_host_call(move |host| host.event(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::fake::{CoreHandle, FakeCharDevice, FakeCore};
    use crate::server::mainloop::MainLoop;

    #[derive(Default)]
    struct Sink {
        room: Mutex<usize>,
        received: Mutex<Vec<u8>>,
        written: Mutex<Vec<u64>>,
        events: Mutex<Vec<bool>>,
        detached: Mutex<bool>,
    }

    impl DeviceSink for Sink {
        fn room(&self) -> usize {
            *self.room.lock()
        }
        fn received(&self, data: &[u8]) {
            *self.room.lock() -= data.len();
            self.received.lock().extend_from_slice(data);
        }
        fn written(&self, tag: u64) {
            self.written.lock().push(tag);
        }
        fn guest_event(&self, opened: bool) {
            self.events.lock().push(opened);
        }
        fn detached(&self) {
            *self.detached.lock() = true;
        }
    }

    struct Rig {
        core: Arc<FakeCore>,
        _mainloop: MainLoop,
        guest: Arc<FakeCharDevice>,
        device: Arc<CharDevice>,
        sink: Arc<Sink>,
    }

    fn rig(room: usize) -> Rig {
        let core = Arc::new(FakeCore::default());
        let mainloop = MainLoop::start(Arc::new(CoreHandle(core.clone()))).unwrap();
        let slot = MainLoopSlot::default();
        slot.attach(mainloop.handle());
        let guest = Arc::new(FakeCharDevice::default());
        let device = CharDevice::new(DeviceKind::Usbredir, guest.clone(), slot);
        let sink = Arc::new(Sink::default());
        *sink.room.lock() = room;
        device.attach(Some(sink.clone()));
        Rig {
            core,
            _mainloop: mainloop,
            guest,
            device,
            sink,
        }
    }

    #[test]
    fn guest_bytes_are_read_inside_wakeup_up_to_the_room() {
        let r = rig(5);
        r.guest.staged.lock().extend_from_slice(b"hello world");
        r.device.wakeup();
        assert_eq!(&*r.sink.received.lock(), b"hello");
        assert_eq!(&*r.guest.staged.lock(), b" world", "QEMU keeps the rest");
        *r.sink.room.lock() = 100;
        r.device.resume_reading();
        assert_eq!(r.sink.received.lock().len(), 5, "only on QEMU's main loop");
        r.core.run_main_loop();
        assert_eq!(&*r.sink.received.lock(), b"hello world");
    }

    #[test]
    fn a_full_device_keeps_client_bytes_until_qemu_wakes_us() {
        let r = rig(0);
        *r.guest.space.lock() = 4;
        r.device.to_guest(b"abcdef".to_vec(), 1);
        r.device.to_guest(b"gh".to_vec(), 2);
        assert_eq!(r.device.queued_to_guest(), 8);
        r.core.run_main_loop();
        assert_eq!(&*r.guest.written.lock(), b"abcd");
        assert_eq!(r.device.queued_to_guest(), 4);
        assert!(r.sink.written.lock().is_empty());
        *r.guest.space.lock() = 100;
        r.device.wakeup();
        assert_eq!(&*r.guest.written.lock(), b"abcdefgh");
        assert_eq!(*r.sink.written.lock(), vec![1, 2]);
        assert_eq!(r.device.queued_to_guest(), 0);
    }

    #[test]
    fn nothing_is_read_without_a_sink() {
        let r = rig(100);
        r.device.attach(None);
        r.guest.staged.lock().extend_from_slice(b"data");
        r.device.wakeup();
        assert_eq!(*r.guest.reads.lock(), 0);
        assert_eq!(r.guest.staged.lock().len(), 4);
    }

    #[test]
    fn client_state_and_events_reach_qemu_on_its_main_loop() {
        let r = rig(0);
        r.device.set_client_connected(true);
        r.device.send_event(2);
        assert!(r.guest.states.lock().is_empty());
        r.core.run_main_loop();
        assert_eq!(*r.guest.states.lock(), vec![true]);
        assert_eq!(*r.guest.events.lock(), vec![2]);
        r.device.port_event(0);
        r.device.port_event(1);
        r.device.port_event(9);
        assert_eq!(*r.sink.events.lock(), vec![true, false]);
    }

    #[test]
    fn a_removed_device_is_never_called_again() {
        let r = rig(100);
        r.device.to_guest(b"late".to_vec(), 1);
        r.device.set_client_connected(false);
        r.device.remove();
        assert!(*r.sink.detached.lock());
        r.guest.staged.lock().extend_from_slice(b"x");
        r.device.wakeup();
        r.device.resume_reading();
        r.core.run_main_loop();
        assert!(r.guest.written.lock().is_empty());
        assert!(r.guest.states.lock().is_empty());
        assert_eq!(*r.guest.reads.lock(), 0);
        assert_eq!(r.device.queued_to_guest(), 0);
    }

    /// ccid-card-passthru answers inside our write: QEMU calls wakeup from within
    /// `write` and drops whatever is not read before that wakeup returns.
    #[test]
    fn a_device_answering_inside_our_write_is_read_at_once() {
        struct Answering {
            device: Mutex<Option<Arc<CharDevice>>>,
            staged: Mutex<Vec<u8>>,
            written: Mutex<Vec<u8>>,
        }
        impl crate::server::host::CharDeviceHost for Answering {
            fn state(&self, _: bool) {}
            fn write(&self, data: &[u8]) -> usize {
                self.written.lock().extend_from_slice(data);
                *self.staged.lock() = b"answer".to_vec();
                let device = self.device.lock().clone();
                if let Some(d) = device {
                    d.wakeup();
                }
                self.staged.lock().clear(); // QEMU's datalen = 0 after the wakeup
                data.len()
            }
            fn read(&self, buf: &mut [u8]) -> usize {
                let mut staged = self.staged.lock();
                let n = buf.len().min(staged.len());
                buf[..n].copy_from_slice(&staged[..n]);
                staged.drain(..n);
                n
            }
            fn event(&self, _: u8) {}
        }
        let host = Arc::new(Answering {
            device: Mutex::default(),
            staged: Mutex::default(),
            written: Mutex::default(),
        });
        let device = CharDevice::new(DeviceKind::Smartcard, host.clone(), MainLoopSlot::default());
        *host.device.lock() = Some(device.clone());
        let sink = Arc::new(Sink::default());
        *sink.room.lock() = 100;
        device.attach(Some(sink.clone()));
        device
            .state
            .lock()
            .to_guest
            .push_back((b"question".to_vec(), 0, 1));
        device.state.lock().queued = 8;
        device.wakeup();
        assert_eq!(&*host.written.lock(), b"question");
        assert_eq!(&*sink.received.lock(), b"answer");
        assert_eq!(*sink.written.lock(), [1]);
        host.device.lock().take();
    }

    /// A sink that asks for more while the device is reading (as a channel waking up
    /// inside `received` might): the request is served by the running pump.
    #[test]
    fn a_pump_is_never_reentered() {
        struct Eager(Mutex<Option<Arc<CharDevice>>>, Mutex<Vec<u8>>);
        impl DeviceSink for Eager {
            fn room(&self) -> usize {
                1
            }
            fn received(&self, data: &[u8]) {
                self.1.lock().extend_from_slice(data);
                if let Some(d) = self.0.lock().clone() {
                    d.wakeup();
                }
            }
        }
        let r = rig(0);
        let eager = Arc::new(Eager(Mutex::new(Some(r.device.clone())), Mutex::default()));
        r.device.attach(Some(eager.clone()));
        r.guest.staged.lock().extend_from_slice(b"abc");
        r.device.wakeup();
        assert_eq!(&*eager.1.lock(), b"abc");
        eager.0.lock().take();
    }
}
