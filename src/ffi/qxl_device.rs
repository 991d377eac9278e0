//! QEMU's `QXLInterface` callbacks behind the worker's safe `Device` trait.
//!
//! The worker-side callbacks (`get_command`, `release_resource`, `async_complete`, …)
//! are written by QEMU for a foreign thread without its global lock; the others
//! (`get_init_info`, `attached_worker`, `set_compression_level`) are called from
//! `spice_server_add_interface`, on QEMU's thread.

use super::abi::{
    QXLCommandExt, QXLDevInitInfo, QXLInstance, QXLInterface, QXLRect, QXLReleaseInfo,
    QXLReleaseInfoExt,
};
use crate::geometry::Rect;
use crate::qxl::memslot::Layout;
use crate::server::host::{monitors_config_is_complete, QxlHost};
use crate::worker::{Command, Device};

#[derive(Clone)]
pub(crate) struct QxlDevice {
    instance: *mut QXLInstance,
    table: QXLInterface,
}

// SAFETY: QEMU's QXL callbacks are designed to be called from the spice worker thread;
// the instance pointer stays valid while the instance is registered, and the worker is
// joined before `spice_server_remove_interface` returns.
unsafe impl Send for QxlDevice {}
// SAFETY: as above; the only cross-thread use is `async_complete_now` under QEMU's lock.
unsafe impl Sync for QxlDevice {}

impl QxlDevice {
    /// Checks that the callbacks the worker relies on exist.
    pub(crate) fn new(instance: *mut QXLInstance, table: QXLInterface) -> Option<QxlDevice> {
        let t = &table;
        let complete = t.get_init_info.is_some()
            && t.get_command.is_some()
            && t.req_cmd_notification.is_some()
            && t.release_resource.is_some()
            && t.get_cursor_command.is_some()
            && t.req_cursor_notification.is_some();
        complete.then_some(QxlDevice { instance, table })
    }

    /// `async_complete` on the calling thread.
    pub(crate) fn async_complete_now(&self, cookie: u64) {
        if let Some(f) = self.table.async_complete {
            // SAFETY: QEMU accepts completions from any thread (it uses its own locks).
            unsafe { f(self.instance, cookie) };
        }
    }

    fn fetch(
        &self,
        f: Option<unsafe extern "C" fn(*mut QXLInstance, *mut QXLCommandExt) -> i32>,
    ) -> Option<Command> {
        let f = f?;
        let mut ext = QXLCommandExt::default();
        // SAFETY: QEMU fills the QXLCommandExt we own; worker-thread callback.
        if unsafe { f(self.instance, &mut ext) } == 0 {
            return None;
        }
        let cmd = ext.cmd;
        Some(Command {
            data: cmd.data,
            kind: cmd.type_,
            group: ext.group_id,
            flags: ext.flags,
        })
    }
}

impl QxlHost for QxlDevice {
    fn init_info(&self) -> (Layout, u32) {
        let mut info = QXLDevInitInfo::default();
        if let Some(f) = self.table.get_init_info {
            // SAFETY: QEMU's callback fills the struct we own.
            unsafe { f(self.instance, &mut info) };
        }
        let layout = Layout {
            groups: info.num_memslots_groups,
            slots: info.num_memslots,
            gen_bits: info.memslot_gen_bits,
            id_bits: info.memslot_id_bits,
            n_surfaces: info.n_surfaces,
        };
        (layout, info.qxl_ram_size)
    }

    fn attached_worker(&self) {
        if let Some(f) = self.table.attached_worker {
            // SAFETY: called from add_interface on QEMU's thread, as QEMU expects.
            unsafe { f(self.instance) };
        }
    }

    fn set_compression_level(&self, level: i32) {
        if let Some(f) = self.table.set_compression_level {
            // SAFETY: as above.
            unsafe { f(self.instance, level) };
        }
    }

    fn client_monitors_config(&self, config: &[u8]) -> bool {
        // SAFETY: the server calls this from a main-loop job (QEMU's lock held) while the
        // instance is registered: it drops the device in remove_interface, under that lock.
        unsafe { client_monitors_config(self.instance, config) }
    }
}

