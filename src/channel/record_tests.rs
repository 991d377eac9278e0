use super::*;
use crate::audio::{join, FRAME_SAMPLES};
use crate::channel::testing::drain;
use crate::proto::frame::HeaderKind;
use crate::proto::msg::record as m;
use crate::server::audio_channels::record_kind;
use crate::server::channels::{ChannelKind, OpenRequest};

struct Rig {
    stream: Arc<RecordStream>,
    kind: ChannelKind,
}

impl Rig {
    fn new() -> Rig {
        let stream = RecordStream::new(Arc::new(|| {}));
        let kind = record_kind(stream.clone());
        Rig { stream, kind }
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
}

fn data(time: u32, payload: &[u8]) -> Vec<u8> {
    let mut body = time.to_le_bytes().to_vec();
    body.extend_from_slice(payload);
    body
}

fn mode(mode: u16) -> Vec<u8> {
    let mut body = 0u32.to_le_bytes().to_vec();
    body.extend(mode.to_le_bytes());
    body
}

fn tone(k: usize) -> Vec<u32> {
    (k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES)
        .map(|i| {
            let v = (6000.0 * (i as f64 * 2.0 * std::f64::consts::PI / 48.0).sin()) as i16;
            join(v, v)
        })
        .collect()
}

fn raw(frames: &[u32]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.to_ne_bytes()).collect()
}

#[test]
fn start_stop_volume_and_raw_samples_reach_qemu() {
    let rig = Rig::new();
    rig.stream.set_volume(vec![100, 200]);
    rig.stream.set_mute(true);
    let (mut ch, mut out) = rig.open(&[m::CAP_VOLUME]);
    let msgs = drain(&mut out);
    assert_eq!(
        msgs.iter().map(|m| m.msg_type).collect::<Vec<_>>(),
        vec![m::VOLUME, m::MUTE]
    );
    assert_eq!(msgs[1].body, [1]);
    rig.stream.set_active(true);
    ch.produce(&mut out);
    let msgs = drain(&mut out);
    assert_eq!(msgs[0].msg_type, m::START);
    assert_eq!(&msgs[0].body[6..10], &48_000u32.to_le_bytes());
    ch.on_message(m::C_MODE, &mode(audio::MODE_RAW), &mut out)
        .unwrap();
    ch.on_message(m::C_START_MARK, &[0, 0, 0, 0], &mut out)
        .unwrap();
    let sent: Vec<u32> = (0..6).flat_map(tone).collect();
    for k in 0..6 {
        ch.on_message(m::C_DATA, &data(k, &raw(&tone(k as usize))), &mut out)
            .unwrap();
    }
    let mut got = vec![0; 6 * FRAME_SAMPLES];
    assert_eq!(rig.stream.read(&mut got), 6 * FRAME_SAMPLES);
    assert_eq!(got, sent);
    rig.stream.set_active(false);
    ch.produce(&mut out);
    assert_eq!(drain(&mut out)[0].msg_type, m::STOP);
}

#[test]
fn opus_from_the_client_is_decoded() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[]);
    rig.stream.set_active(true);
    ch.on_message(m::C_MODE, &mode(audio::MODE_OPUS), &mut out)
        .unwrap();
    let mut enc = crate::audio::opus::Encoder::new(48_000).unwrap();
    for k in 0..6 {
        let packet = enc.encode(&tone(k)).unwrap().to_vec();
        ch.on_message(m::C_DATA, &data(k as u32, &packet), &mut out)
            .unwrap();
    }
    let mut got = vec![0; 10 * FRAME_SAMPLES];
    assert_eq!(rig.stream.read(&mut got), 6 * FRAME_SAMPLES);
}

#[test]
fn hostile_record_messages_close_the_channel_or_lose_their_tail() {
    let rig = Rig::new();
    let (mut ch, mut out) = rig.open(&[]);
    rig.stream.set_active(true);
    assert!(
        ch.on_message(m::C_MODE, &mode(2), &mut out).is_err(),
        "CELT is gone"
    );
    assert!(ch.on_message(m::C_MODE, &mode(77), &mut out).is_err());
    assert!(
        ch.on_message(m::C_MODE, &[1, 2], &mut out).is_err(),
        "truncated"
    );
    assert!(
        ch.on_message(m::C_DATA, &[1, 2], &mut out).is_err(),
        "truncated"
    );
    assert!(ch.on_message(99, &[], &mut out).is_err(), "unknown");
    // Raw data that is not whole frames: the whole ones are kept.
    ch.on_message(m::C_DATA, &data(0, &[0; 1923]), &mut out)
        .unwrap();
    let mut got = vec![0; 1000];
    assert_eq!(
        rig.stream.read(&mut got),
        0,
        "480 frames are below the prefill"
    );
    ch.on_message(m::C_MODE, &mode(audio::MODE_OPUS), &mut out)
        .unwrap();
    assert!(ch.on_message(m::C_DATA, &data(0, &[]), &mut out).is_err());
    assert!(ch
        .on_message(m::C_DATA, &data(0, &[0xff, 0x00]), &mut out)
        .is_err());
}

#[test]
fn opus_is_refused_at_a_rate_it_cannot_code() {
    let rig = Rig::new();
    rig.stream.set_rate(44_100);
    let (mut ch, mut out) = rig.open(&[]);
    assert!(ch
        .on_message(m::C_MODE, &mode(audio::MODE_OPUS), &mut out)
        .is_err());
}

#[test]
fn a_second_client_replaces_the_first() {
    let rig = Rig::new();
    let (first, _) = rig.open(&[]);
    let (second, _) = rig.open(&[]);
    assert!(first.finished() && !second.finished());
}
