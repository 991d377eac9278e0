//! The reactor: one thread that owns the listening sockets and every client socket.
//!
//! It reads, links, feeds channel state machines and writes their output. It never
//! calls QEMU: lifecycle events and input go through the `Hub`, which forwards them to
//! QEMU's main loop.

use super::auth::KeyPool;
use super::link::{result, Link, ServerCaps, Step};
use super::listener::Listener;
use super::records::MessageBoundaries;
use super::sasl::SecurityLayer;
use super::stream::{Endpoints, Stream};
use super::tls::TlsAcceptor;
use super::websocket::{self, WebSocket};
use crate::channel::display::DISPLAY_UNSENT;
use crate::channel::{handle_base, Channel, Outbox, OUTBOX_HIGH_WATER};
use crate::proto::caps::{common, Caps};
use crate::proto::frame::{Deframer, HeaderKind};
use crate::proto::link::{LinkError, LinkMess};
use crate::proto::msg::channel as channel_type;

/// Kernel send buffer of a display channel's socket (the kernel doubles it).
const DISPLAY_SEND_QUEUE: usize = 128 << 10;
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// More simultaneous connections than any real session needs; beyond it new ones are
/// refused so a hostile peer cannot exhaust QEMU's file descriptors.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// A client that has not finished linking by then is dropped.
pub(crate) const LINK_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one source address may have in the link handshake at once; past it the
/// oldest of them is dropped, so a slowloris from one address cannot take the slots
/// (`MAX_CONNECTIONS`) of everyone else. A session links at most 8 channels at once.
pub(crate) const MAX_UNLINKED_PER_SOURCE: usize = 16;

/// Past this much unsent output the reactor stops reading a connection's input until the
/// client has read some: replies (ATTACH_CHANNELS, pings, mouse modes...) then cannot pile
/// up in QEMU's memory while a client sends requests and never reads. Channels stop
/// producing optional output at `OUTBOX_HIGH_WATER`, and the largest message they queue
/// past that check (a 512 KiB pixel band, one video frame) fits in the headroom, so a
/// client that reads never has its input paused.
pub(crate) const OUTPUT_CAP: usize = OUTBOX_HIGH_WATER + (2 << 20);
/// Bytes read from one connection per reactor turn, so one fast sender cannot keep the
/// reactor from other clients, link timeouts and shutdown.
pub(crate) const READ_BUDGET: usize = 256 << 10;
/// Times per reactor turn a connection whose output drained is produced again at once
/// (`Channel::produce` is due when its output drained; nothing else would wake a
/// channel that paused on its own backlog, like a spicevmc channel's device). Past
/// it the connection is serviced again next turn.
const PRODUCE_BUDGET: u8 = 4;

const WAKER: Token = Token(0);
const FIRST_LISTENER: usize = 1;
const FIRST_CONNECTION: usize = 16;

/// A linked channel, as the hub hands it back.
pub(crate) struct Opened {
    pub channel: Box<dyn Channel>,
    /// The client session (main channel connection id) it belongs to.
    pub session_id: u32,
}

/// The server side the reactor reports to.
pub(crate) trait Hub: Send + Sync + 'static {
    fn connected(&self, conn: u64, endpoints: Endpoints);
    fn disconnected(&self, conn: u64);
    /// May this channel be linked at all (over TLS if `tls`), and with which caps?
    fn check_link(&self, request: &LinkMess, tls: bool) -> Result<ServerCaps, LinkError>;
    /// Checks the password (unless the host vouched for the client: `skip_auth`) and
    /// creates the channel (`channel_event` INITIALIZED).
    fn open(
        &self,
        conn: u64,
        request: &LinkMess,
        password: &[u8],
        skip_auth: bool,
    ) -> Result<Opened, LinkError>;
    /// Gives the hub the function that wakes the reactor to produce output.
    fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>);
}

pub(crate) enum Command {
    /// A socket QEMU handed us (`spice_server_add_client`); with `skip_auth` its client
    /// links without a ticket.
    AddClient {
        stream: Stream,
        skip_auth: bool,
    },
    /// Close every client connection (`disconnect_if_connected`).
    DisconnectAll,
    Shutdown,
}

/// Handle owned by the server; `shutdown` joins the thread.
pub(crate) struct Reactor {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    /// Makes the links' ticket keys ahead (on a thread only while it refills).
    keys: KeyPool,
}

