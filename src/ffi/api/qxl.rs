//! `spice-qxl.h`: requests QEMU sends to a QXL instance's worker.
//!
//! Synchronous requests block the caller (QEMU holds its global lock meanwhile) until
//! the worker has carried them out; `*_async` requests return at once and the worker
//! calls `async_complete(cookie)` exactly once.

use crate::ffi::abi::{
    QXLCommandExt, QXLDevMemSlot, QXLDevSurfaceCreate, QXLInstance, QXLRect, QXLPHYSICAL,
};
use crate::ffi::instances::{qxl_state, QxlState};
use crate::ffi::{guard, string};
use crate::geometry::Rect;
use crate::qxl::memslot::Slot;
use crate::worker::{Command, Done, Msg, PrimarySurface};
use std::ffi::{c_char, c_int, c_uint};

/// Runs `body` with the instance's state, or logs and does nothing for an unknown one.
///
/// # Safety
/// `qxl` must be NULL or a QXL instance QEMU registered with `spice_server_add_interface`.
unsafe fn with_qxl(function: &str, qxl: *mut QXLInstance, body: impl FnOnce(&QxlState)) {
    // SAFETY: forwarded contract.
    match unsafe { qxl_state(qxl) } {
        Some(state) => guard(function, (), || body(state)),
        None => crate::log_warn!("{function}: not a registered QXL instance"),
    }
}

/// # Safety
/// `area` is NULL or points to a `QXLRect`.
unsafe fn read_rect(area: *const QXLRect) -> Rect {
    // SAFETY: forwarded contract; QXLRect is plain data.
    unsafe { area.as_ref() }
        .map(|r| Rect::from(*r))
        .unwrap_or_default()
}

/// # Safety
/// `slot` is NULL or points to a `QXLDevMemSlot`.
unsafe fn read_slot(slot: *const QXLDevMemSlot) -> Option<(u32, u32, Slot)> {
    // SAFETY: forwarded contract.
    let s = unsafe { slot.as_ref() }?;
    Some((
        s.slot_group_id,
        s.slot_id,
        Slot {
            generation: s.generation,
            virt_start: s.virt_start as u64,
            virt_end: s.virt_end as u64,
            addr_delta: s.addr_delta,
        },
    ))
}

/// # Safety
/// `surface` is NULL or points to a `QXLDevSurfaceCreate`.
unsafe fn read_surface(surface: *const QXLDevSurfaceCreate) -> Option<PrimarySurface> {
    // SAFETY: forwarded contract.
    let s = unsafe { surface.as_ref() }?;
    Some(PrimarySurface {
        width: s.width,
        height: s.height,
        stride: s.stride,
        format: s.format,
        mouse_mode: s.mouse_mode,
        flags: s.flags,
        mem: s.mem,
        group: s.group_id,
    })
}

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_wakeup(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe { with_qxl("spice_qxl_wakeup", instance, |q| q.worker.wakeup()) }
}
symver!(spice_qxl_wakeup, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_oom(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe { with_qxl("spice_qxl_oom", instance, |q| q.worker.oom()) }
}
symver!(spice_qxl_oom, "SPICE_SERVER_0.8.2");

/// Deprecated per-instance start; `spice_server_vm_start` is the modern call.
#[no_mangle]
pub unsafe extern "C" fn spice_qxl_start(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe { with_qxl("spice_qxl_start", instance, |q| q.worker.post(Msg::Start)) }
}
symver!(spice_qxl_start, "SPICE_SERVER_0.8.2");

/// Deprecated per-instance stop; synchronous like `spice_server_vm_stop`.
#[no_mangle]
pub unsafe extern "C" fn spice_qxl_stop(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe { with_qxl("spice_qxl_stop", instance, |q| q.worker.call(Msg::Stop)) }
}
symver!(spice_qxl_stop, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_update_area(
    instance: *mut QXLInstance,
    surface_id: u32,
    area: *mut QXLRect,
    dirty_rects: *mut QXLRect,
    num_dirty_rects: u32,
    clear_dirty_region: u32,
) {
    let _ = (dirty_rects, num_dirty_rects, clear_dirty_region);
    // SAFETY: `area` is NULL or a QXLRect QEMU owns for the duration of the call.
    let area = unsafe { read_rect(area) };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_update_area", instance, |q| {
            q.worker.call(|done| Msg::UpdateArea {
                surface_id,
                area,
                done,
            })
        })
    }
}
symver!(spice_qxl_update_area, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_add_memslot(
    instance: *mut QXLInstance,
    slot: *mut QXLDevMemSlot,
) {
    // SAFETY: `slot` is NULL or a QXLDevMemSlot valid during the call.
    let Some((group, slot, value)) = (unsafe { read_slot(slot) }) else {
        return;
    };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_add_memslot", instance, |q| {
            q.worker.call(|done| Msg::AddMemslot {
                group,
                slot,
                value,
                done,
            })
        })
    }
}
symver!(spice_qxl_add_memslot, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_del_memslot(
    instance: *mut QXLInstance,
    slot_group_id: u32,
    slot_id: u32,
) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_del_memslot", instance, |q| {
            q.worker.post(Msg::DelMemslot {
                group: slot_group_id,
                slot: slot_id,
            })
        })
    }
}
symver!(spice_qxl_del_memslot, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_reset_memslots(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_reset_memslots", instance, |q| {
            q.worker.post(Msg::ResetMemslots)
        })
    }
}
symver!(spice_qxl_reset_memslots, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_surfaces(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_surfaces", instance, |q| {
            q.worker.call(|done| Msg::DestroySurfaces { done })
        })
    }
}
symver!(spice_qxl_destroy_surfaces, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_primary_surface(
    instance: *mut QXLInstance,
    surface_id: u32,
) {
    let _ = surface_id;
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_primary_surface", instance, |q| {
            q.worker.call(|done| Msg::DestroyPrimary { done })
        })
    }
}
symver!(spice_qxl_destroy_primary_surface, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_create_primary_surface(
    instance: *mut QXLInstance,
    surface_id: u32,
    surface: *mut QXLDevSurfaceCreate,
) {
    let _ = surface_id;
    // SAFETY: `surface` is NULL or valid during the call.
    let Some(surface) = (unsafe { read_surface(surface) }) else {
        return;
    };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_create_primary_surface", instance, |q| {
            q.worker.call(|done| Msg::CreatePrimary { surface, done })
        })
    }
}
symver!(spice_qxl_create_primary_surface, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_reset_image_cache(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_reset_image_cache", instance, |q| {
            q.worker.call(|done| Msg::ResetImageCache { done })
        })
    }
}
symver!(spice_qxl_reset_image_cache, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_reset_cursor(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_reset_cursor", instance, |q| {
            q.worker.call(|done| Msg::ResetCursor { done })
        })
    }
}
symver!(spice_qxl_reset_cursor, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_surface_wait(
    instance: *mut QXLInstance,
    surface_id: u32,
) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_surface_wait", instance, |q| {
            q.worker
                .call(|done| Msg::DestroySurfaceWait { surface_id, done })
        })
    }
}
symver!(spice_qxl_destroy_surface_wait, "SPICE_SERVER_0.8.2");

