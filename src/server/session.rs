//! The client side of the server as the reactor sees it (`Hub`): which channels exist,
//! who may link, and the QEMU-facing effects of a client — `channel_event`s and input —
//! which are always delivered on QEMU's main loop. Each concern is its own piece
//! (`ChannelRegistry`, `LinkPolicy`, `Clients`, `Displays`, `Inputs`); the session
//! composes them.

use super::audio_channels;
use super::channels::{ChannelKind, ChannelRegistry, OpenRequest, Opening, Provider};
use super::char_device::{CharDevice, DeviceKind, GuestPort};
use super::clients::{Clients, LinkedChannel};
use super::device_channels;
use super::displays::{DisplaySource, Displays};
use super::host::{self, ChannelEvent, KeyboardDevice, MouseDevice, TabletDevice};
use super::inputs::Inputs;
use super::interfaces::InstanceId;
use super::link_policy::LinkPolicy;
use super::mainloop::{MainLoopHandle, MainLoopSlot};
use crate::agent::AgentHub;
use crate::audio::playback::PlaybackStream;
use crate::audio::record::RecordStream;
use crate::channel::inputs::InputsChannel;
use crate::channel::main::{MainChannel, MainInfo, Mouse, NetStats};
use crate::net::link::ServerCaps;
use crate::net::reactor::{Hub, Opened};
use crate::net::stream::Endpoints;
use crate::proto::caps::Caps;
use crate::proto::link::{LinkError, LinkMess};
use crate::proto::msg::{channel as ch, display, inputs};
use parking_lot::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// The server name and UUID the main channel announces.
pub(crate) type Identity = (Option<String>, Option<[u8; 16]>);

pub(crate) struct Session {
    mainloop: MainLoopSlot,
    /// Who may link what; replaced whenever the configuration changes.
    pub policy: Mutex<LinkPolicy>,
    pub identity: Mutex<Identity>,
    channels: Mutex<ChannelRegistry>,
    clients: Mutex<Clients>,
    displays: Displays,
    inputs: Inputs,
    pub mouse: Arc<Mouse>,
    /// The last client's measured link (for rate control).
    pub net: Arc<Mutex<NetStats>>,
    /// Streaming settings and the multimedia clock, shared with every screen.
    pub video: Arc<crate::video::VideoConfig>,
    /// Wakes the reactor to produce output (set when it starts).
    wake: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// The guest char devices QEMU added, and the channel each one is served on.
    devices: Mutex<Vec<ServedDevice>>,
    /// The guest agent, served on every client's main channel.
    agent: Arc<AgentHub>,
    /// QEMU's audio instances, each served on its sound channel.
    audio: Mutex<Vec<(InstanceId, AudioStream)>>,
    /// `spice_server_set_playback_compression`: Opus for clients that take it.
    pub playback_compression: Arc<AtomicBool>,
    /// `spice_server_set_image_compression` and the clients' GLZ dictionaries.
    pub images: crate::image::choose::ImageSettings,
}

/// An audio instance QEMU added.
#[derive(Clone)]
pub(crate) enum AudioStream {
    Playback(Arc<PlaybackStream>),
    Record(Arc<RecordStream>),
}

impl AudioStream {
    fn channel_type(&self) -> u8 {
        match self {
            AudioStream::Playback(_) => ch::PLAYBACK,
            AudioStream::Record(_) => ch::RECORD,
        }
    }
}

struct ServedDevice {
    instance: InstanceId,
    device: Arc<CharDevice>,
    /// (type, id) of its channel; None for the agent (served on the main channel).
    channel: Option<(u8, u8)>,
}

