//! `spice-qxl.h`: the QXL display interface (`QXLInterface`, implemented by QEMU's qxl
//! device and by its "simple display" for every other graphics console), its instance,
//! and the structures passed with `spice_qxl_*` requests.

use super::core::{SpiceBaseInstance, SpiceBaseInterface};
use super::protocol::*;
use std::ffi::c_int;
use std::marker::{PhantomData, PhantomPinned};

/// Size of the `caps` array passed to `QXLInterface.set_client_capabilities`
/// (`sizeof(QXLRom.client_capabilities)`).
pub const SPICE_CAPABILITIES_SIZE: usize = 58;

/// `SpiceBaseInterface.type` of the QXL interface.
pub const SPICE_INTERFACE_QXL: &str = "qxl";
/// Major version of the QXL interface this library implements.
pub const SPICE_INTERFACE_QXL_MAJOR: u32 = 3;
/// Minor version of the QXL interface this library implements.
pub const SPICE_INTERFACE_QXL_MINOR: u32 = 3;

/// The library's per-instance state, reached through `QXLInstance.st`.
pub struct QXLState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// The pre-0.11 worker handle (only named by the deprecated `attache_worker`
/// callback, never defined publicly).
pub struct QXLWorker {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Memory-slot layout a QXL device announces through `QXLInterface.get_init_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLDevInitInfo {
    /// Number of memory slot groups (QEMU: 2, host and guest).
    pub num_memslots_groups: u32,
    /// Slots per group (QEMU: 8).
    pub num_memslots: u32,
    /// Bits of a `QXLPHYSICAL` holding the slot generation (QEMU: 8).
    pub memslot_gen_bits: u8,
    /// Bits of a `QXLPHYSICAL` holding the slot id (QEMU: 8).
    pub memslot_id_bits: u8,
    /// Size of the device's RAM BAR in bytes (a hint for clients).
    pub qxl_ram_size: u32,
    /// Slot group used for the library's own (host) commands (QEMU: 0).
    pub internal_groupslot_id: u8,
    /// Maximum number of surfaces the device supports.
    pub n_surfaces: u32,
}

/// A memory slot: `spice_qxl_add_memslot` maps `QXLPHYSICAL` offsets of slot
/// `slot_id` in group `slot_group_id` to host addresses.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLDevMemSlot {
    /// Group the slot belongs to.
    pub slot_group_id: u32,
    /// Slot number within the group.
    pub slot_id: u32,
    /// Generation that addresses into this slot must carry.
    pub generation: u32,
    /// First host address of the slot.
    pub virt_start: usize,
    /// One past the last host address of the slot.
    pub virt_end: usize,
    /// Added to an address's offset bits to get the host address.
    pub addr_delta: u64,
    /// Size of the device's RAM BAR (informational).
    pub qxl_ram_size: u32,
}

/// The primary surface passed to `spice_qxl_create_primary_surface`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLDevSurfaceCreate {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line; negative for a bottom-up surface.
    pub stride: i32,
    /// `SPICE_SURFACE_FMT_*`.
    pub format: u32,
    /// Position of the surface (unused by QEMU: 0).
    pub position: u32,
    /// Mouse mode the guest supports (QEMU: 1, server mouse).
    pub mouse_mode: u32,
    /// `QXL_SURF_FLAG_*` (KEEP_DATA on loadvm).
    pub flags: u32,
    /// `QXL_SURF_TYPE_*` (PRIMARY).
    pub r#type: u32,
    /// Address of the pixels, in memory slot group `group_id`.
    pub mem: u64,
    /// Memory slot group of `mem`.
    pub group_id: u32,
}

/// The QXL device interface (`SPICE_INTERFACE_QXL`, 3.3), implemented by QEMU.
///
/// Callbacks marked "worker" are called on the instance's display worker thread,
/// without QEMU's global lock; the others on the thread calling into the library.
///
/// `attached_worker` stands for C's anonymous union of `attached_worker(QXLInstance *)`
/// and the deprecated `attache_worker(QXLInstance *, QXLWorker *)`, which share this
/// slot (offset 24). cbindgen cannot emit anonymous unions, so only the current name
/// exists in our header; it is the one QEMU ≥ 0.15-era code fills in.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QXLInterface {
    /// "qxl", 3.3.
    pub base: SpiceBaseInterface,
    /// The instance was added (`spice_server_add_interface`); informational.
    pub attached_worker: Option<unsafe extern "C" fn(qin: *mut QXLInstance)>,
    /// Image compression hint for the device (0 = none, 1 = some), from the server settings.
    pub set_compression_level: Option<unsafe extern "C" fn(qin: *mut QXLInstance, level: c_int)>,
    /// Deprecated and never called; QEMU leaves it NULL.
    pub set_mm_time: Option<unsafe extern "C" fn(qin: *mut QXLInstance, mm_time: u32)>,
    /// Fills in the device's memory-slot layout.
    pub get_init_info:
        Option<unsafe extern "C" fn(qin: *mut QXLInstance, info: *mut QXLDevInitInfo)>,
    /// Worker: fetches the next display command without blocking; 1 if `cmd` was
    /// filled, 0 if none is pending.
    pub get_command:
        Option<unsafe extern "C" fn(qin: *mut QXLInstance, cmd: *mut QXLCommandExt) -> c_int>,
    /// Worker: asks for a `spice_qxl_wakeup` when commands arrive; returns 0 (and will
    /// not notify) if commands are already available, non-zero otherwise.
    pub req_cmd_notification: Option<unsafe extern "C" fn(qin: *mut QXLInstance) -> c_int>,
    /// Worker: gives a processed command back to the device (struct passed by value).
    pub release_resource:
        Option<unsafe extern "C" fn(qin: *mut QXLInstance, release_info: QXLReleaseInfoExt)>,
    /// Worker: as `get_command`, for the cursor ring.
    pub get_cursor_command:
        Option<unsafe extern "C" fn(qin: *mut QXLInstance, cmd: *mut QXLCommandExt) -> c_int>,
    /// Worker: as `req_cmd_notification`, for the cursor ring.
    pub req_cursor_notification: Option<unsafe extern "C" fn(qin: *mut QXLInstance) -> c_int>,
    /// Worker: a guest `QXL_CMD_UPDATE` was processed (deprecated).
    pub notify_update: Option<unsafe extern "C" fn(qin: *mut QXLInstance, update_id: u32)>,
    /// Worker: pushes pending released resources to the guest; returns how many.
    pub flush_resources: Option<unsafe extern "C" fn(qin: *mut QXLInstance) -> c_int>,
    /// Worker: the `spice_qxl_*_async` request identified by `cookie` has completed.
    pub async_complete: Option<unsafe extern "C" fn(qin: *mut QXLInstance, cookie: u64)>,
    /// Worker: rectangles of `surface_id` updated by an update-area request.
    pub update_area_complete: Option<
        unsafe extern "C" fn(
            qin: *mut QXLInstance,
            surface_id: u32,
            updated_rects: *mut QXLRect,
            num_updated_rects: u32,
        ),
    >,
    /// Worker (3.2+): whether a client is connected and its `SPICE_CAPABILITIES_SIZE`
    /// bytes of display capabilities.
    pub set_client_capabilities:
        Option<unsafe extern "C" fn(qin: *mut QXLInstance, client_present: u8, caps: *mut u8)>,
    /// (3.3+) A client's monitor layout; NULL only asks whether the device supports it.
    /// Returns 1 if supported, 0 otherwise.
    pub client_monitors_config: Option<
        unsafe extern "C" fn(
            qin: *mut QXLInstance,
            monitors_config: *mut VDAgentMonitorsConfig,
        ) -> c_int,
    >,
}

/// A QXL device instance, embedded in the caller's device state.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QXLInstance {
    /// `base.sif` points to a `QXLInterface`.
    pub base: SpiceBaseInstance,
    /// Display channel id; set by the caller before `spice_server_add_interface`.
    pub id: c_int,
    /// The library's per-instance state; the caller never touches it.
    pub st: *mut QXLState,
}
