//! `spice-core.h`: the interface base types, the core interface (timers, fd watches,
//! channel events) QEMU passes to `spice_server_init`, and `SpiceChannelEventInfo`.

use std::ffi::{c_char, c_int, c_void};
use std::marker::{PhantomData, PhantomPinned};

/// Header of every interface table (`SpiceCoreInterface`, `QXLInterface`, …).
///
/// The library dispatches on `type` and accepts an interface when `major_version`
/// equals the one it was built for and `minor_version` is not newer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceBaseInterface {
    /// Interface kind: one of the `SPICE_INTERFACE_*` strings ("core", "qxl", …).
    pub r#type: *const c_char,
    /// Free-form description for logs ("qemu core services", "qxl gpu", …).
    pub description: *const c_char,
    /// Incompatible revisions of the interface table.
    pub major_version: u32,
    /// Compatible additions to the interface table (new trailing members).
    pub minor_version: u32,
}

/// First member of every interface instance: which interface table it implements.
///
/// Instances live inside the caller's own structures (QEMU uses `container_of`), so
/// the instance address is its identity.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceBaseInstance {
    /// The instance's interface table (its `type` string selects the concrete type).
    pub sif: *const SpiceBaseInterface,
}

/// `SpiceBaseInterface.type` of the core interface.
pub const SPICE_INTERFACE_CORE: &str = "core";
/// Major version of the core interface this library implements.
pub const SPICE_INTERFACE_CORE_MAJOR: u32 = 1;
/// Minor version of the core interface this library implements.
pub const SPICE_INTERFACE_CORE_MINOR: u32 = 3;

/// Watch event bit: the fd is readable.
pub const SPICE_WATCH_EVENT_READ: c_int = 1 << 0;
/// Watch event bit: the fd is writable.
pub const SPICE_WATCH_EVENT_WRITE: c_int = 1 << 1;

/// `channel_event` event: a client opened a channel connection (link started).
pub const SPICE_CHANNEL_EVENT_CONNECTED: c_int = 1;
/// `channel_event` event: the channel finished its link handshake.
pub const SPICE_CHANNEL_EVENT_INITIALIZED: c_int = 2;
/// `channel_event` event: the channel connection went away.
pub const SPICE_CHANNEL_EVENT_DISCONNECTED: c_int = 3;

/// `SpiceChannelEventInfo.flags`: the connection uses TLS.
pub const SPICE_CHANNEL_EVENT_FLAG_TLS: c_int = 1 << 0;
/// `SpiceChannelEventInfo.flags`: the `*_ext` address members are valid.
pub const SPICE_CHANNEL_EVENT_FLAG_ADDR_EXT: c_int = 1 << 1;

/// An fd watch, created and owned by the core interface's implementation (QEMU).
pub struct SpiceWatch {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Called by the core implementation when a watched fd is ready; `event` is a mask of
/// `SPICE_WATCH_EVENT_*`.
pub type SpiceWatchFunc =
    Option<unsafe extern "C" fn(fd: c_int, event: c_int, opaque: *mut c_void)>;

/// A one-shot timer, created and owned by the core interface's implementation (QEMU).
pub struct SpiceTimer {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Called by the core implementation when a timer expires.
pub type SpiceTimerFunc = Option<unsafe extern "C" fn(opaque: *mut c_void)>;

/// Describes one channel connection in `SpiceCoreInterface.channel_event`.
///
/// QEMU keeps the pointer it receives with `SPICE_CHANNEL_EVENT_INITIALIZED` until
/// `SPICE_CHANNEL_EVENT_DISCONNECTED`, so each connection needs its own stable struct.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SpiceChannelEventInfo {
    /// Identifies the client session the channel belongs to.
    pub connection_id: c_int,
    /// Channel type (`SPICE_CHANNEL_MAIN`, `SPICE_CHANNEL_DISPLAY`, … from spice-protocol).
    pub r#type: c_int,
    /// Channel id within its type (e.g. the display number).
    pub id: c_int,
    /// `SPICE_CHANNEL_EVENT_FLAG_*` bits.
    pub flags: c_int,
    /// Deprecated local address (cannot hold IPv6); kept for backward compatibility.
    pub laddr: libc::sockaddr,
    /// Deprecated peer address (cannot hold IPv6); kept for backward compatibility.
    pub paddr: libc::sockaddr,
    /// Deprecated length of `laddr`.
    pub llen: libc::socklen_t,
    /// Deprecated length of `paddr`.
    pub plen: libc::socklen_t,
    /// Local address; valid with `SPICE_CHANNEL_EVENT_FLAG_ADDR_EXT`.
    pub laddr_ext: libc::sockaddr_storage,
    /// Peer address; valid with `SPICE_CHANNEL_EVENT_FLAG_ADDR_EXT`.
    pub paddr_ext: libc::sockaddr_storage,
    /// Length of `laddr_ext`.
    pub llen_ext: libc::socklen_t,
    /// Length of `paddr_ext`.
    pub plen_ext: libc::socklen_t,
}

/// The event-loop services QEMU provides (`SPICE_INTERFACE_CORE`), passed to
/// `spice_server_init`. QEMU implements them on its main loop: they may only be called
/// while QEMU holds its global lock.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceCoreInterface {
    /// "core", 1.3.
    pub base: SpiceBaseInterface,
    /// Creates a disarmed one-shot timer calling `func(opaque)`.
    pub timer_add:
        Option<unsafe extern "C" fn(func: SpiceTimerFunc, opaque: *mut c_void) -> *mut SpiceTimer>,
    /// (Re)arms `timer` to fire once, `ms` milliseconds from now.
    pub timer_start: Option<unsafe extern "C" fn(timer: *mut SpiceTimer, ms: u32)>,
    /// Disarms `timer`.
    pub timer_cancel: Option<unsafe extern "C" fn(timer: *mut SpiceTimer)>,
    /// Disarms and frees `timer`.
    pub timer_remove: Option<unsafe extern "C" fn(timer: *mut SpiceTimer)>,
    /// Watches `fd` for the `SPICE_WATCH_EVENT_*` bits in `event_mask`, calling
    /// `func(fd, event, opaque)` while the condition holds (level-triggered).
    pub watch_add: Option<
        unsafe extern "C" fn(
            fd: c_int,
            event_mask: c_int,
            func: SpiceWatchFunc,
            opaque: *mut c_void,
        ) -> *mut SpiceWatch,
    >,
    /// Changes the events a watch waits for (0 = none).
    pub watch_update_mask: Option<unsafe extern "C" fn(watch: *mut SpiceWatch, event_mask: c_int)>,
    /// Removes and frees a watch (the fd stays open).
    pub watch_remove: Option<unsafe extern "C" fn(watch: *mut SpiceWatch)>,
    /// Reports a channel connection event (`SPICE_CHANNEL_EVENT_*`).
    pub channel_event: Option<unsafe extern "C" fn(event: c_int, info: *mut SpiceChannelEventInfo)>,
}