impl Reactor {
    /// `prepare_thread` runs first on the reactor's thread.
    pub(crate) fn start(
        listeners: Vec<Listener>,
        hub: Arc<dyn Hub>,
        prepare_thread: fn(),
    ) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let produce = Arc::new(AtomicBool::new(false));
        {
            let (waker, produce) = (waker.clone(), produce.clone());
            hub.set_wake(Arc::new(move || {
                if !produce.swap(true, Ordering::AcqRel) {
                    let _ = waker.wake();
                }
            }));
        }
        let (commands, inbox) = crossbeam_channel::unbounded();
        let keys = KeyPool::new(prepare_thread);
        let mut state = State {
            poll,
            listeners: Vec::new(),
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            hub,
            inbox,
            produce,
            unfinished: Vec::new(),
            keys: keys.clone(),
        };
        for (i, l) in listeners.into_iter().enumerate() {
            let token = Token(FIRST_LISTENER + i);
            let mut l = match l {
                Listener::Tcp(l) => MioListener::Tcp(mio::net::TcpListener::from_std(l)),
                Listener::Unix(l) => MioListener::Unix(mio::net::UnixListener::from_std(l)),
                Listener::Tls(l, acceptor) => {
                    MioListener::Tls(mio::net::TcpListener::from_std(l), acceptor)
                }
            };
            match &mut l {
                MioListener::Tcp(l) | MioListener::Tls(l, _) => {
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
                prepare_thread();
                state.run();
            })?;
        Ok(Reactor {
            commands,
            waker,
            thread: Some(thread),
            keys,
        })
    }

    pub(crate) fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Stops the thread and closes every socket it owns.
    pub(crate) fn shutdown(mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::log_error!("the reactor thread panicked");
            }
        }
        self.keys.stop();
    }
}

enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
    Tls(mio::net::TcpListener, TlsAcceptor),
}

impl MioListener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            MioListener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            MioListener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            MioListener::Tls(l, acceptor) => {
                let (s, _) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tls(Box::new(acceptor.accept(s)?)))
            }
        }
    }
}

struct Linked {
    deframer: Deframer,
    outbox: Outbox,
    channel: Box<dyn Channel>,
    session_id: u32,
    channel_type: u8,
    header: HeaderKind,
}

enum Phase {
    Linking(Box<Link>, Vec<u8>),
    /// Sending the final answer, then closing.
    Closing(Vec<u8>),
    Open(Box<Linked>),
}

struct Connection {
    id: u64,
    stream: Stream,
    /// QEMU vouched for this client (`add_client` with `skip_auth`): no ticket check.
    skip_auth: bool,
    phase: Phase,
    since: Instant,
    writable_interest: bool,
    /// The first bytes were looked at: a `GET` makes this a WebSocket connection.
    sniffed: bool,
    /// TLS or WebSocket once linked: writes end at message boundaries (`records.rs`).
    boundaries: Option<MessageBoundaries>,
    /// Bytes this connection may still read in this turn (`READ_BUDGET` per turn).
    read_budget: usize,
    /// Drained outputs this connection may still produce again in this turn.
    produce_budget: u8,
    /// The peer's address, for the per-source limits (none for UNIX sockets).
    source: Option<IpAddr>,
    /// The SASL security layer every byte goes through once SASL negotiated one.
    sasl_layer: Option<Box<SecurityLayer>>,
}

struct State {
    poll: Poll,
    listeners: Vec<MioListener>,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    hub: Arc<dyn Hub>,
    inbox: Receiver<Command>,
    produce: Arc<AtomicBool>,
    /// Connections that used up their read budget with input left: serviced next turn.
    unfinished: Vec<Token>,
    keys: KeyPool,
}

/// What servicing a connection decided.
enum Outcome {
    Keep,
    Close,
    /// A main channel of this session opened: other sessions' connections must go.
    MainOpened(u32),
    /// The first bytes (given) start an HTTP request: speak WebSocket from here on.
    WebSocket(Vec<u8>),
}

