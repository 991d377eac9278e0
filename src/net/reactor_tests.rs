//! The reactor's per-connection limits, on a real socket pair with a fake channel.

use super::*;
use crate::channel::ChannelError;
use crate::proto::outgoing::ServerMessage;
use crate::proto::wire::Writer;
use std::sync::atomic::AtomicUsize;

/// A reply of `REPLY_BODY` bytes to every message, like ATTACH_CHANNELS' channel list.
const REPLY_BODY: usize = 64;
const MSG_TYPE: u16 = 104;

struct Reply;

impl ServerMessage for Reply {
    fn msg_type(&self) -> u16 {
        MSG_TYPE
    }
    fn encode_body(&self, w: &mut Writer) {
        w.bytes(&[0xab; REPLY_BODY]);
    }
}

/// Answers every message and counts them.
struct Echo(Arc<AtomicUsize>);

impl Channel for Echo {
    fn start(&mut self, _: &mut Outbox) {}
    fn on_message(&mut self, _: u16, _: &[u8], out: &mut Outbox) -> Result<(), ChannelError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        out.send(&Reply);
        Ok(())
    }
}

/// An open connection served by `Echo`, and the client's end of its socket.
fn open_connection() -> (Connection, std::os::unix::net::UnixStream, Arc<AtomicUsize>) {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let linked = Linked {
        deframer: Deframer::new(HeaderKind::Mini, 4096),
        outbox: Outbox::new(HeaderKind::Mini),
        channel: Box::new(Echo(handled.clone())),
        session_id: 1,
        channel_type: channel_type::MAIN,
        header: HeaderKind::Mini,
    };
    let conn = Connection {
        id: 1,
        stream: Stream::Unix(mio::net::UnixStream::from_std(ours)),
        phase: Phase::Open(Box::new(linked)),
        since: Instant::now(),
        skip_auth: false,
        writable_interest: false,
        sniffed: true,
        boundaries: None,
        read_budget: READ_BUDGET,
        produce_budget: PRODUCE_BUDGET,
        source: None,
        sasl_layer: None,
    };
    (conn, theirs, handled)
}

/// A header-only message (ATTACH_CHANNELS has no body).
fn request() -> [u8; 6] {
    let mut m = [0u8; 6];
    m[..2].copy_from_slice(&MSG_TYPE.to_le_bytes());
    m
}

/// Writes requests until the socket is full; returns the bytes written.
fn flood(client: &mut std::os::unix::net::UnixStream) -> usize {
    let chunk: Vec<u8> = request().repeat(2048);
    let mut sent = 0;
    loop {
        match client.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if would_block(&e) => return sent,
            Err(e) => panic!("{e}"),
        }
    }
}

struct NoHub;

impl Hub for NoHub {
    fn connected(&self, _: u64, _: Endpoints) {}
    fn disconnected(&self, _: u64) {}
    fn check_link(&self, _: &LinkMess, _: bool) -> Result<ServerCaps, LinkError> {
        Err(LinkError::Error)
    }
    fn open(&self, _: u64, _: &LinkMess, _: &[u8], _: bool) -> Result<Opened, LinkError> {
        Err(LinkError::Error)
    }
    fn set_wake(&self, _: Arc<dyn Fn() + Send + Sync>) {}
}

/// Reply bytes one 16 KiB read of header-only requests can add past the cap.
const ONE_READ_OF_REPLIES: usize = (16384 / 6 + 1) * (REPLY_BODY + 6);

#[test]
fn a_client_that_never_reads_stops_being_read() {
    let (mut conn, mut client, handled) = open_connection();
    let mut sent = 0;
    for _ in 0..2000 {
        sent += flood(&mut client);
        conn.read_budget = READ_BUDGET;
        assert!(matches!(conn.advance(&NoHub), Ok(Outcome::Keep)));
        assert!(
            conn.pending_output() <= OUTPUT_CAP + ONE_READ_OF_REPLIES,
            "{} bytes of output queued",
            conn.pending_output()
        );
    }
    let answered = handled.load(Ordering::Relaxed);
    // The cap was reached, the rest of the flood waits in the kernel.
    assert!(conn.output_over_cap());
    assert!(
        answered * 6 < sent,
        "{answered} handled of {} sent",
        sent / 6
    );

    // Once the client reads, its requests are served again.
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..64 {
        while client.read(&mut buf).is_ok_and(|n| n > 0) {}
        conn.read_budget = READ_BUDGET;
        conn.advance(&NoHub).unwrap();
    }
    assert!(handled.load(Ordering::Relaxed) > answered);
}

