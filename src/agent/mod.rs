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
mod client;
mod device;
mod filter;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use client::AgentClient;
use device::DeviceSide;

use crate::proto::agent::{self, AgentReader, DisplayInfo, HEADER, MAX_DATA_SIZE};
use crate::proto::main::MainMessage;
use crate::server::char_device::{DeviceSink, GuestPort};
use chunks::ChunkReader;
use filter::{Filter, Policy, Verdict};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Tokens each side holds for AGENT_DATA. spice-server gives 10
/// (`REDS_AGENT_WINDOW_SIZE`), which caps a file transfer at 10 pieces of 2 KiB per
/// round trip (0.9 MB/s at 20 ms); spice-gtk honours any grant, and 64 moved 3.4 MB/s
/// there (`bench/agent_window.sh`) for 130 KiB more per client at most.
pub(crate) const WINDOW: u32 = 64;
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
