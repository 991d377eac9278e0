//! The reactor: one thread that owns the listening sockets and every client socket.
//!
//! It never calls QEMU; connection lifecycle events go to a `ConnectionEvents`
//! implementation that forwards them to QEMU's main loop.

use super::link::LinkReader;
use super::listener::Listener;
use super::stream::{Endpoints, Stream};
use crate::proto::link::{encode_link_error, LinkError, LinkMess};
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// More simultaneous connections than any real session needs; beyond it new ones are
/// refused so a hostile peer cannot exhaust QEMU's file descriptors.
pub const MAX_CONNECTIONS: usize = 256;
/// A client that has not finished its link request by then is dropped.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(30);

const WAKER: Token = Token(0);
const FIRST_LISTENER: usize = 1;
const FIRST_CONNECTION: usize = 16;

/// What the reactor reports about connections.
pub trait ConnectionEvents: Send + Sync + 'static {
    fn connected(&self, id: u64, endpoints: Endpoints);
    fn disconnected(&self, id: u64);
    /// A complete link request; returns the answer to send before closing.
    fn link_request(&self, id: u64, request: &LinkMess) -> LinkError;
}

pub enum Command {
    /// A socket QEMU handed us (`spice_server_add_client`).
    AddClient(Stream),
    Shutdown,
}

/// Handle owned by the server; dropping it without `shutdown` leaks the thread.
pub struct Reactor {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Reactor {
    pub fn start(
        listeners: Vec<Listener>,
        events: Arc<dyn ConnectionEvents>,
    ) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (commands, inbox) = crossbeam_channel::unbounded();
        let mut state = State {
            poll,
            listeners: Vec::new(),
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            events,
            inbox,
        };
        for (i, l) in listeners.into_iter().enumerate() {
            let mut l = match l {
                Listener::Tcp(l) => MioListener::Tcp(mio::net::TcpListener::from_std(l)),
                Listener::Unix(l) => MioListener::Unix(mio::net::UnixListener::from_std(l)),
            };
            let token = Token(FIRST_LISTENER + i);
            match &mut l {
                MioListener::Tcp(l) => {
                    state
                        .poll
                        .registry()
                        .register(l, token, Interest::READABLE)?
                }
                MioListener::Unix(l) => {
                    state
                        .poll
                        .registry()
                        .register(l, token, Interest::READABLE)?
                }
            }
            state.listeners.push(l);
        }
        let thread = std::thread::Builder::new()
            .name("spice-reactor".into())
            .spawn(move || {
                crate::ffi::thread::block_async_signals();
                state.run();
            })?;
        Ok(Reactor {
            commands,
            waker,
            thread: Some(thread),
        })
    }

    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Stops the thread and closes every socket it owns.
    pub fn shutdown(mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::log_error!("the reactor thread panicked");
            }
        }
    }
}

enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl MioListener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            MioListener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            MioListener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

enum Phase {
    Linking(LinkReader),
    /// Sending the final answer, then closing.
    Closing {
        out: Vec<u8>,
        sent: usize,
    },
}

struct Connection {
    id: u64,
    stream: Stream,
    phase: Phase,
    since: Instant,
}

struct State {
    poll: Poll,
    listeners: Vec<MioListener>,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    events: Arc<dyn ConnectionEvents>,
    inbox: Receiver<Command>,
}

enum Progress {
    Open,
    Closed,
}

impl State {
    fn run(&mut self) {
        let mut events = Events::with_capacity(128);
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_secs(1))) {
                if e.kind() != ErrorKind::Interrupted {
                    crate::log_error!("reactor poll failed: {e}");
                    break;
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t < FIRST_CONNECTION => self.accept_all(t - FIRST_LISTENER),
                    token => self.service(token),
                }
            }
            if !self.drain_commands() {
                break;
            }
            self.expire_slow_links();
        }
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            self.close(token);
        }
    }

    /// Returns false on shutdown.
    fn drain_commands(&mut self) -> bool {
        while let Ok(command) = self.inbox.try_recv() {
            match command {
                Command::AddClient(stream) => self.adopt(stream),
                Command::Shutdown => return false,
            }
        }
        true
    }

    fn accept_all(&mut self, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok(stream) => self.adopt(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    crate::log_warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn adopt(&mut self, mut stream: Stream) {
        if self.connections.len() >= MAX_CONNECTIONS {
            crate::log_warn!("refusing a connection: {MAX_CONNECTIONS} already open");
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            crate::log_warn!("cannot watch a new connection: {e}");
            return;
        }
        let id = token.0 as u64;
        self.events.connected(id, stream.endpoints());
        self.connections.insert(
            token,
            Connection {
                id,
                stream,
                phase: Phase::Linking(LinkReader::default()),
                since: Instant::now(),
            },
        );
    }

    fn service(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let progress = match conn.advance(&*self.events) {
            Ok(p) => p,
            Err(e) => {
                crate::log_info!("connection {} closed: {e}", conn.id);
                Progress::Closed
            }
        };
        match progress {
            Progress::Closed => self.close(token),
            Progress::Open => {
                if let Phase::Closing { .. } = conn.phase {
                    let _ = self.poll.registry().reregister(
                        &mut conn.stream,
                        token,
                        Interest::WRITABLE,
                    );
                }
            }
        }
    }

    fn expire_slow_links(&mut self) {
        let now = Instant::now();
        let slow: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| now.duration_since(c.since) > LINK_TIMEOUT)
            .map(|(t, _)| *t)
            .collect();
        for token in slow {
            crate::log_warn!("client did not finish its link request in time");
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.events.disconnected(conn.id);
        }
    }
}

impl Connection {
    fn advance(&mut self, events: &dyn ConnectionEvents) -> io::Result<Progress> {
        loop {
            match &mut self.phase {
                Phase::Linking(reader) => {
                    let mut buf = [0u8; 512];
                    let want = reader.wanted().min(buf.len());
                    let n = match self.stream.read(&mut buf[..want]) {
                        Ok(0) => return Ok(Progress::Closed),
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Progress::Open),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    let answer = match reader.feed(&buf[..n]) {
                        Ok(None) => continue,
                        Ok(Some(request)) => events.link_request(self.id, &request),
                        Err(error) => {
                            crate::log_warn!("bad link request from a client: {error:?}");
                            error
                        }
                    };
                    self.phase = Phase::Closing {
                        out: encode_link_error(answer),
                        sent: 0,
                    };
                }
                Phase::Closing { out, sent } => {
                    match self.stream.write(&out[*sent..]) {
                        Ok(n) => *sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Progress::Open),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                    if *sent == out.len() {
                        return Ok(Progress::Closed);
                    }
                }
            }
        }
    }
}