#[test]
fn one_turn_reads_at_most_the_budget() {
    let (mut conn, mut client, handled) = open_connection();
    let sent = flood(&mut client);
    let budget = 6 * 1000;
    assert!(sent > budget, "socket took only {sent} bytes");
    conn.read_budget = budget;
    assert!(matches!(conn.advance(&NoHub), Ok(Outcome::Keep)));
    assert_eq!(handled.load(Ordering::Relaxed), budget / 6);
    assert_eq!(conn.read_budget, 0, "the rest waits for the next turn");
    conn.read_budget = budget;
    conn.advance(&NoHub).unwrap();
    assert_eq!(handled.load(Ordering::Relaxed), 2 * budget / 6);
}

/// A reactor state with no listeners, as the thread would run it.
fn state() -> State {
    let (_, inbox) = crossbeam_channel::unbounded();
    let keys = KeyPool::new(|| {});
    State {
        poll: Poll::new().unwrap(),
        listeners: Vec::new(),
        connections: HashMap::new(),
        next_token: FIRST_CONNECTION,
        hub: Arc::new(NoHub),
        inbox,
        produce: Arc::new(AtomicBool::new(false)),
        unfinished: Vec::new(),
        keys,
    }
}

/// A TCP connection to `listener` from the loopback address `source`, as accepted.
fn connect_from(listener: &std::net::TcpListener, source: &str) -> (Stream, std::net::TcpStream) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket
        .connect(&listener.local_addr().unwrap().into())
        .unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    (
        Stream::Tcp(mio::net::TcpStream::from_std(accepted)),
        socket.into(),
    )
}

fn linking_from(state: &State, source: &str) -> Vec<u64> {
    let ip: IpAddr = source.parse().unwrap();
    let mut ids: Vec<u64> = state
        .connections
        .values()
        .filter(|c| c.source == Some(ip) && matches!(c.phase, Phase::Linking(..)))
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn one_address_cannot_take_every_link_slot() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut state = state();
    let mut clients = Vec::new();
    let good = connect_from(&listener, "127.0.0.3");
    state.adopt(good.0, false);
    let good_id = state.connections.values().next().unwrap().id;
    for _ in 0..MAX_UNLINKED_PER_SOURCE + 10 {
        let (stream, client) = connect_from(&listener, "127.0.0.2");
        state.adopt(stream, false);
        clients.push(client);
    }
    let attacker = linking_from(&state, "127.0.0.2");
    assert_eq!(attacker.len(), MAX_UNLINKED_PER_SOURCE);
    // The oldest were dropped: what is left are the newest ids.
    assert_eq!(attacker[0], good_id + 11);
    assert_eq!(linking_from(&state, "127.0.0.3"), vec![good_id]);
}

#[test]
fn when_every_slot_is_taken_the_biggest_source_yields() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut state = state();
    let mut clients = Vec::new();
    let sources: Vec<String> = (0..MAX_CONNECTIONS)
        .map(|i| format!("127.0.{}.{}", 1 + i / 200, 2 + i % 200))
        .collect();
    // Each address below the per-source limit, and together every slot taken.
    for source in sources.iter().take(MAX_CONNECTIONS - 3) {
        let (stream, client) = connect_from(&listener, source);
        state.adopt(stream, false);
        clients.push(client);
    }
    for _ in 0..3 {
        let (stream, client) = connect_from(&listener, "127.0.0.2");
        state.adopt(stream, false);
        clients.push(client);
    }
    assert_eq!(state.connections.len(), MAX_CONNECTIONS);
    let (stream, _good) = connect_from(&listener, "127.9.9.9");
    state.adopt(stream, false);
    assert_eq!(state.connections.len(), MAX_CONNECTIONS);
    assert_eq!(
        linking_from(&state, "127.9.9.9").len(),
        1,
        "the newcomer got a slot"
    );
    assert_eq!(
        linking_from(&state, "127.0.0.2").len(),
        2,
        "127.0.0.2 had 3, gave one"
    );
}

/// Panics when asked to produce.
struct Broken;

