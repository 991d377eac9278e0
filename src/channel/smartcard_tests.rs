use super::*;
use crate::channel::device_queue::{CLIENT_QUEUE_LIMIT, GUEST_QUEUE_LIMIT};
use crate::channel::testing::drain;
use crate::proto::frame::HeaderKind;
use crate::server::channels::{ChannelKind, OpenRequest};
use crate::server::char_device::DeviceKind;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::channel::testing::FakePort;

struct Rig {
    port: Arc<FakePort>,
    wakes: Arc<AtomicUsize>,
    kind: ChannelKind,
}

impl Rig {
    fn new(id: u8) -> Rig {
        let port = Arc::new(FakePort::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let kind = crate::server::device_channels::channel_kind(
            &DeviceKind::Smartcard,
            id,
            port.clone(),
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .expect("a smartcard reader");
        Rig { port, wakes, kind }
    }

    fn sink(&self) -> Arc<dyn DeviceSink> {
        self.port.sink.lock().clone().expect("attached")
    }

    /// The guest writes `bytes`, as much as the sink takes.
    fn guest_writes(&self, bytes: &[u8]) -> usize {
        let sink = self.sink();
        let n = sink.room().min(bytes.len());
        sink.received(&bytes[..n]);
        n
    }

    fn open(&self) -> (Box<dyn Channel>, Outbox) {
        let opening = (self.kind.open_fn())(&OpenRequest {
            session_id: 1,
            channel_id: self.kind.id,
            caps: crate::proto::caps::Caps::from_bits(&[]),
        })
        .expect("smartcard channels always open");
        let mut channel = opening.channel;
        let mut out = Outbox::new(HeaderKind::Mini);
        channel.start(&mut out);
        (channel, out)
    }
}

/// A client message body: header little-endian, then data.
fn client(t: u32, reader: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(t.to_le_bytes());
    b.extend(reader.to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend(data);
    b
}

fn device(t: u32, reader: u32, data: &[u8]) -> Vec<u8> {
    VscMessage::new(t, reader, data.to_vec()).to_device()
}

/// (type, reader id, data) of each message the client got.
fn received(out: &mut Outbox) -> Vec<(u32, u32, Vec<u8>)> {
    drain(out)
        .into_iter()
        .map(|m| {
            assert_eq!(m.msg_type, wire::DATA);
            let (h, data) = wire::parse_client(&m.body).expect("a VSC message");
            assert_eq!(data.len(), m.body.len() - HEADER_SIZE);
            (h.msg_type, h.reader_id, data.to_vec())
        })
        .collect()
}

#[test]
fn reader_add_reaches_the_device_and_its_answer_the_client_with_our_reader_id() {
    let rig = Rig::new(3);
    // The device's Init at boot, before any client, is read and kept from everyone.
    rig.guest_writes(&device(
        vsc::INIT,
        u32::MAX,
        &[0x56, 0x53, 0x43, 0x44, 0, 0, 0, 2],
    ));
    let (mut ch, mut out) = rig.open();
    assert_eq!(*rig.port.connected.lock(), [true]);
    ch.on_message(wire::DATA, &client(vsc::INIT, u32::MAX, &[0; 12]), &mut out)
        .unwrap();
    ch.on_message(
        wire::DATA,
        &client(vsc::READER_ADD, u32::MAX, b"reader\0"),
        &mut out,
    )
    .unwrap();
    // Init stays here; ReaderAdd goes with the reader id and without the name.
    assert_eq!(rig.port.guest_takes_all(), device(vsc::READER_ADD, 3, &[]));
    // ccid-card-passthru answers with reader id 0; the client learns 3.
    rig.guest_writes(&device(vsc::INIT, u32::MAX, &[1, 2, 3, 4]));
    rig.guest_writes(&device(vsc::ERROR, 0, &[0, 0, 0, 0]));
    ch.produce(&mut out);
    assert_eq!(received(&mut out), [(vsc::ERROR, 3, vec![0, 0, 0, 0])]);
    assert!(rig.wakes.load(Ordering::SeqCst) > 0);
}

#[test]
fn apdus_go_both_ways_split_and_joined_as_the_device_writes_them() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    ch.on_message(
        wire::DATA,
        &client(vsc::READER_ADD, u32::MAX, &[]),
        &mut out,
    )
    .unwrap();
    rig.port.guest_takes_all();
    ch.on_message(wire::DATA, &client(vsc::ATR, 0, &[0x3B, 0x80]), &mut out)
        .unwrap();
    ch.on_message(
        wire::DATA,
        &client(vsc::APDU, 0, &[0, 0xA4, 4, 0]),
        &mut out,
    )
    .unwrap();
    let mut want = device(vsc::ATR, 0, &[0x3B, 0x80]);
    want.extend(device(vsc::APDU, 0, &[0, 0xA4, 4, 0]));
    assert_eq!(rig.port.guest_takes_all(), want);

    let mut stream = device(vsc::APDU, 0, &[0x90, 0]);
    stream.extend(device(vsc::APDU, 0, &[1, 2, 0x90, 0]));
    for piece in stream.chunks(5) {
        rig.guest_writes(piece);
    }
    ch.produce(&mut out);
    assert_eq!(
        received(&mut out),
        [
            (vsc::APDU, 0, vec![0x90, 0]),
            (vsc::APDU, 0, vec![1, 2, 0x90, 0])
        ]
    );
}

#[test]
fn a_second_client_has_no_reader_until_the_first_leaves() {
    let rig = Rig::new(0);
    let (mut first, mut out1) = rig.open();
    first
        .on_message(
            wire::DATA,
            &client(vsc::READER_ADD, u32::MAX, &[]),
            &mut out1,
        )
        .unwrap();
    rig.port.guest_takes_all();

    let (mut second, mut out2) = rig.open();
    second
        .on_message(
            wire::DATA,
            &client(vsc::READER_ADD, u32::MAX, &[]),
            &mut out2,
        )
        .unwrap();
    assert_eq!(
        received(&mut out2),
        [(
            vsc::ERROR,
            vsc::UNDEFINED_READER_ID,
            vsc::CANNOT_ADD_MORE_READERS.to_le_bytes().to_vec()
        )]
    );
    // Its APDUs are dropped; device answers go to the first client only.
    second
        .on_message(wire::DATA, &client(vsc::APDU, 0, &[1]), &mut out2)
        .unwrap();
    assert!(rig.port.guest_takes_all().is_empty());
    rig.guest_writes(&device(vsc::APDU, 0, &[0x90, 0]));
    first.produce(&mut out1);
    second.produce(&mut out2);
    assert_eq!(received(&mut out1).len(), 1);
    assert!(received(&mut out2).is_empty());

    // The first leaves: the device hears the reader go, the second may add it.
    first.closed();
    drop(first);
    assert_eq!(
        rig.port.guest_takes_all(),
        device(vsc::READER_REMOVE, 0, &[])
    );
    assert_eq!(*rig.port.connected.lock(), [true, false]);
    second
        .on_message(
            wire::DATA,
            &client(vsc::READER_ADD, u32::MAX, &[]),
            &mut out2,
        )
        .unwrap();
    assert_eq!(rig.port.guest_takes_all(), device(vsc::READER_ADD, 0, &[]));
    assert_eq!(*rig.port.connected.lock(), [true, false, true]);
}

#[test]
fn reader_remove_needs_an_added_reader_of_this_client() {
    let rig = Rig::new(1);
    let (mut ch, mut out) = rig.open();
    ch.on_message(wire::DATA, &client(vsc::READER_REMOVE, 1, &[]), &mut out)
        .unwrap();
    assert_eq!(
        received(&mut out),
        [(vsc::ERROR, 1, vsc::GENERAL_ERROR.to_le_bytes().to_vec())]
    );
    ch.on_message(
        wire::DATA,
        &client(vsc::READER_ADD, u32::MAX, &[]),
        &mut out,
    )
    .unwrap();
    ch.on_message(wire::DATA, &client(vsc::READER_REMOVE, 1, &[]), &mut out)
        .unwrap();
    let mut want = device(vsc::READER_ADD, 1, &[]);
    want.extend(device(vsc::READER_REMOVE, 1, &[]));
    assert_eq!(rig.port.guest_takes_all(), want);
    assert!(received(&mut out).is_empty());
    // Removed already: leaving sends nothing more.
    ch.closed();
    assert!(rig.port.guest_takes_all().is_empty());
}

#[test]
fn hostile_client_messages_close_the_channel() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    // Unknown VSC types are logged and ignored, as spice-server does.
    ch.on_message(wire::DATA, &client(42, 0, &[]), &mut out)
        .unwrap();
    for body in [
        vec![1, 2, 3],
        client(vsc::APDU, 0, &[1, 2, 3])[..14].to_vec(),
        {
            let mut b = client(vsc::APDU, 0, &[]);
            b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        },
        client(vsc::APDU, 7, &[1]),
    ] {
        assert!(ch.on_message(wire::DATA, &body, &mut out).is_err());
    }
    assert!(ch.on_message(102, &[], &mut out).is_err());
    assert!(rig.port.guest_takes_all().is_empty());
}

#[test]
fn an_oversized_device_message_is_dropped_and_the_stream_recovers() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    let header = VscHeader {
        msg_type: vsc::APDU,
        reader_id: 0,
        length: u32::MAX,
    };
    rig.guest_writes(&header.to_device());
    // Four GiB announced: nothing is buffered while it is skipped.
    for _ in 0..100 {
        assert_eq!(rig.guest_writes(&[0xEE; 64 << 10]), 64 << 10);
    }
    ch.produce(&mut out);
    assert!(received(&mut out).is_empty());
    assert_eq!(rig.sink().room(), CLIENT_QUEUE_LIMIT);
}

