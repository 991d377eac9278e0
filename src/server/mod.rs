//! The SpiceServer object: configuration, lifecycle, registered interfaces.
//!
//! Every method runs on a QEMU thread holding QEMU's global lock (the C API's contract);
//! the object is still behind a mutex so nothing unsound can happen if a caller breaks
//! that contract.

pub(crate) mod audio_channels;
pub(crate) mod channels;
pub(crate) mod char_device;
pub(crate) mod clients;
pub(crate) mod config;
pub(crate) mod device_channels;
pub(crate) mod displays;
#[cfg(test)]
mod fake;
pub(crate) mod host;
pub(crate) mod inputs;
pub(crate) mod interfaces;
pub(crate) mod link_policy;
pub(crate) mod mainloop;
pub(crate) mod session;

use crate::audio::playback::PlaybackStream;
use crate::audio::record::RecordStream;
use crate::net::listener;
use crate::net::reactor::{Command, Reactor};
use crate::net::stream::Stream;
use crate::net::tls::{TlsAcceptor, TlsSetupError};
use crate::worker::{Device, Msg, Outputs, WorkerHandle};
use char_device::{CharDevice, DeviceKind};
use config::ServerConfig;
use displays::DisplaySource;
use host::{CharDeviceHost, Core, KeyboardDevice, MouseDevice, QxlHost, TabletDevice};
use interfaces::{InstanceId, InterfaceError, Kind, Registry};
use mainloop::MainLoop;
use session::{AudioStream, Session};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) enum InitError {
    AlreadyInitialized,
    /// The TLS certificates, key or settings cannot be used (QEMU exits, as with the C
    /// server): never serve the TLS port in clear or half configured.
    Tls(TlsSetupError),
    Core(String),
    Listen(std::io::Error),
    /// `sasl_server_init` failed (spice-server stops there too).
    Sasl(String),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::AlreadyInitialized => write!(f, "server already initialized"),
            InitError::Tls(e) => write!(f, "{e}"),
            InitError::Core(e) => write!(f, "{e}"),
            InitError::Listen(e) => write!(f, "cannot listen: {e}"),
            InitError::Sasl(e) => write!(f, "Failed to initialize SASL auth: {e}"),
        }
    }
}

/// What exists between `spice_server_init` and destroy.
struct Running {
    mainloop: MainLoop,
    reactor: Reactor,
    /// The TLS context, for `spice_server_add_ssl_client` (None without `tls-port=`).
    tls: Option<TlsAcceptor>,
}

pub(crate) struct Server {
    pub config: ServerConfig,
    /// What clients see; shared with the reactor and the workers.
    pub session: Arc<Session>,
    registry: Registry,
    workers: Vec<(InstanceId, Arc<WorkerHandle>)>,
    vm_running: bool,
    running: Option<Running>,
    /// Where clients should follow a live migration (`client_migrate_info`).
    migration_target: Option<MigrationTarget>,
    /// Runs first on every thread we start (QEMU wants its signals kept off them).
    prepare_thread: fn(),
}

/// An interface QEMU added, as the server keeps it.
pub(crate) enum Interface {
    Keyboard(Arc<dyn KeyboardDevice>),
    Mouse(Arc<dyn MouseDevice>),
    Tablet(Arc<dyn TabletDevice>),
    /// Registered only (the QXL device goes through `Server::add_qxl`).
    Other(Kind),
}

