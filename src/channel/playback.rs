//! The playback channel (5): guest audio to one client, as spice-server's sound.cpp
//! serves it. `MODE` at link, `START`/`STOP` following QEMU's voice, each queued frame
//! as `DATA` (raw S16 or one Opus packet) with its multimedia-clock stamp, volume and
//! mute when the client has `CAP_VOLUME`, and the video playout delay as `LATENCY` when
//! it has `CAP_LATENCY`.

use super::{Channel, ChannelError, Outbox};
use crate::audio::opus::Encoder;
use crate::audio::playback::PlaybackStream;
use crate::proto::audio::PlaybackMessage;
use crate::proto::caps::Caps;
use crate::proto::msg::{audio, playback as m};
use crate::video::VideoConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames left unsent in the outbox before the channel stops taking more (40 ms):
/// beyond it frames wait in the stream's bounded queue, where overflow drops them whole.
/// Counted in frames, not bytes: 8 KiB are four raw frames but a second of Opus.
const SEND_AHEAD_FRAMES: usize = 4;
/// The socket's kernel send buffer (the kernel doubles it, and keeps at least ~4.6 KiB):
/// about 170 ms of raw audio; for Opus the smallest it allows, ~0.3 s at full rate.
/// Enough for the stream's rate over a long round trip, no more: what waits there cannot
/// be dropped at a silence and only adds latency on a slow link.
const RAW_SEND_QUEUE: usize = 16 << 10;
const OPUS_SEND_QUEUE: usize = 2 << 10;
/// Opus bit rates stepped through when the client's link does not carry the stream
/// (frames dropped): None is libopus' own choice (~110 kbit/s for stereo music).
const OPUS_BITRATES: [Option<i32>; 5] =
    [None, Some(64_000), Some(40_000), Some(24_000), Some(16_000)];
/// How long without drops before the bit rate is raised one step again, at first and at
/// most (a raise that brings drops back doubles it).
const CALM_BEFORE_RAISING: Duration = Duration::from_secs(5);
const MAX_CALM_BEFORE_RAISING: Duration = Duration::from_secs(80);
/// After a step down, drops are not taken as a reason for another for this long: what
/// was coded at the old rate is still draining through the queue and the socket.
const SETTLE: Duration = Duration::from_secs(1);

/// The Opus bit-rate step for the client's link (an index into `OPUS_BITRATES`): down
/// a step when frames drop, up a step after a calm stretch, and a raise the link could
/// not carry makes the next wait twice as long, so a link that carries 40 but not 64
/// kbit/s settles at 40 instead of dropping frames every few seconds.
#[derive(Debug)]
struct LinkRate {
    step: usize,
    calm_since: Instant,
    lowered_at: Instant,
    raised_at: Option<Instant>,
    calm_needed: Duration,
}

impl LinkRate {
    fn new(now: Instant) -> LinkRate {
        LinkRate {
            step: 0,
            calm_since: now,
            lowered_at: now - SETTLE,
            raised_at: None,
            calm_needed: CALM_BEFORE_RAISING,
        }
    }

    /// The new step when it changes.
    fn update(&mut self, dropped: bool, now: Instant) -> Option<usize> {
        if dropped {
            self.calm_since = now;
            if let Some(raised) = self.raised_at.take() {
                if now - raised < self.calm_needed {
                    self.calm_needed = (self.calm_needed * 2).min(MAX_CALM_BEFORE_RAISING);
                }
            }
            if now - self.lowered_at < SETTLE || self.step + 1 >= OPUS_BITRATES.len() {
                return None;
            }
            self.step += 1;
            self.lowered_at = now;
            return Some(self.step);
        }
        if self.step > 0 && now - self.calm_since >= self.calm_needed {
            self.step -= 1;
            self.calm_since = now;
            self.raised_at = Some(now);
            return Some(self.step);
        }
        None
    }
}

/// How a playback client is served, decided at link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlaybackCaps {
    pub volume: bool,
    pub latency: bool,
    pub opus: bool,
}

