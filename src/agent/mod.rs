//! The guest agent (vdagent) as spice-server serves it over the main channel: one hub
//! per server, shared by every client's main channel (through an `AgentClient`) and by
//! the vdagent char device (through the `DeviceSink` it attaches).
//!
//! Client to agent: each AGENT_DATA is one piece; the client holds a window of
//! `WINDOW` tokens, one per piece, given back once the device took the piece. Pieces
//! pass the filter (copy-paste and file-transfer settings; MONITORS_CONFIG goes to
//! QEMU's displays) and go to the device as `VDIChunkHeader` chunks; one client writes
//! a given message at a time, others wait their turn (bounded by their windows).
//!
//! Agent to client: the device's chunks are cut into pieces of at most 2048 bytes,
//! filtered, and queued to every client that started the agent. Device reads pause
//! (`DeviceSink::room` is 0) while a client is out of tokens or its queue is full; a
//! client stuck that way past `STUCK_TIMEOUT` is cut off from the agent.
//!
//! While no agent is attached the hub answers for it (capabilities, monitor configs),
//! so clients still send their window size.
//!
//! Locking: the hub's mutex is taken by QEMU's thread (device callbacks) and by the
//! reactor (clients). It may be held while calling `GuestPort` methods (the device never
//! holds its own lock across a call into us), except `attach`, called without it.

mod chunks;
mod filter;
#[cfg(test)]
mod tests;

use crate::channel::Outbox;
use crate::proto::agent::{self, AgentReader, DisplayInfo, HEADER, MAX_DATA_SIZE};
use crate::proto::main::MainMessage;
use crate::server::char_device::{DeviceSink, GuestPort};
use chunks::ChunkReader;
use filter::{Filter, Policy, Verdict};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Tokens each side holds for AGENT_DATA (`REDS_AGENT_WINDOW_SIZE`).
pub(crate) const WINDOW: u32 = 10;
/// What one client may have queued from the agent (pieces cost their length plus
/// `PIECE_COST`), before device reads pause.
const QUEUE_BOUND: usize = 256 << 10;
const PIECE_COST: usize = 64;
/// A device byte costs at most this much queue (a 9-byte chunk makes a 1-byte piece).
const BYTE_COST: usize = 8;
/// How much to read while nobody is reading the agent (the bytes are dropped).
const DRAIN: usize = 64 << 10;
/// Agent data moves into a main channel's outbox while it holds less than this.
const OUTBOX_BOUND: usize = 256 << 10;
/// A client out of tokens (or not reading) this long is cut off from the agent, as
/// spice-server's `RED_CHAR_DEVICE_WAIT_TOKENS_TIMEOUT`.
const STUCK_TIMEOUT: Duration = Duration::from_secs(30);
/// `VDAgentMonitorsConfig` with 256 monitors and their physical sizes, as spice-server.
const MAX_MONITORS_CONFIG: usize = 8 + 256 * (20 + 4);
/// A client that leaves mid-message has the rest padded with zeros up to this size so the
/// agent stays in step; longer remainders are not padded (logged).
const PAD_LIMIT: u32 = 1 << 20;
/// Mouse states wait (the newest kept) while the device holds this many bytes.
const MOUSE_QUEUE_BOUND: usize = 16 << 10;

/// What goes to one client, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ToClient {
    Connected,
    ConnectedTokens(u32),
    Disconnected,
    Data(Vec<u8>),
}

struct Client {
    /// The client understands AGENT_CONNECTED_TOKENS (its window is reset on connect).
    tokens_cap: bool,
    /// It sent AGENT_START for the current agent.
    started: bool,
    /// AGENT_DATA we may still send it (its grant: spice-gtk grants `~0`).
    send_tokens: u64,
    out: VecDeque<ToClient>,
    queued_cost: usize,
    /// Tokens to give back with the next AGENT_TOKEN.
    give_back: u32,
    /// Pieces it sent that the device has not taken yet.
    outstanding: u32,
    filter: Filter,
    /// Chunks for the device waiting for this client's turn: (bytes, ends its message).
    to_device: VecDeque<(Vec<u8>, bool)>,
    /// It is receiving a message from the agent that spans pieces.
    rx_mid: bool,
    stuck_since: Option<Instant>,
    monitors: Vec<u8>,
    fallback: AgentReader,
    /// Cut off from the agent (it stopped taking data): hears nothing more from it.
    cut: bool,
}

