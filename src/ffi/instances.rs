//! Registered interface instances and the `st` pointer each one carries.
//!
//! QEMU embeds every instance in its own structs and gives its `st` field to the
//! library. We store a `Box<InstanceState>` there: that is how
//! `spice_server_remove_interface(sin)` (no server argument) and every `spice_qxl_*`
//! call find their way back.

use super::abi::{
    QXLInstance, QXLInterface, SpiceBaseInstance, SpiceCharDeviceInstance, SpiceKbdInstance,
    SpiceMigrateInstance, SpiceMigrateInterface, SpicePlaybackInstance, SpiceRecordInstance,
};
use super::audio::Playback;
use super::char_device::QemuCharDevice;
use super::input::{QemuKeyboard, QemuMouse, QemuTablet};
use super::qxl_device::QxlDevice;
use super::string;
use crate::audio::record::RecordStream;
use crate::server::char_device::{CharDevice, DeviceKind};
use crate::server::interfaces::{InstanceId, Kind};
use crate::server::{Interface, Server};
use crate::worker::WorkerHandle;
use parking_lot::Mutex;
use std::ffi::c_void;
use std::sync::{Arc, Weak};

/// Per-QXL-instance state behind `QXLInstance.st`.
pub(crate) struct QxlState {
    pub worker: Arc<WorkerHandle>,
    device: QxlDevice,
    info: Mutex<DeviceInfo>,
    /// Where the display channel learns how many monitors the device supports.
    session: Arc<crate::server::session::Session>,
}

/// What `spice_qxl_set_device_info` reported (sent to clients by the main channel).
#[derive(Debug, Default, Clone)]
pub(crate) struct DeviceInfo {
    pub address: Option<String>,
    pub display_id_start: u32,
    pub display_id_count: u32,
    pub max_monitors: u32,
}

impl QxlState {
    pub(crate) fn set_device_info(&self, address: Option<String>, start: u32, count: u32) {
        let mut info = self.info.lock();
        self.session.agent().set_device_info(
            self.worker.id as u32,
            address.clone().unwrap_or_default(),
            start,
            count,
        );
        info.address = address;
        info.display_id_start = start;
        info.display_id_count = count;
        info.max_monitors = count.max(1);
        self.session
            .set_max_monitors(self.worker.id, info.max_monitors);
    }

    /// The monitor count `set_device_info` or `set_max_monitors` gave; unbounded when
    /// neither came, as spice-server's `max_monitors` starts.
    pub(crate) fn max_monitors(&self) -> u32 {
        match self.info.lock().max_monitors {
            0 => u32::MAX,
            n => n,
        }
    }

    pub(crate) fn set_max_monitors(&self, max: u32) {
        self.info.lock().max_monitors = max;
        self.session.set_max_monitors(self.worker.id, max);
    }

    /// Completes a request on the caller's thread (`gl_draw_async` without a scanout).
    pub(crate) fn complete_inline(&self, cookie: u64) {
        self.device.async_complete_now(cookie);
    }
}

struct InstanceState {
    server: Weak<Mutex<Server>>,
    qxl: Option<QxlState>,
    char_device: Option<Arc<CharDevice>>,
    playback: Option<Playback>,
    record: Option<Arc<RecordStream>>,
}

/// Address of the instance's `st` field.
///
/// # Safety
/// `sin` must point to a live instance of `kind`'s C type.
unsafe fn st_field(sin: *mut SpiceBaseInstance, kind: Kind) -> *mut *mut c_void {
    // SAFETY: the caller guarantees the concrete type; we only form a field address.
    unsafe {
        match kind {
            Kind::Qxl => std::ptr::addr_of_mut!((*sin.cast::<QXLInstance>()).st).cast(),
            Kind::CharDevice => {
                std::ptr::addr_of_mut!((*sin.cast::<SpiceCharDeviceInstance>()).st).cast()
            }
            // keyboard, mouse, tablet, playback, record and migration instances are all
            // `{ SpiceBaseInstance base; <state> *st; }`.
            _ => std::ptr::addr_of_mut!((*sin.cast::<SpiceKbdInstance>()).st).cast(),
        }
    }
}

