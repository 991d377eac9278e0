//! The client side of the server as the reactor sees it (`Hub`): which channels exist,
//! who may link, and the QEMU-facing effects of a client — `channel_event`s and input —
//! which are always delivered on QEMU's main loop.

use super::config::Auth;
use super::mainloop::MainLoopHandle;
use crate::channel::cursor::CursorChannel;
use crate::channel::display::DisplayChannel;
use crate::channel::inputs::InputsChannel;
use crate::channel::main::{MainChannel, MainInfo, Mouse, NetStats};
use crate::channel::Channel;
use crate::ffi::core::EventInfo;
use crate::ffi::input::QemuInputs;
use crate::net::link::ServerCaps;
use crate::net::reactor::{Hub, Opened};
use crate::net::stream::Endpoints;
use crate::proto::caps::{common, Caps};
use crate::proto::link::{LinkError, LinkMess};
use crate::proto::msg::{channel as ch, display, inputs};
use crate::worker::pointer::Pointer;
use crate::worker::screen::Screen;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub const CHANNEL_EVENT_CONNECTED: i32 = 1;
pub const CHANNEL_EVENT_INITIALIZED: i32 = 2;
pub const CHANNEL_EVENT_DISCONNECTED: i32 = 3;

/// What one QXL instance shows: a display channel and a cursor channel with its id.
#[derive(Clone)]
pub struct DisplaySource {
    pub id: u8,
    /// The QXLInstance address (QEMU keeps it in place while registered).
    pub instance: usize,
    /// The device's worker (told when display clients come and go).
    pub worker: Arc<crate::worker::WorkerHandle>,
    pub screen: Screen,
    pub pointer: Pointer,
    pub max_monitors: u16,
    pub ram_hint: u32,
}

/// Addresses of QEMU's input instances; read and written only under QEMU's lock.
#[derive(Default, Clone, Copy)]
pub struct InputInstances {
    pub keyboard: Option<usize>,
    pub mouse: Option<usize>,
    pub tablet: Option<usize>,
    /// The size last given to the tablet's `set_logical_size`.
    pub tablet_size: Option<(u32, u32)>,
}

/// What the server knows about the connected client.
#[derive(Default)]
struct Clients {
    /// The linked client's session id (its main channel's connection id).
    current: Option<u32>,
    /// Linked connections: reactor id → (session id, channel type, channel id).
    linked: HashMap<u64, (u32, u8, u8)>,
}

pub struct Session {
    mainloop: OnceLock<MainLoopHandle>,
    infos: Arc<Mutex<HashMap<u64, EventInfo>>>,
    pub auth: Mutex<Auth>,
    pub identity: Mutex<(Option<String>, Option<[u8; 16]>)>,
    /// `(default security, per-channel overrides)`, `SPICE_CHANNEL_SECURITY_*` bits.
    pub security: Mutex<(i32, Vec<(u8, i32)>)>,
    displays: Mutex<Vec<DisplaySource>>,
    pub mouse: Arc<Mouse>,
    /// The last client's measured link (for rate control).
    pub net: Arc<Mutex<NetStats>>,
    pub inputs: Arc<Mutex<InputInstances>>,
    /// Streaming settings and the multimedia clock, shared with every screen.
    pub video: Arc<crate::video::VideoConfig>,
    pub(crate) leds: Mutex<(u8, u64)>,
    clients: Mutex<Clients>,
    client_count: AtomicUsize,
    next_viewer: AtomicU64,
    wake: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            mainloop: OnceLock::new(),
            infos: Arc::default(),
            auth: Mutex::new(Auth::Ticket(None)),
            identity: Mutex::default(),
            security: Mutex::new((3, Vec::new())),
            displays: Mutex::default(),
            mouse: Arc::default(),
            net: Arc::default(),
            inputs: Arc::default(),
            video: Arc::default(),
            leds: Mutex::new((0, 0)),
            clients: Mutex::default(),
            client_count: AtomicUsize::new(0),
            next_viewer: AtomicU64::new(1),
            wake: Mutex::new(None),
        }
    }
}

