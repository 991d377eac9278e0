//! `spice-replay.h`: replaying a recorded QXL command stream.
//! Not available in this build yet: `spice_replay_new` says so and returns NULL, which
//! every caller must already handle (spice-server returns NULL for unreadable files).

use crate::ffi::abi::{QXLCommandExt, QXLInstance, SpiceReplay};
use std::ffi::c_int;

#[no_mangle]
pub unsafe extern "C" fn spice_replay_new(
    file: *mut libc::FILE,
    nsurfaces: c_int,
) -> *mut SpiceReplay {
    let _ = (file, nsurfaces);
    crate::log_warn!("spice_replay_new: command replay is not supported by this build");
    std::ptr::null_mut()
}
symver!(spice_replay_new, "SPICE_SERVER_0.12.6");

#[no_mangle]
pub unsafe extern "C" fn spice_replay_next_cmd(
    replay: *mut SpiceReplay,
    instance: *mut QXLInstance,
) -> *mut QXLCommandExt {
    let _ = (replay, instance);
    std::ptr::null_mut()
}
symver!(spice_replay_next_cmd, "SPICE_SERVER_0.12.6");

#[no_mangle]
pub unsafe extern "C" fn spice_replay_free_cmd(replay: *mut SpiceReplay, cmd: *mut QXLCommandExt) {
    let _ = (replay, cmd);
}
symver!(spice_replay_free_cmd, "SPICE_SERVER_0.12.6");

#[no_mangle]
pub unsafe extern "C" fn spice_replay_free(replay: *mut SpiceReplay) {
    let _ = replay;
}
symver!(spice_replay_free, "SPICE_SERVER_0.12.6");
