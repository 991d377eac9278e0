//! The hub with a fake device: tokens both ways, chunking, the filter, monitor configs,
//! several clients, and the hostile cases (lying chunks, floods, stuck clients).

use super::*;
use crate::channel::testing::drain;
use crate::channel::Outbox;
use crate::proto::agent::{chunk, encode, PORT_CLIENT, PORT_SERVER};
use crate::proto::frame::HeaderKind;
use crate::proto::msg::main as m;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A vdagent char device that keeps what it was given.
#[derive(Default)]
struct FakePort {
    sink: Mutex<Option<Arc<dyn DeviceSink>>>,
    /// (bytes, tag) queued for the guest and not yet "written".
    queued: Mutex<Vec<(Vec<u8>, u64)>>,
    /// Everything the guest got, in order.
    guest: Mutex<Vec<u8>>,
    resumed: AtomicUsize,
    states: Mutex<Vec<bool>>,
}

impl GuestPort for FakePort {
    fn attach(&self, sink: Option<Arc<dyn DeviceSink>>) {
        *self.sink.lock() = sink;
    }
    fn to_guest(&self, data: Vec<u8>, tag: u64) {
        self.queued.lock().push((data, tag));
    }
    fn queued_to_guest(&self) -> usize {
        self.queued.lock().iter().map(|(d, _)| d.len()).sum()
    }
    fn resume_reading(&self) {
        self.resumed.fetch_add(1, Ordering::Relaxed);
    }
    fn set_client_connected(&self, connected: bool) {
        self.states.lock().push(connected);
    }
    fn send_event(&self, _event: u8) {}
}

impl FakePort {
    fn sink(&self) -> Arc<dyn DeviceSink> {
        self.sink.lock().clone().expect("attached")
    }

    /// The device takes everything queued (QEMU wrote it to the guest).
    fn take_all(&self) {
        let queued = std::mem::take(&mut *self.queued.lock());
        let sink = self.sink.lock().clone();
        for (data, tag) in queued {
            self.guest.lock().extend_from_slice(&data);
            if let Some(sink) = &sink {
                sink.written(tag);
            }
        }
    }

    /// The guest agent writes bytes, read as QEMU would: no more than the room.
    fn agent_writes(&self, mut bytes: &[u8]) -> usize {
        let sink = self.sink();
        let mut read = 0;
        while !bytes.is_empty() {
            let room = sink.room();
            if room == 0 {
                break;
            }
            let n = room.min(bytes.len());
            sink.received(&bytes[..n]);
            bytes = &bytes[n..];
            read += n;
        }
        read
    }

    /// The guest's stream as (port, agent message type, payload length) per chunk start.
    fn guest_messages(&self) -> Vec<(u32, u32, usize)> {
        let bytes = self.guest.lock().clone();
        let mut got = vec![];
        let mut r = chunks::ChunkReader::default();
        let mut left = 0usize;
        r.push(&bytes, |port, piece| {
            if left == 0 {
                let (_, kind, size) = agent::header(&piece).unwrap();
                got.push((port, kind, size as usize));
                left = HEADER + size as usize;
            }
            left -= piece.len();
        });
        got
    }
}

struct Rig {
    hub: Arc<AgentHub>,
    port: Arc<FakePort>,
    monitors: Arc<Mutex<Vec<Vec<u8>>>>,
    mouse: Arc<Mutex<Vec<bool>>>,
}

fn rig() -> Rig {
    let hub = AgentHub::new(Arc::new(|| {}));
    let monitors: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mouse: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (mo, mu) = (monitors.clone(), mouse.clone());
    hub.set_monitors_handler(Arc::new(move |c| mo.lock().push(c)));
    hub.set_mouse_listener(Arc::new(move |p| mu.lock().push(p)));
    Rig {
        hub,
        port: Arc::default(),
        monitors,
        mouse,
    }
}

impl Rig {
    fn attach(&self) {
        self.hub.attach_device(self.port.clone());
    }

    /// A client that started the agent (granting spice-gtk's `~0` tokens).
    fn client(&self) -> (AgentClient, Outbox) {
        let c = self.hub.join(true);
        let mut out = Outbox::new(HeaderKind::Mini);
        c.start(!0);
        c.produce(&mut out);
        drain(&mut out);
        (c, out)
    }
}

fn produced(c: &AgentClient, out: &mut Outbox) -> Vec<(u16, Vec<u8>)> {
    c.produce(out);
    drain(out)
        .into_iter()
        .map(|m| (m.msg_type, m.body))
        .collect()
}

