//! The record channel (6): one client's microphone to the guest, as spice-server's
//! sound.cpp serves it. `START`/`STOP` follow QEMU's capture, volume and mute go to a
//! client with `CAP_VOLUME`; the client says its coding (`MODE`: raw S16, or Opus when
//! we offered it) and sends `DATA`, which lands in the stream's ring for QEMU.
//!
//! A mode we cannot decode or an Opus packet that does not decode closes the channel,
//! as spice-server does; raw data that is not whole frames loses its tail.

use super::{Channel, ChannelError, Outbox};
use crate::audio::opus::Decoder;
use crate::audio::record::RecordStream;
use crate::proto::audio::{parse_record, RecordClientMessage, RecordMessage};
use crate::proto::caps::Caps;
use crate::proto::msg::{audio, record as m};
use std::sync::Arc;

/// Largest record message accepted: a raw frame is 1920 bytes, an Opus packet less.
pub(crate) const MAX_RECORD_BODY: usize = 64 << 10;

pub(crate) struct RecordChannel {
    stream: Arc<RecordStream>,
    token: u64,
    /// The client has `CAP_VOLUME`.
    volume_cap: bool,
    mode: u16,
    decoder: Option<Decoder>,
    frames: Vec<u32>,
    started: bool,
    levels_seen: u64,
    partial_warned: bool,
}

impl RecordChannel {
    pub(crate) fn new(stream: Arc<RecordStream>, token: u64, client_caps: &Caps) -> RecordChannel {
        RecordChannel {
            stream,
            token,
            volume_cap: client_caps.has(m::CAP_VOLUME),
            mode: audio::MODE_RAW,
            decoder: None,
            frames: Vec::with_capacity(MAX_RECORD_BODY / 4),
            started: false,
            levels_seen: 0,
            partial_warned: false,
        }
    }

    fn send_levels(&mut self, levels_gen: u64, out: &mut Outbox) {
        self.levels_seen = levels_gen;
        if !self.volume_cap {
            return;
        }
        let levels = self.stream.levels();
        if let Some(volume) = levels.volume.filter(|v| !v.is_empty()) {
            out.send(&RecordMessage::Volume(&volume));
            out.send(&RecordMessage::Mute(levels.mute));
        }
    }

    fn set_mode(&mut self, mode: u16) -> Result<(), &'static str> {
        match mode {
            audio::MODE_RAW => self.decoder = None,
            audio::MODE_OPUS => {
                let rate = self.stream.rate();
                if !crate::audio::opus_supports(rate) {
                    return Err("Opus mode at a rate Opus does not code");
                }
                match Decoder::new(rate) {
                    Ok(d) => self.decoder = Some(d),
                    Err(e) => {
                        crate::log_warn!("record: {e}");
                        return Err("no Opus decoder");
                    }
                }
            }
            _ => return Err("unsupported audio mode"),
        }
        self.mode = mode;
        crate::log_info!(
            "record: the client sends {} audio",
            if mode == audio::MODE_OPUS {
                "Opus"
            } else {
                "raw"
            }
        );
        Ok(())
    }

    fn data(&mut self, data: &[u8]) -> Result<(), &'static str> {
        match &mut self.decoder {
            Some(decoder) => {
                let frames = decoder.decode(data).map_err(|e| {
                    crate::log_warn!("record: {e}");
                    "Opus data does not decode"
                })?;
                self.stream.write(self.token, frames);
            }
            None => {
                let whole = data.len() / 4 * 4;
                if whole != data.len() && !std::mem::replace(&mut self.partial_warned, true) {
                    crate::log_warn!(
                        "record: raw data is not whole stereo frames; the tail is dropped"
                    );
                }
                self.frames.clear();
                self.frames.extend(
                    data[..whole]
                        .chunks_exact(4)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
                );
                self.stream.write(self.token, &self.frames);
            }
        }
        Ok(())
    }
}

impl Channel for RecordChannel {
    fn max_body(&self) -> usize {
        MAX_RECORD_BODY
    }

    fn start(&mut self, out: &mut Outbox) {
        let (_, levels_gen) = self.stream.status();
        self.send_levels(levels_gen, out);
        self.produce(out);
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        _out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        let bad = |reason| {
            crate::log_warn!("record: message {msg_type}: {reason}; closing the channel");
            ChannelError::BadMessage { msg_type, reason }
        };
        let msg = parse_record(msg_type, body)
            .map_err(|_| bad("malformed"))?
            .ok_or_else(|| bad("unknown record message"))?;
        match msg {
            RecordClientMessage::Mode { mode, .. } => self.set_mode(mode).map_err(bad)?,
            RecordClientMessage::Data { data, .. } => self.data(data).map_err(bad)?,
            RecordClientMessage::StartMark(_) => {}
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        if !self.stream.owns(self.token) {
            return;
        }
        let (active, levels_gen) = self.stream.status();
        if levels_gen != self.levels_seen {
            self.send_levels(levels_gen, out);
        }
        if active != self.started {
            self.started = active;
            if active {
                out.send(&RecordMessage::Start {
                    frequency: self.stream.rate(),
                });
            } else {
                out.send(&RecordMessage::Stop);
            }
        }
    }

    fn finished(&self) -> bool {
        let gone = !self.stream.owns(self.token);
        if gone {
            crate::log_info!("record: another client took the channel, or the device went");
        }
        gone
    }

    fn closed(&mut self) {
        self.stream.release(self.token);
    }
}

impl Drop for RecordChannel {
    fn drop(&mut self) {
        self.stream.release(self.token);
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
