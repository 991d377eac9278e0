use super::*;
use crate::channel::device_queue::{CLIENT_QUEUE_LIMIT, GUEST_QUEUE_LIMIT, OUTBOX_AHEAD};
use crate::channel::testing::drain;
use crate::proto::frame::HeaderKind;
use crate::proto::wire::Writer;
use crate::server::channels::OpenRequest;
use crate::server::char_device::DeviceKind;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::channel::testing::FakePort;

struct Rig {
    port: Arc<FakePort>,
    wakes: Arc<AtomicUsize>,
    kind: crate::server::channels::ChannelKind,
}

impl Rig {
    fn new(kind: DeviceKind) -> Rig {
        let port = Arc::new(FakePort::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let kind = crate::server::device_channels::channel_kind(
            &kind,
            0,
            port.clone(),
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .expect("a spicevmc kind");
        Rig { port, wakes, kind }
    }

    fn sink(&self) -> Arc<dyn DeviceSink> {
        self.port
            .sink
            .lock()
            .clone()
            .expect("attached at registration")
    }

    fn open(&self, caps: &[u32]) -> Result<(Box<dyn Channel>, Outbox), LinkError> {
        let open = self.kind.open_fn();
        let opening = open(&OpenRequest {
            session_id: 1,
            channel_id: 0,
            caps: crate::proto::caps::Caps::from_bits(caps),
        })?;
        let mut channel = opening.channel;
        let mut out = Outbox::new(HeaderKind::Mini);
        channel.start(&mut out);
        Ok((channel, out))
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

use crate::proto::link::LinkError;

fn port_rig() -> Rig {
    Rig::new(DeviceKind::Port("org.example.test".into()))
}

fn data_of(msgs: &[crate::proto::frame::Message]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for m in msgs {
        match m.msg_type {
            m::DATA => bytes.extend_from_slice(&m.body),
            m::COMPRESSED_DATA => {
                assert_eq!(m.body[0], m::COMPRESSION_LZ4);
                let size = u32::from_le_bytes(m.body[1..5].try_into().unwrap()) as usize;
                bytes.extend(lz4_flex::block::decompress(&m.body[5..], size).unwrap());
            }
            _ => {}
        }
    }
    bytes
}

#[test]
fn port_init_carries_the_name_and_the_guest_state_known_before_the_client() {
    let rig = port_rig();
    rig.sink().guest_event(true);
    let (_ch, mut out) = rig.open(&[]).unwrap();
    let msgs = drain(&mut out);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].msg_type, m::PORT_INIT);
    assert_eq!(
        msgs[0].body,
        crate::proto::outgoing::body_of(&VmcMessage::PortInit {
            name: "org.example.test",
            opened: true
        })
    );
    assert_eq!(*rig.port.connected.lock(), vec![true]);
    assert!(rig.port.resumes.load(Ordering::SeqCst) >= 1);
}

#[test]
fn usbredir_sends_no_port_init_and_refuses_port_events() {
    let rig = Rig::new(DeviceKind::Usbredir);
    assert_eq!(rig.kind.channel_type, crate::proto::msg::channel::USBREDIR);
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    assert!(drain(&mut out).is_empty());
    assert!(ch.on_message(m::C_PORT_EVENT, &[0], &mut out).is_err());
}

#[test]
fn webdav_is_a_port_with_its_fixed_name() {
    let rig = Rig::new(DeviceKind::Webdav);
    assert_eq!(rig.kind.channel_type, crate::proto::msg::channel::WEBDAV);
    let (_ch, mut out) = rig.open(&[]).unwrap();
    let body = &drain(&mut out)[0].body;
    assert_eq!(&body[9..body.len() - 1], b"org.spice-space.webdav.0");
    assert!(crate::server::device_channels::channel_kind(
        &DeviceKind::Agent,
        0,
        Arc::new(FakePort::default()),
        Arc::new(|| {})
    )
    .is_none());
}

#[test]
fn guest_bytes_reach_the_client_in_order_and_merged() {
    let rig = port_rig();
    let sink = rig.sink();
    assert_eq!(sink.room(), 0, "nobody reads the guest without a client");
    sink.received(b"lost");
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    drain(&mut out);
    assert_eq!(sink.room(), CLIENT_QUEUE_LIMIT);
    let before = rig.wakes();
    sink.received(b"hello ");
    sink.received(b"world");
    assert!(rig.wakes() > before, "the reactor is woken");
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(msgs.len(), 1, "small reads go out as one message");
    assert_eq!(msgs[0].msg_type, m::DATA);
    assert_eq!(msgs[0].body, b"hello world");
}

#[test]
fn lz4_only_for_clients_with_the_cap_and_data_that_shrinks() {
    let text: Vec<u8> = b"spice ".iter().copied().cycle().take(30_000).collect();
    for (caps, compressed) in [(vec![], false), (vec![m::CAP_DATA_COMPRESS_LZ4], true)] {
        let rig = port_rig();
        let (mut ch, mut out) = rig.open(&caps).unwrap();
        drain(&mut out);
        rig.sink().received(&text);
        ch.produce(&mut out);
        rig.sink().received(b"short");
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let types: Vec<u16> = msgs.iter().map(|m| m.msg_type).collect();
        let first = if compressed {
            m::COMPRESSED_DATA
        } else {
            m::DATA
        };
        assert_eq!(types, vec![first, m::DATA]);
        if compressed {
            assert!(msgs[0].body.len() < text.len() / 10);
        }
        let mut expect = text.clone();
        expect.extend_from_slice(b"short");
        assert_eq!(data_of(&msgs), expect);
    }
}

#[test]
fn a_client_that_does_not_read_stops_the_device_and_resumes_it() {
    let rig = port_rig();
    let sink = rig.sink();
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    drain(&mut out);
    let resumes = || rig.port.resumes.load(Ordering::SeqCst);
    // The device reads as much as room says, until the bound is reached.
    let mut sent = 0;
    loop {
        let room = sink.room().min(64 << 10);
        if room == 0 {
            break;
        }
        sink.received(&vec![7; room]);
        sent += room;
        ch.produce(&mut out);
        assert!(sent <= CLIENT_QUEUE_LIMIT);
    }
    // Queue and outbox count together (the outbox with its message headers).
    assert!(sent > CLIENT_QUEUE_LIMIT - 1024, "{sent}");
    assert!(out.pending() <= OUTBOX_AHEAD + MAX_MESSAGE_DATA + 64);
    let before = resumes();
    ch.produce(&mut out);
    assert_eq!(resumes(), before, "nothing was read by the client yet");
    // The client reads; the next produce frames more and resumes the device once half
    // the bound is free.
    let mut got = 0;
    for _ in 0..64 {
        got += data_of(&drain(&mut out)).len();
        ch.produce(&mut out);
    }
    assert_eq!(got, sent);
    assert_eq!(resumes(), before + 1);
    assert_eq!(sink.room(), CLIENT_QUEUE_LIMIT);
}

#[test]
fn client_bytes_go_to_the_guest_and_input_stops_while_the_guest_is_full() {
    let rig = port_rig();
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    ch.on_message(m::C_DATA, b"abc", &mut out).unwrap();
    let block = lz4_flex::block::compress(&[9; 5000]);
    let mut w = Writer::new();
    w.u8(m::COMPRESSION_LZ4).u32(5000).bytes(&block);
    ch.on_message(m::C_COMPRESSED_DATA, &w.into_inner(), &mut out)
        .unwrap();
    assert!(ch.wants_input());
    let mut expect = b"abc".to_vec();
    expect.extend([9; 5000]);
    assert_eq!(rig.port.guest_takes_all(), expect);
    // The guest stops taking: past the bound the channel wants no more input, and the
    // guest taking the bytes wakes the reactor to read again.
    ch.on_message(m::C_DATA, &vec![1; GUEST_QUEUE_LIMIT], &mut out)
        .unwrap();
    assert!(!ch.wants_input());
    let before = rig.wakes();
    assert_eq!(rig.port.guest_takes_all().len(), GUEST_QUEUE_LIMIT);
    assert_eq!(rig.wakes(), before + 1);
    assert!(ch.wants_input());
    let tags: Vec<u64> = rig.port.to_guest.lock().iter().map(|t| t.1).collect();
    assert!(tags.is_empty());
}

#[test]
fn port_events_both_ways_and_a_flapping_guest_stays_bounded() {
    let rig = port_rig();
    let sink = rig.sink();
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    drain(&mut out);
    sink.received(b"bye");
    sink.guest_event(false);
    sink.guest_event(true);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    let seen: Vec<(u16, Vec<u8>)> = msgs.into_iter().map(|m| (m.msg_type, m.body)).collect();
    assert_eq!(
        seen,
        vec![
            (m::DATA, b"bye".to_vec()),
            (m::PORT_EVENT, vec![m::PORT_EVENT_CLOSED]),
            (m::PORT_EVENT, vec![m::PORT_EVENT_OPENED]),
        ]
    );
    for i in 0..10_000 {
        sink.guest_event(i % 2 == 0);
    }
    ch.produce(&mut out);
    let events = drain(&mut out);
    assert!(events.len() <= MAX_EVENTS);
    assert_eq!(events.last().unwrap().body, vec![m::PORT_EVENT_CLOSED]);
    ch.on_message(m::C_PORT_EVENT, &[m::PORT_EVENT_BREAK], &mut out)
        .unwrap();
    assert_eq!(*rig.port.events.lock(), vec![m::PORT_EVENT_BREAK]);
}

#[test]
fn bad_messages_close_the_channel_and_free_the_device_for_the_next_client() {
    let rig = port_rig();
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    assert!(rig.open(&[]).is_err(), "one client per device channel");
    let mut lying = Writer::new();
    lying.u8(m::COMPRESSION_LZ4).u32(u32::MAX).bytes(&[0; 16]);
    let bad = [
        (m::C_COMPRESSED_DATA, lying.into_inner()),
        (m::C_COMPRESSED_DATA, vec![1, 0]),
        (m::C_COMPRESSED_DATA, vec![1, 100, 0, 0, 0, 0xff, 0xff]),
        (m::C_PORT_EVENT, vec![]),
        (999, vec![]),
    ];
    for (msg_type, body) in bad {
        let err = ch.on_message(msg_type, &body, &mut out).unwrap_err();
        assert!(err.to_string().starts_with(&format!("message {msg_type}:")));
    }
    assert!(rig.port.to_guest.lock().is_empty());
    assert_eq!(ch.max_body(), MAX_CLIENT_DATA + 5);
    // The reactor closes the connection; the device is free and the guest hears it.
    ch.closed();
    drop(ch);
    assert_eq!(*rig.port.connected.lock(), vec![true, false]);
    assert_eq!(rig.sink().room(), 0);
    let (_again, _) = rig.open(&[]).expect("the next client links");
}

#[test]
fn a_removed_device_ends_the_channel() {
    let rig = port_rig();
    let (mut ch, mut out) = rig.open(&[]).unwrap();
    assert!(!ch.finished());
    rig.sink().received(b"pending");
    rig.sink().detached();
    assert!(ch.finished());
    ch.produce(&mut out);
    ch.on_message(m::C_DATA, b"late", &mut out).unwrap();
    assert!(rig.port.to_guest.lock().is_empty());
    drop(ch);
    assert!(rig.open(&[]).is_err());
}