fn types(msgs: &[(u16, Vec<u8>)]) -> Vec<u16> {
    msgs.iter().map(|(t, _)| *t).collect()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn without_an_agent_the_hub_answers_and_takes_monitor_configs() {
    let r = rig();
    let (c, mut out) = r.client();
    assert_eq!(c.init(), (true, WINDOW));
    c.data(&agent::announce_capabilities(true, &[0])).unwrap();
    let config = [1, 0, 0, 0, 0, 0, 0, 0];
    c.data(&encode(agent::MONITORS_CONFIG, &config)).unwrap();
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_DATA, m::AGENT_TOKEN]);
    assert_eq!(u32_at(&msgs[0].1, 4), agent::ANNOUNCE_CAPABILITIES);
    // Header (20), request (4), then the capability word.
    let caps = u32_at(&msgs[0].1, 24);
    assert_eq!(
        caps,
        1 << agent::CAP_MONITORS_CONFIG | 1 << agent::CAP_FILE_XFER_DISABLED,
        "monitor configs, and file transfer refused at once"
    );
    assert_eq!(u32_at(&msgs[1].1, 0), 2, "both tokens back");
    assert_eq!(*r.monitors.lock(), vec![config.to_vec()]);
}

#[test]
fn an_agent_attaching_restarts_each_client_and_tokens_follow_the_device() {
    let r = rig();
    let (c, mut out) = r.client();
    let old = r.hub.join(false);
    let mut old_out = Outbox::new(HeaderKind::Mini);
    r.attach();
    assert_eq!(*r.port.states.lock(), vec![true]);
    assert_eq!(*r.mouse.lock(), vec![true], "agent mouse offered");
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_CONNECTED_TOKENS]);
    assert_eq!(u32_at(&msgs[0].1, 0), WINDOW);
    assert_eq!(
        types(&produced(&old, &mut old_out)),
        vec![m::AGENT_CONNECTED]
    );

    // Before AGENT_START the client's data is dropped (token back at once).
    c.data(&encode(agent::CLIPBOARD, b"early")).unwrap();
    assert!(r.port.queued.lock().is_empty());
    c.start(!0);
    produced(&c, &mut out);
    c.data(&encode(agent::CLIPBOARD, b"hello")).unwrap();
    assert!(
        produced(&c, &mut out).is_empty(),
        "no token before the device took it"
    );
    r.port.take_all();
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_TOKEN]);
    assert_eq!(
        r.port.guest_messages(),
        vec![(PORT_CLIENT, agent::CLIPBOARD, 5)]
    );
}

#[test]
fn a_client_past_its_window_is_dropped() {
    let r = rig();
    r.attach();
    let (c, _out) = r.client();
    for _ in 0..WINDOW {
        c.data(&encode(3, &[0])).unwrap();
    }
    let err = c.data(&encode(3, &[0])).unwrap_err();
    assert!(
        err.contains(&format!("beyond its {WINDOW} tokens")),
        "{err}"
    );
}

#[test]
fn agent_data_goes_out_in_pieces_within_the_client_tokens() {
    let r = rig();
    r.attach();
    let c = r.hub.join(true);
    let mut out = Outbox::new(HeaderKind::Mini);
    c.start(2);
    let message = encode(agent::CLIPBOARD, &[9; 5000]);
    assert_eq!(r.port.agent_writes(&chunk(PORT_CLIENT, &message)), 5028);
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_DATA, m::AGENT_DATA]);
    assert_eq!((msgs[0].1.len(), msgs[1].1.len()), (2048, 2048));
    // Out of tokens with a piece waiting: the device is not read.
    assert_eq!(r.port.agent_writes(&chunk(PORT_CLIENT, &encode(3, &[]))), 0);
    c.tokens(5);
    assert_eq!(r.port.resumed.load(Ordering::Relaxed), 1);
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_DATA]);
    assert_eq!(msgs[0].1.len(), 5020 - 4096);
    // Server-port chunks are the server's: never forwarded.
    r.port
        .agent_writes(&chunk(PORT_SERVER, &encode(agent::CLIPBOARD, b"x")));
    assert!(produced(&c, &mut out).is_empty());
}

