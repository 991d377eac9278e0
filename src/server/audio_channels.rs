//! The sound channels QEMU's audio instances are served on (spice-server's
//! `snd_attach_playback` / `snd_attach_record`): playback (5) and record (6), id 0,
//! one client each, the newest replacing the one before.

use super::channels::{ChannelKind, Opening, Provider};
use crate::audio::playback::PlaybackStream;
use crate::audio::record::RecordStream;
use crate::channel::playback::{PlaybackCaps, PlaybackChannel};
use crate::channel::record::RecordChannel;
use crate::proto::link::LinkError;
use crate::proto::msg::{channel as ch, playback, record};
use crate::video::VideoConfig;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Our playback caps, as spice-server announces them: volume always, Opus when the
/// rate QEMU set allows it (LATENCY is the client's to announce).
pub(crate) fn playback_caps(rate: u32) -> Vec<u32> {
    let mut caps = vec![playback::CAP_VOLUME];
    if crate::audio::opus_supports(rate) {
        caps.push(playback::CAP_OPUS);
    }
    caps
}

pub(crate) fn record_caps(rate: u32) -> Vec<u32> {
    let mut caps = vec![record::CAP_VOLUME];
    if crate::audio::opus_supports(rate) {
        caps.push(record::CAP_OPUS);
    }
    caps
}

pub(crate) fn playback_kind(
    stream: Arc<PlaybackStream>,
    compression: Arc<AtomicBool>,
    video: Arc<VideoConfig>,
) -> ChannelKind {
    ChannelKind::new(
        ch::PLAYBACK,
        0,
        &playback_caps(stream.rate()),
        Provider::Device,
        move |request| {
            let token = stream.claim().ok_or(LinkError::ChannelNotAvailable)?;
            crate::log_info!("playback: a client linked");
            Ok(Opening::new(PlaybackChannel::new(
                stream.clone(),
                token,
                PlaybackCaps::from_client(&request.caps),
                compression.clone(),
                video.clone(),
            )))
        },
    )
}

pub(crate) fn record_kind(stream: Arc<RecordStream>) -> ChannelKind {
    ChannelKind::new(
        ch::RECORD,
        0,
        &record_caps(stream.rate()),
        Provider::Device,
        move |request| {
            let token = stream.claim().ok_or(LinkError::ChannelNotAvailable)?;
            crate::log_info!("record: a client linked");
            Ok(Opening::new(RecordChannel::new(
                stream.clone(),
                token,
                &request.caps,
            )))
        },
    )
}
