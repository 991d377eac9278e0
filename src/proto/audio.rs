//! Playback and record channel messages (`spice.proto`: PlaybackChannel, RecordChannel,
//! AudioVolume, AudioMute). The playback client sends only base messages; the record
//! client sends its mode, a start mark and the recorded data.

use super::msg::{audio, playback as p, record as r};
use super::outgoing::ServerMessage;
use super::wire::{Reader, Truncated, Writer};

/// Stereo, as the QEMU interface delivers and takes it.
pub(crate) const CHANNELS: u32 = 2;

/// What the playback channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlaybackMessage<'a> {
    /// `DATA`: one frame (raw S16 stereo or one Opus packet) stamped on the multimedia clock.
    Data {
        time: u32,
        data: &'a [u8],
    },
    /// `MODE`: how the following `DATA` is coded (`SPICE_AUDIO_DATA_MODE_*`).
    Mode {
        time: u32,
        mode: u16,
    },
    /// `START`: S16 stereo at `frequency` Hz.
    Start {
        frequency: u32,
        time: u32,
    },
    Stop,
    Volume(&'a [u16]),
    Mute(bool),
    /// `LATENCY`: the playout delay the client should keep (ms).
    Latency(u32),
}

impl ServerMessage for PlaybackMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            PlaybackMessage::Data { .. } => p::DATA,
            PlaybackMessage::Mode { .. } => p::MODE,
            PlaybackMessage::Start { .. } => p::START,
            PlaybackMessage::Stop => p::STOP,
            PlaybackMessage::Volume(_) => p::VOLUME,
            PlaybackMessage::Mute(_) => p::MUTE,
            PlaybackMessage::Latency(_) => p::LATENCY,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            PlaybackMessage::Data { time, data } => {
                w.u32(time).bytes(data);
            }
            PlaybackMessage::Mode { time, mode } => {
                w.u32(time).u16(mode);
            }
            PlaybackMessage::Start { frequency, time } => {
                w.u32(CHANNELS).u16(audio::FMT_S16).u32(frequency).u32(time);
            }
            PlaybackMessage::Stop => {}
            PlaybackMessage::Volume(volume) => volume_body(w, volume),
            PlaybackMessage::Mute(mute) => {
                w.u8(u8::from(mute));
            }
            PlaybackMessage::Latency(ms) => {
                w.u32(ms);
            }
        }
    }
}

/// What the record channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordMessage<'a> {
    /// `START`: the client records S16 stereo at `frequency` Hz.
    Start {
        frequency: u32,
    },
    Stop,
    Volume(&'a [u16]),
    Mute(bool),
}

impl ServerMessage for RecordMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            RecordMessage::Start { .. } => r::START,
            RecordMessage::Stop => r::STOP,
            RecordMessage::Volume(_) => r::VOLUME,
            RecordMessage::Mute(_) => r::MUTE,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            RecordMessage::Start { frequency } => {
                w.u32(CHANNELS).u16(audio::FMT_S16).u32(frequency);
            }
            RecordMessage::Stop => {}
            RecordMessage::Volume(volume) => volume_body(w, volume),
            RecordMessage::Mute(mute) => {
                w.u8(u8::from(mute));
            }
        }
    }
}

/// `AudioVolume`: u8 count, then a u16 per channel (at most 255 are sent).
fn volume_body(w: &mut Writer, volume: &[u16]) {
    let volume = &volume[..volume.len().min(usize::from(u8::MAX))];
    w.u8(volume.len() as u8);
    for v in volume {
        w.u16(*v);
    }
}

/// What a record client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordClientMessage<'a> {
    /// `DATA`: recorded audio in the current mode.
    Data { time: u32, data: &'a [u8] },
    /// `MODE`: the coding of the following data (`SPICE_AUDIO_DATA_MODE_*`).
    Mode { time: u32, mode: u16 },
    /// `START_MARK`: the client's time of its first sample.
    StartMark(u32),
}

