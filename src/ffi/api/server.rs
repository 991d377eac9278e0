//! `spice-server.h`: the server object, its configuration and lifecycle.

use crate::ffi::abi::{
    spice_compat_version_t, spice_wan_compression_t, SpiceBaseInstance, SpiceCoreInterface,
    SpiceImageCompression, SpiceServer,
};
use crate::ffi::core::CoreInterface;
use crate::ffi::{guard, instances, server, string, with_server, ServerHandle};
use crate::net::stream::Stream;
use crate::server::config::{ServerConfig, TlsConfig};
use crate::server::{InitError, Server};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int};
use std::sync::Arc;

const OK: c_int = 0;
const ERR: c_int = -1;

fn result<E: std::fmt::Display>(function: &str, r: Result<(), E>) -> c_int {
    match r {
        Ok(()) => OK,
        Err(e) => {
            crate::log_warn!("{function}: {e}");
            ERR
        }
    }
}

#[no_mangle]
pub extern "C" fn spice_get_current_compat_version() -> spice_compat_version_t {
    1
}
symver!(spice_get_current_compat_version, "SPICE_SERVER_0.6.1");

/// Only the 0.6 compatibility level exists.
#[no_mangle]
pub unsafe extern "C" fn spice_server_set_compat_version(
    s: *mut SpiceServer,
    version: spice_compat_version_t,
) -> c_int {
    let _ = s;
    if version == 1 {
        OK
    } else {
        ERR
    }
}
symver!(spice_server_set_compat_version, "SPICE_SERVER_0.6.1");

#[no_mangle]
pub extern "C" fn spice_server_new() -> *mut SpiceServer {
    guard("spice_server_new", std::ptr::null_mut(), || {
        let handle = Box::new(ServerHandle {
            server: Arc::new(Mutex::new(Server::new(
                crate::ffi::thread::block_async_signals,
            ))),
        });
        Box::into_raw(handle) as *mut SpiceServer
    })
}
symver!(spice_server_new, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_init(
    s: *mut SpiceServer,
    core: *mut SpiceCoreInterface,
) -> c_int {
    // SAFETY: QEMU passes its static core interface table.
    let core = match unsafe { CoreInterface::from_raw(core) } {
        Ok(core) => Arc::new(core),
        Err(e) => {
            crate::log_warn!("spice_server_init: {e}");
            return ERR;
        }
    };
    // SAFETY: `s` comes from spice_server_new.
    let listen_fd =
        unsafe { with_server("spice_server_init", s, None, |srv| srv.config.listen_fd) };
    // SAFETY: an fd given to set_listen_socket_fd is a listening socket the caller
    // hands over to us.
    let adopted = listen_fd.and_then(|fd| unsafe { crate::ffi::core::adopt_listener(fd) });
    // SAFETY: as above.
    unsafe {
        with_server("spice_server_init", s, ERR, move |srv| {
            match srv.init(core, adopted) {
                Ok(()) => OK,
                // QEMU exits on this; one error line says why.
                Err(e @ InitError::Tls(_)) => {
                    crate::log_error!("{e}");
                    ERR
                }
                Err(e) => result("spice_server_init", Err(e)),
            }
        })
    }
}
symver!(spice_server_init, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_destroy(s: *mut SpiceServer) {
    if s.is_null() {
        return;
    }
    guard("spice_server_destroy", (), || {
        // SAFETY: `s` is a Box<ServerHandle> from spice_server_new, destroyed once.
        let handle = unsafe { Box::from_raw(s as *mut ServerHandle) };
        let left = handle.server.lock().shutdown();
        for (kind, id) in left {
            // SAFETY: registered instances are still owned by the caller and valid.
            unsafe { instances::forget(kind, id) };
        }
    })
}
symver!(spice_server_destroy, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_port(s: *mut SpiceServer, port: c_int) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_port", s, ERR, |srv| {
            result("spice_server_set_port", srv.config.set_port(port))
        })
    }
}
symver!(spice_server_set_port, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_addr(
    s: *mut SpiceServer,
    addr: *const c_char,
    flags: c_int,
) {
    // SAFETY: `addr` is NULL or a C string.
    let addr = unsafe { string(addr) }.unwrap_or_default();
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_addr", s, (), |srv| {
            srv.config.set_addr(&addr, flags)
        })
    }
}
symver!(spice_server_set_addr, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_listen_socket_fd(
    s: *mut SpiceServer,
    listen_fd: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_listen_socket_fd", s, ERR, |srv| {
            srv.config.listen_fd = (listen_fd >= 0).then_some(listen_fd);
            OK
        })
    }
}
symver!(spice_server_set_listen_socket_fd, "SPICE_SERVER_0.10.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_exit_on_disconnect(
    s: *mut SpiceServer,
    flag: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_exit_on_disconnect", s, ERR, |srv| {
            srv.config.exit_on_disconnect = flag != 0;
            OK
        })
    }
}
symver!(spice_server_set_exit_on_disconnect, "SPICE_SERVER_0.11.4");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_noauth(s: *mut SpiceServer) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_noauth", s, ERR, |srv| {
            srv.config.set_noauth();
            OK
        })
    }
}
symver!(spice_server_set_noauth, "SPICE_SERVER_0.6.0");

