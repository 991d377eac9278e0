//! The main channel: session setup, the channel list, mouse modes, pings, and the
//! guest agent (through the server's `AgentHub`).

use super::{malformed, Channel, ChannelError, Outbox};
use crate::agent::{AgentClient, AgentHub};
use crate::image::choose::LinkVerdicts;
use crate::proto::caps::Caps;
use crate::proto::main::{self as wire, MainMessage, MOUSE_MODE_CLIENT, MOUSE_MODE_SERVER};
use crate::proto::msg::main as m;
use crate::video::VideoConfig;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Mouse modes: the client may use CLIENT (absolute) mode only while QEMU has a tablet
/// or an agent takes the mouse (agent-mouse on).
pub(crate) struct Mouse {
    state: Mutex<MouseState>,
    /// The current mode, read by the inputs channel on every event.
    pub current: Arc<AtomicU32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MouseState {
    tablet: bool,
    agent: bool,
    generation: u64,
}

impl Default for Mouse {
    fn default() -> Self {
        Mouse {
            state: Mutex::new(MouseState {
                tablet: false,
                agent: false,
                generation: 0,
            }),
            current: Arc::new(AtomicU32::new(MOUSE_MODE_SERVER)),
        }
    }
}

impl Mouse {
    pub(crate) fn supported(&self) -> u32 {
        if self.state.lock().client_allowed() {
            MOUSE_MODE_SERVER | MOUSE_MODE_CLIENT
        } else {
            MOUSE_MODE_SERVER
        }
    }

    pub(crate) fn current(&self) -> u32 {
        self.current.load(Ordering::Relaxed)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// A tablet appeared or went away; CLIENT mode falls back to SERVER without one.
    pub(crate) fn set_tablet(&self, present: bool) {
        self.set(|s| s.tablet = present);
    }

    /// An agent that takes the mouse came or went.
    pub(crate) fn set_agent(&self, present: bool) {
        self.set(|s| s.agent = present);
    }

    fn set(&self, change: impl FnOnce(&mut MouseState)) {
        let mut s = self.state.lock();
        change(&mut s);
        if !s.client_allowed() {
            self.current.store(MOUSE_MODE_SERVER, Ordering::Relaxed);
        }
        s.generation += 1;
    }

    /// A client asked for `mode`; honoured when supported.
    pub(crate) fn request(&self, mode: u32) {
        let mut s = self.state.lock();
        let allowed =
            mode == MOUSE_MODE_SERVER || (mode == MOUSE_MODE_CLIENT && s.client_allowed());
        if allowed {
            self.current.store(mode, Ordering::Relaxed);
        } else {
            crate::log_info!("mouse mode {mode} refused (no tablet, no agent)");
        }
        s.generation += 1;
    }
}

impl MouseState {
    fn client_allowed(&self) -> bool {
        self.tablet || self.agent
    }
}

/// What the main channel tells a client about the server.
#[derive(Clone)]
pub(crate) struct MainInfo {
    pub session_id: u32,
    pub display_channels: u32,
    pub ram_hint: u32,
    pub name: Option<String>,
    pub uuid: Option<[u8; 16]>,
    /// The channels to list, computed when the client asks.
    pub channels: Arc<dyn Fn() -> Vec<(u8, u8)> + Send + Sync>,
    /// The guest agent, shared by every client.
    pub agent: Arc<AgentHub>,
}

/// What the network test measured (spice-server's main channel net test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NetStats {
    pub latency_us: Option<u64>,
    pub bits_per_second: Option<u64>,
}

/// Bytes of padding in the third ping (`NET_TEST_BYTES`).
const NET_TEST_BYTES: usize = 1024 * 250;
/// Ping ids of the network test: two for latency, one carrying the padding.
const NET_TEST_PINGS: [u32; 3] = [1, 2, 3];

pub(crate) struct MainChannel {
    info: MainInfo,
    caps: Caps,
    mouse: Arc<Mouse>,
    mouse_seen: u64,
    started: std::time::Instant,
    net: Arc<Mutex<NetStats>>,
    latencies: Vec<u64>,
    agent: AgentClient,
    video: Arc<VideoConfig>,
    /// The playout-delay generation the client's clock was last set for.
    clock_seen: u64,
    /// Where the network test's verdict goes for the session's display channels.
    links: Option<Arc<LinkVerdicts>>,
}

impl MainChannel {
    pub(crate) fn new(
        info: MainInfo,
        client_caps: Caps,
        mouse: Arc<Mouse>,
        net: Arc<Mutex<NetStats>>,
        video: Arc<VideoConfig>,
    ) -> MainChannel {
        MainChannel {
            caps: client_caps.clone(),
            mouse,
            mouse_seen: 0,
            started: std::time::Instant::now(),
            net,
            latencies: Vec::new(),
            agent: info
                .agent
                .join(client_caps.has(m::CAP_AGENT_CONNECTED_TOKENS)),
            clock_seen: video.clock.generation(),
            video,
            info,
            links: None,
        }
    }