struct State {
    policy: Policy,
    agent_mouse: bool,
    device: Option<Arc<dyn GuestPort>>,
    /// Bumped on every attach and detach; a sink of an older one is ignored.
    generation: u64,
    /// An agent is there: the device is attached and the guest side open.
    connected: bool,
    /// The agent broke the protocol: its bytes are dropped until it attaches again.
    broken: bool,
    reader: ChunkReader,
    read_filter: Filter,
    /// The agent announced VD_AGENT_CAP_GRAPHICS_DEVICE_INFO.
    graphics_info: bool,
    /// `spice_qxl_set_device_info` per QXL id: (address, first display id, count).
    displays: BTreeMap<u32, (String, u32, u32)>,
    clients: BTreeMap<u64, Client>,
    next_client: u64,
    /// The client whose message is being written to the device.
    writer: Option<u64>,
    /// The last client that wrote (round robin among waiting clients).
    next_writer_after: u64,
    /// A monitors config no display took, for the agent (chunks, sent whole).
    forwarded: Option<Vec<u8>>,
    /// Device write tags of client pieces, and whose they are.
    in_flight: HashMap<u64, u64>,
    next_tag: u64,
    /// We told the device there is no room; it waits for `resume_reading`.
    paused: bool,
    pending_mouse: Option<Vec<u8>>,
    monitors_handler: Option<Arc<dyn Fn(Vec<u8>) + Send + Sync>>,
    mouse_listener: Option<Arc<dyn Fn(bool) + Send + Sync>>,
    stuck_timeout: Duration,
}

/// Work found under the lock and done after it (callbacks into the session).
#[derive(Default)]
#[must_use]
struct After {
    monitors: Vec<Vec<u8>>,
    mouse: Option<bool>,
    wake: bool,
}

pub(crate) struct AgentHub {
    state: Mutex<State>,
    wake: Arc<dyn Fn() + Send + Sync>,
    me: Weak<AgentHub>,
}

impl AgentHub {
    pub(crate) fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Arc<AgentHub> {
        let policy = Policy {
            copy_paste: true,
            file_xfer: true,
            take_monitors_config: true,
        };
        Arc::new_cyclic(|me| AgentHub {
            state: Mutex::new(State {
                policy,
                agent_mouse: true,
                device: None,
                generation: 0,
                connected: false,
                broken: false,
                reader: ChunkReader::default(),
                read_filter: Filter::new(policy, false),
                graphics_info: false,
                displays: BTreeMap::new(),
                clients: BTreeMap::new(),
                next_client: 1,
                writer: None,
                next_writer_after: 0,
                forwarded: None,
                in_flight: HashMap::new(),
                next_tag: 1,
                paused: false,
                pending_mouse: None,
                monitors_handler: None,
                mouse_listener: None,
                stuck_timeout: STUCK_TIMEOUT,
            }),
            wake,
            me: me.clone(),
        })
    }

    /// Where client monitor configs go (QEMU's displays); the session calls
    /// `forward_monitors_config` with one no display took.
    pub(crate) fn set_monitors_handler(&self, handler: Arc<dyn Fn(Vec<u8>) + Send + Sync>) {
        self.state.lock().monitors_handler = Some(handler);
    }

    /// Told whether the agent offers client mouse mode (agent-mouse on and an agent there).
    pub(crate) fn set_mouse_listener(&self, listener: Arc<dyn Fn(bool) + Send + Sync>) {
        self.state.lock().mouse_listener = Some(listener);
    }

    /// `agent-mouse`, `disable-copy-paste` (false), `disable-agent-file-xfer` (false).
    pub(crate) fn set_flags(&self, agent_mouse: bool, copy_paste: bool, file_xfer: bool) {
        let mut after = After::default();
        {
            let mut s = self.state.lock();
            s.policy.copy_paste = copy_paste;
            s.policy.file_xfer = file_xfer;
            s.read_filter.policy = s.policy;
            let policy = s.policy;
            for c in s.clients.values_mut() {
                c.filter.policy = policy;
            }
            if s.agent_mouse != agent_mouse {
                s.agent_mouse = agent_mouse;
                after.mouse = Some(s.mouse_offered());
            }
        }
        self.finish(after);
    }