/// QEMU's `-spice sasl=on`: SASL (libsasl2) authenticates clients instead of the ticket.
#[no_mangle]
pub unsafe extern "C" fn spice_server_set_sasl(s: *mut SpiceServer, enabled: c_int) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_sasl", s, ERR, |srv| {
            srv.config.sasl = enabled != 0;
            OK
        })
    }
}
symver!(spice_server_set_sasl, "SPICE_SERVER_0.8.2");

/// The name libsasl2 reads its settings under (`/etc/sasl2/<appname>.conf`); QEMU
/// passes "qemu", spice-server's default is "spice".
#[no_mangle]
pub unsafe extern "C" fn spice_server_set_sasl_appname(
    s: *mut SpiceServer,
    appname: *const c_char,
) -> c_int {
    // SAFETY: `appname` is NULL or a C string.
    let appname = unsafe { string(appname) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_sasl_appname", s, ERR, |srv| {
            srv.config.sasl_appname = appname;
            OK
        })
    }
}
symver!(spice_server_set_sasl_appname, "SPICE_SERVER_0.8.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_ticket(
    s: *mut SpiceServer,
    passwd: *const c_char,
    lifetime: c_int,
    fail_if_connected: c_int,
    disconnect_if_connected: c_int,
) -> c_int {
    // SAFETY: `passwd` is NULL or a C string.
    let password = unsafe { string(passwd) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_ticket", s, ERR, |srv| {
            result(
                "spice_server_set_ticket",
                srv.set_ticket(
                    password.as_deref(),
                    lifetime,
                    fail_if_connected != 0,
                    disconnect_if_connected != 0,
                ),
            )
        })
    }
}
symver!(spice_server_set_ticket, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_tls(
    s: *mut SpiceServer,
    port: c_int,
    ca_cert_file: *const c_char,
    certs_file: *const c_char,
    private_key_file: *const c_char,
    key_passwd: *const c_char,
    dh_key_file: *const c_char,
    ciphersuite: *const c_char,
) -> c_int {
    // SAFETY: each pointer is NULL or a C string.
    let (ca, cert, key, pass, dh, ciphers) = unsafe {
        (
            string(ca_cert_file),
            string(certs_file),
            string(private_key_file),
            string(key_passwd),
            string(dh_key_file),
            string(ciphersuite),
        )
    };
    let (Some(ca_cert_file), Some(certs_file), Some(private_key_file)) = (ca, cert, key) else {
        crate::log_warn!("spice_server_set_tls: CA, certificate and key files are required");
        return ERR;
    };
    let tls = TlsConfig {
        port: 0,
        ca_cert_file,
        certs_file,
        private_key_file,
        key_password: pass,
        dh_key_file: dh,
        ciphersuite: ciphers,
    };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_tls", s, ERR, |srv| {
            result("spice_server_set_tls", srv.config.set_tls(port, tls))
        })
    }
}
symver!(spice_server_set_tls, "SPICE_SERVER_0.6.0");