impl Session {
    /// A session with the channels the server itself provides: main and inputs.
    pub(crate) fn new() -> Arc<Session> {
        let session = Arc::new_cyclic(|me: &Weak<Session>| Session {
            mainloop: MainLoopSlot::default(),
            policy: Mutex::default(),
            identity: Mutex::default(),
            channels: Mutex::default(),
            clients: Mutex::default(),
            displays: Displays::default(),
            inputs: Inputs::default(),
            mouse: Arc::default(),
            net: Arc::default(),
            video: Arc::default(),
            wake: Mutex::new(None),
            devices: Mutex::default(),
            audio: Mutex::default(),
            playback_compression: Arc::new(AtomicBool::new(true)),
            images: Default::default(),
            agent: {
                let me = me.clone();
                AgentHub::new(Arc::new(move || {
                    if let Some(s) = me.upgrade() {
                        s.wake();
                    }
                }))
            },
        });
        let weak = Arc::downgrade(&session);
        let (w, m) = (weak.clone(), session.mouse.clone());
        session.agent.set_monitors_handler(Arc::new(move |config| {
            if let Some(s) = w.upgrade() {
                s.client_monitors_config(config);
            }
        }));
        session
            .agent
            .set_mouse_listener(Arc::new(move |present| m.set_agent(present)));
        session.register(ChannelKind::new(
            ch::MAIN,
            0,
            &[],
            Provider::Server,
            opener(&weak, Session::open_main),
        ));
        session.register(ChannelKind::new(
            ch::INPUTS,
            0,
            &[inputs::CAP_KEY_SCANCODE],
            Provider::Server,
            opener(&weak, Session::open_inputs),
        ));
        session
    }

    fn register(&self, kind: ChannelKind) {
        self.channels.lock().register(kind);
    }

    pub(crate) fn attach_mainloop(&self, handle: MainLoopHandle) {
        self.mainloop.attach(handle);
    }

    /// Where jobs for QEMU's main loop go.
    pub(crate) fn mainloop(&self) -> MainLoopSlot {
        self.mainloop.clone()
    }

    /// Serves a char device QEMU added: its channel becomes linkable (the agent joins
    /// the main channel instead).
    pub(crate) fn add_char_device(self: &Arc<Self>, instance: InstanceId, device: Arc<CharDevice>) {
        let mut devices = self.devices.lock();
        let channel = match &device.kind {
            DeviceKind::Agent => None,
            kind => {
                let channel_type = device_channel_type(kind);
                let taken = |id: u8| {
                    devices
                        .iter()
                        .any(|d| d.channel == Some((channel_type, id)))
                };
                let Some(id) = (0..=u8::MAX).find(|id| !taken(*id)) else {
                    crate::log_warn!("too many {kind:?} devices: this one is not served");
                    return;
                };
                let port: Arc<dyn GuestPort> = device.clone();
                let Some(channel) = device_channels::channel_kind(kind, id, port, self.waker())
                else {
                    crate::log_warn!("{kind:?} devices are not served yet: this one is ignored");
                    return;
                };
                self.register(channel);
                Some((channel_type, id))
            }
        };
        crate::log_info!("char device {:?} added (channel {channel:?})", device.kind);
        if device.kind == DeviceKind::Agent {
            // Its removal reaches the hub through the sink's `detached`.
            self.agent.attach_device(device.clone());
        }
        devices.push(ServedDevice {
            instance,
            device,
            channel,
        });
    }

    /// QEMU removed a char device: its channel goes and it is never called again.
    pub(crate) fn remove_char_device(&self, instance: InstanceId) {
        let served = {
            let mut devices = self.devices.lock();
            let Some(pos) = devices.iter().position(|d| d.instance == instance) else {
                return;
            };
            devices.remove(pos)
        };
        if let Some((channel_type, id)) = served.channel {
            self.channels.lock().unregister(channel_type, id);
        }
        served.device.remove();
    }

    /// Serves an audio instance on its sound channel (id 0; spice-server has one of each).
    pub(crate) fn add_audio(&self, instance: InstanceId, stream: AudioStream) {
        let kind = match &stream {
            AudioStream::Playback(p) => audio_channels::playback_kind(
                p.clone(),
                self.playback_compression.clone(),
                self.video.clone(),
            ),
            AudioStream::Record(r) => audio_channels::record_kind(r.clone()),
        };
        if !self.channels.lock().register(kind) {
            crate::log_warn!("only one audio instance of each kind is served: this one is not");
        }
        self.audio.lock().push((instance, stream));
    }

