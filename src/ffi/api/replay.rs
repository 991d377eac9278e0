//! `spice-replay.h`: replaying a recorded QXL command stream (see `crate::replay`).
//!
//! A program playing QEMU's qxl device calls `spice_replay_next_cmd` for each command,
//! queues it for `get_command`/`get_cursor_command`, and in `release_resource` passes
//! `release_info->id` (the command's own address) to `spice_replay_free_cmd`. Worker
//! calls found in the recording (primary surface creation and destruction, destroying
//! all surfaces) are made on the instance inside `spice_replay_next_cmd`, as in
//! spice-server. Commands must be addressed through a memslot mapping host addresses 1:1
//! in group 0, as spice-server's replay program sets up.

mod host_memory;

use crate::ffi::abi::{QXLCommandExt, QXLDevSurfaceCreate, QXLInstance, SpiceReplay};
use crate::ffi::guard;
use crate::replay::format::PrimarySurface;
use crate::replay::surface_ids::SurfaceIds;
use crate::replay::{Session, Step};
use host_memory::{HostBlock, HostCommand};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::io::{BufReader, Read};
use std::sync::Arc;

/// The caller's `FILE *`, read with `fread`.
struct CFile(*mut libc::FILE);

// SAFETY: glibc's stdio locks each FILE internally; the replay also only reads it under
// its session lock.
unsafe impl Send for CFile {}

impl Read for CFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `self.0` is the open FILE given to spice_replay_new (closed only when
        // the replay is freed); `buf` is writable for its length.
        let n = unsafe { libc::fread(buf.as_mut_ptr().cast(), 1, buf.len(), self.0) };
        // SAFETY: as above.
        if n == 0 && !buf.is_empty() && unsafe { libc::ferror(self.0) } != 0 {
            return Err(std::io::Error::other("fread failed"));
        }
        Ok(n)
    }
}

/// Looks up an exported function the way a C caller's PLT would: through the dynamic
/// symbol table, so a program may interpose it (spice-server's replay calls them that
/// way, and a test program uses it to learn where the primary surface lives).
fn exported(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() {
        crate::log_warn!("replay: {name:?} not found in the dynamic symbol table");
    }
    (!p.is_null()).then_some(p)
}

/// # Safety
/// `instance` is NULL or a registered QXL instance; `surface` is valid for the call.
unsafe fn create_primary_surface(instance: *mut QXLInstance, surface: &mut QXLDevSurfaceCreate) {
    type F = unsafe extern "C" fn(*mut QXLInstance, u32, *mut QXLDevSurfaceCreate);
    if let Some(p) = exported(c"spice_qxl_create_primary_surface") {
        // SAFETY: the symbol has this C prototype (spice-qxl.h).
        let f = unsafe { std::mem::transmute::<*mut c_void, F>(p) };
        // SAFETY: forwarded contract.
        unsafe { f(instance, 0, surface) };
    }
}

/// # Safety
/// `instance` is NULL or a registered QXL instance.
unsafe fn destroy_primary_surface(instance: *mut QXLInstance) {
    type F = unsafe extern "C" fn(*mut QXLInstance, u32);
    if let Some(p) = exported(c"spice_qxl_destroy_primary_surface") {
        // SAFETY: the symbol has this C prototype (spice-qxl.h).
        let f = unsafe { std::mem::transmute::<*mut c_void, F>(p) };
        // SAFETY: forwarded contract.
        unsafe { f(instance, 0) };
    }
}

/// # Safety
/// `instance` is NULL or a registered QXL instance.
unsafe fn destroy_surfaces(instance: *mut QXLInstance) {
    type F = unsafe extern "C" fn(*mut QXLInstance);
    if let Some(p) = exported(c"spice_qxl_destroy_surfaces") {
        // SAFETY: the symbol has this C prototype (spice-qxl.h).
        let f = unsafe { std::mem::transmute::<*mut c_void, F>(p) };
        // SAFETY: forwarded contract.
        unsafe { f(instance) };
    }
}

/// The primary surface's memory and whether the server has one.
#[derive(Default)]
struct Primary {
    memory: Option<HostBlock>,
    created: bool,
}

/// What a `SpiceReplay *` points to.
struct Replay {
    session: Mutex<Session<BufReader<CFile>>>,
    ids: Arc<SurfaceIds>,
    primary: Mutex<Primary>,
    /// Commands handed out and not yet freed, by the address of their `QXLCommandExt`.
    commands: Mutex<HashMap<u64, HostCommand>>,
    file: *mut libc::FILE,
}

// SAFETY: `file` is only passed to fclose on free; everything else is behind locks.
unsafe impl Send for Replay {}
// SAFETY: as above.
unsafe impl Sync for Replay {}

/// # Safety
/// `replay` is NULL or returned by `spice_replay_new` and not yet freed.
unsafe fn replay_ref<'a>(replay: *mut SpiceReplay) -> Option<&'a Replay> {
    // SAFETY: per the contract, a non-null pointer is a live Box<Replay>.
    unsafe { (replay as *const Replay).as_ref() }
}