impl State {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
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
            self.service_unfinished();
            if !self.drain_commands() {
                break;
            }
            if self.produce.swap(false, Ordering::AcqRel) {
                let tokens: Vec<Token> = self.connections.keys().copied().collect();
                for token in tokens {
                    self.service(token);
                }
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
                Command::AddClient { stream, skip_auth } => self.adopt(stream, skip_auth),
                Command::DisconnectAll => {
                    let tokens: Vec<Token> = self.connections.keys().copied().collect();
                    tokens.into_iter().for_each(|t| self.close(t));
                }
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
                Ok(stream) => self.adopt(stream, false),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    crate::log_warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn adopt(&mut self, mut stream: Stream, skip_auth: bool) {
        let source = stream.endpoints().peer.map(|a| a.ip());
        self.make_room_for(source);
        if self.connections.len() >= MAX_CONNECTIONS {
            crate::log_warn!("refusing a connection: {MAX_CONNECTIONS} already open");
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = base_interest(&stream);
        if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
            crate::log_warn!("cannot watch a new connection: {e}");
            return;
        }
        let id = token.0 as u64;
        self.hub.connected(id, stream.endpoints());
        let conn = Connection {
            id,
            stream,
            skip_auth,
            phase: Phase::Linking(
                Box::new(Link::with_keys(self.keys.clone()).vouched(skip_auth)),
                Vec::new(),
            ),
            since: Instant::now(),
            writable_interest: interest.is_writable(),
            sniffed: false,
            boundaries: None,
            read_budget: READ_BUDGET,
            produce_budget: PRODUCE_BUDGET,
            source,
            sasl_layer: None,
        };
        self.connections.insert(token, conn);
    }

    fn service(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let hub = &*self.hub;
        let advanced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.advance(hub)));
        let outcome = match advanced {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                crate::log_info!("connection {} closed: {e}", conn.id);
                Outcome::Close
            }
            // A channel's bug ends its connection, not the reactor (and SPICE with it).
            Err(_) => {
                crate::log_error!("connection {} closed: its channel panicked", conn.id);
                Outcome::Close
            }
        };
        let spent = conn.read_budget == 0 || conn.produce_budget == 0;
        if spent && !self.unfinished.contains(&token) {
            self.unfinished.push(token);
        }
        match outcome {
            Outcome::Close => self.close(token),
            Outcome::Keep => self.update_interest(token),
            Outcome::WebSocket(request_start) => {
                if let Some(mut conn) = self.connections.remove(&token) {
                    // Same socket, same registration: only the framing changes.
                    conn.stream =
                        Stream::WebSocket(Box::new(WebSocket::new(conn.stream, &request_start)));
                    self.connections.insert(token, conn);
                    self.service(token);
                }
            }
            Outcome::MainOpened(session) => {
                self.update_interest(token);
                // One client at a time, as spice-server without SPICE_DEBUG_ALLOW_MC.
                let others: Vec<Token> = self
                    .connections
                    .iter()
                    .filter(|(_, c)| matches!(&c.phase, Phase::Open(l) if l.session_id != session))
                    .map(|(t, _)| *t)
                    .collect();
                others.into_iter().for_each(|t| self.close(t));
            }
        }
    }

    /// Before a connection from `source` is adopted: drops the oldest unlinked connection
    /// of that source when it has `MAX_UNLINKED_PER_SOURCE` already, and when every slot
    /// is taken, the oldest unlinked connection of the source holding the most.
    fn make_room_for(&mut self, source: Option<IpAddr>) {
        let mut unlinked: HashMap<Option<IpAddr>, Vec<(Instant, Token)>> = HashMap::new();
        for (token, c) in &self.connections {
            if !matches!(c.phase, Phase::Open(_)) {
                unlinked
                    .entry(c.source)
                    .or_default()
                    .push((c.since, *token));
            }
        }
        let oldest = |list: &Vec<(Instant, Token)>| list.iter().min().map(|&(_, t)| t);
        let mut victim = None;
        if let Some(list) = unlinked.get(&source) {
            if source.is_some() && list.len() >= MAX_UNLINKED_PER_SOURCE {
                crate::log_info!(
                    "too many connections linking from {source:?}: dropping the oldest"
                );
                victim = oldest(list);
            }
        }
        if victim.is_none() && self.connections.len() >= MAX_CONNECTIONS {
            victim = unlinked.values().max_by_key(|l| l.len()).and_then(oldest);
        }
        if let Some(token) = victim {
            self.close(token);
        }
    }

    /// Gives every connection a fresh read budget and services again those that stopped
    /// on theirs last turn (their socket may not signal again: mio is edge-triggered).
    fn service_unfinished(&mut self) {
        for conn in self.connections.values_mut() {
            conn.read_budget = READ_BUDGET;
            conn.produce_budget = PRODUCE_BUDGET;
        }
        for token in std::mem::take(&mut self.unfinished) {
            self.service(token);
        }
    }

    fn update_interest(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let want_write =
            conn.pending_output() > 0 || conn.stream.is_tls() || conn.stream.buffered_output();
        if want_write != conn.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, token, interest)
                .is_ok()
            {
                conn.writable_interest = want_write;
            }
        }
    }

    /// How long the next poll may sleep: not at all while a connection has input left
    /// over, until the first link deadline while a connection is linking, and otherwise
    /// until a socket, the waker or a command wakes it (an idle server has no timer).
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.unfinished.is_empty() {
            return Some(Duration::ZERO);
        }
        self.connections
            .values()
            .filter(|c| !matches!(c.phase, Phase::Open(_)))
            .map(|c| (c.since + LINK_TIMEOUT).saturating_duration_since(now))
            .min()
            // Wake just past the deadline, so `expire_slow_links` sees it passed.
            .map(|left| left + Duration::from_millis(1))
    }

    fn expire_slow_links(&mut self) {
        let now = Instant::now();
        let slow: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                !matches!(c.phase, Phase::Open(_)) && now.duration_since(c.since) > LINK_TIMEOUT
            })
            .map(|(t, _)| *t)
            .collect();
        for token in slow {
            crate::log_warn!("client did not finish linking in time");
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        let Some(mut conn) = self.connections.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let mut main_of = None;
        if let Phase::Open(linked) = &mut conn.phase {
            linked.channel.closed();
            if linked.channel_type == channel_type::MAIN {
                main_of = Some(linked.session_id);
            }
        }
        self.hub.disconnected(conn.id);
        // The main channel going away ends the client's whole session.
        if let Some(session) = main_of {
            let rest: Vec<Token> = self
                .connections
                .iter()
                .filter(|(_, c)| matches!(&c.phase, Phase::Open(l) if l.session_id == session))
                .map(|(t, _)| *t)
                .collect();
            rest.into_iter().for_each(|t| self.close(t));
        }
    }
}