    /// The display channels of this session read the network test's verdict (slow link:
    /// JPEG and zlib over GLZ under `auto`) from `links`.
    pub(crate) fn with_link_verdicts(mut self, links: Arc<LinkVerdicts>) -> Self {
        self.links = Some(links);
        self
    }

    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// The clock the client plays stream frames by: ours, minus the playout delay.
    fn mm_time(&self) -> u32 {
        self.video.clock.client_time()
    }

    fn push_mouse_mode(&mut self, out: &mut Outbox) {
        self.mouse_seen = self.mouse.generation();
        out.send(&MainMessage::MouseMode {
            supported: self.mouse.supported(),
            current: self.mouse.current(),
        });
    }
}

impl Channel for MainChannel {
    fn max_body(&self) -> usize {
        // Agent data comes in pieces of at most 2048 bytes.
        4096 + 11 * 2048
    }

    fn start(&mut self, out: &mut Outbox) {
        self.mouse_seen = self.mouse.generation();
        let (agent_connected, agent_tokens) = self.agent.init();
        let init = wire::Init {
            session_id: self.info.session_id,
            display_channels_hint: self.info.display_channels,
            supported_mouse_modes: self.mouse.supported(),
            current_mouse_mode: self.mouse.current(),
            // Without a guest agent the hub answers for one (monitor configs only):
            // spice-gtk sends its window size only to a connected agent.
            agent_connected,
            agent_tokens,
            multi_media_time: self.mm_time(),
            ram_hint: self.info.ram_hint,
        };
        out.send(&MainMessage::Init(init));
        // The network test: latency from two empty pings, bandwidth from a padded one.
        for id in NET_TEST_PINGS {
            let padding = if id == 3 { NET_TEST_BYTES } else { 0 };
            out.send(&MainMessage::Ping {
                id,
                timestamp: self.now_us(),
                padding,
            });
        }
        if self.caps.has(m::CAP_NAME_AND_UUID) {
            if let Some(name) = &self.info.name {
                out.send(&MainMessage::Name(name));
            }
            if let Some(uuid) = &self.info.uuid {
                out.send(&MainMessage::Uuid(uuid));
            }
        }
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        match msg_type {
            m::C_ATTACH_CHANNELS => {
                out.send(&MainMessage::ChannelsList(&(self.info.channels)()));
            }
            m::C_MOUSE_MODE_REQUEST => {
                let mode = wire::parse_mouse_mode_request(body).map_err(malformed(msg_type))?;
                self.mouse.request(mode);
                self.push_mouse_mode(out);
            }
            m::C_AGENT_START => {
                let tokens = wire::parse_u32(body).map_err(malformed(msg_type))?;
                self.agent.start(tokens);
            }
            m::C_AGENT_TOKEN => {
                let tokens = wire::parse_u32(body).map_err(malformed(msg_type))?;
                self.agent.tokens(tokens);
            }
            m::C_AGENT_DATA => {
                if let Err(reason) = self.agent.data(body) {
                    crate::log_warn!("main channel: {reason}: client dropped");
                    return Err(ChannelError::BadMessage {
                        msg_type,
                        reason: "agent data breaks the protocol",
                    });
                }
                // Tokens given back and answers go out with the next produce.
                self.agent.produce(out);
            }
            // Migration answers need nothing from a server that is not migrating.
            // (CLIENT_INFO and QUALITY_INDICATOR are unknown to spice-server too: they
            // close the channel like any unknown message.)
            m::C_MIGRATE_CONNECTED
            | m::C_MIGRATE_CONNECT_ERROR
            | m::C_MIGRATE_END
            | m::C_MIGRATE_DST_DO_SEAMLESS
            | m::C_MIGRATE_CONNECTED_SEAMLESS => {}
            _ => {
                return Err(ChannelError::BadMessage {
                    msg_type,
                    reason: "unknown main message",
                })
            }
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        if self.mouse.generation() != self.mouse_seen {
            self.push_mouse_mode(out);
        }
        self.agent.produce(out);
        let clock = self.video.clock.generation();
        if clock != self.clock_seen && !self.video.clock.audio_playing() {
            self.clock_seen = clock;
            out.send(&MainMessage::MultiMediaTime(self.mm_time()));
        }
    }

    fn closed(&mut self) {
        if let Some(links) = &self.links {
            links.forget(self.info.session_id);
        }
    }

    fn on_pong(&mut self, id: u32, timestamp: u64) {
        let Some(rtt) = self.now_us().checked_sub(timestamp) else {
            return;
        };
        let latency = |l: &[u64]| l.iter().copied().min();
        match id {
            1 | 2 => {
                self.latencies.push(rtt);
                self.net.lock().latency_us = latency(&self.latencies);
            }
            3 => {
                let min_rtt = latency(&self.latencies).unwrap_or(0);
                let transfer = rtt.saturating_sub(min_rtt).max(1);
                let bps = (NET_TEST_BYTES as u64 * 8 * 1_000_000) / transfer;
                self.net.lock().bits_per_second = Some(bps);
                if let Some(links) = &self.links {
                    links.set(self.info.session_id, bps);
                }
                crate::log_info!("network test: latency {min_rtt} us, {} kbit/s", bps / 1000);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::testing::drain_types;
    use crate::proto::frame::HeaderKind;
    use crate::proto::msg::base;

    fn channel(mouse: Arc<Mouse>) -> MainChannel {
        let info = MainInfo {
            session_id: 42,
            display_channels: 1,
            ram_hint: 0,
            name: Some("vm".into()),
            uuid: Some([1; 16]),
            channels: Arc::new(|| vec![(2, 0), (3, 0), (4, 0)]),
            agent: AgentHub::new(Arc::new(|| {})),
        };
        MainChannel::new(
            info,
            Caps::from_bits(&[m::CAP_NAME_AND_UUID]),
            mouse,
            Arc::default(),
            Arc::default(),
        )
    }

    #[test]
    fn the_clock_is_left_to_the_audio_while_it_plays() {
        let mut ch = channel(Arc::default());
        let mut out = Outbox::new(HeaderKind::Mini);
        let clock = &ch.video.clone().clock;
        clock.set_audio_playing(true);
        clock.stream_report(-50, 1, false);
        ch.produce(&mut out);
        assert!(!drain_types(&mut out).contains(&m::MULTI_MEDIA_TIME));
        clock.set_audio_playing(false);
        ch.produce(&mut out);
        assert_eq!(drain_types(&mut out), vec![m::MULTI_MEDIA_TIME]);
        ch.produce(&mut out);
        assert!(drain_types(&mut out).is_empty(), "once");
    }

    #[test]
    fn start_sends_init_name_uuid_then_list_on_attach() {
        let mut ch = channel(Arc::default());
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.start(&mut out);
        let ping = base::PING;
        assert_eq!(
            drain_types(&mut out),
            vec![m::INIT, ping, ping, ping, m::NAME, m::UUID]
        );
        ch.on_message(m::C_ATTACH_CHANNELS, &[], &mut out).unwrap();
        assert_eq!(drain_types(&mut out), vec![m::CHANNELS_LIST]);
    }

    #[test]
    fn client_mode_needs_a_tablet() {
        let mouse = Arc::new(Mouse::default());
        let mut ch = channel(mouse.clone());
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_MOUSE_MODE_REQUEST, &[2, 0], &mut out)
            .unwrap();
        assert_eq!(mouse.current(), MOUSE_MODE_SERVER);
        mouse.set_tablet(true);
        ch.produce(&mut out);
        ch.on_message(m::C_MOUSE_MODE_REQUEST, &[2, 0], &mut out)
            .unwrap();
        assert_eq!(mouse.current(), MOUSE_MODE_CLIENT);
        assert_eq!(
            drain_types(&mut out),
            vec![m::MOUSE_MODE, m::MOUSE_MODE, m::MOUSE_MODE]
        );
        mouse.set_tablet(false);
        assert_eq!(mouse.current(), MOUSE_MODE_SERVER);
        mouse.set_agent(true);
        mouse.request(MOUSE_MODE_CLIENT);
        assert_eq!(
            mouse.current(),
            MOUSE_MODE_CLIENT,
            "an agent takes the mouse"
        );
        mouse.set_agent(false);
        assert_eq!(mouse.current(), MOUSE_MODE_SERVER);
    }

    #[test]
    fn agent_data_without_an_agent_is_answered_and_tokens_come_back() {
        let mut ch = channel(Arc::default());
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_AGENT_START, &(!0u32).to_le_bytes(), &mut out)
            .unwrap();
        let caps = crate::proto::agent::announce_capabilities(true, &[0]);
        ch.on_message(m::C_AGENT_DATA, &caps, &mut out).unwrap();
        assert_eq!(drain_types(&mut out), vec![m::AGENT_DATA, m::AGENT_TOKEN]);
        assert!(
            ch.on_message(m::C_AGENT_DATA, &[0; 2049], &mut out)
                .is_err(),
            "more than VD_AGENT_MAX_DATA_SIZE drops the client, agent or not"
        );
    }

    #[test]
    fn pongs_give_latency_and_bandwidth() {
        let net: Arc<Mutex<NetStats>> = Arc::default();
        let info = channel(Arc::default()).info;
        let mut ch = MainChannel::new(
            info,
            Caps::default(),
            Arc::default(),
            net.clone(),
            Arc::default(),
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        ch.on_pong(1, 1000);
        ch.on_pong(3, 0);
        let n = *net.lock();
        assert!(n.latency_us.is_some_and(|l| l >= 3000));
        assert!(n.bits_per_second.is_some());
    }

    #[test]
    fn unknown_message_is_an_error() {
        let mut ch = channel(Arc::default());
        let mut out = Outbox::new(HeaderKind::Mini);
        assert!(ch.on_message(999, &[], &mut out).is_err());
    }
}