    /// QEMU set an audio instance's rate: Opus is offered when it allows it.
    pub(crate) fn set_audio_rate(&self, instance: InstanceId, rate: u32) {
        let audio = self.audio.lock();
        let Some((_, stream)) = audio.iter().find(|(i, _)| *i == instance) else {
            return;
        };
        let caps = match stream {
            AudioStream::Playback(p) => {
                p.set_rate(rate);
                audio_channels::playback_caps(rate)
            }
            AudioStream::Record(r) => {
                r.set_rate(rate);
                audio_channels::record_caps(rate)
            }
        };
        self.channels
            .lock()
            .set_caps(stream.channel_type(), 0, &caps);
    }

    /// QEMU removed an audio instance: its channel goes and its client is closed.
    pub(crate) fn remove_audio(&self, instance: InstanceId) {
        let removed = {
            let mut audio = self.audio.lock();
            let Some(pos) = audio.iter().position(|(i, _)| *i == instance) else {
                return;
            };
            audio.remove(pos).1
        };
        let channel_type = removed.channel_type();
        let still_served = self
            .audio
            .lock()
            .iter()
            .any(|(_, s)| s.channel_type() == channel_type);
        if !still_served {
            self.channels.lock().unregister(channel_type, 0);
        }
        match removed {
            AudioStream::Playback(p) => p.detach(),
            AudioStream::Record(r) => r.detach(),
        }
    }

    /// The guest agent: the vdagent char device attaches to it.
    pub(crate) fn agent(&self) -> &Arc<AgentHub> {
        &self.agent
    }

    pub(crate) fn wake(&self) {
        let wake = self.wake.lock().clone();
        if let Some(w) = wake {
            w();
        }
    }

    /// A wake function for screens and pointers (they outlive nothing but the session).
    pub(crate) fn waker(self: &Arc<Self>) -> Arc<dyn Fn() + Send + Sync> {
        let weak = Arc::downgrade(self);
        Arc::new(move || {
            if let Some(s) = weak.upgrade() {
                s.wake();
            }
        })
    }

    /// Registers a QXL instance's display and cursor channels.
    pub(crate) fn add_display(self: &Arc<Self>, source: DisplaySource) {
        let id = source.id;
        self.displays.add(source);
        let weak = Arc::downgrade(self);
        self.register(ChannelKind::new(
            ch::DISPLAY,
            id,
            &[
                display::CAP_MONITORS_CONFIG,
                display::CAP_PREF_COMPRESSION,
                display::CAP_PREF_VIDEO_CODEC_TYPE,
            ],
            Provider::Device,
            opener(&weak, |s, r| s.displays.open_display(r, &s.images)),
        ));
        self.register(ChannelKind::new(
            ch::CURSOR,
            id,
            &[],
            Provider::Device,
            opener(&weak, |s, r| s.displays.open_cursor(r)),
        ));
    }

    /// The monitor count a display device supports, for clients that connect from now on.
    pub(crate) fn set_max_monitors(&self, qxl_id: i32, max: u32) {
        self.displays.set_max_monitors(qxl_id, max);
    }

    pub(crate) fn remove_display(&self, id: u8) {
        self.displays.remove(id);
        let mut channels = self.channels.lock();
        channels.unregister(ch::DISPLAY, id);
        channels.unregister(ch::CURSOR, id);
    }