impl Interface {
    fn kind(&self) -> Kind {
        match self {
            Interface::Keyboard(_) => Kind::Keyboard,
            Interface::Mouse(_) => Kind::Mouse,
            Interface::Tablet(_) => Kind::Tablet,
            Interface::Other(kind) => *kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MigrationTarget {
    pub host: String,
    pub port: Option<u16>,
    pub tls_port: Option<u16>,
}

impl Server {
    /// `prepare_thread` runs first on every thread the server starts.
    pub(crate) fn new(prepare_thread: fn()) -> Server {
        Server {
            config: ServerConfig::default(),
            session: Session::new(),
            registry: Registry::default(),
            workers: Vec::new(),
            // spice-server starts "running": a QXL added before vm_start starts at once.
            vm_running: true,
            running: None,
            migration_target: None,
            prepare_thread,
        }
    }

    /// `spice_server_init`: opens the listening sockets and starts the reactor.
    /// `adopted`: the listening socket QEMU passed with `set_listen_socket_fd`, which
    /// replaces the one `set_port`/`set_addr` would open.
    pub(crate) fn init(
        &mut self,
        core: Arc<dyn Core>,
        adopted: Option<listener::Listener>,
    ) -> Result<(), InitError> {
        if self.running.is_some() {
            return Err(InitError::AlreadyInitialized);
        }
        // Certificates and key load before anything opens: when they cannot, init fails.
        let tls = match &self.config.tls {
            Some(config) => Some(TlsAcceptor::new(config).map_err(InitError::Tls)?),
            None => None,
        };
        if self.config.sasl {
            crate::net::sasl::init(self.config.sasl_appname.as_deref()).map_err(InitError::Sasl)?;
        }
        let mut listeners = Vec::new();
        match adopted {
            Some(l) => listeners.push(l),
            None => {
                listeners.extend(listener::open_plain(&self.config).map_err(InitError::Listen)?)
            }
        }
        listeners.extend(listener::open_tls(&self.config, tls.clone()).map_err(InitError::Listen)?);
        let mainloop = MainLoop::start(core).map_err(|e| InitError::Core(e.to_string()))?;
        self.session.attach_mainloop(mainloop.handle());
        self.sync_session();
        let reactor = Reactor::start(
            listeners,
            Arc::new(self.session.clone()),
            self.prepare_thread,
        )
        .map_err(InitError::Listen)?;
        self.running = Some(Running {
            mainloop,
            reactor,
            tls,
        });
        self.session.video.probe_encoders();
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn is_initialized(&self) -> bool {
        self.running.is_some()
    }

    /// `spice_server_add_client`: a connected socket from QEMU. With `skip_auth` (QMP
    /// `add_client skipauth=true`, virt-manager's local console) its client links without
    /// a ticket.
    pub(crate) fn add_client(&mut self, stream: Stream, skip_auth: bool) -> bool {
        match &self.running {
            Some(r) => {
                r.reactor.send(Command::AddClient { stream, skip_auth });
                true
            }
            None => false,
        }
    }

    /// `spice_server_add_ssl_client`: a connected TCP socket from QEMU that starts with a
    /// TLS handshake (`skip_auth` as for `add_client`). Refused without `tls-port=` (no
    /// TLS context), as spice-server does.
    pub(crate) fn add_ssl_client(&mut self, socket: mio::net::TcpStream, skip_auth: bool) -> bool {
        let Some(running) = &self.running else {
            return false;
        };
        let Some(acceptor) = running.tls.clone() else {
            crate::log_warn!("spice_server_add_ssl_client: TLS is not configured (tls-port=)");
            return false;
        };
        match acceptor.accept(socket) {
            Ok(stream) => self.add_client(Stream::Tls(Box::new(stream)), skip_auth),
            Err(e) => {
                crate::log_warn!("spice_server_add_ssl_client: {e}");
                false
            }
        }
    }

    pub(crate) fn check_add(&self, kind: Kind, id: InstanceId) -> Result<(), InterfaceError> {
        self.registry.check_add(kind, id)
    }

    /// Registers an input device or an interface the server only records.
    pub(crate) fn add_interface(&mut self, id: InstanceId, interface: Interface) {
        self.registry.add(interface.kind(), id);
        match interface {
            Interface::Keyboard(k) => self.session.set_keyboard(Some(k)),
            Interface::Mouse(m) => self.session.set_mouse(Some(m)),
            Interface::Tablet(t) => self.session.set_tablet(Some(t)),
            Interface::Other(_) => {}
        }
    }

    /// Serves a guest char device: the agent on the main channel, or a channel of its own.
    pub(crate) fn add_char_device(
        &mut self,
        id: InstanceId,
        host: Arc<dyn CharDeviceHost>,
        kind: DeviceKind,
    ) -> Arc<CharDevice> {
        self.registry.add(Kind::CharDevice, id);
        let device = CharDevice::new(kind, host, self.session.mainloop());
        self.session.add_char_device(id, device.clone());
        device
    }

    /// Serves a playback instance on the playback channel.
    pub(crate) fn add_playback(&mut self, id: InstanceId) -> Arc<PlaybackStream> {
        self.registry.add(Kind::Playback, id);
        let stream = PlaybackStream::new(self.session.video.clone(), self.session.waker());
        self.session
            .add_audio(id, AudioStream::Playback(stream.clone()));
        stream
    }

    /// Serves a record instance on the record channel.
    pub(crate) fn add_record(&mut self, id: InstanceId) -> Arc<RecordStream> {
        self.registry.add(Kind::Record, id);
        let stream = RecordStream::new(self.session.waker());
        self.session
            .add_audio(id, AudioStream::Record(stream.clone()));
        stream
    }

    /// Starts a QXL instance the way spice-server does: `get_init_info`, the worker, then
    /// `attached_worker` and `set_compression_level`, all on the caller's thread. Its
    /// display and cursor channels become linkable.
    pub(crate) fn add_qxl(
        &mut self,
        id: InstanceId,
        qxl_id: i32,
        host: Arc<dyn QxlHost>,
        device: impl Device + 'static,
    ) -> Result<Arc<WorkerHandle>, String> {
        self.check_qxl_id(qxl_id).map_err(|e| e.to_string())?;
        let (layout, ram_size) = host.init_info();
        let outputs = Outputs::default();
        let wake = self.session.waker();
        outputs.screen.set_notify(wake.clone());
        outputs.screen.set_video(self.session.video.clone());
        outputs.pointer.set_notify(wake);
        let worker = Arc::new(
            WorkerHandle::spawn(qxl_id, device, layout, outputs.clone(), self.prepare_thread)
                .map_err(|e| format!("cannot start QXL worker: {e}"))?,
        );
        self.session.add_display(DisplaySource {
            id: u8::try_from(qxl_id).unwrap_or(u8::MAX),
            host: host.clone(),
            worker: worker.clone(),
            screen: outputs.screen,
            pointer: outputs.pointer,
            // Until set_device_info says: the guest's own maximum is told (as spice-server
            // does), within the bound set_max_monitors keeps.
            max_monitors: 16,
            ram_hint: ram_size,
            viewers: Arc::default(),
        });
        host.attached_worker();
        host.set_compression_level(self.compression_level());
        self.add_worker(id, worker.clone());
        Ok(worker)
    }

    /// The compression level hint QEMU's QXL device exposes to the guest (spice's rule).
    fn compression_level(&self) -> i32 {
        let c = &self.config;
        if c.streaming_video != crate::video::StreamMode::Off
            || c.image_compression != config::ImageCompression::Quic
        {
            0
        } else {
            1
        }
    }

    pub(crate) fn check_qxl_id(&self, qxl_id: i32) -> Result<(), InterfaceError> {
        if qxl_id < 0 {
            return Err(InterfaceError::NegativeQxlId(qxl_id));
        }
        if self.workers.iter().any(|(_, w)| w.id == qxl_id) {
            return Err(InterfaceError::DuplicateQxlId(qxl_id));
        }
        Ok(())
    }

    fn add_worker(&mut self, id: InstanceId, worker: Arc<WorkerHandle>) {
        if self.vm_running {
            worker.post(Msg::Start);
        }
        self.registry.add(Kind::Qxl, id);
        self.workers.push((id, worker));
    }

    /// Unregisters an instance; a QXL worker is stopped and joined and its channels go.
    pub(crate) fn unregister(&mut self, id: InstanceId) -> Result<Kind, InterfaceError> {
        let kind = self
            .registry
            .remove(id)
            .ok_or(InterfaceError::NotRegistered)?;
        if let Some(pos) = self.workers.iter().position(|(i, _)| *i == id) {
            let (_, worker) = self.workers.remove(pos);
            worker.shutdown();
            self.session.remove_display(worker.id as u8);
        }
        match kind {
            Kind::Keyboard => self.session.set_keyboard(None),
            Kind::Mouse => self.session.set_mouse(None),
            Kind::Tablet => self.session.set_tablet(None),
            Kind::CharDevice => self.session.remove_char_device(id),
            Kind::Playback | Kind::Record => self.session.remove_audio(id),
            _ => {}
        }
        Ok(kind)
    }

    pub(crate) fn registered(&self) -> Vec<(Kind, InstanceId)> {
        self.registry.all()
    }

    pub(crate) fn vm_start(&mut self) {
        self.vm_running = true;
        for (_, w) in &self.workers {
            w.post(Msg::Start);
        }
    }

    /// Synchronous: when it returns no worker calls into the device any more.
    pub(crate) fn vm_stop(&mut self) {
        self.vm_running = false;
        for (_, w) in &self.workers {
            w.call(Msg::Stop);
        }
    }

    /// Stores (or, with `host` None, clears) the migration target; -1 when unusable, as
    /// spice-server answers a target with neither port.
    pub(crate) fn set_migration_target(
        &mut self,
        host: Option<String>,
        port: i32,
        tls_port: i32,
    ) -> i32 {
        let port = u16::try_from(port).ok();
        let tls_port = u16::try_from(tls_port).ok();
        self.migration_target = match host {
            Some(host) if port.is_some() || tls_port.is_some() => Some(MigrationTarget {
                host,
                port,
                tls_port,
            }),
            _ => None,
        };
        if self.migration_target.is_some() {
            0
        } else {
            -1
        }
    }

    pub(crate) fn has_migration_target(&self) -> bool {
        self.migration_target.is_some()
    }

    /// Copies what the link and main channel need from the configuration.
    pub(crate) fn sync_session(&self) {
        *self.session.policy.lock() = link_policy::LinkPolicy::from_config(&self.config);
        *self.session.identity.lock() = (self.config.name.clone(), self.config.uuid);
        self.session
            .playback_compression
            .store(self.config.playback_compression, Ordering::Relaxed);
        self.session
            .images
            .set_compression(self.config.image_compression);
        self.session
            .images
            .set_wan(self.config.jpeg, self.config.zlib_glz);
        self.session.agent().set_flags(
            self.config.agent_mouse,
            self.config.agent_copypaste,
            self.config.agent_file_xfer,
        );
        let mode = self.config.streaming_video;
        let changed = self
            .session
            .video
            .set(mode, self.config.video_codecs.clone());
        if changed && self.running.is_some() {
            self.session.video.probe_encoders();
        }
    }

    /// Clients with a main channel.
    pub(crate) fn num_clients(&self) -> usize {
        self.session.client_count()
    }

    /// `spice_server_set_ticket`, as reds.c: with a client connected, `fail_if_connected`
    /// refuses and changes nothing, `disconnect_if_connected` drops it; so does turning
    /// ticketing on after `set_noauth` (a client let in without a ticket must not stay).
    pub(crate) fn set_ticket(
        &mut self,
        password: Option<&str>,
        lifetime_s: i32,
        fail_if_connected: bool,
        disconnect_if_connected: bool,
    ) -> Result<(), config::ConfigError> {
        if self.num_clients() > 0 {
            if fail_if_connected {
                return Err(config::ConfigError::ClientConnected);
            }
            if disconnect_if_connected || self.config.auth == config::Auth::None {
                self.disconnect_clients();
            }
        }
        self.config
            .set_ticket(password, lifetime_s, std::time::Instant::now())
    }

    /// Closes every client connection (`set_ticket` with `disconnect_if_connected`).
    pub(crate) fn disconnect_clients(&self) {
        if let Some(r) = &self.running {
            r.reactor.send(Command::DisconnectAll);
        }
    }

    pub(crate) fn is_server_mouse(&self) -> bool {
        self.session.mouse.current() != crate::proto::main::MOUSE_MODE_CLIENT
    }

    /// Stops every thread and closes every socket; QEMU's lock must be held (the main
    /// loop watch is removed through QEMU).
    pub(crate) fn shutdown(&mut self) -> Vec<(Kind, InstanceId)> {
        for (_, worker) in self.workers.drain(..) {
            worker.shutdown();
        }
        if let Some(Running {
            mut mainloop,
            reactor,
            ..
        }) = self.running.take()
        {
            reactor.shutdown();
            // Delivers the DISCONNECTED events the reactor queued while closing.
            mainloop.stop();
        }
        let left = self.registry.all();
        self.registry = Registry::default();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{CoreHandle, FakeCore, FakeQxl, IdleDevice};
    use super::*;
    use crate::net::reactor::Hub;
    use crate::proto::link::{LinkError, LinkMess};
    use crate::proto::msg::channel as ch;

    fn server() -> Server {
        let mut s = Server::new(|| {});
        s.config.set_noauth();
        s
    }

    fn link(channel_type: u8, channel_id: u8) -> LinkMess {
        LinkMess {
            connection_id: 0,
            channel_type,
            channel_id,
            common_caps: vec![],
            channel_caps: vec![],
        }
    }

    #[test]
    fn set_ticket_with_a_client_connected() {
        let mut s = server();
        let hub = s.session.clone();
        assert!(
            s.set_ticket(Some("a"), 0, true, false).is_ok(),
            "no client yet"
        );
        s.sync_session();
        assert!(hub.open(1, &link(ch::MAIN, 0), b"a", false).is_ok());
        assert_eq!(s.num_clients(), 1);
        assert_eq!(
            s.set_ticket(Some("b"), 0, true, true),
            Err(config::ConfigError::ClientConnected)
        );
        s.sync_session();
        assert!(
            hub.open(2, &link(ch::MAIN, 0), b"a", false).is_ok(),
            "fail_if_connected changed nothing"
        );
        assert!(s.set_ticket(Some("b"), 0, false, false).is_ok());
        s.sync_session();
        assert_eq!(
            hub.open(3, &link(ch::MAIN, 0), b"a", false).err(),
            Some(LinkError::PermissionDenied)
        );
        assert!(hub.open(3, &link(ch::MAIN, 0), b"b", false).is_ok());
    }

    #[test]
    fn tls_files_that_do_not_load_fail_init_and_open_nothing() {
        let mut s = server();
        let tls = config::TlsConfig {
            ca_cert_file: "/nonexistent/ca-cert.pem".into(),
            certs_file: "/nonexistent/server-cert.pem".into(),
            private_key_file: "/nonexistent/server-key.pem".into(),
            ..Default::default()
        };
        s.config.set_tls(5999, tls).unwrap();
        let core = Arc::new(FakeCore::default());
        let r = s.init(Arc::new(CoreHandle(core.clone())), None);
        assert!(matches!(r, Err(InitError::Tls(_))), "{r:?}");
        let line = r.unwrap_err().to_string();
        assert!(
            line.starts_with("cannot load the TLS certificates from /nonexistent/server-cert.pem"),
            "{line}"
        );
        assert!(!line.contains('\n'), "one log line: {line}");
        assert!(!s.is_initialized());
        assert!(core.ready.lock().is_empty(), "no main loop watch");
    }

    #[test]
    fn an_ssl_client_needs_a_tls_port() {
        let mut s = server();
        let core = Arc::new(FakeCore::default());
        s.init(Arc::new(CoreHandle(core.clone())), None).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let socket = mio::net::TcpStream::from_std(client);
        assert!(
            !s.add_ssl_client(socket, false),
            "no TLS context without tls-port="
        );
        s.shutdown();
    }

    #[test]
    fn init_watches_the_main_loop_and_shutdown_removes_it() {
        let mut s = server();
        let core = Arc::new(FakeCore::default());
        s.init(Arc::new(CoreHandle(core.clone())), None).unwrap();
        assert!(s.is_initialized());
        assert_eq!(core.ready.lock().len(), 1);
        assert!(matches!(
            s.init(Arc::new(CoreHandle(core.clone())), None),
            Err(InitError::AlreadyInitialized)
        ));
        s.shutdown();
        assert_eq!(*core.removed.lock(), 1);
        assert!(!s.is_initialized());
    }

    #[test]
    fn audio_instances_bring_their_channels_with_opus_as_the_rate_allows() {
        use crate::proto::caps::Caps;
        use crate::proto::msg::{playback, record};
        let mut s = server();
        s.sync_session();
        let hub = s.session.clone();
        assert!(hub.check_link(&link(ch::PLAYBACK, 0), false).is_err());
        let stream = s.add_playback(InstanceId(7));
        s.add_record(InstanceId(8));
        let caps = |t| Caps(hub.check_link(&link(t, 0), false).unwrap().channel);
        assert!(caps(ch::PLAYBACK).has(playback::CAP_VOLUME));
        assert!(caps(ch::PLAYBACK).has(playback::CAP_OPUS));
        assert!(caps(ch::RECORD).has(record::CAP_OPUS));
        s.session.set_audio_rate(InstanceId(7), 44_100);
        assert!(
            !caps(ch::PLAYBACK).has(playback::CAP_OPUS),
            "no Opus at 44.1 kHz"
        );
        assert!(caps(ch::PLAYBACK).has(playback::CAP_VOLUME));
        assert_eq!(stream.rate(), 44_100);
        let id = hub
            .open(1, &link(ch::MAIN, 0), b"", false)
            .unwrap()
            .session_id;
        let opened = hub
            .open(2, &LinkMess::plain(id, ch::PLAYBACK), b"", false)
            .unwrap_or_else(|_| panic!("playback opens"));
        assert!(!opened.channel.finished());
        assert_eq!(s.unregister(InstanceId(7)), Ok(Kind::Playback));
        assert!(
            opened.channel.finished(),
            "the client of a removed device is closed"
        );
        assert!(hub.check_link(&link(ch::PLAYBACK, 0), false).is_err());
        assert!(hub.check_link(&link(ch::RECORD, 0), false).is_ok());
        assert_eq!(s.unregister(InstanceId(8)), Ok(Kind::Record));
        assert!(hub.check_link(&link(ch::RECORD, 0), false).is_err());
    }

    #[test]
    fn a_qxl_instance_brings_its_channels_and_takes_them_away() {
        let mut s = server();
        let qxl = Arc::new(FakeQxl::default());
        let hub = s.session.clone();
        assert_eq!(
            hub.check_link(&link(ch::DISPLAY, 0), false).err(),
            Some(LinkError::ChannelNotAvailable)
        );
        s.add_qxl(InstanceId(1), 0, qxl.clone(), IdleDevice)
            .unwrap();
        assert_eq!(
            *qxl.calls.lock(),
            vec!["init_info", "attached_worker", "compression 0"]
        );
        assert!(s
            .add_qxl(InstanceId(2), 0, qxl.clone(), IdleDevice)
            .is_err());
        let caps = hub
            .check_link(&link(ch::DISPLAY, 0), false)
            .unwrap()
            .channel;
        assert!(crate::proto::caps::Caps(caps).has(crate::proto::msg::display::CAP_MONITORS_CONFIG));
        assert!(hub.check_link(&link(ch::CURSOR, 0), false).is_ok());
        assert!(hub.check_link(&link(ch::DISPLAY, 1), false).is_err());
        assert_eq!(s.unregister(InstanceId(1)), Ok(Kind::Qxl));
        assert!(hub.check_link(&link(ch::DISPLAY, 0), false).is_err());
        assert!(hub.check_link(&link(ch::CURSOR, 0), false).is_err());
        assert!(hub.check_link(&link(ch::INPUTS, 0), false).is_ok());
    }
}
