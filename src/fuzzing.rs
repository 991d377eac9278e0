//! Entry points for the cargo-fuzz targets in `fuzz/` (built only with the `fuzzing`
//! feature): the library's modules stay private to the crate, and each fuzz target is one
//! call here.

use crate::canvas::{self, framebuffer::Framebuffer, NoSurfaces};
use crate::qxl::command::{self, GuestMemory};
use crate::qxl::draw;
use crate::qxl::memslot::MemError;

/// The fuzz input is the guest memory at `BASE..BASE + len`.
const BASE: u64 = 0x1000;

struct Memory<'a>(&'a [u8]);

impl GuestMemory for Memory<'_> {
    fn read(&self, _group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
        let err = MemError::OutOfSlot {
            address,
            size: len as u64,
        };
        let start = address.checked_sub(BASE).ok_or(err)? as usize;
        let end = start.checked_add(len).ok_or(err)?;
        self.0.get(start..end).map(<[u8]>::to_vec).ok_or(err)
    }
}

/// Arbitrary guest memory through every QXL command parser: drawables (native and
/// compat, with their images, brushes, masks, clips, paths and glyphs), surface and
/// cursor commands, monitors configs. Whatever parses is also rendered on a small canvas.
pub fn qxl_command(data: &[u8]) {
    let mem = Memory(data);
    for compat in [false, true] {
        if let Ok(d) = draw::parse(&mem, 0, BASE, compat) {
            if let Some(mut fb) = Framebuffer::new(64, 48) {
                canvas::render(&mut fb, &d, &NoSurfaces);
            }
        }
    }
    let _ = draw::parse_surface_command(&mem, 0, BASE);
    let _ = command::parse_cursor(&mem, 0, BASE);
    let _ = command::parse_monitors(&mem, 0, BASE);
    let _ = command::parse_update(&mem, 0, BASE);
}

/// Arbitrary bytes from a client through the link handshake (header, `SpiceLinkMess`
/// and its caps), fed in the pieces the reactor would read. The first byte says whether
/// the hub refuses the request (cheap) or accepts it (a key is made, then the
/// mechanism and ticket phases see the rest).
pub fn link(data: &[u8]) {
    use crate::net::link::{Link, ServerCaps, Step};
    use crate::proto::link::LinkError;
    let Some((&accept, mut rest)) = data.split_first() else {
        return;
    };
    let mut link = Link::default();
    while !rest.is_empty() && link.wanted() > 0 {
        let n = link.wanted().min(rest.len()).min(512);
        let step = link.feed(&rest[..n], |_| {
            if accept & 1 == 1 {
                Ok(ServerCaps {
                    common: vec![0xb],
                    channel: vec![],
                    sasl: accept & 2 == 2,
                })
            } else {
                Err(LinkError::ChannelNotAvailable)
            }
        });
        rest = &rest[n..];
        if matches!(step, Step::Fail(_) | Step::Authenticate(_)) {
            return;
        }
    }
}

/// Arbitrary client bytes on a WebSocket connection: the upgrade request parser, then
/// the frame decoder fed in pieces and read in sizes the first byte chooses, then a
/// round trip (a masked frame of the input decodes back to it). Checks that the decoder
/// always makes progress, stays within its buffers and owes at most a pong and a close.
pub fn websocket(data: &[u8]) {
    use crate::net::websocket::frames::{client_frame, Decoder};
    use crate::net::websocket::handshake::{self, Upgrade, MAX_REQUEST};
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    match handshake::parse(rest) {
        Upgrade::Accept { consumed, reply } => {
            assert!(consumed <= rest.len() && reply.starts_with(b"HTTP/1.1 101 "));
        }
        Upgrade::Incomplete => assert!(rest.len() < MAX_REQUEST),
        Upgrade::Refuse { reply, .. } => assert!(reply.starts_with(b"HTTP/1.1 4")),
    }
    let piece = usize::from(shape >> 4) * 37 + 1;
    let read = usize::from((shape >> 1) & 7) * 700 + 1;
    let mut decoder = Decoder::default();
    let mut out = vec![0u8; read];
    'pieces: for chunk in rest.chunks(piece) {
        let mut at = 0;
        while at < chunk.len() {
            match decoder.decode(&chunk[at..], &mut out) {
                Ok(d) => {
                    assert!(d.consumed <= chunk.len() - at && d.produced <= out.len());
                    if d.consumed == 0 {
                        assert!(decoder.peer_closed(), "no progress");
                        break 'pieces;
                    }
                    at += d.consumed;
                }
                Err(violation) => {
                    let _ = (violation.close_code(), violation.to_string());
                    break 'pieces;
                }
            }
            assert!(decoder.replies().len() <= 2 * (2 + 125));
        }
    }
    let mask = [shape, shape ^ 0x5a, shape.rotate_left(3), !shape];
    let frame = client_frame(true, 2, mask, rest);
    let mut round = Decoder::default();
    let mut back = vec![0u8; rest.len() + 1];
    let d = round.decode(&frame, &mut back).expect("our own frame");
    assert_eq!((d.consumed, &back[..d.produced]), (frame.len(), rest));
}

