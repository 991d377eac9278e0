//! `spice-migration.h`: moving clients along with a live-migrated VM.
//!
//! With no client linked there is nobody to move, so each step completes at once,
//! which is what spice-server does in that case.

use crate::ffi::abi::SpiceServer;
use crate::ffi::{instances, string, with_server};
use std::ffi::{c_char, c_int};

#[no_mangle]
pub unsafe extern "C" fn spice_server_migrate_info(
    s: *mut SpiceServer,
    dest: *const c_char,
    port: c_int,
    secure_port: c_int,
    cert_subject: *const c_char,
) -> c_int {
    let _ = cert_subject;
    // SAFETY: `dest` is NULL or a C string.
    let dest = unsafe { string(dest) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_migrate_info", s, -1, |srv| {
            srv.set_migration_target(dest, port, secure_port)
        })
    }
}
symver!(spice_server_migrate_info, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_migrate_switch(s: *mut SpiceServer) -> c_int {
    let _ = s;
    0
}
symver!(spice_server_migrate_switch, "SPICE_SERVER_0.8.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_migrate_connect(
    s: *mut SpiceServer,
    dest: *const c_char,
    port: c_int,
    secure_port: c_int,
    cert_subject: *const c_char,
) -> c_int {
    // SAFETY: same arguments, same contract.
    let status = unsafe { spice_server_migrate_info(s, dest, port, secure_port, cert_subject) };
    // No client to connect to the target: the connect phase is complete now.
    // SAFETY: `s` comes from spice_server_new; we hold QEMU's lock (API call).
    unsafe { instances::migration_connect_complete(s) };
    status
}
symver!(spice_server_migrate_connect, "SPICE_SERVER_0.8.3");

#[no_mangle]
pub unsafe extern "C" fn spice_server_migrate_start(s: *mut SpiceServer) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_migrate_start", s, -1, |srv| {
            if srv.has_migration_target() {
                0
            } else {
                -1
            }
        })
    }
}
symver!(spice_server_migrate_start, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_migrate_end(s: *mut SpiceServer, completed: c_int) -> c_int {
    let _ = completed;
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_migrate_end", s, (), |srv| {
            srv.set_migration_target(None, -1, -1);
        })
    };
    // SAFETY: as above; we hold QEMU's lock (API call).
    unsafe { instances::migration_end_complete(s) };
    0
}
symver!(spice_server_migrate_end, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_seamless_migration(s: *mut SpiceServer, enable: c_int) {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_seamless_migration", s, (), |srv| {
            srv.config.seamless_migration = enable != 0
        })
    }
}
symver!(spice_server_set_seamless_migration, "SPICE_SERVER_0.11.2");