#[no_mangle]
pub unsafe extern "C" fn spice_replay_new(
    file: *mut libc::FILE,
    nsurfaces: c_int,
) -> *mut SpiceReplay {
    if file.is_null() {
        crate::log_warn!("spice_replay_new: NULL file");
        return std::ptr::null_mut();
    }
    if nsurfaces < 1 {
        crate::log_warn!("spice_replay_new: nsurfaces must be at least 1, not {nsurfaces}");
        return std::ptr::null_mut();
    }
    guard(
        "spice_replay_new",
        std::ptr::null_mut(),
        || match Session::new(BufReader::new(CFile(file)), nsurfaces as u32) {
            Ok(session) => Box::into_raw(Box::new(Replay {
                ids: session.surface_ids(),
                session: Mutex::new(session),
                primary: Mutex::new(Primary::default()),
                commands: Mutex::new(HashMap::new()),
                file,
            }))
            .cast(),
            Err(e) => {
                crate::log_warn!("spice_replay_new: not a replay file: {e}");
                std::ptr::null_mut()
            }
        },
    )
}
symver!(spice_replay_new, "SPICE_SERVER_0.12.6");

/// Creates the recorded primary surface on `instance` (destroying the current one first).
///
/// # Safety
/// `instance` is NULL or a registered QXL instance.
unsafe fn create_primary(replay: &Replay, instance: *mut QXLInstance, surface: PrimarySurface) {
    let mut primary = replay.primary.lock();
    if primary.created {
        crate::log_warn!("replay: primary surface created twice without a destroy in between");
        // SAFETY: forwarded contract.
        unsafe { destroy_primary_surface(instance) };
    }
    // The server reads height × |stride| bytes whatever the recording held.
    let size = surface.size() as usize;
    let mut pixels = surface.data;
    pixels.resize(pixels.len().max(size), 0);
    let Some(memory) = HostBlock::new(&pixels) else {
        crate::log_warn!(
            "replay: no memory for a {} byte primary surface",
            pixels.len()
        );
        return;
    };
    let mut create = QXLDevSurfaceCreate {
        width: surface.width,
        height: surface.height,
        stride: surface.stride,
        format: surface.format,
        position: surface.position,
        mouse_mode: surface.mouse_mode,
        flags: surface.flags,
        r#type: surface.kind,
        mem: memory.address(),
        group_id: 0,
    };
    // SAFETY: forwarded contract; `create` lives for the (synchronous) call.
    unsafe { create_primary_surface(instance, &mut create) };
    primary.memory = Some(memory);
    primary.created = true;
}

#[no_mangle]
pub unsafe extern "C" fn spice_replay_next_cmd(
    replay: *mut SpiceReplay,
    instance: *mut QXLInstance,
) -> *mut QXLCommandExt {
    // SAFETY: forwarded contract.
    let Some(replay) = (unsafe { replay_ref(replay) }) else {
        crate::log_warn!("spice_replay_next_cmd: NULL replay");
        return std::ptr::null_mut();
    };
    guard("spice_replay_next_cmd", std::ptr::null_mut(), || {
        let mut session = replay.session.lock();
        loop {
            let step = match session.next_step() {
                Ok(Some(step)) => step,
                Ok(None) => return std::ptr::null_mut(),
                Err(e) => {
                    crate::log_warn!("spice_replay_next_cmd: replay ends: {e}");
                    return std::ptr::null_mut();
                }
            };
            match step {
                // SAFETY: `instance` is the caller's registered instance (or NULL,
                // which the spice_qxl_* functions refuse with a log line).
                Step::CreatePrimary(surface) => unsafe {
                    create_primary(replay, instance, surface)
                },
                Step::DestroyPrimary => {
                    let mut primary = replay.primary.lock();
                    primary.created = false;
                    // SAFETY: as above. Synchronous: the memory is unused afterwards.
                    unsafe { destroy_primary_surface(instance) };
                    primary.memory = None;
                }
                Step::DestroySurfaces => {
                    replay.primary.lock().created = false;
                    // SAFETY: as above.
                    unsafe { destroy_surfaces(instance) };
                }
                Step::Command(layout) => {
                    let Some(command) = HostCommand::materialise(&layout) else {
                        crate::log_warn!("spice_replay_next_cmd: no memory for a command");
                        return std::ptr::null_mut();
                    };
                    let address = command.address();
                    replay.commands.lock().insert(address, command);
                    return address as usize as *mut QXLCommandExt;
                }
            }
        }
    })
}
symver!(spice_replay_next_cmd, "SPICE_SERVER_0.12.6");

#[no_mangle]
pub unsafe extern "C" fn spice_replay_free_cmd(replay: *mut SpiceReplay, cmd: *mut QXLCommandExt) {
    // SAFETY: forwarded contract.
    let Some(replay) = (unsafe { replay_ref(replay) }) else {
        crate::log_warn!("spice_replay_free_cmd: NULL replay");
        return;
    };
    guard("spice_replay_free_cmd", (), || {
        let command = replay.commands.lock().remove(&(cmd as usize as u64));
        match command {
            Some(command) => {
                if let Some(id) = command.frees_surface {
                    replay.ids.release(id);
                }
            }
            None => crate::log_warn!("spice_replay_free_cmd: {cmd:p} is not a live command"),
        }
    })
}
symver!(spice_replay_free_cmd, "SPICE_SERVER_0.12.6");

/// Frees the replay, every command it handed out that was not freed yet, the primary
/// surface's memory, and closes the file: call it once the server no longer uses them.
#[no_mangle]
pub unsafe extern "C" fn spice_replay_free(replay: *mut SpiceReplay) {
    if replay.is_null() {
        crate::log_warn!("spice_replay_free: NULL replay");
        return;
    }
    // SAFETY: a non-null pointer from spice_replay_new, freed once per the contract.
    let replay = unsafe { Box::from_raw(replay as *mut Replay) };
    let file = replay.file;
    guard("spice_replay_free", (), move || drop(replay));
    // SAFETY: the FILE handed to spice_replay_new, owned by the replay since.
    unsafe { libc::fclose(file) };
}
symver!(spice_replay_free, "SPICE_SERVER_0.12.6");