/// On -1 the socket stays the caller's (QEMU's `add_client` closes it then, as reds.c
/// expects): we work on a duplicate and close the original only once we own the client.
#[no_mangle]
pub unsafe extern "C" fn spice_server_add_client(
    s: *mut SpiceServer,
    socket: c_int,
    skip_auth: c_int,
) -> c_int {
    use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
    if socket < 0 {
        return ERR;
    }
    // SAFETY: `socket` is an open fd the caller owns for the duration of this call.
    let copy = match unsafe { BorrowedFd::borrow_raw(socket) }.try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            crate::log_warn!("spice_server_add_client: {e}");
            return ERR;
        }
    };
    // SAFETY: `copy` is our own fd; adopting it hands it to the stream.
    let Some(stream) = (unsafe { crate::ffi::core::adopt_socket(copy.into_raw_fd()) }) else {
        return ERR;
    };
    // SAFETY: `s` comes from spice_server_new.
    let added = unsafe {
        with_server("spice_server_add_client", s, false, move |srv| {
            srv.add_client(stream, skip_auth != 0)
        })
    };
    if !added {
        return ERR;
    }
    // SAFETY: the client is ours now (we hold a duplicate): the caller's fd is ours to
    // close, and QEMU does not touch it after success.
    drop(unsafe { OwnedFd::from_raw_fd(socket) });
    OK
}
symver!(spice_server_add_client, "SPICE_SERVER_0.10.1");

/// A connected TCP socket that starts with a TLS handshake (QMP `add_client tls=true`).
/// On -1 the socket stays the caller's (QEMU closes it then): we work on a duplicate and
/// close the original only once we own the client.
#[no_mangle]
pub unsafe extern "C" fn spice_server_add_ssl_client(
    s: *mut SpiceServer,
    socket: c_int,
    skip_auth: c_int,
) -> c_int {
    use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
    if socket < 0 {
        return ERR;
    }
    // SAFETY: `socket` is an open fd the caller owns for the duration of this call.
    let copy = match unsafe { BorrowedFd::borrow_raw(socket) }.try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            crate::log_warn!("spice_server_add_ssl_client: {e}");
            return ERR;
        }
    };
    // SAFETY: `copy` is our own fd; adopting it hands it to the stream.
    let Some(Stream::Tcp(tcp)) = (unsafe { crate::ffi::core::adopt_socket(copy.into_raw_fd()) })
    else {
        crate::log_warn!("spice_server_add_ssl_client: TLS needs a TCP socket");
        return ERR;
    };
    // SAFETY: `s` comes from spice_server_new.
    let added = unsafe {
        with_server("spice_server_add_ssl_client", s, false, move |srv| {
            srv.add_ssl_client(tcp, skip_auth != 0)
        })
    };
    if !added {
        return ERR;
    }
    // SAFETY: the client is ours now (we hold a duplicate); QEMU does not touch the fd
    // after success.
    drop(unsafe { OwnedFd::from_raw_fd(socket) });
    OK
}
symver!(spice_server_add_ssl_client, "SPICE_SERVER_0.10.1");

#[no_mangle]
pub unsafe extern "C" fn spice_server_add_interface(
    s: *mut SpiceServer,
    sin: *mut SpiceBaseInstance,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    let Some(handle) = (unsafe { server(s) }) else {
        crate::log_warn!("spice_server_add_interface: NULL server");
        return ERR;
    };
    // SAFETY: `sin` is NULL or an instance QEMU owns and keeps alive while registered.
    guard("spice_server_add_interface", ERR, || unsafe {
        instances::add(&handle.server, sin)
    })
}
symver!(spice_server_add_interface, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_remove_interface(sin: *mut SpiceBaseInstance) -> c_int {
    // SAFETY: `sin` is NULL or an instance previously passed to add_interface.
    guard("spice_server_remove_interface", ERR, || unsafe {
        instances::remove(sin)
    })
}
symver!(spice_server_remove_interface, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_image_compression(
    s: *mut SpiceServer,
    comp: SpiceImageCompression,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_image_compression", s, ERR, |srv| {
            result(
                "spice_server_set_image_compression",
                srv.config.set_image_compression(comp as i32),
            )
        })
    }
}
symver!(spice_server_set_image_compression, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_get_image_compression(
    s: *mut SpiceServer,
) -> SpiceImageCompression {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_get_image_compression", s, 0, |srv| {
            srv.config.image_compression as SpiceImageCompression
        })
    }
}
symver!(spice_server_get_image_compression, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_jpeg_compression(
    s: *mut SpiceServer,
    comp: spice_wan_compression_t,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_jpeg_compression", s, ERR, |srv| {
            result(
                "spice_server_set_jpeg_compression",
                ServerConfig::set_wan(&mut srv.config.jpeg, "jpeg state", comp as i32),
            )
        })
    }
}
symver!(spice_server_set_jpeg_compression, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_zlib_glz_compression(
    s: *mut SpiceServer,
    comp: spice_wan_compression_t,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_zlib_glz_compression", s, ERR, |srv| {
            result(
                "spice_server_set_zlib_glz_compression",
                ServerConfig::set_wan(&mut srv.config.zlib_glz, "zlib-glz state", comp as i32),
            )
        })
    }
}
symver!(spice_server_set_zlib_glz_compression, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_channel_security(
    s: *mut SpiceServer,
    channel: *const c_char,
    security: c_int,
) -> c_int {
    // SAFETY: `channel` is NULL (= every channel) or a C string.
    let channel = unsafe { string(channel) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_channel_security", s, ERR, |srv| {
            result(
                "spice_server_set_channel_security",
                srv.config
                    .set_channel_security(channel.as_deref(), security),
            )
        })
    }
}
symver!(spice_server_set_channel_security, "SPICE_SERVER_0.6.0");