/// Parses one record client message; `Ok(None)`: not a record message.
pub(crate) fn parse_record(
    msg_type: u16,
    body: &[u8],
) -> Result<Option<RecordClientMessage<'_>>, Truncated> {
    let mut rd = Reader::new(body);
    Ok(Some(match msg_type {
        r::C_DATA => {
            let time = rd.u32()?;
            RecordClientMessage::Data {
                time,
                data: &body[4..],
            }
        }
        r::C_MODE => RecordClientMessage::Mode {
            time: rd.u32()?,
            mode: rd.u16()?,
        },
        r::C_START_MARK => RecordClientMessage::StartMark(rd.u32()?),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

    #[test]
    fn playback_layouts() {
        let data = PlaybackMessage::Data {
            time: 0x0102_0304,
            data: &[9, 8, 7],
        };
        assert_eq!(data.msg_type(), 101);
        assert_eq!(body_of(&data), [4, 3, 2, 1, 9, 8, 7]);
        let mode = PlaybackMessage::Mode { time: 5, mode: 3 };
        assert_eq!(mode.msg_type(), 102);
        assert_eq!(body_of(&mode), [5, 0, 0, 0, 3, 0]);
        let start = PlaybackMessage::Start {
            frequency: 48_000,
            time: 7,
        };
        assert_eq!(start.msg_type(), 103);
        let mut expect = vec![2, 0, 0, 0, 1, 0];
        expect.extend(48_000u32.to_le_bytes());
        expect.extend(7u32.to_le_bytes());
        assert_eq!(body_of(&start), expect);
        assert_eq!(PlaybackMessage::Stop.msg_type(), 104);
        assert!(body_of(&PlaybackMessage::Stop).is_empty());
        let volume = PlaybackMessage::Volume(&[0x0101, 0xffff]);
        assert_eq!(volume.msg_type(), 105);
        assert_eq!(body_of(&volume), [2, 1, 1, 0xff, 0xff]);
        assert_eq!(PlaybackMessage::Mute(true).msg_type(), 106);
        assert_eq!(body_of(&PlaybackMessage::Mute(true)), [1]);
        assert_eq!(PlaybackMessage::Latency(80).msg_type(), 107);
        assert_eq!(body_of(&PlaybackMessage::Latency(80)), [80, 0, 0, 0]);
    }

    #[test]
    fn record_layouts() {
        let start = RecordMessage::Start { frequency: 48_000 };
        assert_eq!(start.msg_type(), 101);
        let mut expect = vec![2, 0, 0, 0, 1, 0];
        expect.extend(48_000u32.to_le_bytes());
        assert_eq!(body_of(&start), expect);
        assert_eq!(RecordMessage::Stop.msg_type(), 102);
        assert_eq!(RecordMessage::Volume(&[]).msg_type(), 103);
        assert_eq!(body_of(&RecordMessage::Volume(&[])), [0]);
        assert_eq!(RecordMessage::Mute(false).msg_type(), 104);
        assert_eq!(body_of(&RecordMessage::Mute(false)), [0]);
    }

    #[test]
    fn record_client_messages_parse() {
        assert_eq!(
            parse_record(101, &[1, 0, 0, 0, 5, 6]),
            Ok(Some(RecordClientMessage::Data {
                time: 1,
                data: &[5, 6]
            }))
        );
        assert_eq!(
            parse_record(102, &[2, 0, 0, 0, 3, 0, 0xaa]),
            Ok(Some(RecordClientMessage::Mode { time: 2, mode: 3 }))
        );
        assert_eq!(
            parse_record(103, &[9, 0, 0, 0]),
            Ok(Some(RecordClientMessage::StartMark(9)))
        );
        assert_eq!(parse_record(101, &[1, 0, 0]), Err(Truncated));
        assert_eq!(parse_record(102, &[1, 0, 0, 0, 3]), Err(Truncated));
        assert_eq!(parse_record(103, &[]), Err(Truncated));
        assert_eq!(parse_record(150, &[]), Ok(None));
    }
}
