//! Safe handle on QEMU's `SpiceCoreInterface` (timers, fd watches, channel events).
//!
//! QEMU's implementation is its main loop: every function here may only be called while
//! QEMU holds its global lock, i.e. inside a QEMU→library call or inside a watch/timer
//! callback QEMU dispatched. Code on our own threads reaches it through
//! `server::mainloop::MainLoop`, never directly.

use super::abi;
use crate::server::host::{ChannelEvent, Core, Watch};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::os::fd::RawFd;

const CHANNEL_EVENT_CONNECTED: i32 = 1;
const CHANNEL_EVENT_INITIALIZED: i32 = 2;
const CHANNEL_EVENT_DISCONNECTED: i32 = 3;

/// Watch event bits (`SPICE_WATCH_EVENT_*`).
pub(crate) const WATCH_READ: i32 = 1;

/// A copy of the function table QEMU passed to `spice_server_init`, and the event info of
/// every connection QEMU has heard of.
pub(crate) struct CoreInterface {
    table: abi::SpiceCoreInterface,
    /// QEMU keeps the pointer from INITIALIZED until DISCONNECTED: one stable box each.
    infos: Mutex<HashMap<u64, EventInfo>>,
}

// SAFETY: the table holds plain function pointers into QEMU; calling them is governed by
// the BQL contract documented on this module, not by which thread holds the copy.
unsafe impl Send for CoreInterface {}
// SAFETY: as above; the table is never mutated after construction.
unsafe impl Sync for CoreInterface {}

/// A registered fd watch and the callback QEMU holds a pointer to.
struct QemuWatch {
    watch: *mut abi::SpiceWatch,
    remove: unsafe extern "C" fn(*mut abi::SpiceWatch),
    ready: *mut Ready,
}

type Ready = Box<dyn Fn() + Send + Sync>;

// SAFETY: the pointers are opaque tokens handed back to QEMU (and freed) under the BQL.
unsafe impl Send for QemuWatch {}

impl Watch for QemuWatch {
    fn remove(self: Box<Self>) {
        // SAFETY: `watch` came from QEMU's watch_add and is removed once; after that QEMU
        // no longer calls `watch_ready` with `ready`, which we can free.
        unsafe {
            (self.remove)(self.watch);
            drop(Box::from_raw(self.ready));
        }
    }
}