/// Most commands one loadvm replay may carry (QEMU sends one per surface + the cursor).
const MAX_LOADVM_COMMANDS: u32 = 8192;

/// Commands QEMU replays after loading a VM (surface creates, the cursor): applied, not
/// released (the guest released them before the snapshot).
#[no_mangle]
pub unsafe extern "C" fn spice_qxl_loadvm_commands(
    instance: *mut QXLInstance,
    ext: *mut QXLCommandExt,
    count: u32,
) {
    let mut commands = Vec::new();
    if !ext.is_null() {
        for i in 0..count.min(MAX_LOADVM_COMMANDS) as usize {
            // SAFETY: QEMU passes an array of `count` commands valid during the call.
            let e = unsafe { std::ptr::read_unaligned(ext.add(i)) };
            let cmd = e.cmd;
            commands.push(Command {
                data: cmd.data,
                kind: cmd.type_,
                group: e.group_id,
                flags: e.flags,
            });
        }
    }
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_loadvm_commands", instance, |q| {
            q.worker.call(|done| Msg::Loadvm { commands, done })
        })
    }
}
symver!(spice_qxl_loadvm_commands, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_update_area_async(
    instance: *mut QXLInstance,
    surface_id: u32,
    qxl_area: *mut QXLRect,
    clear_dirty_region: u32,
    cookie: u64,
) {
    let _ = clear_dirty_region;
    // SAFETY: `qxl_area` is NULL or valid during the call.
    let area = unsafe { read_rect(qxl_area) };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_update_area_async", instance, |q| {
            q.worker.post(Msg::UpdateArea {
                surface_id,
                area,
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(spice_qxl_update_area_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_add_memslot_async(
    instance: *mut QXLInstance,
    slot: *mut QXLDevMemSlot,
    cookie: u64,
) {
    // SAFETY: `slot` is NULL or valid during the call.
    let parsed = unsafe { read_slot(slot) };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_add_memslot_async", instance, |q| match parsed {
            Some((group, slot, value)) => q.worker.post(Msg::AddMemslot {
                group,
                slot,
                value,
                done: Done::Async(cookie),
            }),
            // A NULL argument still completes the cookie: QEMU waits for it.
            None => q.worker.post(Msg::Nop {
                done: Done::Async(cookie),
            }),
        })
    }
}
symver!(spice_qxl_add_memslot_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_surfaces_async(instance: *mut QXLInstance, cookie: u64) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_surfaces_async", instance, |q| {
            q.worker.post(Msg::DestroySurfaces {
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(spice_qxl_destroy_surfaces_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_primary_surface_async(
    instance: *mut QXLInstance,
    surface_id: u32,
    cookie: u64,
) {
    let _ = surface_id;
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_primary_surface_async", instance, |q| {
            q.worker.post(Msg::DestroyPrimary {
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(
    spice_qxl_destroy_primary_surface_async,
    "SPICE_SERVER_0.8.2"
);

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_create_primary_surface_async(
    instance: *mut QXLInstance,
    surface_id: u32,
    surface: *mut QXLDevSurfaceCreate,
    cookie: u64,
) {
    let _ = surface_id;
    // SAFETY: `surface` is NULL or valid during the call.
    let parsed = unsafe { read_surface(surface) };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl(
            "spice_qxl_create_primary_surface_async",
            instance,
            |q| match parsed {
                Some(surface) => q.worker.post(Msg::CreatePrimary {
                    surface,
                    done: Done::Async(cookie),
                }),
                None => q.worker.post(Msg::Nop {
                    done: Done::Async(cookie),
                }),
            },
        )
    }
}
symver!(spice_qxl_create_primary_surface_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_destroy_surface_async(
    instance: *mut QXLInstance,
    surface_id: u32,
    cookie: u64,
) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_destroy_surface_async", instance, |q| {
            q.worker.post(Msg::DestroySurfaceWait {
                surface_id,
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(spice_qxl_destroy_surface_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_flush_surfaces_async(instance: *mut QXLInstance, cookie: u64) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_flush_surfaces_async", instance, |q| {
            q.worker.post(Msg::FlushSurfaces {
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(spice_qxl_flush_surfaces_async, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_monitors_config_async(
    instance: *mut QXLInstance,
    monitors_config: QXLPHYSICAL,
    group_id: c_int,
    cookie: u64,
) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_monitors_config_async", instance, |q| {
            q.worker.post(Msg::MonitorsConfig {
                max_monitors: q.max_monitors(),
                address: monitors_config,
                group: group_id.max(0) as u32,
                done: Done::Async(cookie),
            })
        })
    }
}
symver!(spice_qxl_monitors_config_async, "SPICE_SERVER_0.10.4");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_driver_unload(instance: *mut QXLInstance) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_driver_unload", instance, |q| {
            q.worker.post(Msg::DriverUnload)
        })
    }
}
symver!(spice_qxl_driver_unload, "SPICE_SERVER_0.12.3");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_set_max_monitors(
    instance: *mut QXLInstance,
    max_monitors: c_uint,
) {
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_set_max_monitors", instance, |q| {
            q.set_max_monitors(max_monitors.max(1))
        })
    }
}
symver!(spice_qxl_set_max_monitors, "SPICE_SERVER_0.12.6");

/// GL scanout needs a local client with the GL cap, which this build does not serve
/// yet: the fd (ours to close) is closed, and draws complete at once, as spice-server
/// does when there is no scanout.
#[no_mangle]
pub unsafe extern "C" fn spice_qxl_gl_scanout(
    qxl: *mut QXLInstance,
    fd: c_int,
    width: u32,
    height: u32,
    stride: u32,
    format: u32,
    y_0_top: c_int,
) {
    let _ = (qxl, width, height, stride, format, y_0_top);
    // SAFETY: ownership of `fd` passes to us with this call.
    drop(unsafe { crate::ffi::core::adopt_fd(fd) });
}
symver!(spice_qxl_gl_scanout, "SPICE_SERVER_0.13.1");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_gl_draw_async(
    qxl: *mut QXLInstance,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    cookie: u64,
) {
    let _ = (x, y, w, h);
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_gl_draw_async", qxl, |q| {
            q.complete_inline(cookie)
        })
    }
}
symver!(spice_qxl_gl_draw_async, "SPICE_SERVER_0.13.1");

#[no_mangle]
pub unsafe extern "C" fn spice_qxl_set_device_info(
    instance: *mut QXLInstance,
    device_address: *const c_char,
    device_display_id_start: u32,
    device_display_id_count: u32,
) {
    // SAFETY: `device_address` is NULL or a C string.
    let address = unsafe { string(device_address) };
    // SAFETY: QEMU passes its registered instance.
    unsafe {
        with_qxl("spice_qxl_set_device_info", instance, |q| {
            q.set_device_info(address, device_display_id_start, device_display_id_count)
        })
    }
}
symver!(spice_qxl_set_device_info, "SPICE_SERVER_0.14.2");