/// What a new connection is watched for. A TLS stream is watched both ways for its whole
/// life: OpenSSL may need to write to make progress on a read (the handshake, TLS 1.3
/// tickets and key updates) and to read to make progress on a write. Edge-triggered, an
/// idle writable socket costs no wake-ups.
fn base_interest(stream: &Stream) -> Interest {
    if stream.is_tls() {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl Connection {
    /// Reads into `buf` within this turn's budget. `Ok(None)` when the budget is spent.
    fn read_budgeted(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.read_budget == 0 {
            return Ok(None);
        }
        let want = buf.len().min(self.read_budget);
        let n = match &mut self.sasl_layer {
            Some(layer) => layer.read(&mut self.stream, &mut buf[..want])?,
            None => self.stream.read(&mut buf[..want])?,
        };
        self.read_budget -= n;
        Ok(Some(n))
    }

    /// True while the client leaves too much of our output unread: its input waits.
    fn output_over_cap(&self) -> bool {
        self.pending_output() > OUTPUT_CAP
    }

    fn pending_output(&self) -> usize {
        let layer = self.sasl_layer.as_ref().map_or(0, |l| l.pending());
        layer
            + match &self.phase {
                Phase::Linking(_, out) | Phase::Closing(out) => out.len(),
                Phase::Open(l) => l.outbox.pending(),
            }
    }

    /// Writes what is queued; Ok(true) when everything went out.
    fn flush(&mut self) -> io::Result<bool> {
        if let Some(layer) = &mut self.sasl_layer {
            if !layer.flush(&mut self.stream)? {
                return Ok(false);
            }
        }
        loop {
            let buf: &[u8] = match &self.phase {
                Phase::Linking(_, out) | Phase::Closing(out) => out,
                Phase::Open(l) => l.outbox.unwritten(),
            };
            if buf.is_empty() {
                // What the transport holds back (WebSocket frame starts, pongs).
                return match self.stream.flush() {
                    Ok(()) => Ok(true),
                    Err(e) if would_block(&e) => Ok(false),
                    Err(e) => Err(e),
                };
            }
            let limit = match (&self.phase, &mut self.boundaries) {
                (Phase::Open(_), Some(b)) => b.limit(buf),
                _ => buf.len(),
            };
            let written = match &mut self.sasl_layer {
                Some(layer) => layer.write(&mut self.stream, &buf[..limit]),
                None => self.stream.write(&buf[..limit]),
            };
            let n = match written {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "peer closed")),
                Ok(n) => n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match &mut self.phase {
                Phase::Linking(_, out) | Phase::Closing(out) => {
                    out.drain(..n);
                }
                Phase::Open(l) => {
                    l.outbox.consumed(n);
                    if let Some(b) = &mut self.boundaries {
                        b.wrote(n);
                    }
                }
            }
        }
    }

    /// Reads, handles and writes until the socket would block (or the connection ends).
    fn advance(&mut self, hub: &dyn Hub) -> io::Result<Outcome> {
        let mut outcome = Outcome::Keep;
        loop {
            let flushed = self.flush()?;
            let step = match &self.phase {
                Phase::Closing(_) => {
                    return Ok(if flushed {
                        Outcome::Close
                    } else {
                        Outcome::Keep
                    })
                }
                Phase::Linking(..) => self.advance_linking(hub)?,
                Phase::Open(_) => self.advance_open()?,
            };
            match step {
                Some(Outcome::MainOpened(session)) => outcome = Outcome::MainOpened(session),
                Some(Outcome::WebSocket(start)) => return Ok(Outcome::WebSocket(start)),
                Some(Outcome::Close) => return Ok(Outcome::Close),
                Some(Outcome::Keep) => return Ok(outcome),
                None => {}
            }
        }
    }

    /// One read of the link handshake. `Some(Keep)` = wait for more input.
    fn advance_linking(&mut self, hub: &dyn Hub) -> io::Result<Option<Outcome>> {
        let tls = self.stream.is_tls();
        let Phase::Linking(link, _) = &self.phase else {
            return Ok(None);
        };
        let mut buf = [0u8; 512];
        let want = link.wanted().min(buf.len());
        let n = match self.read_budgeted(&mut buf[..want]) {
            Ok(None) => return Ok(Some(Outcome::Keep)),
            Ok(Some(0)) => {
                crate::log_warn!("client hung up in the middle of the link handshake");
                return Ok(Some(Outcome::Close));
            }
            Ok(Some(n)) => n,
            Err(e) if would_block(&e) => return Ok(Some(Outcome::Keep)),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(e),
        };
        if !std::mem::replace(&mut self.sniffed, true)
            && !self.stream.is_websocket()
            && websocket::looks_like_http(&buf[..n])
        {
            return Ok(Some(Outcome::WebSocket(buf[..n].to_vec())));
        }
        let Phase::Linking(link, out) = &mut self.phase else {
            return Ok(None);
        };
        let mut step = link.feed(&buf[..n], |r| hub.check_link(r, tls));
        if step == Step::StartSasl {
            let ends = self.stream.endpoints();
            let tls_bits = self.stream.tls_bits();
            let backend = super::sasl::new_backend(ends.local, ends.peer, tls_bits);
            step = link.start_sasl(backend, tls_bits.is_none());
        }
        let mut skip_ticket = self.skip_auth;
        if let Step::SaslAccepted(bytes) = step {
            // The answer to the last step goes out as it is; the layer wraps the rest.
            out.extend(bytes);
            let first = std::mem::take(out);
            match link.take_security_layer(first.clone()) {
                Some(layer) => self.sasl_layer = Some(Box::new(layer)),
                None => *out = first,
            }
            skip_ticket = true;
            step = Step::Authenticate(Vec::new());
        }
        match step {
            Step::Continue | Step::StartSasl | Step::SaslAccepted(_) => {}
            Step::Send(bytes) => out.extend(bytes),
            Step::Fail(bytes) => {
                out.extend(bytes);
                self.phase = Phase::Closing(std::mem::take(out));
            }
            Step::Authenticate(password) => {
                let request = link
                    .request()
                    .cloned()
                    .ok_or_else(|| io::Error::other("link without request"))?;
                match hub.open(self.id, &request, &password, skip_ticket) {
                    Err(e) => {
                        out.extend(result(e));
                        self.phase = Phase::Closing(std::mem::take(out));
                    }
                    Ok(opened) => {
                        out.extend(result(LinkError::Ok));
                        let limit = match request.channel_type {
                            channel_type::DISPLAY => Some(DISPLAY_SEND_QUEUE),
                            _ => opened.channel.send_queue_limit(),
                        };
                        if let Some(bytes) = limit {
                            self.stream.limit_send_queue(bytes);
                        }
                        if request.channel_type == channel_type::DISPLAY {
                            self.stream.limit_unsent(DISPLAY_UNSENT);
                        }
                        let link_result = std::mem::take(out);
                        let linked = start_channel(&request, opened, &link_result);
                        if self.stream.is_tls() || self.stream.is_websocket() {
                            self.boundaries =
                                Some(MessageBoundaries::new(linked.header, link_result.len()));
                        }
                        let main = (linked.channel_type == channel_type::MAIN)
                            .then_some(linked.session_id);
                        self.phase = Phase::Open(Box::new(linked));
                        if let Some(session) = main {
                            return Ok(Some(Outcome::MainOpened(session)));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Produces output, then one read of channel messages.
    fn advance_open(&mut self) -> io::Result<Option<Outcome>> {
        if let Phase::Open(linked) = &mut self.phase {
            if linked.channel.finished() {
                return Ok(Some(Outcome::Close));
            }
            if linked.channel_type == channel_type::DISPLAY {
                // The queue in front of a new frame includes the kernel's and the path's.
                linked.outbox.note_send_queue(self.stream.send_queue());
            }
            linked.channel.produce(&mut linked.outbox);
            if let Some(bytes) = linked.outbox.unsent_change() {
                self.stream.limit_unsent(bytes);
            }
        }
        let had_output = self.pending_output() > 0;
        if self.flush()? && had_output && self.produce_budget > 0 {
            // The output drained: the channel may have more to queue now.
            self.produce_budget -= 1;
            return Ok(None);
        }
        if self.output_over_cap() {
            return Ok(Some(Outcome::Keep));
        }
        // A channel whose device is full leaves the client's bytes in the socket; it
        // wakes the reactor when it takes input again (edge-triggered: nothing else would).
        if let Phase::Open(linked) = &mut self.phase {
            if !linked.channel.wants_input() {
                return Ok(Some(Outcome::Keep));
            }
        }
        let mut buf = [0u8; 16384];
        let n = match self.read_budgeted(&mut buf) {
            Ok(None) => return Ok(Some(Outcome::Keep)),
            Ok(Some(0)) => return Ok(Some(Outcome::Close)),
            Ok(Some(n)) => n,
            Err(e) if would_block(&e) => return Ok(Some(Outcome::Keep)),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(e),
        };
        let Phase::Open(linked) = &mut self.phase else {
            return Ok(None);
        };
        linked.deframer.push(&buf[..n]);
        loop {
            let msg = match linked.deframer.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(None),
                Err(e) => {
                    crate::log_warn!(
                        "client sent a {}-byte message of type {}: closing",
                        e.size,
                        e.msg_type
                    );
                    return Ok(Some(Outcome::Close));
                }
            };
            if msg.msg_type == crate::proto::msg::base::C_PONG {
                match crate::proto::main::parse_pong(&msg.body) {
                    Ok((id, timestamp)) => linked.channel.on_pong(id, timestamp),
                    Err(_) => return Ok(Some(Outcome::Close)),
                }
                continue;
            }
            let handled =
                handle_base(msg.msg_type, &msg.body, &mut linked.outbox).and_then(|base| {
                    if base {
                        Ok(())
                    } else {
                        linked
                            .channel
                            .on_message(msg.msg_type, &msg.body, &mut linked.outbox)
                    }
                });
            if let Err(e) = handled {
                crate::log_warn!("channel type {} closed: {e}", linked.channel_type);
                return Ok(Some(Outcome::Close));
            }
        }
    }
}

fn start_channel(request: &LinkMess, opened: Opened, link_result: &[u8]) -> Linked {
    let mini = Caps(request.common_caps.clone()).has(common::MINI_HEADER);
    let header = if mini {
        HeaderKind::Mini
    } else {
        HeaderKind::Full
    };
    let mut channel = opened.channel;
    let mut outbox = Outbox::new(header);
    // The link result must precede the first message: it goes out through the
    // outbox as raw bytes (it is not a framed message).
    outbox.push_raw(link_result);
    channel.start(&mut outbox);
    Linked {
        deframer: Deframer::new(header, channel.max_body()),
        outbox,
        channel,
        session_id: opened.session_id,
        channel_type: request.channel_type,
        header,
    }
}

#[cfg(test)]
#[path = "reactor_tests.rs"]
mod tests;