#[test]
fn copy_paste_and_file_transfer_off() {
    let r = rig();
    r.hub.set_flags(true, false, false);
    r.attach();
    let (c, mut out) = r.client();
    c.data(&encode(agent::CLIPBOARD_GRAB, &[1, 0, 0, 0]))
        .unwrap();
    let mut start = 77u32.to_le_bytes().to_vec();
    start.extend_from_slice(b"[vdagent-file-xfer]");
    c.data(&encode(agent::FILE_XFER_START, &start)).unwrap();
    r.port.take_all();
    assert!(
        r.port.guest_messages().is_empty(),
        "neither reached the agent"
    );
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_DATA, m::AGENT_TOKEN]);
    let status = &msgs[0].1;
    assert_eq!(u32_at(status, 4), agent::FILE_XFER_STATUS);
    assert_eq!(
        (u32_at(status, 20), u32_at(status, 24)),
        (77, agent::FILE_XFER_STATUS_DISABLED)
    );
    // From the agent: clipboard dropped, its capabilities cleared.
    r.port
        .agent_writes(&chunk(PORT_CLIENT, &encode(agent::CLIPBOARD, b"secret")));
    let caps = (1 << agent::CAP_CLIPBOARD) | (1 << agent::CAP_MONITORS_CONFIG);
    r.port.agent_writes(&chunk(
        PORT_CLIENT,
        &agent::announce_capabilities(false, &[caps]),
    ));
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_DATA]);
    assert_eq!(
        u32_at(&msgs[0].1, 24),
        (1 << agent::CAP_MONITORS_CONFIG) | (1 << agent::CAP_FILE_XFER_DISABLED)
    );
}

#[test]
fn monitor_configs_go_to_the_displays_and_to_the_agent_when_none_takes_them() {
    let r = rig();
    r.attach();
    let (c, mut out) = r.client();
    let mut config = vec![2, 0, 0, 0, 0, 0, 0, 0];
    config.extend([0; 40]);
    c.data(&encode(agent::MONITORS_CONFIG, &config)).unwrap();
    assert_eq!(*r.monitors.lock(), vec![config.clone()]);
    assert_eq!(types(&produced(&c, &mut out)), vec![m::AGENT_TOKEN]);
    r.hub.forward_monitors_config(config.clone());
    r.port.take_all();
    assert_eq!(
        r.port.guest_messages(),
        vec![(PORT_CLIENT, agent::MONITORS_CONFIG, 48)]
    );
    // One claiming 300 monitors over several pieces drops the client.
    let mut huge = encode(agent::MONITORS_CONFIG, &vec![0; 300 * 24 + 8]);
    huge[20] = 44; // num_of_monitors = 300
    huge[21] = 1;
    let pieces: Vec<&[u8]> = huge.chunks(MAX_DATA_SIZE).collect();
    let results: Vec<bool> = pieces.iter().map(|p| c.data(p).is_ok()).collect();
    assert!(results.contains(&false), "{results:?}");
}

#[test]
fn one_client_writes_a_message_at_a_time() {
    let r = rig();
    r.attach();
    let (a, _) = r.client();
    let (b, _) = r.client();
    let long = encode(agent::CLIPBOARD, &[1; 3000]);
    let pieces: Vec<&[u8]> = long.chunks(MAX_DATA_SIZE).collect();
    a.data(pieces[0]).unwrap();
    b.data(&encode(agent::CLIPBOARD_GRAB, &[2; 4])).unwrap();
    a.data(pieces[1]).unwrap();
    r.port.take_all();
    assert_eq!(
        r.port.guest_messages(),
        vec![
            (PORT_CLIENT, agent::CLIPBOARD, 3000),
            (PORT_CLIENT, agent::CLIPBOARD_GRAB, 4)
        ]
    );
}

#[test]
fn a_writer_leaving_mid_message_is_padded_and_the_last_client_is_announced() {
    let r = rig();
    r.attach();
    let (a, _) = r.client();
    let (b, _) = r.client();
    let long = encode(agent::CLIPBOARD, &[1; 3000]);
    a.data(&long[..MAX_DATA_SIZE]).unwrap();
    b.data(&encode(agent::CLIPBOARD_GRAB, &[2; 4])).unwrap();
    drop(a);
    drop(b);
    r.port.take_all();
    let guest = r.port.guest_messages();
    assert_eq!(
        guest,
        vec![
            (PORT_CLIENT, agent::CLIPBOARD, 3000),
            (PORT_CLIENT, agent::CLIPBOARD_GRAB, 4),
            (PORT_SERVER, agent::CLIENT_DISCONNECTED, 0)
        ]
    );
}

