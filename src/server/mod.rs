//! The SpiceServer object: configuration, lifecycle, registered interfaces.
//!
//! Every method runs on a QEMU thread holding QEMU's global lock (the C API's contract);
//! the object is still behind a mutex so nothing unsound can happen if a caller breaks
//! that contract.

pub mod channels;
pub mod clients;
pub mod config;
pub mod interfaces;
pub mod link_policy;
pub mod mainloop;
pub mod session;

use crate::ffi::core::CoreInterface;
use crate::net::listener;
use crate::net::reactor::{Command, Reactor};
use crate::net::stream::Stream;
use crate::worker::{Msg, WorkerHandle};
use config::ServerConfig;
use interfaces::{InstanceId, InterfaceError, Kind, Registry};
use mainloop::MainLoop;
use session::Session;
use std::sync::Arc;

#[derive(Debug)]
pub enum InitError {
    AlreadyInitialized,
    /// `tls-port=` was configured but this build has no TLS: refused rather than serving
    /// the TLS port in clear.
    TlsUnavailable(u16),
    Core(String),
    Listen(std::io::Error),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::AlreadyInitialized => write!(f, "server already initialized"),
            InitError::TlsUnavailable(port) => write!(
                f,
                "TLS is not available in this build: refusing tls-port={port}"
            ),
            InitError::Core(e) => write!(f, "{e}"),
            InitError::Listen(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

/// What exists between `spice_server_init` and destroy.
struct Running {
    mainloop: MainLoop,
    reactor: Reactor,
}

pub struct Server {
    pub config: ServerConfig,
    /// What clients see; shared with the reactor and the workers.
    pub session: Arc<Session>,
    registry: Registry,
    workers: Vec<(InstanceId, Arc<WorkerHandle>)>,
    vm_running: bool,
    running: Option<Running>,
    /// Set by the char-device wakeup path when the playback/record rates are set.
    pub playback_rate: u32,
    pub record_rate: u32,
    /// Where clients should follow a live migration (`client_migrate_info`).
    migration_target: Option<MigrationTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationTarget {
    pub host: String,
    pub port: Option<u16>,
    pub tls_port: Option<u16>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    pub fn new() -> Server {
        Server {
            config: ServerConfig::default(),
            session: Session::new(),
            registry: Registry::default(),
            workers: Vec::new(),
            // spice-server starts "running": a QXL added before vm_start starts at once.
            vm_running: true,
            running: None,
            playback_rate: 48_000,
            record_rate: 48_000,
            migration_target: None,
        }
    }

    /// `spice_server_init`: opens the listening sockets and starts the reactor.
    /// `adopted`: the listening socket QEMU passed with `set_listen_socket_fd`, which
    /// replaces the one `set_port`/`set_addr` would open.
    pub fn init(
        &mut self,
        core: CoreInterface,
        adopted: Option<listener::Listener>,
    ) -> Result<(), InitError> {
        if self.running.is_some() {
            return Err(InitError::AlreadyInitialized);
        }
        // Fail closed before anything opens: a TLS port served in clear would hand a full
        // session to any client that believes it is encrypted.
        if let Some(tls) = &self.config.tls {
            return Err(InitError::TlsUnavailable(tls.port));
        }
        let mut listeners = Vec::new();
        match adopted {
            Some(l) => listeners.push(l),
            None => {
                listeners.extend(listener::open_plain(&self.config).map_err(InitError::Listen)?)
            }
        }
        let mainloop = MainLoop::start(core).map_err(|e| InitError::Core(e.to_string()))?;
        self.session.attach_mainloop(mainloop.handle());
        self.sync_session();
        let reactor =
            Reactor::start(listeners, Arc::new(self.session.clone())).map_err(InitError::Listen)?;
        self.running = Some(Running { mainloop, reactor });
        self.session.video.probe_encoders();
        Ok(())
    }

    pub fn is_initialized(&self) -> bool {
        self.running.is_some()
    }

    /// `spice_server_add_client`: a connected socket from QEMU.
    pub fn add_client(&mut self, stream: Stream) -> bool {
        match &self.running {
            Some(r) => {
                r.reactor.send(Command::AddClient(stream));
                true
            }
            None => false,
        }
    }

    pub fn check_add(&self, kind: Kind, id: InstanceId) -> Result<(), InterfaceError> {
        self.registry.check_add(kind, id)
    }

    pub fn register(&mut self, kind: Kind, id: InstanceId) {
        self.registry.add(kind, id);
    }

    pub fn check_qxl_id(&self, qxl_id: i32) -> Result<(), InterfaceError> {
        if qxl_id < 0 {
            return Err(InterfaceError::NegativeQxlId(qxl_id));
        }
        if self.workers.iter().any(|(_, w)| w.id == qxl_id) {
            return Err(InterfaceError::DuplicateQxlId(qxl_id));
        }
        Ok(())
    }

    pub fn add_worker(&mut self, id: InstanceId, worker: Arc<WorkerHandle>) {
        if self.vm_running {
            worker.post(Msg::Start);
        }
        self.registry.add(Kind::Qxl, id);
        self.workers.push((id, worker));
    }

    /// Unregisters an instance; a QXL worker is stopped and joined.
    pub fn unregister(&mut self, id: InstanceId) -> Result<Kind, InterfaceError> {
        let kind = self
            .registry
            .remove(id)
            .ok_or(InterfaceError::NotRegistered)?;
        if let Some(pos) = self.workers.iter().position(|(i, _)| *i == id) {
            let (_, worker) = self.workers.remove(pos);
            worker.shutdown();
        }
        Ok(kind)
    }

    pub fn registered(&self) -> Vec<(Kind, InstanceId)> {
        self.registry.all()
    }

    pub fn vm_start(&mut self) {
        self.vm_running = true;
        for (_, w) in &self.workers {
            w.post(Msg::Start);
        }
    }

    /// Synchronous: when it returns no worker calls into the device any more.
    pub fn vm_stop(&mut self) {
        self.vm_running = false;
        for (_, w) in &self.workers {
            w.call(Msg::Stop);
        }
    }

    /// Stores (or, with `host` None, clears) the migration target; -1 when unusable, as
    /// spice-server answers a target with neither port.
    pub fn set_migration_target(&mut self, host: Option<String>, port: i32, tls_port: i32) -> i32 {
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

    pub fn has_migration_target(&self) -> bool {
        self.migration_target.is_some()
    }

    /// Copies what the link and main channel need from the configuration.
    pub fn sync_session(&self) {
        *self.session.policy.lock() = link_policy::LinkPolicy::from_config(&self.config);
        *self.session.identity.lock() = (self.config.name.clone(), self.config.uuid);
        let mode = match self.config.streaming_video {
            config::StreamingVideo::Off => crate::video::StreamMode::Off,
            config::StreamingVideo::All => crate::video::StreamMode::All,
            config::StreamingVideo::Filter => crate::video::StreamMode::Filter,
        };
        let changed = self
            .session
            .video
            .set(mode, self.config.video_codecs.clone());
        if changed && self.running.is_some() {
            self.session.video.probe_encoders();
        }
    }

    /// Clients with a main channel.
    pub fn num_clients(&self) -> usize {
        self.session.client_count()
    }

    /// Closes every client connection (`set_ticket` with `disconnect_if_connected`).
    pub fn disconnect_clients(&self) {
        if let Some(r) = &self.running {
            r.reactor.send(Command::DisconnectAll);
        }
    }

    pub fn is_server_mouse(&self) -> bool {
        self.session.mouse.current() != crate::proto::main::MOUSE_MODE_CLIENT
    }

    /// Stops every thread and closes every socket; QEMU's lock must be held (the main
    /// loop watch is removed through QEMU).
    pub fn shutdown(&mut self) -> Vec<(Kind, InstanceId)> {
        for (_, worker) in self.workers.drain(..) {
            worker.shutdown();
        }
        if let Some(Running {
            mut mainloop,
            reactor,
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