    /// The client's monitor layout goes to every display device, on QEMU's main loop;
    /// to the guest agent if none takes it.
    pub(crate) fn client_monitors_config(self: &Arc<Self>, config: Vec<u8>) {
        if !host::monitors_config_is_complete(&config) {
            crate::log_warn!("client sent an incomplete monitors config");
            return;
        }
        let weak = Arc::downgrade(self);
        self.mainloop.post(move |_core| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            let mut any_taken = false;
            for (id, host) in session.displays.hosts() {
                let taken = host.client_monitors_config(&config);
                any_taken |= taken;
                crate::log_info!(
                    "client monitors config for display {id}: {}",
                    if taken { "taken" } else { "not supported" }
                );
            }
            if !any_taken {
                session.agent.forward_monitors_config(config);
            }
        });
    }

    pub(crate) fn client_count(&self) -> usize {
        self.clients.lock().count()
    }

    /// `spice_server_kbd_leds`.
    pub(crate) fn set_leds(&self, leds: u8) {
        self.inputs.set_leds(leds);
        self.wake();
    }

    pub(crate) fn set_keyboard(&self, keyboard: Option<Arc<dyn KeyboardDevice>>) {
        self.inputs.set_keyboard(keyboard);
    }

    pub(crate) fn set_mouse(&self, mouse: Option<Arc<dyn MouseDevice>>) {
        self.inputs.set_mouse(mouse);
    }

    /// A tablet offers client mouse mode (with a single display).
    pub(crate) fn set_tablet(&self, tablet: Option<Arc<dyn TabletDevice>>) {
        let present = tablet.is_some();
        self.inputs.set_tablet(tablet);
        self.mouse.set_tablet(present && self.displays.count() == 1);
        self.wake();
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

    fn open_main(self: Arc<Self>, request: &OpenRequest) -> Result<Opening, LinkError> {
        let (name, uuid) = self.identity.lock().clone();
        let this = Arc::downgrade(&self);
        let info = MainInfo {
            session_id: request.session_id,
            display_channels: self.displays.count() as u32,
            ram_hint: self.displays.ram_hint(),
            name,
            uuid,
            channels: Arc::new(move || {
                this.upgrade()
                    .map(|s| s.channels.lock().listed())
                    .unwrap_or_default()
            }),
            agent: self.agent.clone(),
        };
        Ok(Opening::new(
            MainChannel::new(
                info,
                request.caps.clone(),
                self.mouse.clone(),
                self.net.clone(),
                self.video.clone(),
            )
            .with_link_verdicts(self.images.links.clone()),
        ))
    }

    fn open_inputs(self: Arc<Self>, _request: &OpenRequest) -> Result<Opening, LinkError> {
        let screen = Arc::downgrade(&self);
        let relay = self
            .inputs
            .relay(
                self.mainloop.clone(),
                Arc::new(move || screen.upgrade().and_then(|s| s.displays.primary_size())),
            )
            .with_agent(self.agent.clone());
        Ok(Opening::new(InputsChannel::new(
            Arc::new(relay),
            self.mouse.current.clone(),
        )))
    }
}

/// The channel a (non-agent) char device is served on.
fn device_channel_type(kind: &DeviceKind) -> u8 {
    match kind {
        DeviceKind::Agent => ch::MAIN,
        DeviceKind::Usbredir => ch::USBREDIR,
        DeviceKind::Smartcard => ch::SMARTCARD,
        DeviceKind::Webdav => ch::WEBDAV,
        DeviceKind::Port(_) => ch::PORT,
    }
}

/// An open function that reaches the session through a weak reference (the registry
/// lives inside the session).
fn opener(
    session: &Weak<Session>,
    open: fn(Arc<Session>, &OpenRequest) -> Result<Opening, LinkError>,
) -> impl Fn(&OpenRequest) -> Result<Opening, LinkError> + Send + Sync + 'static {
    let session = session.clone();
    move |request| {
        let session = session.upgrade().ok_or(LinkError::ChannelNotAvailable)?;
        open(session, request)
    }
}

impl Hub for Arc<Session> {
    fn connected(&self, conn: u64, endpoints: Endpoints) {
        self.mainloop
            .post(move |core| core.channel_event(conn, ChannelEvent::Connected(endpoints)));
    }

    fn disconnected(&self, conn: u64) {
        let gone = self.clients.lock().unlink(conn);
        if let Some(on_close) = gone.and_then(|g| g.on_close) {
            on_close();
        }
        self.mainloop
            .post(move |core| core.channel_event(conn, ChannelEvent::Disconnected));
    }