#[test]
fn a_client_that_does_not_read_stops_the_device_and_resumes_it() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    let resumes = rig.port.resumes.load(Ordering::SeqCst);
    let stream = device(vsc::APDU, 0, &[7; 4000]).repeat(1000);
    let mut at = 0;
    while rig.sink().room() > 0 {
        at += rig.guest_writes(&stream[at..]);
        assert!(at < stream.len(), "the device was never stopped");
    }
    // What is queued stays within the bound, and the device waits for a resume.
    assert_eq!(rig.sink().room(), 0);
    // The client reads: once half the bound is free the device reads again.
    for _ in 0..8 {
        ch.produce(&mut out);
        assert!(out.pending() <= CLIENT_QUEUE_LIMIT);
        let n = out.pending();
        out.consumed(n);
    }
    assert!(rig.port.resumes.load(Ordering::SeqCst) > resumes);
    assert_eq!(rig.sink().room(), CLIENT_QUEUE_LIMIT);
}

#[test]
fn input_stops_while_the_guest_holds_too_much() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    ch.on_message(
        wire::DATA,
        &client(vsc::READER_ADD, u32::MAX, &[]),
        &mut out,
    )
    .unwrap();
    let apdu = client(vsc::APDU, 0, &[0; MAX_PAYLOAD]);
    while ch.wants_input() {
        ch.on_message(wire::DATA, &apdu, &mut out).unwrap();
    }
    assert!(rig.port.queued_to_guest() < GUEST_QUEUE_LIMIT + apdu.len());
    let wakes = rig.wakes.load(Ordering::SeqCst);
    rig.port.guest_takes_all();
    assert!(rig.wakes.load(Ordering::SeqCst) > wakes);
    assert!(ch.wants_input());
}

#[test]
fn a_removed_device_ends_the_channel_and_readers_stop_at_ten() {
    let rig = Rig::new(0);
    let (mut ch, mut out) = rig.open();
    rig.sink().detached();
    assert!(ch.finished());
    ch.on_message(
        wire::DATA,
        &client(vsc::READER_ADD, u32::MAX, &[]),
        &mut out,
    )
    .unwrap();
    assert!(rig.port.guest_takes_all().is_empty());
    assert_eq!(rig.sink().room(), 0);

    let port: Arc<dyn GuestPort> = Arc::new(FakePort::default());
    let none = crate::server::device_channels::channel_kind(
        &DeviceKind::Smartcard,
        MAX_READERS,
        port,
        Arc::new(|| {}),
    );
    assert!(none.is_none());
}