impl Session {
    pub fn attach_mainloop(&self, handle: MainLoopHandle) {
        let _ = self.mainloop.set(handle);
    }

    /// Queues work for QEMU's main loop (dropped before `spice_server_init`).
    pub(crate) fn on_main_loop(
        &self,
        job: impl FnOnce(&crate::ffi::core::CoreInterface) + Send + 'static,
    ) {
        match self.mainloop.get() {
            Some(m) => m.post(Box::new(job)),
            None => crate::log_debug!("main loop not attached; event dropped"),
        }
    }

    pub fn wake(&self) {
        let wake = self.wake.lock().clone();
        if let Some(w) = wake {
            w();
        }
    }

    /// A wake function for screens and pointers (they outlive nothing but the session).
    pub fn waker(self: &Arc<Self>) -> Arc<dyn Fn() + Send + Sync> {
        let weak = Arc::downgrade(self);
        Arc::new(move || {
            if let Some(s) = weak.upgrade() {
                s.wake();
            }
        })
    }

    pub fn add_display(&self, source: DisplaySource) {
        self.displays.lock().push(source);
    }

    /// The monitor count a display device supports (`set_device_info`), for clients that
    /// connect from now on.
    pub fn set_max_monitors(&self, qxl_id: i32, max: u32) {
        for d in self.displays.lock().iter_mut() {
            if i32::from(d.id) == qxl_id {
                d.max_monitors = u16::try_from(max.clamp(1, 16)).unwrap_or(16);
            }
        }
    }

    pub fn remove_display(&self, id: u8) {
        self.displays.lock().retain(|d| d.id != id);
    }

    /// The client's monitor layout goes to every display device, on QEMU's main loop.
    pub fn client_monitors_config(self: &Arc<Self>, config: Vec<u8>) {
        if !crate::ffi::qxl_device::monitors_config_is_complete(&config) {
            crate::log_warn!("client sent an incomplete monitors config");
            return;
        }
        let weak = Arc::downgrade(self);
        self.on_main_loop(move |_core| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            let displays: Vec<(u8, usize)> = session
                .displays
                .lock()
                .iter()
                .map(|d| (d.id, d.instance))
                .collect();
            crate::ffi::qxl_device::deliver_client_monitors_config(&displays, &config);
        });
    }

    pub fn client_count(&self) -> usize {
        self.client_count.load(Ordering::Relaxed)
    }

    /// `spice_server_kbd_leds`.
    pub fn set_leds(&self, leds: u8) {
        {
            let mut l = self.leds.lock();
            l.0 = leds;
            l.1 += 1;
        }
        self.wake();
    }

    pub fn set_tablet(&self, tablet: Option<usize>) {
        {
            let mut i = self.inputs.lock();
            i.tablet = tablet;
            i.tablet_size = None;
        }
        self.mouse
            .set_tablet(tablet.is_some() && self.displays.lock().len() == 1);
        self.wake();
    }

    pub(crate) fn primary_size(&self) -> Option<(u32, u32)> {
        self.displays.lock().first().and_then(|d| d.screen.size())
    }

    fn channels(&self) -> Vec<(u8, u8)> {
        let mut list: Vec<(u8, u8)> = Vec::new();
        for d in self.displays.lock().iter() {
            list.push((ch::DISPLAY, d.id));
            list.push((ch::CURSOR, d.id));
        }
        list.push((ch::INPUTS, 0));
        list
    }

    fn display(&self, id: u8) -> Option<DisplaySource> {
        self.displays.lock().iter().find(|d| d.id == id).cloned()
    }

    fn authenticate(&self, password: &[u8]) -> bool {
        self.auth.lock().admits(password, Instant::now())
    }

    fn new_session_id() -> u32 {
        let mut bytes = [0u8; 4];
        loop {
            if openssl::rand::rand_bytes(&mut bytes).is_err() {
                bytes = (Instant::now().elapsed().as_nanos() as u32 | 1).to_le_bytes();
            }
            let id = u32::from_le_bytes(bytes);
            if id != 0 {
                return id;
            }
        }
    }

    fn main_channel(self: &Arc<Self>, request: &LinkMess) -> Opened {
        let session_id = if request.connection_id != 0 {
            request.connection_id
        } else {
            Self::new_session_id()
        };
        {
            let mut c = self.clients.lock();
            c.current = Some(session_id);
        }
        let (name, uuid) = self.identity.lock().clone();
        let displays = self.displays.lock().clone();
        let this = Arc::downgrade(self);
        let info = MainInfo {
            session_id,
            display_channels: displays.len() as u32,
            ram_hint: displays.first().map_or(0, |d| d.ram_hint),
            name,
            uuid,
            channels: Arc::new(move || this.upgrade().map(|s| s.channels()).unwrap_or_default()),
            monitors_config: {
                let weak = Arc::downgrade(self);
                Arc::new(move |config: Vec<u8>| {
                    if let Some(session) = weak.upgrade() {
                        session.client_monitors_config(config);
                    }
                })
            },
        };
        let channel = MainChannel::new(
            info,
            Caps(request.channel_caps.clone()),
            self.mouse.clone(),
            self.net.clone(),
            self.video.clone(),
        );
        Opened {
            channel: Box::new(channel),
            session_id,
        }
    }
}