    fn check_link(&self, request: &LinkMess, tls: bool) -> Result<ServerCaps, LinkError> {
        let caps = self
            .channels
            .lock()
            .find(request.channel_type, request.channel_id)
            .map(|kind| kind.caps.clone());
        let Some(channel) = caps else {
            crate::log_info!(
                "channel {}:{} is not available",
                request.channel_type,
                request.channel_id
            );
            return Err(LinkError::ChannelNotAvailable);
        };
        let policy = self.policy.lock();
        policy.check_transport(request.channel_type, tls)?;
        Ok(ServerCaps {
            common: LinkPolicy::common_caps(),
            channel,
            sasl: policy.sasl,
        })
    }

    fn open(
        &self,
        conn: u64,
        request: &LinkMess,
        password: &[u8],
        skip_auth: bool,
    ) -> Result<Opened, LinkError> {
        let policy = self.policy.lock().clone();
        let session_id = {
            let mut clients = self.clients.lock();
            policy.admit(request, password, skip_auth, Instant::now(), &clients)?;
            if request.channel_type == ch::MAIN {
                let id = match request.connection_id {
                    0 => Session::new_session_id(),
                    id => id,
                };
                clients.start_session(id);
                id
            } else {
                request.connection_id
            }
        };
        let open = self
            .channels
            .lock()
            .opener(request.channel_type, request.channel_id)
            .ok_or(LinkError::ChannelNotAvailable)?;
        let opening = open(&OpenRequest {
            session_id,
            channel_id: request.channel_id,
            caps: Caps(request.channel_caps.clone()),
        })?;
        let (channel_type, channel_id) = (request.channel_type, request.channel_id);
        self.clients.lock().link(
            conn,
            LinkedChannel {
                session_id,
                channel_type,
                channel_id,
                on_close: opening.on_close,
            },
        );
        self.mainloop.post(move |core| {
            core.channel_event(
                conn,
                ChannelEvent::Initialized {
                    session_id,
                    channel_type,
                    channel_id,
                },
            )
        });
        Ok(Opened {
            channel: opening.channel,
            session_id,
        })
    }

    fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        *self.wake.lock() = Some(wake);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{CoreHandle, FakeCore, FakeKeyboard, FakeQxl, FakeTablet};
    use super::super::mainloop::MainLoop;
    use super::*;
    use crate::channel::inputs::InputSink;
    use crate::channel::Outbox;
    use crate::proto::frame::HeaderKind;
    use crate::server::config::Auth;

    /// A session with open access whose main loop runs when `core.run_main_loop()` does.
    fn session() -> (Arc<Session>, Arc<FakeCore>, MainLoop) {
        let session = Session::new();
        session.policy.lock().auth = Auth::None;
        let core = Arc::new(FakeCore::default());
        let mainloop = MainLoop::start(Arc::new(CoreHandle(core.clone()))).unwrap();
        session.attach_mainloop(mainloop.handle());
        (session, core, mainloop)
    }

    fn link(connection_id: u32, channel_type: u8) -> LinkMess {
        LinkMess::plain(connection_id, channel_type)
    }

    #[test]
    fn qemu_hears_each_connection_on_its_main_loop() {
        let (session, core, _mainloop) = session();
        let endpoints = Endpoints {
            local: None,
            peer: None,
            tls: false,
        };
        session.connected(7, endpoints);
        assert!(core.events.lock().is_empty(), "only on QEMU's main loop");
        core.run_main_loop();
        let main = session.open(7, &link(0, ch::MAIN), b"", false).unwrap();
        assert_ne!(main.session_id, 0);
        assert_eq!(session.client_count(), 1);
        session.disconnected(7);
        assert_eq!(session.client_count(), 0);
        core.run_main_loop();
        assert_eq!(
            *core.events.lock(),
            vec![
                (7, ChannelEvent::Connected(endpoints)),
                (
                    7,
                    ChannelEvent::Initialized {
                        session_id: main.session_id,
                        channel_type: ch::MAIN,
                        channel_id: 0
                    }
                ),
                (7, ChannelEvent::Disconnected),
            ]
        );
    }