#[test]
fn a_lying_agent_is_disconnected_and_ignored_until_it_attaches_again() {
    let r = rig();
    r.attach();
    let (c, mut out) = r.client();
    // A chunk header saying 10 bytes, carrying a message that claims 2 of payload.
    let mut lie = encode(agent::CLIPBOARD, &[0; 2]);
    lie[16] = 1;
    r.port.agent_writes(&chunk(PORT_CLIENT, &lie));
    let msgs = produced(&c, &mut out);
    assert_eq!(
        types(&msgs),
        vec![m::AGENT_DISCONNECTED, m::AGENT_CONNECTED_TOKENS],
        "the hub answers for the agent again"
    );
    assert_eq!(*r.mouse.lock(), vec![true]);
    // Its later bytes are read and dropped; a bad port too.
    let flood = vec![0xff; 100_000];
    assert_eq!(r.port.agent_writes(&flood), flood.len());
    assert!(produced(&c, &mut out).is_empty());
    // Attached again, it works.
    r.attach();
    c.start(!0);
    r.port
        .agent_writes(&chunk(PORT_CLIENT, &encode(agent::CLIPBOARD, b"ok")));
    let msgs = produced(&c, &mut out);
    assert_eq!(types(&msgs), vec![m::AGENT_CONNECTED_TOKENS, m::AGENT_DATA]);
}

#[test]
fn a_flooding_agent_and_a_client_that_stops_reading_stay_bounded() {
    let r = rig();
    r.hub.set_stuck_timeout(Duration::from_millis(50));
    r.attach();
    let (reader, mut reader_out) = r.client();
    let (stuck, _) = r.client();
    // The stuck client never produces; its queue reaches the bound and reads pause.
    let message = encode(agent::CLIPBOARD, &[5; 1 << 20]);
    let flood = chunk(PORT_CLIENT, &message);
    let mut offered = 0;
    for _ in 0..20 {
        let n = r.port.agent_writes(&flood[offered..]);
        offered += n;
        produced(&reader, &mut reader_out);
        if n == 0 {
            break;
        }
    }
    assert!(offered < flood.len(), "reads paused");
    let cost = r
        .hub
        .state
        .lock()
        .clients
        .values()
        .map(|c| c.queued_cost)
        .max();
    assert!(cost.unwrap() <= QUEUE_BOUND + MAX_DATA_SIZE + PIECE_COST);
    // Past the timeout the stuck client is cut off and the reader goes on.
    std::thread::sleep(Duration::from_millis(60));
    while offered < flood.len() {
        let n = r.port.agent_writes(&flood[offered..]);
        assert!(n > 0, "the reader is not held back by the stuck client");
        offered += n;
        produced(&reader, &mut reader_out);
    }
    let stuck_msgs = produced(&stuck, &mut Outbox::new(HeaderKind::Mini));
    assert_eq!(types(&stuck_msgs), vec![m::AGENT_DISCONNECTED]);
}

#[test]
fn detaching_tells_clients_then_the_hub_answers_again() {
    let r = rig();
    r.attach();
    let (c, mut out) = r.client();
    c.data(&encode(agent::CLIPBOARD, b"in flight")).unwrap();
    r.hub.detach_device();
    assert!(r.port.sink.lock().is_none());
    assert_eq!(*r.mouse.lock(), vec![true, false]);
    let msgs = produced(&c, &mut out);
    assert_eq!(
        types(&msgs),
        vec![m::AGENT_DISCONNECTED, m::AGENT_CONNECTED_TOKENS]
    );
    assert!(
        !r.hub.mouse_state(1, 2, 0, 0),
        "no agent: the tablet takes it"
    );
}

#[test]
fn mouse_state_and_device_info_reach_the_agent() {
    let r = rig();
    r.hub.set_device_info(0, "pci/0000/02.0".into(), 0, 1);
    r.attach();
    let (_c, _out) = r.client();
    assert!(r.hub.mouse_state(10, 20, 2, 0));
    let caps = 1 << agent::CAP_GRAPHICS_DEVICE_INFO;
    r.port.agent_writes(&chunk(
        PORT_CLIENT,
        &agent::announce_capabilities(false, &[caps]),
    ));
    r.port.take_all();
    let guest = r.port.guest_messages();
    assert_eq!(
        guest,
        vec![
            (PORT_SERVER, agent::MOUSE_STATE, 13),
            (PORT_SERVER, agent::GRAPHICS_DEVICE_INFO, 4 + 16 + 14)
        ]
    );
    r.hub.set_flags(false, true, true);
    assert_eq!(*r.mouse.lock(), vec![true, false]);
    assert!(!r.hub.mouse_state(1, 1, 0, 0));
}