/// What the fuzz input asks between client messages.
mod op {
    /// Let the channel queue what is due (`Channel::produce`), as a reactor wake does.
    pub(super) const PRODUCE: u8 = 1;
    /// Something changes on the server's side (the screen, the pointer, the mouse).
    pub(super) const WORLD: u8 = 2;
    /// The client reads everything queued.
    pub(super) const READ: u8 = 4;
}

/// A channel fed as the reactor feeds it: the fuzz input is `caps: u32`, then records of
/// `op: u8, type: u16, len: u16, body` (see [`op`]). Each record's message goes where
/// the reactor sends it (PONG to `on_pong`, base messages to `handle_base`, the rest to
/// `on_message`); an error ends the run as the reactor closes the connection. `world`
/// applies a server-side change described by the record's body.
fn drive(
    data: &[u8],
    open: impl FnOnce(crate::proto::caps::Caps) -> Box<dyn crate::channel::Channel>,
    mut world: impl FnMut(&[u8]),
) {
    use crate::channel::{handle_base, Outbox, OUTBOX_HIGH_WATER};
    use crate::proto::frame::HeaderKind;
    use crate::proto::msg::base;
    let Some((caps, mut rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mut ch = open(crate::proto::caps::Caps(vec![u32::from_le_bytes(*caps)]));
    let mut out = Outbox::new(HeaderKind::Mini);
    ch.start(&mut out);
    while let Some((head, tail)) = rest.split_first_chunk::<5>() {
        let op = head[0];
        let msg_type = u16::from_le_bytes([head[1], head[2]]);
        let len = usize::from(u16::from_le_bytes([head[3], head[4]]))
            .min(tail.len())
            .min(ch.max_body());
        let (body, tail) = tail.split_at(len);
        rest = tail;
        if op & op::WORLD != 0 {
            world(body);
        } else if msg_type == base::C_PONG {
            match crate::proto::main::parse_pong(body) {
                Ok((id, timestamp)) => ch.on_pong(id, timestamp),
                Err(_) => break,
            }
        } else {
            let handled = handle_base(msg_type, body, &mut out).and_then(|base| {
                if base {
                    Ok(())
                } else {
                    ch.on_message(msg_type, body, &mut out)
                }
            });
            if handled.is_err() {
                break;
            }
        }
        if op & op::PRODUCE != 0 && out.has_room() {
            ch.produce(&mut out);
        }
        // A client that never reads is the reactor's business (it stops reading and
        // closes); here it only bounds the harness's memory.
        if op & op::READ != 0 || out.pending() > 4 * OUTBOX_HIGH_WATER {
            out.consumed(out.pending());
        }
    }
    ch.produce(&mut out);
    ch.closed();
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([
        b.get(i).copied().unwrap_or(0),
        b.get(i + 1).copied().unwrap_or(0),
    ])
}

/// Client messages on the main channel (attach, mouse modes, agent data and tokens,
/// pings, migration), with the tablet coming and going.
pub fn main_channel(data: &[u8]) {
    use crate::channel::main::{MainChannel, MainInfo, Mouse};
    use std::sync::Arc;
    let mouse = Arc::new(Mouse::default());
    let m = mouse.clone();
    drive(
        data,
        |caps| {
            let info = MainInfo {
                session_id: 1,
                display_channels: 1,
                ram_hint: 0,
                name: Some("fuzz".into()),
                uuid: Some([7; 16]),
                channels: Arc::new(|| vec![(2, 0), (3, 0), (4, 0)]),
                agent: crate::agent::AgentHub::new(Arc::new(|| {})),
            };
            Box::new(MainChannel::new(
                info,
                caps,
                m,
                Arc::default(),
                Arc::default(),
            ))
        },
        |body| mouse.set_tablet(body.first().is_some_and(|b| b & 1 == 1)),
    );
}

/// Client messages on a display channel (init, stream reports, preferred codecs and
/// compression, GL draw done), while the screen is created, drawn on and destroyed.
pub fn display_channel(data: &[u8]) {
    use crate::channel::display::DisplayChannel;
    use crate::display::Screen;
    use crate::geometry::Area;
    let screen = Screen::default();
    screen.create_surface(64, 48);
    let s = screen.clone();
    drive(
        data,
        |caps| Box::new(DisplayChannel::new(s, 1, caps, 1)),
        |body| match body.first().map(|b| b % 3) {
            Some(0) => {
                screen.create_surface(
                    u32::from(u16_at(body, 1) % 256) + 1,
                    u32::from(u16_at(body, 3) % 256) + 1,
                );
            }
            Some(1) => screen.destroy_surface(),
            _ => {
                let (x, y) = (
                    u32::from(u16_at(body, 1) % 300),
                    u32::from(u16_at(body, 3) % 300),
                );
                let (w, h) = (u32::from(body.len() as u8 % 32) + 1, 2);
                let pixels = vec![0x5a; (w * h * 4) as usize];
                screen.modify(|fb| {
                    Some(fb.blit(Area::new(x, y, x + w, y + h), &pixels, w as usize * 4))
                });
            }
        },
    );
}

/// Client messages on the inputs channel (keys, scancodes, motion, position, buttons,
/// modifiers) into a sink that drops them.
pub fn inputs_channel(data: &[u8]) {
    use crate::channel::inputs::{InputSink, InputsChannel};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    struct Nowhere;
    impl InputSink for Nowhere {
        fn scancodes(&self, _: Vec<u8>) {}
        fn mouse_motion(&self, _: i32, _: i32, _: i32, _: u32) {}
        fn mouse_buttons(&self, _: u32) {}
        fn tablet_position(&self, _: i32, _: i32, _: u32) {}
        fn tablet_wheel(&self, _: i32, _: u32) {}
        fn tablet_buttons(&self, _: u32) {}
        fn leds(&self) -> (u8, u64) {
            (0, 0)
        }
    }
    let mode = Arc::new(AtomicU32::new(1));
    let m = mode.clone();
    drive(
        data,
        |_| Box::new(InputsChannel::new(Arc::new(Nowhere), m)),
        |body| {
            mode.store(
                u32::from(body.first().copied().unwrap_or(1)),
                Ordering::Relaxed,
            )
        },
    );
}

/// Client messages on the cursor channel while the guest's pointer changes shape, moves
/// and hides.
pub fn cursor_channel(data: &[u8]) {
    use crate::channel::cursor::CursorChannel;
    use crate::display::pointer::Pointer;
    use crate::qxl::command::{CursorCommand, CursorShape};
    let pointer = Pointer::default();
    let p = pointer.clone();
    drive(
        data,
        |_| Box::new(CursorChannel::new(p)),
        |body| {
            let (x, y) = (u16_at(body, 1) as i16, u16_at(body, 3) as i16);
            pointer.apply(match body.first().map(|b| b % 4) {
                Some(0) => {
                    let (w, h) = (u16_at(body, 5) % 64, u16_at(body, 7) % 64);
                    let kind = u16::from(body.get(15).copied().unwrap_or(0) % 7);
                    let len = crate::qxl::command::cursor_data_len(kind, w, h).unwrap_or(0);
                    CursorCommand::Set {
                        x,
                        y,
                        visible: true,
                        shape: Some(CursorShape {
                            unique: u64::from(u16_at(body, 9)),
                            kind,
                            width: w,
                            height: h,
                            hot_x: u16_at(body, 11),
                            hot_y: u16_at(body, 13),
                            data: vec![0x80; len],
                        }),
                    }
                }
                Some(1) => CursorCommand::Move { x, y },
                Some(2) => CursorCommand::Hide,
                _ => CursorCommand::Trail,
            });
        },
    );
}

/// A char device for the device-channel targets that keeps count of what it holds for
/// the guest.
#[derive(Default)]
struct CountingPort(parking_lot::Mutex<Vec<(usize, u64)>>);

impl CountingPort {
    /// The guest takes everything queued: the sink hears each piece was written.
    fn guest_takes_all(&self, sink: &dyn crate::server::char_device::DeviceSink) {
        let taken = std::mem::take(&mut *self.0.lock());
        taken.into_iter().for_each(|(_, tag)| sink.written(tag));
    }
}

impl crate::server::char_device::GuestPort for CountingPort {
    fn attach(&self, _: Option<std::sync::Arc<dyn crate::server::char_device::DeviceSink>>) {}
    fn to_guest(&self, data: Vec<u8>, tag: u64) {
        self.0.lock().push((data.len(), tag));
    }
    fn queued_to_guest(&self) -> usize {
        self.0.lock().iter().map(|(n, _)| n).sum()
    }
    fn resume_reading(&self) {}
    fn set_client_connected(&self, _: bool) {}
    fn send_event(&self, _: u8) {}
}

/// Client messages on a spicevmc port channel (data, LZ4 data, port events) while the
/// guest writes, opens and closes the port and takes (or leaves) the client's bytes.
pub fn spicevmc_channel(data: &[u8]) {
    use crate::channel::spicevmc::{VmcChannel, VmcDevice};
    use crate::server::char_device::{DeviceSink, GuestPort};
    use std::sync::Arc;
    let device = VmcDevice::new(Arc::new(|| {}));
    let port = Arc::new(CountingPort::default());
    if !device.claim() {
        return;
    }
    let (d, p) = (device.clone(), port.clone());
    drive(
        data,
        |caps| {
            let lz4 = caps.has(crate::proto::msg::spicevmc::CAP_DATA_COMPRESS_LZ4);
            Box::new(VmcChannel::new(d, p, Some("org.example.fuzz".into()), lz4))
        },
        |body| match body.first().map(|b| b % 4) {
            Some(0) => {
                let n = device.room().min(body.len());
                device.received(&body[..n]);
            }
            Some(1) => device.guest_event(body.len() % 2 == 0),
            Some(2) => {
                port.guest_takes_all(&*device);
            }
            _ => {
                let n = device.room();
                device.received(&vec![0x42; n.min(64 << 10)]);
            }
        },
    );
    assert!(port.queued_to_guest() <= 64 << 20);
}

/// Client VSC messages on a smartcard channel (any type, reader id and length) while
/// the device writes arbitrary bytes (headers that may announce gigabytes), takes or
/// leaves the client's messages, and a second client competes for the reader.
pub fn smartcard_channel(data: &[u8]) {
    use crate::channel::smartcard::{SmartcardChannel, SmartcardDevice};
    use crate::server::char_device::{DeviceSink, GuestPort};
    use std::sync::Arc;
    let device = SmartcardDevice::new(0, Arc::new(|| {}));
    let port = Arc::new(CountingPort::default());
    let mut rival: Option<SmartcardChannel> = None;
    let (d, p) = (device.clone(), port.clone());
    drive(
        data,
        |_| Box::new(SmartcardChannel::open(d, p)),
        |body| match body.first().map(|b| b % 4) {
            Some(0) => {
                let n = device.room().min(body.len());
                device.received(&body[..n]);
            }
            Some(1) => {
                port.guest_takes_all(&*device);
            }
            Some(2) => {
                rival = match rival.take() {
                    Some(_) => None,
                    None => Some(SmartcardChannel::open(device.clone(), port.clone())),
                }
            }
            _ => {
                let n = device.room();
                device.received(&vec![0; n.min(64 << 10)]);
            }
        },
    );
    drop(rival);
    assert!(port.queued_to_guest() <= 64 << 20);
}

/// The sound channels: a playback client (base messages only) while QEMU starts and
/// stops its voice, puts frames of arbitrary samples, changes volume and mute and the
/// compression setting flips; then a record client sending modes, start marks and data
/// (raw, or Opus that may be garbage) while QEMU starts, stops and reads. Nothing may
/// panic, and the playback queue and record ring stay within their bounds.
pub fn sound_channels(data: &[u8]) {
    use crate::audio::playback::{PlaybackStream, MAX_QUEUED};
    use crate::audio::record::{RecordStream, RING_FRAMES};
    use crate::audio::FRAME_SAMPLES;
    use crate::channel::playback::{PlaybackCaps, PlaybackChannel};
    use crate::channel::record::RecordChannel;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let video: Arc<crate::video::VideoConfig> = Arc::default();
    let playback = PlaybackStream::new(video.clone(), Arc::new(|| {}));
    let compression = Arc::new(AtomicBool::new(true));
    let Some(token) = playback.claim() else {
        return;
    };
    let (p, c, v) = (playback.clone(), compression.clone(), video.clone());
    drive(
        data,
        |caps| {
            Box::new(PlaybackChannel::new(
                p,
                token,
                PlaybackCaps::from_client(&caps),
                c,
                v,
            ))
        },
        |body| match body.first().map(|b| b % 5) {
            Some(0) => {
                let mut frame = [0u32; FRAME_SAMPLES];
                for (f, b) in frame.iter_mut().zip(body.chunks(4)) {
                    *f = b.iter().fold(0, |a, x| a << 8 | u32::from(*x));
                }
                playback.put(&frame);
            }
            Some(1) => playback.set_active(body.len() % 2 == 0),
            Some(2) => playback.set_volume(body.iter().map(|b| u16::from(*b) * 257).collect()),
            Some(3) => playback.set_mute(body.len() % 2 == 0),
            _ => compression.store(body.len() % 2 == 0, Ordering::Relaxed),
        },
    );
    assert!(playback.queued() <= MAX_QUEUED);

    let record = RecordStream::new(Arc::new(|| {}));
    let Some(token) = record.claim() else {
        return;
    };
    let r = record.clone();
    let mut out = vec![0u32; RING_FRAMES + 100];
    drive(
        data,
        |caps| Box::new(RecordChannel::new(r, token, &caps)),
        |body| match body.first().map(|b| b % 4) {
            Some(0) => record.set_active(body.len() % 2 == 0),
            Some(1) => {
                let want = usize::from(u16_at(body, 1)) % out.len();
                assert!(record.read(&mut out[..want]) <= want);
            }
            Some(2) => record.set_volume(body.iter().map(|b| u16::from(*b)).collect()),
            _ => record.set_rate([48_000, 44_100, 24_000][body.len() % 3]),
        },
    );
    assert!(record.read(&mut out) <= RING_FRAMES);
}

/// The guest agent hub between a hostile guest agent and two hostile clients: device
/// bytes (chunks that lie about their size, bad ports), client AGENT_DATA pieces, tokens
/// both ways, the device taking its queue, attach and detach, mouse states. Records of
/// (op, len, bytes). Nothing may panic, and what the hub queues stays bounded.
pub fn agent(data: &[u8]) {
    use crate::agent::AgentHub;
    use crate::channel::Outbox;
    use crate::proto::frame::HeaderKind;
    use crate::server::char_device::{DeviceSink, GuestPort};
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[derive(Default)]
    struct Port {
        sink: Mutex<Option<Arc<dyn DeviceSink>>>,
        queued: Mutex<Vec<(usize, u64)>>,
    }
    impl GuestPort for Port {
        fn attach(&self, sink: Option<Arc<dyn DeviceSink>>) {
            *self.sink.lock() = sink;
        }
        fn to_guest(&self, data: Vec<u8>, tag: u64) {
            self.queued.lock().push((data.len(), tag));
        }
        fn queued_to_guest(&self) -> usize {
            self.queued.lock().iter().map(|(n, _)| n).sum()
        }
        fn resume_reading(&self) {}
        fn set_client_connected(&self, _: bool) {}
        fn send_event(&self, _: u8) {}
    }

    let hub = AgentHub::new(Arc::new(|| {}));
    hub.set_monitors_handler(Arc::new(|_| {}));
    let port = Arc::new(Port::default());
    hub.attach_device(port.clone());
    let mut clients = [Some(hub.join(true)), Some(hub.join(false))];
    let mut outs = [Outbox::new(HeaderKind::Mini), Outbox::new(HeaderKind::Mini)];
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let who = usize::from(op >> 7);
        match op & 0x7 {
            0 => {
                let sink = port.sink.lock().clone();
                if let Some(sink) = sink {
                    let take = sink.room().min(bytes.len());
                    sink.received(&bytes[..take]);
                }
            }
            1 => {
                // Pieces up to 2048 bytes: repeat the record's bytes.
                let size = usize::from(bytes.first().copied().unwrap_or(0)) * 9;
                let piece: Vec<u8> = bytes.iter().copied().cycle().take(size).collect();
                if let Some(c) = &clients[who] {
                    if c.data(if piece.is_empty() { bytes } else { &piece })
                        .is_err()
                    {
                        clients[who] = None;
                    }
                }
            }
            2 => {
                let queued = std::mem::take(&mut *port.queued.lock());
                let sink = port.sink.lock().clone();
                for (_, tag) in queued {
                    if let Some(sink) = &sink {
                        sink.written(tag);
                    }
                }
            }
            3 => {
                if let Some(c) = &clients[who] {
                    c.produce(&mut outs[who]);
                }
                let pending = outs[who].pending();
                outs[who].consumed(pending);
            }
            4 => {
                let tokens = u32::from(bytes.first().copied().unwrap_or(0));
                if let Some(c) = &clients[who] {
                    if op & 0x40 == 0 {
                        c.tokens(tokens);
                    } else {
                        c.start(tokens);
                    }
                }
            }
            5 => {
                if op & 0x40 == 0 {
                    hub.detach_device();
                } else {
                    hub.attach_device(port.clone());
                }
            }
            6 => {
                hub.mouse_state(u32::from(*len), 7, u32::from(*op), 0);
            }
            _ => {
                clients[who] = if op & 0x40 == 0 {
                    None
                } else {
                    Some(hub.join(op & 0x20 != 0))
                };
            }
        }
        assert!(
            port.queued_to_guest() < 16 << 20,
            "the device queue stays bounded"
        );
    }
}

/// The image codecs: the input's first bytes choose a size and the rest are pixels,
/// which LZ (RGB32, RGBA, RGB16), QUIC (RGB32, RGBA) and GLZ (against a small dictionary
/// kept across the input's images) must give back exactly through our decoders; then the
/// raw input itself is fed to each decoder, which must refuse it or decode it, never panic.
pub fn image_codecs(data: &[u8]) {
    use crate::image::jpeg::{self, Jpeg};
    use crate::image::{decode, decode_quic, decode_wan, glz::Dictionary, lz, quic, zlib};
    use crate::proto::display;
    let mut dict = Dictionary::new(4096);
    let mut window = decode::GlzWindow::default();
    let mut rest = data;
    while rest.len() >= 2 {
        let (width, height) = (u32::from(rest[0] % 64) + 1, u32::from(rest[1] % 16) + 1);
        let n = (width * height) as usize;
        let take = (n * 4).min(rest.len() - 2);
        let mut pixels: Vec<u32> = rest[2..2 + take]
            .chunks(4)
            .map(|c| c.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
            .collect();
        pixels.resize(n, 0);
        rest = &rest[2 + take..];
        for kind in [lz::LzType::Rgb32, lz::LzType::Rgba, lz::LzType::Rgb16] {
            let input: Vec<u32> = match kind {
                lz::LzType::Rgb16 => pixels.iter().map(|p| p & 0xffff).collect(),
                _ => pixels.clone(),
            };
            let out = decode::lz(&lz::encode(kind, width, height, &input)).expect("LZ decodes");
            let want: Vec<u32> = match kind {
                lz::LzType::Rgb32 => input.iter().map(|p| p & 0x00ff_ffff).collect(),
                _ => input,
            };
            assert!(out.pixels == want, "LZ {kind:?} round trip");
        }
        for kind in [quic::QuicType::Rgb32, quic::QuicType::Rgba] {
            let out = decode_quic::quic(&quic::encode(kind, width, height, &pixels))
                .expect("QUIC decodes");
            let mask = match kind {
                quic::QuicType::Rgb32 => 0x00ff_ffff,
                quic::QuicType::Rgba => u32::MAX,
            };
            assert!(
                out.pixels.iter().zip(&pixels).all(|(a, b)| *a == b & mask),
                "QUIC {kind:?} round trip"
            );
        }
        if let Some(glz) = dict.encode(width, height, &pixels) {
            // Every other image deflated as ZLIB_GLZ_RGB, as a client on a slow link gets
            // it; both join the same window.
            let out = match zlib::wrap(&glz).filter(|_| rest.len().is_multiple_of(2)) {
                Some(deflated) => {
                    let wire = wan_image(
                        width,
                        height,
                        display::ImageData::ZlibGlz {
                            glz_size: glz.len() as u32,
                            data: &deflated,
                        },
                    );
                    decode_wan::image(&wire, &mut window).expect("ZLIB_GLZ decodes")
                }
                None => window.decode(&glz).expect("GLZ decodes").1,
            };
            assert!(out
                .pixels
                .iter()
                .zip(&pixels)
                .all(|(a, b)| *a == b & 0x00ff_ffff));
        }
        if let Some(Jpeg::Alpha { jpeg_size, data }) = jpeg::encode(width, height, &pixels, true) {
            let data = display::ImageData::JpegAlpha {
                jpeg_size,
                data: &data,
            };
            let wire = wan_image(width, height, data);
            let out = decode_wan::image(&wire, &mut decode::GlzWindow::default())
                .expect("JPEG_ALPHA decodes");
            // The colours are lossy; the alpha plane is exact.
            assert!(
                out.pixels
                    .iter()
                    .zip(&pixels)
                    .all(|(a, b)| a >> 24 == b >> 24),
                "JPEG_ALPHA alpha round trip"
            );
        }
    }
    let _ = decode::lz(data);
    let _ = decode::GlzWindow::default().decode(data);
    let _ = decode_quic::quic(data);
    let _ = decode_wan::image(data, &mut decode::GlzWindow::default());
}

/// The bytes of one `Image` as the display channel writes it.
fn wan_image(width: u32, height: u32, data: crate::proto::display::ImageData<'_>) -> Vec<u8> {
    let mut w = crate::proto::wire::Writer(Vec::new());
    crate::proto::display::image(&mut w, 7, width, height, 0, data);
    w.0
}

/// Replays a session's images (width, height, BGRX pixels, in send order) through the
/// display channel's codec choice under `auto_glz` and one client's GLZ dictionary, each
/// checked against the client's decoder: (pixels, bytes sent, time spent encoding as
/// `clock` tells it). `examples/image_replay.rs` drives it with images dumped from a
/// bench run.
pub fn image_replay(
    images: &[(u32, u32, Vec<u8>)],
    clock: impl Fn() -> std::time::Duration,
) -> (usize, usize, std::time::Duration) {
    use crate::image::choose::{choose, ClientCodecs, Codec, ImageCompression};
    use crate::image::{decode, glz};
    let mut dict = glz::Dictionary::new(glz::MAX_WINDOW);
    let mut client = decode::GlzWindow::default();
    let (mut pixels, mut sent) = (0, 0);
    let mut spent = std::time::Duration::ZERO;
    for (width, height, bgrx) in images {
        let started = clock();
        let px: Vec<u32> = bgrx
            .chunks_exact(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
            .collect();
        let codecs = ClientCodecs {
            lz4: true,
            glz: dict.takes(px.len()),
            jpeg: false,
        };
        let data = match choose(ImageCompression::AutoGlz, *width, *height, &px, codecs) {
            Codec::Glz => dict.encode(*width, *height, &px),
            _ => None,
        };
        spent += clock() - started;
        pixels += px.len();
        match data {
            Some(data) => {
                sent += data.len();
                let (_, out) = client.decode(&data).expect("GLZ decodes");
                assert!(
                    out.pixels
                        .iter()
                        .zip(&px)
                        .all(|(a, b)| *a == b & 0x00ff_ffff),
                    "GLZ round trip"
                );
            }
            None => sent += px.len() * 4,
        }
    }
    (pixels, sent, spent)
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_codecs_round_trip_arbitrary_pixels() {
        for seed in 0u32..32 {
            let data: Vec<u8> = (0..6000u32)
                .map(|i| {
                    let v = i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503);
                    // Some inputs repetitive, as desktops are.
                    if seed % 2 == 0 {
                        (v % 3) as u8
                    } else {
                        v as u8
                    }
                })
                .collect();
            super::image_codecs(&data);
        }
    }

    /// The harness itself runs on hostile bytes without panicking.
    #[test]
    fn survives_arbitrary_memory() {
        for seed in 0u32..64 {
            let data: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            super::qxl_command(&data);
        }
    }

    #[test]
    fn agent_survives_arbitrary_records() {
        for seed in 0u32..64 {
            let data: Vec<u8> = (0..4000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            super::agent(&data);
        }
    }

    #[test]
    fn link_survives_arbitrary_bytes() {
        for seed in 0u32..32 {
            let mut data: Vec<u8> = (0..600u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            data[0] = 0;
            data[1..5].copy_from_slice(b"REDQ");
            super::link(&data);
        }
    }

    #[test]
    fn websocket_survives_arbitrary_bytes() {
        let request = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        for seed in 0u32..64 {
            let noise = (0..3000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8);
            let mut data = vec![seed as u8];
            if seed % 2 == 0 {
                data.extend_from_slice(request);
            }
            data.extend(noise);
            super::websocket(&data);
        }
    }

    /// Pseudo-random records for the channel harnesses.
    fn records(seed: u32) -> Vec<u8> {
        let mut data = vec![0xff, 0xff, 0xff, 0xff];
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x >> 24) as u16 % 40;
            let msg_type = [
                1, 2, 3, 4, 5, 6, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
                114, 115,
            ][(x % 21) as usize];
            data.push((x >> 8) as u8 & 7);
            data.extend_from_slice(&(msg_type as u16).to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
            data.extend((0..len).map(|i| (x >> (i % 24)) as u8));
        }
        data
    }

    #[test]
    fn channels_survive_arbitrary_messages() {
        for seed in 0..32 {
            let data = records(seed);
            super::main_channel(&data);
            super::display_channel(&data);
            super::inputs_channel(&data);
            super::cursor_channel(&data);
            super::smartcard_channel(&data);
            super::sound_channels(&data);
        }
    }

    /// Record traffic that parses: raw and Opus modes, start marks, data of any size,
    /// with QEMU starting, reading and stopping in between.
    #[test]
    fn sound_survives_record_traffic() {
        let mut data = vec![0xff, 0xff, 0xff, 0xff];
        let mut enc = crate::audio::opus::Encoder::new(48_000).unwrap();
        for i in 0u32..300 {
            let (op, msg_type, body): (u8, u16, Vec<u8>) = match i % 6 {
                0 => (2, 0, vec![0, 0]),
                1 => (
                    0,
                    102,
                    [0u8, 0, 0, 0, [1, 3][(i / 6 % 2) as usize], 0].to_vec(),
                ),
                2 => (1, 103, i.to_le_bytes().to_vec()),
                3 => {
                    let frame: Vec<u32> = (0..480).map(|k| k * i).collect();
                    let mut body = i.to_le_bytes().to_vec();
                    if i / 6 % 2 == 1 {
                        body.extend(enc.encode(&frame).unwrap());
                    } else {
                        body.extend((0..(i * 37 % 2000)).map(|b| b as u8));
                    }
                    (5, 101, body)
                }
                4 => (2, 0, vec![1, (i % 255) as u8, 7]),
                _ => (2, 0, vec![0]),
            };
            data.push(op);
            data.extend(msg_type.to_le_bytes());
            data.extend((body.len() as u16).to_le_bytes());
            data.extend(&body);
        }
        super::sound_channels(&data);
    }

    /// VSC messages that parse: each type with reader ids 0, 1 and undefined, and
    /// device bytes in between.
    #[test]
    fn smartcard_survives_vsc_traffic() {
        let mut data = vec![0, 0, 0, 0];
        for i in 0u32..400 {
            let vsc_type = i % 9 + 1;
            let reader = [0, 1, u32::MAX][(i % 3) as usize];
            let payload: Vec<u8> = (0..(i % 7)).map(|b| b as u8).collect();
            let mut body = Vec::new();
            body.extend(vsc_type.to_le_bytes());
            body.extend(reader.to_le_bytes());
            body.extend((payload.len() as u32).to_le_bytes());
            body.extend(&payload);
            let op = (i % 8) as u8;
            data.push(op);
            data.extend(101u16.to_le_bytes());
            data.extend((body.len() as u16).to_le_bytes());
            data.extend(&body);
        }
        super::smartcard_channel(&data);
    }
}