    #[test]
    fn channels_join_the_linked_client_once() {
        let (session, _core, _mainloop) = session();
        assert_eq!(
            session.open(1, &link(42, ch::INPUTS), b"", false).err(),
            Some(LinkError::BadConnectionId)
        );
        let id = session
            .open(1, &link(42, ch::MAIN), b"", false)
            .unwrap()
            .session_id;
        assert_eq!(id, 42, "a client's own connection id is kept");
        assert!(session.open(2, &link(id, ch::INPUTS), b"", false).is_ok());
        assert_eq!(
            session.open(3, &link(id, ch::INPUTS), b"", false).err(),
            Some(LinkError::ChannelNotAvailable)
        );
        session.disconnected(2);
        assert!(session.open(3, &link(id, ch::INPUTS), b"", false).is_ok());
        session.policy.lock().auth = Auth::Ticket(None);
        assert_eq!(
            session.open(4, &link(0, ch::MAIN), b"", false).err(),
            Some(LinkError::PermissionDenied)
        );
        let vouched = session.open(4, &link(0, ch::MAIN), b"", true);
        assert!(vouched.is_ok(), "a client QEMU vouched for needs no ticket");
    }

    #[test]
    fn keys_reach_the_keyboard_on_the_main_loop() {
        let (session, core, _mainloop) = session();
        let keyboard = Arc::new(FakeKeyboard::default());
        session.set_keyboard(Some(keyboard.clone()));
        let id = session
            .open(1, &link(0, ch::MAIN), b"", false)
            .unwrap()
            .session_id;
        let mut inputs = session.open(2, &link(id, ch::INPUTS), b"", false).unwrap();
        let mut out = Outbox::new(HeaderKind::Mini);
        inputs
            .channel
            .on_message(inputs::C_KEY_DOWN, &0x1eu32.to_le_bytes(), &mut out)
            .unwrap();
        assert!(keyboard.0.lock().is_empty());
        core.run_main_loop();
        assert_eq!(*keyboard.0.lock(), vec![0x1e]);
        session.set_keyboard(None);
        inputs
            .channel
            .on_message(inputs::C_KEY_UP, &0x1eu32.to_le_bytes(), &mut out)
            .unwrap();
        core.run_main_loop();
        assert_eq!(
            *keyboard.0.lock(),
            vec![0x1e],
            "a removed keyboard hears nothing"
        );
    }

    #[test]
    fn the_tablet_learns_the_screen_size_once() {
        let (session, core, _mainloop) = session();
        let tablet = Arc::new(FakeTablet::default());
        session.set_tablet(Some(tablet.clone()));
        let relay = session
            .inputs
            .relay(session.mainloop.clone(), Arc::new(|| Some((800, 600))));
        relay.tablet_position(10, 20, 1);
        relay.tablet_buttons(0);
        core.run_main_loop();
        assert_eq!(
            *tablet.0.lock(),
            vec!["size 800x600", "position 10,20 1", "buttons 0"]
        );
        session.set_leds(3);
        assert_eq!(relay.leds(), (3, 1));
    }

    #[test]
    fn a_complete_monitors_config_goes_to_every_display() {
        let mut server = crate::server::Server::new(|| {});
        let (session, core, _mainloop) =
            (server.session.clone(), Arc::new(FakeCore::default()), ());
        let mainloop = MainLoop::start(Arc::new(CoreHandle(core.clone()))).unwrap();
        session.attach_mainloop(mainloop.handle());
        let qxl = Arc::new(FakeQxl::default());
        server
            .add_qxl(
                crate::server::interfaces::InstanceId(1),
                0,
                qxl.clone(),
                crate::server::fake::IdleDevice,
            )
            .unwrap();
        let mut config = vec![1, 0, 0, 0, 0, 0, 0, 0];
        session.client_monitors_config(config.clone());
        config.extend([0; 20]);
        session.client_monitors_config(config.clone());
        core.run_main_loop();
        assert_eq!(*qxl.monitors_configs.lock(), vec![config]);
        server.shutdown();
    }
}
