use super::*;
use crate::audio::{join, split, FRAME_SAMPLES};
use crate::channel::testing::drain;
use crate::proto::frame::{HeaderKind, Message};
use crate::proto::msg::playback as m;
use crate::server::audio_channels::playback_kind;
use crate::server::channels::{ChannelKind, OpenRequest};

/// A playback stream, its channel kind and the video config whose clock it stamps with.
struct Rig {
    stream: Arc<PlaybackStream>,
    video: Arc<VideoConfig>,
    compression: Arc<AtomicBool>,
    kind: ChannelKind,
}

impl Rig {
    fn new() -> Rig {
        let video: Arc<VideoConfig> = Arc::default();
        let stream = PlaybackStream::new(video.clone(), Arc::new(|| {}));
        let compression = Arc::new(AtomicBool::new(true));
        let kind = playback_kind(stream.clone(), compression.clone(), video.clone());
        Rig {
            stream,
            video,
            compression,
            kind,
        }
    }

    fn open(&self, caps: &[u32]) -> (Box<dyn Channel>, Outbox) {
        let open = self.kind.open_fn();
        let opening = open(&OpenRequest {
            session_id: 1,
            channel_id: 0,
            caps: Caps::from_bits(caps),
        })
        .unwrap_or_else(|_| panic!("opens"));
        let mut channel = opening.channel;
        let mut out = Outbox::new(HeaderKind::Mini);
        channel.start(&mut out);
        (channel, out)
    }

    /// The channel itself rather than behind the trait, to look at its state.
    fn open_playback(&self, opus: bool) -> (PlaybackChannel, Outbox) {
        let caps = PlaybackCaps {
            volume: false,
            latency: false,
            opus,
        };
        let token = self.stream.claim().expect("claims");
        let mut ch = PlaybackChannel::new(
            self.stream.clone(),
            token,
            caps,
            self.compression.clone(),
            self.video.clone(),
        );
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.start(&mut out);
        (ch, out)
    }
}

fn tone(k: usize) -> Vec<u32> {
    (k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES)
        .map(|i| {
            let v = (6000.0 * (i as f64 * 2.0 * std::f64::consts::PI / 48.0).sin()) as i16;
            join(v, v)
        })
        .collect()
}

fn types(msgs: &[Message]) -> Vec<u16> {
    msgs.iter().map(|m| m.msg_type).collect()
}

fn u32_at(body: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(body[at..at + 4].try_into().unwrap())
}

#[test]
fn a_raw_client_gets_mode_start_and_the_samples_as_they_were() {
    let rig = Rig::new();
    rig.compression.store(false, Ordering::Relaxed);
    rig.stream.set_volume(vec![0x8080, 0x8080]);
    let (mut ch, mut out) = rig.open(&[m::CAP_VOLUME, m::CAP_OPUS]);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::MODE, m::VOLUME, m::MUTE]);
    assert_eq!(&msgs[0].body[4..6], &audio::MODE_RAW.to_le_bytes());
    assert_eq!(msgs[1].body, [2, 0x80, 0x80, 0x80, 0x80]);
    rig.stream.set_active(true);
    let frame = tone(0);
    rig.stream.put(&frame);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::START, m::DATA]);
    assert_eq!(u32_at(&msgs[0].body, 6), 48_000);
    let data = &msgs[1].body;
    let stamp = u32_at(data, 0);
    assert!(
        rig.video.clock.now().wrapping_sub(stamp) < 1000,
        "stamped on the clock"
    );
    let samples: Vec<u32> = data[4..]
        .chunks_exact(4)
        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(samples, frame);
    rig.stream.set_active(false);
    ch.produce(&mut out);
    assert_eq!(
        drain(&mut out)
            .iter()
            .map(|m| m.msg_type)
            .collect::<Vec<_>>(),
        vec![m::STOP]
    );
}