impl Device for QxlDevice {
    fn get_command(&mut self) -> Option<Command> {
        self.fetch(self.table.get_command)
    }

    fn req_cmd_notification(&mut self) -> bool {
        // SAFETY: worker-thread callback, checked present in `new`.
        self.table
            .req_cmd_notification
            .is_none_or(|f| unsafe { f(self.instance) } != 0)
    }

    fn get_cursor_command(&mut self) -> Option<Command> {
        self.fetch(self.table.get_cursor_command)
    }

    fn req_cursor_notification(&mut self) -> bool {
        // SAFETY: worker-thread callback, checked present in `new`.
        self.table
            .req_cursor_notification
            .is_none_or(|f| unsafe { f(self.instance) } != 0)
    }

    fn release_resource(&mut self, info_address: u64, group: u32) {
        let Some(f) = self.table.release_resource else {
            return;
        };
        let ext = QXLReleaseInfoExt {
            info: info_address as usize as *mut QXLReleaseInfo,
            group_id: group,
        };
        // SAFETY: `info` is the translated, bounds-checked address of the command's
        // release info, which is what QEMU expects back.
        unsafe { f(self.instance, ext) };
    }

    fn async_complete(&mut self, cookie: u64) {
        self.async_complete_now(cookie);
    }

    fn flush_resources(&mut self) -> i32 {
        match self.table.flush_resources {
            // SAFETY: worker-thread callback; only a qxl device sends the OOM notice that
            // leads here (QEMU's simple display never does, and aborts on this callback).
            Some(f) => unsafe { f(self.instance) },
            None => 0,
        }
    }

    fn notify_update(&mut self, update_id: u32) {
        if let Some(f) = self.table.notify_update {
            // SAFETY: worker-thread callback; only a guest's QXL_CMD_UPDATE leads here (QEMU's
            // simple display never queues one, and aborts on this callback).
            unsafe { f(self.instance, update_id) }
        }
    }

    fn set_client_capabilities(
        &mut self,
        present: bool,
        caps: &[u8; crate::worker::CLIENT_CAPS_BYTES],
    ) {
        let Some(f) = self.table.set_client_capabilities else {
            return;
        };
        let mut caps = *caps;
        // SAFETY: worker-thread callback; QEMU copies the 58 bytes during the call.
        unsafe { f(self.instance, u8::from(present), caps.as_mut_ptr()) };
    }

    fn update_area_complete(&mut self, surface_id: u32, rects: &[Rect]) {
        let Some(f) = self.table.update_area_complete else {
            return;
        };
        let mut raw: Vec<QXLRect> = rects.iter().map(|&r| QXLRect::from(r)).collect();
        // SAFETY: QEMU copies the rects during the call.
        unsafe {
            f(
                self.instance,
                surface_id,
                raw.as_mut_ptr(),
                raw.len() as u32,
            )
        };
    }
}

/// Hands a client's monitor layout to a QXL instance (qxl device or simple display).
/// Returns false when the instance cannot take one.
///
/// # Safety
/// `qxl` must be a registered QXL instance and QEMU's lock must be held (QEMU's
/// callback changes device state).
unsafe fn client_monitors_config(qxl: *mut QXLInstance, config: &[u8]) -> bool {
    if !monitors_config_is_complete(config) {
        return false;
    }
    // SAFETY: per the contract the instance and its interface table are live.
    let table = unsafe { &*(*qxl).base.sif.cast::<QXLInterface>() };
    let Some(callback) = table.client_monitors_config else {
        return false;
    };
    // An aligned copy: QEMU reads it as a `VDAgentMonitorsConfig`.
    let mut words = vec![0u32; config.len().div_ceil(4)];
    // SAFETY: `words` holds at least `config.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            config.as_ptr(),
            words.as_mut_ptr().cast::<u8>(),
            config.len(),
        )
    };
    // SAFETY: a complete config (checked above) that outlives the call.
    unsafe { callback(qxl, words.as_mut_ptr().cast()) != 0 }
}