/// Reads `sif->type`, major and minor.
///
/// # Safety
/// `sin` must be NULL or point to a live instance whose `sif` is NULL or valid.
unsafe fn describe(sin: *mut SpiceBaseInstance) -> Option<(String, u32, u32)> {
    // SAFETY: forwarded contract.
    let sif = unsafe { sin.as_ref()?.sif.as_ref()? };
    // SAFETY: `type` is a C string in QEMU's static interface table.
    let name = unsafe { string(sif.r#type) }?;
    Some((name, sif.major_version, sif.minor_version))
}

/// `spice_server_add_interface`.
///
/// # Safety
/// `sin` must be NULL or a live instance that QEMU keeps valid while registered.
pub(crate) unsafe fn add(server: &Arc<Mutex<Server>>, sin: *mut SpiceBaseInstance) -> i32 {
    // SAFETY: forwarded contract.
    let Some((name, major, minor)) = (unsafe { describe(sin) }) else {
        crate::log_warn!("spice_server_add_interface: NULL instance or interface");
        return -1;
    };
    let Some(kind) = Kind::from_type(&name) else {
        // spice-server ignores unknown types and reports success.
        crate::log_warn!("spice_server_add_interface: unknown interface type '{name}' ignored");
        return 0;
    };
    if !kind.accepts(major, minor) {
        let (a, b) = kind.version();
        crate::log_warn!("{name} interface {major}.{minor} not supported (this library: {a}.{b})");
        return -1;
    }
    let id = InstanceId(sin as usize);
    let mut srv = server.lock();
    if let Err(e) = srv.check_add(kind, id) {
        crate::log_warn!("spice_server_add_interface: {e}");
        // Char device setup failures are only logged by spice-server.
        return if kind == Kind::CharDevice { 0 } else { -1 };
    }
    let mut char_device = None;
    let mut playback = None;
    let mut record = None;
    let qxl = if kind == Kind::Qxl {
        // SAFETY: a "qxl" instance is a QXLInstance whose interface is a QXLInterface.
        match unsafe { start_qxl(&mut srv, sin.cast::<QXLInstance>(), id) } {
            Ok(state) => Some(state),
            Err(e) => {
                crate::log_warn!("spice_server_add_interface: {e}");
                return -1;
            }
        }
    } else if kind == Kind::CharDevice {
        let sin = sin.cast::<SpiceCharDeviceInstance>();
        // SAFETY: a "char_device" instance is a SpiceCharDeviceInstance.
        let Some(device_kind) = (unsafe { char_device_kind(sin) }) else {
            // spice-server logs and reports success for a subtype it does not serve.
            return 0;
        };
        let host = Arc::new(QemuCharDevice(sin));
        char_device = Some(srv.add_char_device(id, host, device_kind));
        None
    } else if kind == Kind::Playback {
        playback = Some(Playback::new(srv.add_playback(id)));
        None
    } else if kind == Kind::Record {
        record = Some(srv.add_record(id));
        None
    } else {
        let interface = match kind {
            Kind::Keyboard => Interface::Keyboard(Arc::new(QemuKeyboard(sin.cast()))),
            Kind::Mouse => Interface::Mouse(Arc::new(QemuMouse(sin.cast()))),
            Kind::Tablet => Interface::Tablet(Arc::new(QemuTablet(sin.cast()))),
            other => Interface::Other(other),
        };
        srv.add_interface(id, interface);
        None
    };
    let state = Box::new(InstanceState {
        server: Arc::downgrade(server),
        qxl,
        char_device,
        playback,
        record,
    });
    // SAFETY: `sin` is a live instance of `kind`; `st` is ours to set.
    unsafe { *st_field(sin, kind) = Box::into_raw(state).cast() };
    0
}

/// What a char device instance serves, from its subtype and port name.
///
/// # Safety
/// `sin` must point to a live SpiceCharDeviceInstance.
unsafe fn char_device_kind(sin: *mut SpiceCharDeviceInstance) -> Option<DeviceKind> {
    // SAFETY: forwarded contract; the strings are NULL or NUL-terminated (QEMU's).
    let (subtype, portname) = unsafe { (string((*sin).subtype), string((*sin).portname)) };
    let subtype = subtype.unwrap_or_default();
    let kind = DeviceKind::from_subtype(&subtype, portname.as_deref());
    if kind.is_none() {
        crate::log_warn!(
            "char device subtype '{subtype}' (port {portname:?}) is not served: ignored"
        );
    }
    kind
}

/// Hands a QXL instance to the server, which starts its worker.
///
/// # Safety
/// `qxl` must point to a live QXLInstance with a valid QXLInterface.
unsafe fn start_qxl(
    srv: &mut Server,
    qxl: *mut QXLInstance,
    id: InstanceId,
) -> Result<QxlState, String> {
    // SAFETY: forwarded contract.
    let (qxl_id, table) = unsafe { ((*qxl).id, *(*qxl).base.sif.cast::<QXLInterface>()) };
    let device = QxlDevice::new(qxl, table).ok_or("QXL interface lacks required callbacks")?;
    let worker = srv.add_qxl(id, qxl_id, Arc::new(device.clone()), device.clone())?;
    Ok(QxlState {
        worker,
        device,
        info: Mutex::new(DeviceInfo::default()),
        session: srv.session.clone(),
    })
}

/// `spice_server_remove_interface`.
///
/// # Safety
/// `sin` must be NULL or an instance previously passed to `add`.
pub(crate) unsafe fn remove(sin: *mut SpiceBaseInstance) -> i32 {
    // SAFETY: forwarded contract.
    let Some((name, _, _)) = (unsafe { describe(sin) }) else {
        return -1;
    };
    let Some(kind) = Kind::from_type(&name) else {
        return -1;
    };
    // SAFETY: `sin` is a live instance of `kind`.
    let field = unsafe { st_field(sin, kind) };
    // SAFETY: reading the pointer field of a live instance.
    let raw = unsafe { *field } as *mut InstanceState;
    if raw.is_null() {
        crate::log_warn!("spice_server_remove_interface: {name} instance is not registered");
        return -1;
    }
    // SAFETY: `raw` is the Box we stored in `add`; we clear the field so it is freed once.
    let state = unsafe {
        *field = std::ptr::null_mut();
        Box::from_raw(raw)
    };
    if let Some(server) = state.server.upgrade() {
        if let Err(e) = server.lock().unregister(InstanceId(sin as usize)) {
            crate::log_warn!("spice_server_remove_interface: {e}");
        }
    }
    0
}

/// Frees the `st` of an instance still registered when the server is destroyed.
///
/// # Safety
/// `id` must be an instance address registered with `add` and still valid.
pub(crate) unsafe fn forget(kind: Kind, id: InstanceId) {
    // SAFETY: forwarded contract.
    let field = unsafe { st_field(id.0 as *mut SpiceBaseInstance, kind) };
    // SAFETY: the field holds our Box or NULL; cleared so it is freed once.
    unsafe {
        let raw = *field as *mut InstanceState;
        *field = std::ptr::null_mut();
        if !raw.is_null() {
            drop(Box::from_raw(raw));
        }
    }
}

/// The state of a registered QXL instance.
///
/// # Safety
/// `qxl` must be NULL or a live QXLInstance.
pub(crate) unsafe fn qxl_state<'a>(qxl: *mut QXLInstance) -> Option<&'a QxlState> {
    // SAFETY: forwarded contract; `st` is NULL or our InstanceState.
    let state = unsafe { (qxl.as_ref()?.st as *const InstanceState).as_ref()? };
    state.qxl.as_ref()
}

/// The device behind a registered char device instance.
///
/// # Safety
/// `sin` must be NULL or a live SpiceCharDeviceInstance.
pub(crate) unsafe fn char_device(sin: *mut SpiceCharDeviceInstance) -> Option<Arc<CharDevice>> {
    // SAFETY: forwarded contract; `st` is NULL or our InstanceState.
    let state = unsafe { (sin.as_ref()?.st as *const InstanceState).as_ref()? };
    state.char_device.clone()
}

/// The state of a `{ base, st }` instance (input or audio) registered with `add`.
///
/// # Safety
/// `sin` must be NULL or a live `{ base, st }` instance.
unsafe fn base_state<'a>(sin: *mut SpiceBaseInstance) -> Option<&'a InstanceState> {
    if sin.is_null() {
        return None;
    }
    // SAFETY: forwarded contract; the layout is `{ base, st }`, `st` NULL or ours.
    unsafe { (*st_field(sin, Kind::Keyboard) as *const InstanceState).as_ref() }
}

/// The playback side of a registered playback instance.
///
/// # Safety
/// `sin` must be NULL or a live SpicePlaybackInstance.
pub(crate) unsafe fn playback<'a>(sin: *mut SpicePlaybackInstance) -> Option<&'a Playback> {
    // SAFETY: forwarded contract.
    unsafe { base_state(sin.cast())?.playback.as_ref() }
}

/// The record stream of a registered record instance.
///
/// # Safety
/// `sin` must be NULL or a live SpiceRecordInstance.
pub(crate) unsafe fn record(sin: *mut SpiceRecordInstance) -> Option<Arc<RecordStream>> {
    // SAFETY: forwarded contract.
    unsafe { base_state(sin.cast())?.record.clone() }
}

/// Runs `body` on the server an input/audio instance belongs to.
///
/// # Safety
/// `sin` must be NULL or a live `{ base, st }` instance registered with `add`.
pub(crate) unsafe fn with_instance_server(
    function: &str,
    sin: *mut SpiceBaseInstance,
    body: impl FnOnce(&mut Server),
) {
    if sin.is_null() {
        return;
    }
    // SAFETY: forwarded contract; the layout is `{ base, st }`.
    let raw = unsafe { *st_field(sin, Kind::Keyboard) } as *const InstanceState;
    // SAFETY: NULL or our InstanceState.
    let Some(state) = (unsafe { raw.as_ref() }) else {
        crate::log_warn!("{function}: instance is not registered");
        return;
    };
    if let Some(server) = state.server.upgrade() {
        super::guard(function, (), || body(&mut server.lock()));
    }
}

/// Calls the migration interface's `migrate_connect_complete` / `migrate_end_complete`.
///
/// # Safety
/// `s` must be NULL or a live server; QEMU's lock must be held.
unsafe fn call_migration(s: *mut super::abi::SpiceServer, end: bool) {
    // SAFETY: forwarded contract.
    let Some(handle) = (unsafe { super::server(s) }) else {
        return;
    };
    let instance = handle
        .server
        .lock()
        .registered()
        .into_iter()
        .find(|(k, _)| *k == Kind::Migration);
    let Some((_, id)) = instance else {
        return;
    };
    let sin = id.0 as *mut SpiceMigrateInstance;
    // SAFETY: a registered migration instance and its interface table are live.
    unsafe {
        let table = &*(*sin).base.sif.cast::<SpiceMigrateInterface>();
        let callback = if end {
            table.migrate_end_complete
        } else {
            table.migrate_connect_complete
        };
        if let Some(f) = callback {
            f(sin);
        }
    }
}

/// # Safety
/// As for `call_migration`.
pub(crate) unsafe fn migration_connect_complete(s: *mut super::abi::SpiceServer) {
    // SAFETY: forwarded contract.
    unsafe { call_migration(s, false) }
}

/// # Safety
/// As for `call_migration`.
pub(crate) unsafe fn migration_end_complete(s: *mut super::abi::SpiceServer) {
    // SAFETY: forwarded contract.
    unsafe { call_migration(s, true) }
}