/// Display caps as the byte bitmap QXL devices take (bit i in byte i/8).
fn caps_bytes(caps: &Caps) -> [u8; crate::worker::CLIENT_CAPS_BYTES] {
    let mut out = [0u8; crate::worker::CLIENT_CAPS_BYTES];
    for (i, word) in caps.0.iter().enumerate() {
        for (j, b) in word.to_le_bytes().into_iter().enumerate() {
            if let Some(slot) = out.get_mut(4 * i + j) {
                *slot = b;
            }
        }
    }
    out
}

/// Our channel caps for a link reply.
fn channel_caps(channel_type: u8) -> Vec<u32> {
    let bits: &[u32] = match channel_type {
        ch::DISPLAY => &[
            display::CAP_MONITORS_CONFIG,
            display::CAP_PREF_COMPRESSION,
            display::CAP_PREF_VIDEO_CODEC_TYPE,
        ],
        ch::INPUTS => &[inputs::CAP_KEY_SCANCODE],
        _ => &[],
    };
    Caps::from_bits(bits).0
}

impl Hub for Arc<Session> {
    fn connected(&self, conn: u64, endpoints: Endpoints) {
        let infos = self.infos.clone();
        self.on_main_loop(move |core| {
            let mut info = EventInfo::new(endpoints);
            core.channel_event(CHANNEL_EVENT_CONNECTED, info.raw_mut());
            infos.lock().insert(conn, info);
        });
    }

    fn disconnected(&self, conn: u64) {
        {
            let mut c = self.clients.lock();
            if let Some((session, kind, id)) = c.linked.remove(&conn) {
                if kind == ch::MAIN && c.current == Some(session) {
                    c.current = None;
                    self.client_count.store(0, Ordering::Relaxed);
                }
                let still_shown = c
                    .linked
                    .values()
                    .any(|&(_, k, i)| k == ch::DISPLAY && i == id);
                if kind == ch::DISPLAY && !still_shown {
                    if let Some(source) = self.display(id) {
                        source.worker.post(crate::worker::Msg::ClientPresence {
                            present: false,
                            caps: [0; crate::worker::CLIENT_CAPS_BYTES],
                        });
                    }
                }
            }
        }
        let infos = self.infos.clone();
        self.on_main_loop(move |core| {
            if let Some(mut info) = infos.lock().remove(&conn) {
                core.channel_event(CHANNEL_EVENT_DISCONNECTED, info.raw_mut());
            }
        });
    }