    /// The vdagent char device QEMU added (the guest opened its port): an agent is there.
    pub(crate) fn attach_device(&self, port: Arc<dyn GuestPort>) {
        let (old, sink) = {
            let mut s = self.state.lock();
            s.generation += 1;
            let old = s.device.replace(port.clone());
            if s.connected {
                s.agent_gone("replaced by another vdagent device");
            }
            s.agent_up();
            let sink: Arc<dyn DeviceSink> = Arc::new(DeviceSide {
                hub: self.me.clone(),
                generation: s.generation,
            });
            (old, sink)
        };
        crate::log_info!("guest agent attached");
        if let Some(old) = old.filter(|o| !Arc::ptr_eq(o, &port)) {
            old.attach(None);
        }
        port.attach(Some(sink));
        port.set_client_connected(true);
        let offered = self.state.lock().mouse_offered();
        self.finish(After {
            mouse: Some(offered),
            wake: true,
            ..After::default()
        });
    }

    /// QEMU removed the vdagent device (the guest closed its port).
    pub(crate) fn detach_device(&self) {
        let old = {
            let mut s = self.state.lock();
            s.generation += 1;
            if s.connected {
                s.agent_gone("detached");
            }
            s.device.take()
        };
        if let Some(old) = old {
            crate::log_info!("guest agent detached");
            old.attach(None);
        }
        let offered = self.state.lock().mouse_offered();
        self.finish(After {
            mouse: Some(offered),
            wake: true,
            ..After::default()
        });
    }

    /// What `spice_qxl_set_device_info` said about a QXL instance; the agent hears it
    /// when it takes VD_AGENT_GRAPHICS_DEVICE_INFO.
    pub(crate) fn set_device_info(&self, qxl_id: u32, address: String, start: u32, count: u32) {
        let mut s = self.state.lock();
        s.displays.insert(qxl_id, (address, start, count));
        s.send_device_info();
    }

    /// A monitors config no display took: it goes to the agent, as the client meant.
    pub(crate) fn forward_monitors_config(&self, config: Vec<u8>) {
        let mut s = self.state.lock();
        if !s.connected {
            return;
        }
        let message = agent::encode(agent::MONITORS_CONFIG, &config);
        let mut chunks = Vec::new();
        for piece in message.chunks(MAX_DATA_SIZE) {
            chunks.extend(agent::chunk(agent::PORT_CLIENT, piece));
        }
        s.forwarded = Some(chunks);
        s.pump();
    }

    /// A client-mode mouse event (buttons in the agent's layout); false when no agent
    /// takes it (the tablet does).
    pub(crate) fn mouse_state(&self, x: u32, y: u32, buttons: u32, display_id: u8) -> bool {
        let mut s = self.state.lock();
        if !s.mouse_offered() {
            return false;
        }
        let msg = agent::chunk(
            agent::PORT_SERVER,
            &agent::mouse_state(x, y, buttons, display_id),
        );
        let Some(port) = s.device.clone() else {
            return false;
        };
        if port.queued_to_guest() > MOUSE_QUEUE_BOUND {
            s.pending_mouse = Some(msg);
        } else {
            s.pending_mouse = None;
            port.to_guest(msg, 0);
        }
        true
    }

    /// A main channel joined; `tokens_cap` is its AGENT_CONNECTED_TOKENS capability.
    pub(crate) fn join(&self, tokens_cap: bool) -> AgentClient {
        let mut s = self.state.lock();
        let id = s.next_client;
        s.next_client += 1;
        let filter = Filter::new(s.policy, true);
        s.clients.insert(
            id,
            Client {
                tokens_cap,
                started: false,
                send_tokens: 0,
                out: VecDeque::new(),
                queued_cost: 0,
                give_back: 0,
                outstanding: 0,
                filter,
                to_device: VecDeque::new(),
                rx_mid: false,
                stuck_since: None,
                monitors: Vec::new(),
                fallback: AgentReader::default(),
                cut: false,
            },
        );
        AgentClient {
            hub: self.me.upgrade().expect("the hub is alive while called"),
            id,
        }
    }

    fn finish(&self, after: After) {
        let (handler, listener) = {
            let s = self.state.lock();
            (s.monitors_handler.clone(), s.mouse_listener.clone())
        };
        if let Some(handler) = handler {
            for config in after.monitors {
                handler(config);
            }
        }
        if let (Some(offered), Some(listener)) = (after.mouse, listener) {
            listener(offered);
        }
        if after.wake {
            (self.wake)();
        }
    }