#[test]
fn an_opus_client_gets_packets_that_decode_to_the_tone() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[m::CAP_OPUS, m::CAP_LATENCY]);
    let msgs = drain(&mut out);
    assert_eq!(
        types(&msgs),
        vec![m::MODE],
        "no volume before QEMU sets one"
    );
    assert_eq!(&msgs[0].body[4..6], &audio::MODE_OPUS.to_le_bytes());
    rig.stream.set_active(true);
    let mut decoder = crate::audio::opus::Decoder::new(48_000).unwrap();
    let mut decoded = Vec::new();
    let mut bytes = 0;
    for k in 0..30 {
        rig.stream.put(&tone(k));
        ch.produce(&mut out);
        for msg in drain(&mut out) {
            if msg.msg_type == m::DATA {
                bytes += msg.body.len();
                decoded.extend_from_slice(decoder.decode(&msg.body[4..]).unwrap());
            } else if msg.msg_type == m::LATENCY {
                assert_eq!(u32_at(&msg.body, 0), rig.video.clock.latency());
            }
        }
    }
    assert_eq!(decoded.len(), 30 * FRAME_SAMPLES);
    assert!(
        bytes < 30 * FRAME_SAMPLES * 4 / 4,
        "Opus is far smaller than raw: {bytes}"
    );
    let peak = decoded[10 * FRAME_SAMPLES..]
        .iter()
        .map(|f| split(*f)[0].unsigned_abs())
        .max()
        .unwrap();
    assert!((4500..7500).contains(&peak), "the tone's amplitude: {peak}");
}

#[test]
fn turning_compression_off_switches_to_raw_mid_stream() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[m::CAP_OPUS]);
    drain(&mut out);
    rig.compression.store(false, Ordering::Relaxed);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::MODE]);
    assert_eq!(&msgs[0].body[4..6], &audio::MODE_RAW.to_le_bytes());
    // While playing: the client makes its decoder at START, so it hears STOP, MODE, START.
    rig.stream.set_active(true);
    ch.produce(&mut out);
    drain(&mut out);
    rig.compression.store(true, Ordering::Relaxed);
    rig.stream.put(&tone(0));
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::STOP, m::MODE, m::START, m::DATA]);
    assert_eq!(&msgs[1].body[4..6], &audio::MODE_OPUS.to_le_bytes());
}

#[test]
fn the_latency_message_follows_the_playout_delay() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[m::CAP_LATENCY]);
    rig.stream.set_active(true);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::MODE, m::START, m::LATENCY]);
    rig.video.clock.stream_report(-50, 2, false);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(types(&msgs), vec![m::LATENCY]);
    assert_eq!(u32_at(&msgs[0].body, 0), rig.video.clock.latency());
    ch.produce(&mut out);
    assert!(drain(&mut out).is_empty(), "sent once per change");
    let (mut plain, mut out) = rig.open(&[]);
    plain.produce(&mut out);
    assert!(
        !types(&drain(&mut out)).contains(&m::LATENCY),
        "only with the cap"
    );
}

#[test]
fn a_slow_client_loses_whole_frames_and_the_queue_stays_bounded() {
    let rig = Rig::new();
    rig.compression.store(false, Ordering::Relaxed);
    let (mut ch, mut out) = rig.open(&[]);
    rig.stream.set_active(true);
    for k in 0..200 {
        rig.stream.put(&tone(k));
        // The socket never drains: the outbox keeps what it was given.
        ch.produce(&mut out);
    }
    let message = FRAME_SAMPLES * 4 + 64;
    assert!(
        out.pending() <= (SEND_AHEAD_FRAMES + 1) * message,
        "{}",
        out.pending()
    );
    assert_eq!(rig.stream.queued(), crate::audio::playback::MAX_QUEUED);
    let frames = drain(&mut out)
        .iter()
        .filter(|m| m.msg_type == m::DATA)
        .map(|m| m.body.len() - 4)
        .collect::<Vec<_>>();
    assert!(
        frames.iter().all(|n| *n == FRAME_SAMPLES * 4),
        "whole frames only"
    );
}

#[test]
fn a_second_client_replaces_the_first() {
    let rig = Rig::new();
    let (first, _) = rig.open(&[]);
    assert!(!first.finished());
    let (second, _) = rig.open(&[]);
    assert!(first.finished(), "the old client is closed");
    assert!(!second.finished());
    drop(first);
    assert!(!second.finished(), "the old one going leaves the new one");
    rig.stream.detach();
    assert!(second.finished());
}