impl Channel for Broken {
    fn start(&mut self, _: &mut Outbox) {}
    fn on_message(&mut self, _: u16, _: &[u8], _: &mut Outbox) -> Result<(), ChannelError> {
        Ok(())
    }
    fn produce(&mut self, _: &mut Outbox) {
        panic!("produce exploded")
    }
}

#[test]
fn a_panicking_channel_closes_its_connection_not_the_reactor() {
    let mut state = state();
    let (mut broken, _client, _) = open_connection();
    if let Phase::Open(linked) = &mut broken.phase {
        linked.channel = Box::new(Broken);
    }
    let (mut healthy, _client2, _) = open_connection();
    if let Phase::Open(linked) = &mut healthy.phase {
        linked.session_id = 2; // not closed with the broken main channel's session
    }
    state.connections.insert(Token(FIRST_CONNECTION), broken);
    state
        .connections
        .insert(Token(FIRST_CONNECTION + 1), healthy);
    state.service(Token(FIRST_CONNECTION));
    state.service(Token(FIRST_CONNECTION + 1));
    assert_eq!(
        state.connections.keys().copied().collect::<Vec<_>>(),
        vec![Token(FIRST_CONNECTION + 1)]
    );
}

#[test]
fn a_get_in_the_linking_phase_links_over_websocket() {
    use crate::net::websocket::frames::client_frame;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut state = state();
    let (stream, mut ws_client) = connect_from(&listener, "127.0.0.1");
    state.adopt(stream, false);
    let (stream, mut spice_client) = connect_from(&listener, "127.0.0.1");
    state.adopt(stream, false);
    // SpiceLinkHeader (version 2.2, 22 bytes follow), then SpiceLinkMess: session 0, main
    // channel 0, one common cap word at offset 18.
    let mut link = b"REDQ".to_vec();
    for v in [2u32, 2, 22, 0] {
        link.extend(v.to_le_bytes());
    }
    link.extend([1, 0]);
    for v in [1u32, 0, 18, 0xb] {
        link.extend(v.to_le_bytes());
    }
    let request = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    ws_client.write_all(request).unwrap();
    ws_client
        .write_all(&client_frame(true, 2, [9, 8, 7, 6], &link))
        .unwrap();
    spice_client.write_all(&link).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let tokens: Vec<Token> = state.connections.keys().copied().collect();
    for token in tokens {
        state.service(token);
    }
    // Both got the hub's refusal (NoHub) and were closed: the same link reply, framed or not.
    assert!(state.connections.is_empty());
    let mut plain = Vec::new();
    spice_client.read_to_end(&mut plain).unwrap();
    let mut answer = Vec::new();
    ws_client.read_to_end(&mut answer).unwrap();
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&answer[..end]);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_eq!(&plain[..4], b"REDQ");
    let mut framed = Vec::new();
    crate::net::websocket::frames::data_header(plain.len(), &mut framed);
    framed.extend_from_slice(&plain);
    assert_eq!(
        answer[end..],
        framed,
        "the same reply inside one binary frame"
    );
}

#[test]
fn an_idle_reactor_sleeps_until_woken_and_a_linking_one_until_its_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut state = state();
    assert_eq!(
        state.poll_timeout(Instant::now()),
        None,
        "no connection: no timer"
    );

    let (stream, _client) = connect_from(&listener, "127.0.0.1");
    state.adopt(stream, false);
    let now = Instant::now();
    let left = state
        .poll_timeout(now)
        .expect("a linking connection has a deadline");
    assert!(
        left > LINK_TIMEOUT - Duration::from_secs(1)
            && left <= LINK_TIMEOUT + Duration::from_millis(1)
    );
    let late = now + LINK_TIMEOUT + Duration::from_secs(5);
    assert!(
        state.poll_timeout(late).unwrap() <= Duration::from_millis(1),
        "overdue: at once"
    );

    // An overdue link is closed, and nothing is left to time.
    for conn in state.connections.values_mut() {
        conn.since = now - LINK_TIMEOUT - Duration::from_secs(1);
    }
    state.expire_slow_links();
    assert!(state.connections.is_empty());
    assert_eq!(state.poll_timeout(Instant::now()), None);

    state.unfinished.push(Token(FIRST_CONNECTION));
    assert_eq!(
        state.poll_timeout(Instant::now()),
        Some(Duration::ZERO),
        "input left over"
    );
}