    #[cfg(test)]
    fn set_stuck_timeout(&self, timeout: Duration) {
        self.state.lock().stuck_timeout = timeout;
    }
}

/// One client's main channel, as the hub sees it. Dropping it is the client leaving.
pub(crate) struct AgentClient {
    hub: Arc<AgentHub>,
    id: u64,
}

impl AgentClient {
    /// INIT's agent fields: an agent is always "connected" (the hub answers while none
    /// is attached), with `WINDOW` tokens.
    pub(crate) fn init(&self) -> (bool, u32) {
        (true, WINDOW)
    }

    /// C_AGENT_START: the client talks to the agent and grants us `tokens`.
    pub(crate) fn start(&self, tokens: u32) {
        let mut s = self.hub.state.lock();
        let connected = s.connected;
        let Some(c) = s.clients.get_mut(&self.id) else {
            return;
        };
        c.started = true;
        c.send_tokens = u64::from(tokens);
        c.filter = Filter::new(c.filter.policy, false);
        if connected {
            s.send_device_info();
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
        (self.hub.wake)();
    }

    /// C_AGENT_TOKEN: more AGENT_DATA may go to the client.
    pub(crate) fn tokens(&self, tokens: u32) {
        let mut s = self.hub.state.lock();
        if let Some(c) = s.clients.get_mut(&self.id) {
            c.send_tokens = c.send_tokens.saturating_add(u64::from(tokens));
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
        (self.hub.wake)();
    }

    /// C_AGENT_DATA. An error means the client broke the protocol: drop it.
    pub(crate) fn data(&self, piece: &[u8]) -> Result<(), String> {
        let mut after = After {
            wake: true,
            ..After::default()
        };
        let result = self
            .hub
            .state
            .lock()
            .client_data(self.id, piece, &mut after);
        self.hub.finish(after);
        result
    }

    /// Queues what is due for the client: connect/disconnect notices, agent data as far
    /// as its tokens and `OUTBOX_BOUND` allow, and tokens given back.
    pub(crate) fn produce(&self, out: &mut Outbox) {
        let mut s = self.hub.state.lock();
        if let Some(c) = s.clients.get_mut(&self.id) {
            while let Some(front) = c.out.front() {
                if let ToClient::Data(_) = front {
                    if c.send_tokens == 0 || out.pending() >= OUTBOX_BOUND {
                        break;
                    }
                }
                match c.out.pop_front().expect("front exists") {
                    ToClient::Connected => out.send(&MainMessage::AgentConnected),
                    ToClient::ConnectedTokens(n) => out.send(&MainMessage::AgentConnectedTokens(n)),
                    ToClient::Disconnected => out.send(&MainMessage::AgentDisconnected),
                    ToClient::Data(piece) => {
                        c.send_tokens -= 1;
                        c.queued_cost -= piece.len() + PIECE_COST;
                        out.send(&MainMessage::AgentData(&piece));
                    }
                }
            }
            if c.give_back > 0 {
                out.send(&MainMessage::AgentToken(c.give_back));
                c.give_back = 0;
            }
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
    }
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        let resume = {
            let mut s = self.hub.state.lock();
            s.client_left(self.id);
            s.check_resume()
        };
        resume_if(resume);
    }
}

fn resume_if(port: Option<Arc<dyn GuestPort>>) {
    if let Some(port) = port {
        port.resume_reading();
    }
}

/// The hub as one attachment of the device sees it.
struct DeviceSide {
    hub: Weak<AgentHub>,
    generation: u64,
}

impl DeviceSide {
    fn with<R>(&self, f: impl FnOnce(&mut State, &mut After) -> R) -> Option<R> {
        let hub = self.hub.upgrade()?;
        let mut after = After::default();
        let r = {
            let mut s = hub.state.lock();
            if s.generation != self.generation {
                return None;
            }
            f(&mut s, &mut after)
        };
        hub.finish(after);
        Some(r)
    }
}

impl DeviceSink for DeviceSide {
    fn room(&self) -> usize {
        self.with(|s, _| {
            let room = s.room(Instant::now());
            s.paused = room == 0;
            room
        })
        .unwrap_or(DRAIN)
    }

    fn received(&self, data: &[u8]) {
        self.with(|s, after| {
            s.device_bytes(data);
            after.wake = true;
        });
    }

    fn written(&self, tag: u64) {
        self.with(|s, after| {
            if let Some(id) = s.in_flight.remove(&tag) {
                if let Some(c) = s.clients.get_mut(&id) {
                    c.outstanding = c.outstanding.saturating_sub(1);
                    c.give_back += 1;
                    after.wake = true;
                }
            }
            if let (Some(msg), Some(port)) = (s.pending_mouse.take(), s.device.clone()) {
                port.to_guest(msg, 0);
            }
        });
    }

    fn guest_event(&self, opened: bool) {
        self.with(|s, after| {
            match (opened, s.connected) {
                (true, false) => s.agent_up(),
                (false, true) => s.agent_gone("closed by the guest"),
                _ => return,
            }
            after.mouse = Some(s.mouse_offered());
            after.wake = true;
        });
    }

    fn detached(&self) {
        if let Some(hub) = self.hub.upgrade() {
            if hub.state.lock().generation == self.generation {
                hub.detach_device();
            }
        }
    }
}

impl State {
    fn mouse_offered(&self) -> bool {
        self.agent_mouse && self.connected
    }

    /// The agent is there: every client hears AGENT_CONNECTED and starts it anew.
    fn agent_up(&mut self) {
        self.connected = true;
        self.broken = false;
        self.reader.reset();
        self.read_filter = Filter::new(self.policy, false);
        self.graphics_info = false;
        self.writer = None;
        self.paused = false;
        for c in self.clients.values_mut() {
            c.reconnect();
        }
    }

    /// The agent went (or broke the protocol): clients hear AGENT_DISCONNECTED, then
    /// the hub answers for the agent again.
    fn agent_gone(&mut self, why: &str) {
        crate::log_info!("guest agent {why}: clients are told it disconnected");
        self.connected = false;
        self.reader.reset();
        self.writer = None;
        self.forwarded = None;
        self.pending_mouse = None;
        self.in_flight.clear();
        for c in self.clients.values_mut() {
            c.out.retain(|m| !matches!(m, ToClient::Data(_)));
            c.queued_cost = 0;
            c.to_device.clear();
            if !c.cut {
                c.out.push_back(ToClient::Disconnected);
            }
            c.reconnect();
        }
    }

    /// Bytes the device may hand over now.
    fn room(&mut self, now: Instant) -> usize {
        if !self.connected || self.broken {
            return DRAIN;
        }
        let timeout = self.stuck_timeout;
        let mut room = DRAIN;
        for (id, c) in self.clients.iter_mut() {
            if !c.started || c.cut {
                continue;
            }
            let full = c.queued_cost >= QUEUE_BOUND;
            let starved = c.send_tokens == 0 && c.queued_cost > 0;
            if !(full || starved) {
                c.stuck_since = None;
                room = room.min((QUEUE_BOUND - c.queued_cost) / BYTE_COST);
                continue;
            }
            let since = *c.stuck_since.get_or_insert(now);
            if now.duration_since(since) >= timeout {
                crate::log_warn!(
                    "agent client {id} took no agent data for {timeout:?} ({} bytes queued, \
                     {} tokens): cut off from the agent",
                    c.queued_cost,
                    c.send_tokens
                );
                c.cut_off();
                continue;
            }
            room = 0;
        }
        room
    }

    /// After something freed room: the port to resume, if reads were paused.
    fn check_resume(&mut self) -> Option<Arc<dyn GuestPort>> {
        if !self.paused || self.room(Instant::now()) == 0 {
            return None;
        }
        self.paused = false;
        self.device.clone()
    }

    fn device_bytes(&mut self, data: &[u8]) {
        if !self.connected || self.broken {
            return;
        }
        let mut pieces = Vec::new();
        self.reader
            .push(data, |port, piece| pieces.push((port, piece)));
        for (port, mut piece) in pieces {
            match port {
                agent::PORT_CLIENT => {}
                agent::PORT_SERVER => continue,
                other => return self.agent_broke(&format!("a chunk for port {other}")),
            }
            let judged = match self.read_filter.judge(&piece) {
                Ok(j) => j,
                Err(e) => return self.agent_broke(&format!("{e:?}")),
            };
            if judged.verdict != Verdict::Forward {
                continue;
            }
            if judged.starts == Some(agent::ANNOUNCE_CAPABILITIES) {
                self.graphics_info = filter::adjust_capabilities(&mut piece, self.policy);
                self.send_device_info();
            }
            for c in self.clients.values_mut() {
                if !c.started || c.cut {
                    continue;
                }
                let take = judged.starts.is_some() || c.rx_mid;
                c.rx_mid = if judged.starts.is_some() {
                    !judged.ends
                } else {
                    c.rx_mid && !judged.ends
                };
                if take {
                    c.queued_cost += piece.len() + PIECE_COST;
                    c.out.push_back(ToClient::Data(piece.clone()));
                }
            }
        }
    }

    /// The agent's stream cannot be followed any more.
    fn agent_broke(&mut self, what: &str) {
        crate::log_warn!("guest agent sent {what}: its data is ignored until it attaches again");
        self.agent_gone("broke the protocol");
        self.broken = true;
    }

    fn client_data(&mut self, id: u64, piece: &[u8], after: &mut After) -> Result<(), String> {
        let connected = self.connected;
        let policy = self.policy;
        let Some(c) = self.clients.get_mut(&id) else {
            return Ok(());
        };
        if piece.len() > MAX_DATA_SIZE {
            return Err(format!("an agent data piece of {} bytes", piece.len()));
        }
        if !connected || c.cut {
            // Nobody to write to: the hub answers for the agent.
            c.give_back += 1;
            if !c.cut {
                c.answer_for_agent(piece, after);
            }
            return Ok(());
        }
        if c.outstanding >= WINDOW {
            return Err(format!(
                "agent data beyond its {WINDOW} tokens ({} not yet taken by the agent)",
                c.outstanding
            ));
        }
        let judged = c
            .filter
            .judge(piece)
            .map_err(|e| format!("agent data: {e:?}"))?;
        match judged.verdict {
            Verdict::Forward => {
                c.outstanding += 1;
                c.to_device
                    .push_back((agent::chunk(agent::PORT_CLIENT, piece), judged.ends));
                self.pump();
            }
            Verdict::Discard => {
                c.give_back += 1;
                let refused_xfer =
                    judged.starts == Some(agent::FILE_XFER_START) && c.started && !policy.file_xfer;
                if let (true, Some(id)) = (refused_xfer, piece.get(HEADER..HEADER + 4)) {
                    let id = u32::from_le_bytes(id.try_into().expect("4 bytes"));
                    crate::log_info!("file transfer {id} refused: disabled on this server");
                    let status = agent::file_xfer_status(id, agent::FILE_XFER_STATUS_DISABLED);
                    c.queued_cost += status.len() + PIECE_COST;
                    c.out.push_back(ToClient::Data(status));
                }
            }
            Verdict::MonitorsConfig => {
                c.give_back += 1;
                if judged.starts.is_some() {
                    c.monitors.clear();
                }
                if c.monitors.len() + piece.len() > HEADER + MAX_MONITORS_CONFIG {
                    c.monitors = Vec::new();
                    return Err("monitors config larger than 256 monitors".into());
                }
                c.monitors.extend_from_slice(piece);
                if judged.ends {
                    let config = std::mem::take(&mut c.monitors);
                    after.monitors.push(config[HEADER..].to_vec());
                }
            }
        }
        Ok(())
    }

    /// Moves waiting client chunks to the device, one client's message at a time.
    fn pump(&mut self) {
        let Some(port) = self.device.clone() else {
            return;
        };
        loop {
            let writer = match self.writer {
                Some(w) => w,
                None => {
                    if let Some(whole) = self.forwarded.take() {
                        port.to_guest(whole, 0);
                    }
                    // Round robin: the first waiting client after the last writer.
                    let last = self.next_writer_after;
                    let waiting =
                        |(id, c): (&u64, &Client)| (!c.to_device.is_empty()).then_some(*id);
                    let next = self
                        .clients
                        .range(last + 1..)
                        .find_map(waiting)
                        .or_else(|| self.clients.iter().find_map(waiting));
                    let Some(next) = next else {
                        return;
                    };
                    self.writer = Some(next);
                    self.next_writer_after = next;
                    next
                }
            };
            let Some(c) = self.clients.get_mut(&writer) else {
                self.writer = None;
                continue;
            };
            while let Some((bytes, ends)) = c.to_device.pop_front() {
                let tag = self.next_tag;
                self.next_tag += 1;
                self.in_flight.insert(tag, writer);
                port.to_guest(bytes, tag);
                if ends {
                    self.writer = None;
                    break;
                }
            }
            if self.writer.is_some() {
                return; // the rest of its message has not come yet
            }
        }
    }

    fn client_left(&mut self, id: u64) {
        let Some(c) = self.clients.remove(&id) else {
            return;
        };
        if self.writer == Some(id) {
            self.writer = None;
            let left = c.filter.left();
            match (self.device.clone(), left) {
                (Some(port), 1..=PAD_LIMIT) => {
                    crate::log_warn!(
                        "a client left in the middle of an agent message: {left} bytes of \
                         zeros complete it"
                    );
                    let mut padding = Vec::new();
                    let zeros = vec![0u8; MAX_DATA_SIZE];
                    let mut rest = left as usize;
                    while rest > 0 {
                        let n = rest.min(MAX_DATA_SIZE);
                        padding.extend(agent::chunk(agent::PORT_CLIENT, &zeros[..n]));
                        rest -= n;
                    }
                    port.to_guest(padding, 0);
                }
                (_, 0) => {}
                (_, left) => crate::log_warn!(
                    "a client left {left} bytes short of an agent message: the agent may \
                     misread what follows"
                ),
            }
        }
        self.in_flight.retain(|_, owner| *owner != id);
        if self.clients.is_empty() && self.connected {
            if let Some(port) = &self.device {
                let msg = agent::encode(agent::CLIENT_DISCONNECTED, &[]);
                port.to_guest(agent::chunk(agent::PORT_SERVER, &msg), 0);
            }
        }
        self.pump();
    }

    /// VD_AGENT_GRAPHICS_DEVICE_INFO, if the agent takes it.
    fn send_device_info(&mut self) {
        if !self.connected || !self.graphics_info {
            return;
        }
        let mut displays = Vec::new();
        for (&qxl_id, (address, start, count)) in &self.displays {
            if address.is_empty() {
                continue;
            }
            for i in 0..*count {
                displays.push(DisplayInfo {
                    channel_id: qxl_id,
                    monitor_id: i,
                    device_display_id: start.saturating_add(i),
                    address: address.clone(),
                });
            }
        }
        if let Some(port) = &self.device {
            let msg = agent::graphics_device_info(&displays);
            port.to_guest(agent::chunk(agent::PORT_SERVER, &msg), 0);
        }
    }
}

impl Client {
    /// A new agent (or the hub answering again): the client restarts it.
    fn reconnect(&mut self) {
        self.started = false;
        self.rx_mid = false;
        self.filter = Filter::new(self.filter.policy, true);
        self.monitors.clear();
        self.fallback = AgentReader::default();
        self.stuck_since = None;
        if self.cut {
            return;
        }
        if self.tokens_cap {
            // Its window starts again at WINDOW: pieces in flight are not returned.
            self.outstanding = 0;
            self.give_back = 0;
            self.out.push_back(ToClient::ConnectedTokens(WINDOW));
        } else {
            self.give_back += std::mem::take(&mut self.outstanding);
            self.out.push_back(ToClient::Connected);
        }
    }

    /// Cut off from the agent: its queue goes, it is told the agent left.
    fn cut_off(&mut self) {
        self.out.retain(|m| !matches!(m, ToClient::Data(_)));
        self.queued_cost = 0;
        self.stuck_since = None;
        self.cut = true;
        self.out.push_back(ToClient::Disconnected);
    }

    /// No agent: capabilities are answered, monitor configs go to the displays.
    fn answer_for_agent(&mut self, piece: &[u8], after: &mut After) {
        let messages = match self.fallback.push(piece) {
            Ok(m) => m,
            Err(e) => {
                crate::log_warn!("malformed agent data from a client (no agent): {e:?}");
                return;
            }
        };
        for msg in messages {
            match msg.kind {
                agent::ANNOUNCE_CAPABILITIES => {
                    // Monitor configs only. File transfer is said to be disabled, so a
                    // client refuses a copy at once instead of waiting for an answer
                    // nobody sends; without the clipboard caps it grabs nothing.
                    let caps =
                        [1 << agent::CAP_MONITORS_CONFIG | 1 << agent::CAP_FILE_XFER_DISABLED];
                    let reply = agent::announce_capabilities(false, &caps);
                    self.queued_cost += reply.len() + PIECE_COST;
                    self.out.push_back(ToClient::Data(reply));
                }
                agent::MONITORS_CONFIG => after.monitors.push(msg.payload),
                other => crate::log_debug!("agent message {other} dropped: no guest agent"),
            }
        }
    }
}