/// Only the software renderer ("sw") exists, as in spice-server.
#[no_mangle]
pub unsafe extern "C" fn spice_server_add_renderer(
    s: *mut SpiceServer,
    name: *const c_char,
) -> c_int {
    let _ = s;
    // SAFETY: `name` is NULL or a C string.
    match unsafe { string(name) }.as_deref() {
        Some("sw") => OK,
        other => {
            crate::log_warn!("spice_server_add_renderer: unknown renderer {other:?}");
            ERR
        }
    }
}
symver!(spice_server_add_renderer, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_streaming_video(
    s: *mut SpiceServer,
    value: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_streaming_video", s, ERR, |srv| {
            result(
                "spice_server_set_streaming_video",
                srv.config.set_streaming_video(value),
            )
        })
    }
}
symver!(spice_server_set_streaming_video, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_video_codecs(
    s: *mut SpiceServer,
    video_codecs: *const c_char,
) -> c_int {
    // SAFETY: `video_codecs` is NULL or a C string.
    let Some(codecs) = (unsafe { string(video_codecs) }) else {
        return ERR;
    };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_video_codecs", s, ERR, |srv| {
            result(
                "spice_server_set_video_codecs",
                srv.config.set_video_codecs(&codecs),
            )
        })
    }
}
symver!(spice_server_set_video_codecs, "SPICE_SERVER_0.13.2");

/// Returns a malloc'ed string; release it with `spice_server_free_video_codecs`.
#[no_mangle]
pub unsafe extern "C" fn spice_server_get_video_codecs(s: *mut SpiceServer) -> *const c_char {
    // SAFETY: `s` comes from spice_server_new.
    let Some(handle) = (unsafe { server(s) }) else {
        return std::ptr::null();
    };
    guard("spice_server_get_video_codecs", std::ptr::null(), || {
        let text = handle.server.lock().config.video_codecs.to_string();
        crate::ffi::core::malloc_string(&text)
    })
}
symver!(spice_server_get_video_codecs, "SPICE_SERVER_0.14.3");

#[no_mangle]
pub unsafe extern "C" fn spice_server_free_video_codecs(
    s: *mut SpiceServer,
    video_codecs: *const c_char,
) {
    let _ = s;
    // SAFETY: the string came from spice_server_get_video_codecs (malloc) or is NULL.
    unsafe { crate::ffi::core::free_string(video_codecs) }
}
symver!(spice_server_free_video_codecs, "SPICE_SERVER_0.14.3");