impl PlaybackCaps {
    pub(crate) fn from_client(caps: &Caps) -> PlaybackCaps {
        PlaybackCaps {
            volume: caps.has(m::CAP_VOLUME),
            latency: caps.has(m::CAP_LATENCY),
            opus: caps.has(m::CAP_OPUS),
        }
    }
}

pub(crate) struct PlaybackChannel {
    stream: Arc<PlaybackStream>,
    token: u64,
    caps: PlaybackCaps,
    /// `spice_server_set_playback_compression` (shared with the server's settings).
    compression: Arc<AtomicBool>,
    video: Arc<VideoConfig>,
    mode: u16,
    encoder: Option<Encoder>,
    raw: Vec<u8>,
    /// The client heard `START` (spice-server's `client_active`).
    started: bool,
    levels_seen: u64,
    latency_sent: Option<u32>,
    /// Size of the last `DATA` message queued (bytes), for `SEND_AHEAD_FRAMES`.
    frame_bytes: usize,
    /// The stream's drop count last seen, the Opus bit-rate step, and since when no frame
    /// was dropped.
    drops_seen: u64,
    link_rate: LinkRate,
}

impl PlaybackChannel {
    /// `token`: the stream's claim for this client.
    pub(crate) fn new(
        stream: Arc<PlaybackStream>,
        token: u64,
        caps: PlaybackCaps,
        compression: Arc<AtomicBool>,
        video: Arc<VideoConfig>,
    ) -> PlaybackChannel {
        PlaybackChannel {
            stream,
            token,
            caps,
            compression,
            video,
            mode: audio::MODE_RAW,
            encoder: None,
            raw: Vec::with_capacity(crate::audio::FRAME_SAMPLES * 4),
            started: false,
            levels_seen: 0,
            latency_sent: None,
            frame_bytes: crate::audio::FRAME_SAMPLES * 4,
            drops_seen: 0,
            link_rate: LinkRate::new(Instant::now()),
        }
    }

    /// Frames dropped since the last look step the Opus bit rate (`LinkRate`).
    fn follow_link(&mut self) {
        let drops = self.stream.dropped();
        let dropped = drops != self.drops_seen;
        self.drops_seen = drops;
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let Some(step) = self.link_rate.update(dropped, Instant::now()) else {
            return;
        };
        let bits = OPUS_BITRATES[step];
        match encoder.set_bitrate(bits) {
            Ok(()) => crate::log_info!(
                "playback: Opus at {} (the client's link {})",
                bits.map_or("libopus' own rate".into(), |b| format!(
                    "{} kbit/s",
                    b / 1000
                )),
                if dropped { "drops frames" } else { "kept up" }
            ),
            Err(e) => crate::log_warn!("playback: {e}"),
        }
    }

    /// Opus when compression is on, the client decodes it and the rate allows it.
    fn desired_mode(&self) -> u16 {
        if self.compression.load(Ordering::Relaxed)
            && self.caps.opus
            && crate::audio::opus_supports(self.stream.rate())
        {
            audio::MODE_OPUS
        } else {
            audio::MODE_RAW
        }
    }

    /// Switches coding when the setting changed (and at link); tells the client.
    fn follow_mode(&mut self, out: &mut Outbox, force: bool) {
        let mut mode = self.desired_mode();
        if mode == audio::MODE_OPUS && self.encoder.is_none() {
            match Encoder::new(self.stream.rate()) {
                Ok(e) => self.encoder = Some(e),
                Err(e) => {
                    crate::log_warn!("playback: {e}; sending raw audio");
                    mode = audio::MODE_RAW;
                }
            }
        }
        if mode == audio::MODE_RAW {
            self.encoder = None;
            self.link_rate = LinkRate::new(Instant::now());
        }
        if force || mode != self.mode {
            if self.started {
                // spice-gtk makes its decoder at START: stop, then start in the new mode.
                self.started = false;
                out.send(&PlaybackMessage::Stop);
            }
            self.mode = mode;
            crate::log_info!(
                "playback: {} audio",
                if mode == audio::MODE_OPUS {
                    "Opus"
                } else {
                    "raw"
                }
            );
            out.send(&PlaybackMessage::Mode {
                time: self.video.clock.now(),
                mode,
            });
        }
    }