#[test]
fn the_playback_client_sends_nothing_of_its_own() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[]);
    assert!(ch.on_message(101, &[], &mut out).is_err());
}

#[test]
fn a_slow_opus_client_waits_frames_not_kilobytes_and_gets_a_lower_bit_rate() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open_playback(true);
    assert_eq!(ch.send_queue_limit(), Some(OPUS_SEND_QUEUE));
    rig.stream.set_active(true);
    ch.produce(&mut out);
    drain(&mut out);
    for k in 0..100 {
        rig.stream.put(&tone(k));
        // The socket never drains.
        ch.produce(&mut out);
    }
    let frames = drain(&mut out)
        .iter()
        .filter(|m| m.msg_type == m::DATA)
        .count();
    assert!(
        frames <= SEND_AHEAD_FRAMES + 1,
        "{frames} Opus frames waiting unsent (40 ms is {SEND_AHEAD_FRAMES})"
    );
    assert!(rig.stream.dropped() > 0);
    assert!(
        ch.link_rate.bitrate.is_some_and(|b| b < MAX_OPUS_BITRATE),
        "drops lowered the bit rate: {:?}",
        ch.link_rate.bitrate
    );
    // Still Opus that decodes.
    rig.stream.put(&tone(0));
    ch.produce(&mut out);
    assert!(drain(&mut out).iter().any(|m| m.msg_type == m::DATA));
}

#[test]
fn a_raw_client_keeps_a_larger_send_buffer() {
    let rig = Rig::new();
    rig.compression.store(false, Ordering::Relaxed);
    let (ch, _) = rig.open_playback(true);
    assert_eq!(ch.send_queue_limit(), Some(RAW_SEND_QUEUE));
}

#[test]
fn the_bit_rate_fits_the_link_and_settles_below_what_it_carries() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut r = LinkRate::new(t0);
    // A 64 kbit/s link that took 8000 bytes a second: 0.7 of it, less the headers.
    let fitted = (8000.0 * 8.0 * FIT_SHARE) as i32 - PACKET_OVERHEAD_BITS;
    assert_eq!(r.update(true, Some(8000.0), at(0)), Some(Some(fitted)));
    assert_eq!(
        r.update(true, Some(8000.0), at(300)),
        None,
        "the old backlog still drains"
    );
    assert_eq!(r.update(false, Some(8000.0), at(3_000)), None);
    let up = fitted + fitted / 4;
    assert_eq!(
        r.update(false, None, at(5_400)),
        Some(Some(up)),
        "raised after 5 s of calm"
    );
    // The raise brought drops back: down again (at least a quarter), and the next raise
    // waits 10 s.
    let down = r.update(true, Some(8000.0), at(6_000)).unwrap().unwrap();
    assert!(down <= up * 3 / 4, "{down}");
    assert_eq!(r.update(false, None, at(12_000)), None);
    assert!(r.update(false, None, at(16_100)).is_some());
    // Unknown delivery: halve; never below the floor.
    for k in 0..100 {
        r.update(true, None, at(20_000 + 2_000 * k));
    }
    assert_eq!(r.bitrate, Some(MIN_OPUS_BITRATE));
    // A wide link again: calm stretches raise it back to libopus' own rate.
    let mut t = 300_000;
    while r.bitrate.is_some() && t < 2_000_000 {
        r.update(false, None, at(t));
        t += 1_000;
    }
    assert_eq!(r.bitrate, None, "back to libopus' rate");
}

#[test]
fn the_delivery_rate_is_what_left_the_outbox_over_the_last_second() {
    let t0 = Instant::now();
    let mut m = DeliveryMeter::default();
    assert_eq!(m.rate(), None);
    for k in 0..=40u64 {
        // 8000 bytes a second, sampled every 50 ms.
        m.record(t0 + Duration::from_millis(50 * k), 400 * k);
    }
    let rate = m.rate().unwrap();
    assert!((rate - 8000.0).abs() < 1.0, "{rate}");
    assert!(
        m.samples.len() <= 22,
        "about a second kept: {}",
        m.samples.len()
    );
}