fn set_flag(flag: &mut bool, enable: c_int) -> c_int {
    *flag = enable != 0;
    OK
}

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_playback_compression(
    s: *mut SpiceServer,
    enable: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_playback_compression", s, ERR, |srv| {
            set_flag(&mut srv.config.playback_compression, enable)
        })
    }
}
symver!(spice_server_set_playback_compression, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_agent_mouse(s: *mut SpiceServer, enable: c_int) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_agent_mouse", s, ERR, |srv| {
            set_flag(&mut srv.config.agent_mouse, enable)
        })
    }
}
symver!(spice_server_set_agent_mouse, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_agent_copypaste(
    s: *mut SpiceServer,
    enable: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_agent_copypaste", s, ERR, |srv| {
            set_flag(&mut srv.config.agent_copypaste, enable)
        })
    }
}
symver!(spice_server_set_agent_copypaste, "SPICE_SERVER_0.8.1");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_agent_file_xfer(
    s: *mut SpiceServer,
    enable: c_int,
) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_agent_file_xfer", s, ERR, |srv| {
            set_flag(&mut srv.config.agent_file_xfer, enable)
        })
    }
}
symver!(spice_server_set_agent_file_xfer, "SPICE_SERVER_0.12.4");

/// Obsolete; spice-server 0.15 also returns -1.
#[no_mangle]
pub unsafe extern "C" fn spice_server_get_sock_info(
    s: *mut SpiceServer,
    sa: *mut libc::sockaddr,
    salen: *mut libc::socklen_t,
) -> c_int {
    let _ = (s, sa, salen);
    ERR
}
symver!(spice_server_get_sock_info, "SPICE_SERVER_0.6.0");

/// Obsolete; spice-server 0.15 also returns -1.
#[no_mangle]
pub unsafe extern "C" fn spice_server_get_peer_info(
    s: *mut SpiceServer,
    sa: *mut libc::sockaddr,
    salen: *mut libc::socklen_t,
) -> c_int {
    let _ = (s, sa, salen);
    ERR
}
symver!(spice_server_get_peer_info, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_is_server_mouse(s: *mut SpiceServer) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_is_server_mouse", s, 1, |srv| {
            c_int::from(srv.is_server_mouse())
        })
    }
}
symver!(spice_server_is_server_mouse, "SPICE_SERVER_0.10.3");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_name(s: *mut SpiceServer, name: *const c_char) {
    // SAFETY: `name` is NULL or a C string.
    let name = unsafe { string(name) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe { with_server("spice_server_set_name", s, (), |srv| srv.config.name = name) }
}
symver!(spice_server_set_name, "SPICE_SERVER_0.10.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_uuid(s: *mut SpiceServer, uuid: *const u8) {
    if uuid.is_null() {
        return;
    }
    let mut bytes = [0u8; 16];
    // SAFETY: the API passes `const uint8_t uuid[16]`.
    unsafe { std::ptr::copy_nonoverlapping(uuid, bytes.as_mut_ptr(), 16) };
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_set_uuid", s, (), |srv| {
            srv.config.uuid = Some(bytes)
        })
    }
}
symver!(spice_server_set_uuid, "SPICE_SERVER_0.10.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_vm_start(s: *mut SpiceServer) {
    // SAFETY: `s` comes from spice_server_new.
    unsafe { with_server("spice_server_vm_start", s, (), |srv| srv.vm_start()) }
}
symver!(spice_server_vm_start, "SPICE_SERVER_0.11.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_vm_stop(s: *mut SpiceServer) {
    // SAFETY: `s` comes from spice_server_new.
    unsafe { with_server("spice_server_vm_stop", s, (), |srv| srv.vm_stop()) }
}
symver!(spice_server_vm_stop, "SPICE_SERVER_0.11.2");

#[no_mangle]
pub unsafe extern "C" fn spice_server_get_num_clients(s: *mut SpiceServer) -> c_int {
    // SAFETY: `s` comes from spice_server_new.
    unsafe {
        with_server("spice_server_get_num_clients", s, 0, |srv| {
            c_int::try_from(srv.num_clients()).unwrap_or(c_int::MAX)
        })
    }
}
symver!(spice_server_get_num_clients, "SPICE_SERVER_0.10.0");

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn is_open(fd: c_int) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn a_refused_client_socket_stays_the_callers() {
        let (ours, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let s = spice_server_new();
        // SAFETY: a server from spice_server_new and an open socket; not initialized, so
        // the client is refused.
        let r = unsafe { spice_server_add_client(s, ours.as_raw_fd(), 1) };
        assert_eq!(r, ERR);
        assert!(is_open(ours.as_raw_fd()), "closing it is the caller's job");
        // SAFETY: as above; a closed-on-error fd would make this a double close.
        unsafe { spice_server_destroy(s) };
    }
}