    fn check_link(&self, request: &LinkMess) -> Result<ServerCaps, LinkError> {
        let available = match request.channel_type {
            ch::MAIN => request.channel_id == 0,
            ch::INPUTS => request.channel_id == 0,
            ch::DISPLAY | ch::CURSOR => self.display(request.channel_id).is_some(),
            _ => false,
        };
        if !available {
            crate::log_info!(
                "channel {}:{} is not available",
                request.channel_type,
                request.channel_id
            );
            return Err(LinkError::ChannelNotAvailable);
        }
        let (default, overrides) = self.security.lock().clone();
        let security = overrides
            .iter()
            .find(|(t, _)| *t == request.channel_type)
            .map_or(default, |(_, s)| *s);
        if security & crate::server::config::SECURITY_NONE == 0 {
            return Err(LinkError::NeedSecured);
        }
        let common = Caps::from_bits(&[
            common::AUTH_SELECTION,
            common::AUTH_SPICE,
            common::MINI_HEADER,
        ])
        .0;
        Ok(ServerCaps {
            common,
            channel: channel_caps(request.channel_type),
        })
    }

    fn open(&self, conn: u64, request: &LinkMess, password: &[u8]) -> Result<Opened, LinkError> {
        if !self.authenticate(password) {
            return Err(LinkError::PermissionDenied);
        }
        let opened = if request.channel_type == ch::MAIN {
            self.main_channel(request)
        } else {
            {
                let c = self.clients.lock();
                if c.current != Some(request.connection_id) {
                    return Err(LinkError::BadConnectionId);
                }
                // One connection per channel per client, as in spice-server.
                let wanted = (
                    request.connection_id,
                    request.channel_type,
                    request.channel_id,
                );
                if c.linked.values().any(|linked| *linked == wanted) {
                    crate::log_warn!(
                        "refusing a duplicate channel {}:{} in session {}",
                        request.channel_type,
                        request.channel_id,
                        request.connection_id
                    );
                    return Err(LinkError::ChannelNotAvailable);
                }
            }
            let caps = Caps(request.channel_caps.clone());
            let channel: Box<dyn Channel> = match request.channel_type {
                ch::DISPLAY | ch::CURSOR => {
                    let source = self
                        .display(request.channel_id)
                        .ok_or(LinkError::ChannelNotAvailable)?;
                    if request.channel_type == ch::DISPLAY {
                        source.worker.post(crate::worker::Msg::ClientPresence {
                            present: true,
                            caps: caps_bytes(&caps),
                        });
                        let viewer = self.next_viewer.fetch_add(1, Ordering::Relaxed);
                        Box::new(DisplayChannel::new(
                            source.screen,
                            viewer,
                            caps,
                            source.max_monitors,
                        ))
                    } else {
                        Box::new(CursorChannel::new(source.pointer))
                    }
                }
                ch::INPUTS => {
                    let sink = Arc::new(QemuInputs::new(Arc::downgrade(self)));
                    Box::new(InputsChannel::new(sink, self.mouse.current.clone()))
                }
                _ => return Err(LinkError::ChannelNotAvailable),
            };
            Opened {
                channel,
                session_id: request.connection_id,
            }
        };
        {
            let mut c = self.clients.lock();
            c.linked.insert(
                conn,
                (opened.session_id, request.channel_type, request.channel_id),
            );
            if request.channel_type == ch::MAIN {
                self.client_count.store(1, Ordering::Relaxed);
            }
        }
        let infos = self.infos.clone();
        let (session_id, kind, id) = (opened.session_id, request.channel_type, request.channel_id);
        self.on_main_loop(move |core| {
            if let Some(info) = infos.lock().get_mut(&conn) {
                info.set_channel(session_id, kind, id);
                core.channel_event(CHANNEL_EVENT_INITIALIZED, info.raw_mut());
            }
        });
        Ok(opened)
    }

    fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        *self.wake.lock() = Some(wake);
    }
}
