//! Fakes of QEMU's side for tests: a core interface that records, devices that record.

use super::host::{ChannelEvent, Core, KeyboardDevice, QxlHost, TabletDevice, Watch};
use crate::qxl::memslot::Layout;
use parking_lot::Mutex;
use std::os::fd::RawFd;
use std::sync::Arc;

/// A core interface whose "main loop" runs when the test says so.
#[derive(Default)]
pub(super) struct FakeCore {
    pub ready: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    pub events: Mutex<Vec<(u64, ChannelEvent)>>,
    pub removed: Mutex<usize>,
}

impl FakeCore {
    /// Runs every watch callback, as QEMU's main loop would when the fds are readable.
    pub(super) fn run_main_loop(&self) {
        let ready = self.ready.lock().clone();
        ready.iter().for_each(|r| r());
    }
}

struct FakeWatch(Arc<FakeCore>);

impl Watch for FakeWatch {
    fn remove(self: Box<Self>) {
        *self.0.removed.lock() += 1;
        self.0.ready.lock().clear();
    }
}

/// The `Core` the server gets: a handle on the shared fake.
pub(super) struct CoreHandle(pub Arc<FakeCore>);

impl Core for CoreHandle {
    fn watch_read(&self, _fd: RawFd, ready: Box<dyn Fn() + Send + Sync>) -> Option<Box<dyn Watch>> {
        self.0.ready.lock().push(Arc::from(ready));
        Some(Box::new(FakeWatch(self.0.clone())))
    }

    fn channel_event(&self, conn: u64, event: ChannelEvent) {
        self.0.events.lock().push((conn, event));
    }
}

/// Records the scancodes it is given.
#[derive(Default)]
pub(super) struct FakeKeyboard(pub Mutex<Vec<u8>>);

impl KeyboardDevice for FakeKeyboard {
    fn push_scancode(&self, code: u8) {
        self.0.lock().push(code);
    }
}

/// Records what it is told, as text.
#[derive(Default)]
pub(super) struct FakeTablet(pub Mutex<Vec<String>>);

impl TabletDevice for FakeTablet {
    fn set_logical_size(&self, width: i32, height: i32) {
        self.0.lock().push(format!("size {width}x{height}"));
    }

    fn position(&self, x: i32, y: i32, buttons: u32) {
        self.0.lock().push(format!("position {x},{y} {buttons}"));
    }

    fn wheel(&self, dz: i32, buttons: u32) {
        self.0.lock().push(format!("wheel {dz} {buttons}"));
    }

    fn buttons(&self, buttons: u32) {
        self.0.lock().push(format!("buttons {buttons}"));
    }
}

/// A QXL device that takes monitor configs and records the calls made at add time.
#[derive(Default)]
pub(super) struct FakeQxl {
    pub calls: Mutex<Vec<String>>,
    pub monitors_configs: Mutex<Vec<Vec<u8>>>,
}

impl QxlHost for FakeQxl {
    fn init_info(&self) -> (Layout, u32) {
        self.calls.lock().push("init_info".into());
        let layout = Layout {
            groups: 1,
            slots: 1,
            gen_bits: 8,
            id_bits: 8,
            n_surfaces: 1,
        };
        (layout, 16 << 20)
    }

    fn attached_worker(&self) {
        self.calls.lock().push("attached_worker".into());
    }

    fn set_compression_level(&self, level: i32) {
        self.calls.lock().push(format!("compression {level}"));
    }

    fn client_monitors_config(&self, config: &[u8]) -> bool {
        self.monitors_configs.lock().push(config.to_vec());
        true
    }
}

/// A worker-side device with an empty ring.
pub(super) struct IdleDevice;

impl crate::worker::Device for IdleDevice {
    fn get_command(&mut self) -> Option<crate::worker::Command> {
        None
    }
    fn req_cmd_notification(&mut self) -> bool {
        true
    }
    fn get_cursor_command(&mut self) -> Option<crate::worker::Command> {
        None
    }
    fn req_cursor_notification(&mut self) -> bool {
        true
    }
    fn release_resource(&mut self, _info_address: u64, _group: u32) {}
    fn async_complete(&mut self, _cookie: u64) {}
    fn update_area_complete(&mut self, _surface_id: u32, _rects: &[crate::geometry::Rect]) {}
}

/// A guest char device: stages guest bytes for `read`, takes client bytes up to `space`.
#[derive(Default)]
pub(crate) struct FakeCharDevice {
    pub staged: Mutex<Vec<u8>>,
    pub written: Mutex<Vec<u8>>,
    /// Bytes `write` still takes (the guest's free buffer).
    pub space: Mutex<usize>,
    pub states: Mutex<Vec<bool>>,
    pub events: Mutex<Vec<u8>>,
    /// `read` calls, including those that returned nothing.
    pub reads: Mutex<usize>,
}

impl super::host::CharDeviceHost for FakeCharDevice {
    fn state(&self, connected: bool) {
        self.states.lock().push(connected);
    }

    fn write(&self, data: &[u8]) -> usize {
        let mut space = self.space.lock();
        let n = data.len().min(*space);
        *space -= n;
        self.written.lock().extend_from_slice(&data[..n]);
        n
    }

    fn read(&self, buf: &mut [u8]) -> usize {
        *self.reads.lock() += 1;
        let mut staged = self.staged.lock();
        let n = buf.len().min(staged.len());
        buf[..n].copy_from_slice(&staged[..n]);
        staged.drain(..n);
        n
    }

    fn event(&self, event: u8) {
        self.events.lock().push(event);
    }
}