    fn send_levels(&mut self, levels_gen: u64, out: &mut Outbox) {
        self.levels_seen = levels_gen;
        if !self.caps.volume {
            return;
        }
        let levels = self.stream.levels();
        crate::log_debug!("playback: sending {levels:?} to the client");
        // spice-server says nothing until QEMU set a volume.
        if let Some(volume) = levels.volume.filter(|v| !v.is_empty()) {
            out.send(&PlaybackMessage::Volume(&volume));
            out.send(&PlaybackMessage::Mute(levels.mute));
        }
    }

    fn send_latency(&mut self, out: &mut Outbox) {
        if !self.caps.latency {
            return;
        }
        let latency = self.video.clock.latency();
        if self.latency_sent != Some(latency) {
            self.latency_sent = Some(latency);
            out.send(&PlaybackMessage::Latency(latency));
        }
    }

    /// Codes and queues one frame; false when coding failed (the client is dropped, as
    /// spice-server does).
    fn send_frame(&mut self, frame: crate::audio::playback::Frame, out: &mut Outbox) -> bool {
        let before = out.pending();
        let ok = match &mut self.encoder {
            Some(encoder) => match encoder.encode(&frame.samples[..]) {
                Ok(packet) => {
                    out.send(&PlaybackMessage::Data {
                        time: frame.time,
                        data: packet,
                    });
                    true
                }
                Err(e) => {
                    crate::log_warn!("playback: {e}");
                    false
                }
            },
            None => {
                self.raw.clear();
                self.raw
                    .extend(frame.samples.iter().flat_map(|s| s.to_ne_bytes()));
                out.send(&PlaybackMessage::Data {
                    time: frame.time,
                    data: &self.raw,
                });
                true
            }
        };
        self.stream.recycle(frame.samples);
        self.frame_bytes = out.pending().saturating_sub(before).max(1);
        ok
    }
}

impl Channel for PlaybackChannel {
    fn start(&mut self, out: &mut Outbox) {
        self.follow_mode(out, true);
        let (_, levels_gen) = self.stream.status();
        self.send_levels(levels_gen, out);
        self.produce(out);
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        _body: &[u8],
        _out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        Err(ChannelError::BadMessage {
            msg_type,
            reason: "unknown playback message",
        })
    }

    fn produce(&mut self, out: &mut Outbox) {
        if !self.stream.owns(self.token) {
            return;
        }
        self.follow_mode(out, false);
        let (active, levels_gen) = self.stream.status();
        if levels_gen != self.levels_seen {
            self.send_levels(levels_gen, out);
        }
        if active && !self.started {
            self.started = true;
            out.send(&PlaybackMessage::Start {
                frequency: self.stream.rate(),
                time: self.video.clock.now(),
            });
        }
        if self.started {
            self.send_latency(out);
        }
        self.follow_link();
        while out.pending() < SEND_AHEAD_FRAMES * self.frame_bytes {
            let Some(frame) = self.stream.pop(self.token) else {
                break;
            };
            if !self.send_frame(frame, out) {
                // Coding failed: leave the stream, and the reactor closes the channel.
                self.stream.release(self.token);
                return;
            }
        }
        if !active && self.started && self.stream.queued() == 0 {
            self.started = false;
            out.send(&PlaybackMessage::Stop);
        }
    }

    fn finished(&self) -> bool {
        let gone = !self.stream.owns(self.token);
        if gone {
            crate::log_info!("playback: another client took the channel, or the device went");
        }
        gone
    }

    fn closed(&mut self) {
        self.stream.release(self.token);
    }

    fn send_queue_limit(&self) -> Option<usize> {
        Some(if self.desired_mode() == audio::MODE_OPUS {
            OPUS_SEND_QUEUE
        } else {
            RAW_SEND_QUEUE
        })
    }
}

impl Drop for PlaybackChannel {
    fn drop(&mut self) {
        self.stream.release(self.token);
    }
}

#[cfg(test)]
#[path = "playback_tests.rs"]
mod tests;