unsafe extern "C" fn watch_ready(_fd: i32, _event: i32, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Ready` box `watch_read` leaked; it is freed only after
    // QEMU removed this watch.
    let ready = unsafe { &*(opaque as *const Ready) };
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(ready)).is_err() {
        crate::log_error!("panic in a main loop job; the job was dropped");
    }
}

impl CoreInterface {
    /// Copies the table, checking what spice-server checks: interface major 1 and the
    /// callbacks this library needs.
    ///
    /// # Safety
    /// `core` must be null or point to a valid `SpiceCoreInterface`.
    pub(crate) unsafe fn from_raw(
        core: *const abi::SpiceCoreInterface,
    ) -> Result<CoreInterface, String> {
        // SAFETY: the caller guarantees validity when non-null.
        let Some(table) = (unsafe { core.as_ref() }) else {
            return Err("core interface is NULL".into());
        };
        if table.base.major_version != 1 {
            return Err(format!(
                "bad core interface version {}",
                table.base.major_version
            ));
        }
        if table.watch_add.is_none() || table.watch_remove.is_none() {
            return Err("core interface lacks fd watches".into());
        }
        Ok(CoreInterface {
            table: *table,
            infos: Mutex::default(),
        })
    }

    /// Reports a channel event to QEMU. Must run under the BQL.
    fn report(&self, event: i32, info: &mut EventInfo) {
        if let Some(report) = self.table.channel_event {
            // SAFETY: QEMU's channel_event; `info` is a live, exclusively borrowed struct
            // that stays in place until after DISCONNECTED (it is boxed in `infos`).
            unsafe { report(event, info.raw_mut()) }
        }
    }
}

impl Core for CoreInterface {
    fn watch_read(&self, fd: RawFd, ready: Ready) -> Option<Box<dyn Watch>> {
        let (add, remove) = (self.table.watch_add?, self.table.watch_remove?);
        let ready = Box::into_raw(Box::new(ready));
        // SAFETY: QEMU's watch_add, under the BQL per this module's contract; `ready`
        // stays valid until `QemuWatch::remove`.
        let watch = unsafe { add(fd, WATCH_READ, Some(watch_ready), ready.cast()) };
        if watch.is_null() {
            // SAFETY: QEMU did not take the pointer; reclaim it.
            drop(unsafe { Box::from_raw(ready) });
            return None;
        }
        Some(Box::new(QemuWatch {
            watch,
            remove,
            ready,
        }))
    }

    fn channel_event(&self, conn: u64, event: ChannelEvent) {
        match event {
            ChannelEvent::Connected(endpoints) => {
                let mut info = EventInfo::new(endpoints);
                self.report(CHANNEL_EVENT_CONNECTED, &mut info);
                self.infos.lock().insert(conn, info);
            }
            ChannelEvent::Initialized {
                session_id,
                channel_type,
                channel_id,
            } => {
                if let Some(info) = self.infos.lock().get_mut(&conn) {
                    info.set_channel(session_id, channel_type, channel_id);
                    self.report(CHANNEL_EVENT_INITIALIZED, info);
                }
            }
            ChannelEvent::Disconnected => {
                if let Some(mut info) = self.infos.lock().remove(&conn) {
                    self.report(CHANNEL_EVENT_DISCONNECTED, &mut info);
                }
            }
        }
    }
}

/// The `SpiceChannelEventInfo` of one connection, at a stable heap address (QEMU keeps
/// the pointer from INITIALIZED until DISCONNECTED).
struct EventInfo(Box<abi::SpiceChannelEventInfo>);

// SAFETY: plain data; only handed to QEMU on its main loop.
unsafe impl Send for EventInfo {}

/// Writes `addr` into a `sockaddr_storage`; returns the length used.
fn store_sockaddr(
    addr: &std::net::SocketAddr,
    out: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

impl EventInfo {
    /// Filled like spice-server fills it: the extended addresses, plus the deprecated
    /// fixed-size ones where they fit (IPv4).
    pub(crate) fn new(endpoints: crate::net::stream::Endpoints) -> EventInfo {
        // SAFETY: the struct is plain integers and byte arrays; all-zero is valid.
        let mut info: Box<abi::SpiceChannelEventInfo> = Box::new(unsafe { std::mem::zeroed() });
        info.flags = 2; // SPICE_CHANNEL_EVENT_FLAG_ADDR_EXT
        if endpoints.tls {
            info.flags |= 1; // SPICE_CHANNEL_EVENT_FLAG_TLS
        }
        if let Some(local) = endpoints.local {
            info.llen_ext = store_sockaddr(&local, &mut info.laddr_ext);
        }
        if let Some(peer) = endpoints.peer {
            info.plen_ext = store_sockaddr(&peer, &mut info.paddr_ext);
        }
        EventInfo(info)
    }

    pub(crate) fn set_channel(&mut self, connection_id: u32, channel_type: u8, channel_id: u8) {
        self.0.connection_id = connection_id as i32;
        self.0.r#type = i32::from(channel_type);
        self.0.id = i32::from(channel_id);
    }

    pub(crate) fn raw_mut(&mut self) -> &mut abi::SpiceChannelEventInfo {
        &mut self.0
    }
}

/// Takes ownership of a connected socket QEMU handed us.
///
/// # Safety
/// `fd` must be an open socket the caller gives up.
pub(crate) unsafe fn adopt_socket(fd: i32) -> Option<crate::net::stream::Stream> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return None;
    }
    // SAFETY: ownership transfer per the contract.
    let socket = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    // A UNIX socket also comes through here (QEMU's add_client on a unix chardev).
    if socket.peer_addr().is_err() && socket.local_addr().is_err() {
        use std::os::fd::IntoRawFd;
        let fd = socket.into_raw_fd();
        // SAFETY: same fd, re-wrapped as the type it really is.
        let unix = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        unix.set_nonblocking(true).ok()?;
        return Some(crate::net::stream::Stream::Unix(
            mio::net::UnixStream::from_std(unix),
        ));
    }
    socket.set_nonblocking(true).ok()?;
    Some(crate::net::stream::Stream::Tcp(
        mio::net::TcpStream::from_std(socket),
    ))
}

/// Takes ownership of any fd (closed when dropped).
///
/// # Safety
/// `fd` must be an open fd the caller gives up, or negative.
pub(crate) unsafe fn adopt_fd(fd: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: ownership transfer per the contract.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// A NUL-terminated copy in malloc'ed memory, for strings C code frees.
pub(crate) fn malloc_string(text: &str) -> *const std::ffi::c_char {
    let bytes = text.as_bytes();
    // SAFETY: we allocate len+1 bytes, copy, and terminate; NULL is passed on.
    unsafe {
        let p = libc::malloc(bytes.len() + 1) as *mut u8;
        if p.is_null() {
            return std::ptr::null();
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
        p as *const std::ffi::c_char
    }
}

/// Frees a string from `malloc_string`.
///
/// # Safety
/// `p` must be NULL or come from `malloc_string`, freed once.
pub(crate) unsafe fn free_string(p: *const std::ffi::c_char) {
    // SAFETY: per the contract it was malloc'ed.
    unsafe { libc::free(p as *mut libc::c_void) }
}

/// Takes ownership of a listening socket (`spice_server_set_listen_socket_fd`).
///
/// # Safety
/// `fd` must be an open listening socket the caller gives up.
pub(crate) unsafe fn adopt_listener(fd: i32) -> Option<crate::net::listener::Listener> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return None;
    }
    // SAFETY: ownership transfer per the contract.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    if listener.local_addr().is_err() {
        use std::os::fd::IntoRawFd;
        // SAFETY: the same fd, re-wrapped as the UNIX socket it is.
        let unix = unsafe { std::os::unix::net::UnixListener::from_raw_fd(listener.into_raw_fd()) };
        unix.set_nonblocking(true).ok()?;
        return Some(crate::net::listener::Listener::Unix(unix));
    }
    listener.set_nonblocking(true).ok()?;
    Some(crate::net::listener::Listener::Tcp(listener))
}
