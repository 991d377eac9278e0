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
/// Opus bit rates (bit/s) the link control moves between; above the highest, libopus
/// chooses (~110 kbit/s for stereo music).
const MIN_OPUS_BITRATE: i32 = 12_000;
const MAX_OPUS_BITRATE: i32 = 96_000;
/// What each 10 ms packet costs beyond its Opus bytes (mini header 6 + stamp 4), per second.
const PACKET_OVERHEAD_BITS: i32 = 100 * 10 * 8;
/// Share of the measured delivery rate the stream is fitted to (the rest: other channels
/// on the same link, and room to drain what waits).
const FIT_SHARE: f64 = 0.7;
/// How long without drops before the bit rate is raised a step (×1.25) again, at first
/// and at most (a raise that brings drops back doubles it).
const CALM_BEFORE_RAISING: Duration = Duration::from_secs(5);
const MAX_CALM_BEFORE_RAISING: Duration = Duration::from_secs(80);
/// After lowering, drops are not taken as a reason to lower again for this long: what
/// was coded at the old rate is still draining through the queue and the socket.
const SETTLE: Duration = Duration::from_secs(1);

/// The Opus bit rate for the client's link (None: libopus' own). Frames dropped (the
/// link did not carry the stream) fit it to the rate the socket really took over the
/// last second; a calm stretch raises it a step; a raise the link could not carry makes
/// the next wait twice as long, so it settles below what the link carries instead of
/// dropping frames every few seconds.
#[derive(Debug)]
struct LinkRate {
    bitrate: Option<i32>,
    calm_since: Instant,
    lowered_at: Instant,
    raised_at: Option<Instant>,
    calm_needed: Duration,
}

impl LinkRate {
    fn new(now: Instant) -> LinkRate {
        LinkRate {
            bitrate: None,
            calm_since: now,
            lowered_at: now - SETTLE,
            raised_at: None,
            calm_needed: CALM_BEFORE_RAISING,
        }
    }

    /// `delivered`: bytes per second the socket took lately. The new rate when it changes.
    fn update(
        &mut self,
        dropped: bool,
        delivered: Option<f64>,
        now: Instant,
    ) -> Option<Option<i32>> {
        if dropped {
            self.calm_since = now;
            if let Some(raised) = self.raised_at.take() {
                if now - raised < self.calm_needed {
                    self.calm_needed = (self.calm_needed * 2).min(MAX_CALM_BEFORE_RAISING);
                }
            }
            if now - self.lowered_at < SETTLE {
                return None;
            }
            let current = self.bitrate.unwrap_or(MAX_OPUS_BITRATE);
            let fitted = delivered
                .map(|bytes| (bytes * 8.0 * FIT_SHARE) as i32 - PACKET_OVERHEAD_BITS)
                .unwrap_or(current / 2);
            // Always at least a real step down, never below what still sounds like music.
            let new = fitted.min(current * 3 / 4).max(MIN_OPUS_BITRATE);
            self.lowered_at = now;
            return self.set(Some(new));
        }
        if let Some(current) = self.bitrate {
            if now - self.calm_since >= self.calm_needed {
                self.calm_since = now;
                self.raised_at = Some(now);
                let up = current + current / 4;
                return self.set((up < MAX_OPUS_BITRATE).then_some(up));
            }
        }
        None
    }

    fn set(&mut self, bitrate: Option<i32>) -> Option<Option<i32>> {
        (bitrate != self.bitrate).then(|| {
            self.bitrate = bitrate;
            bitrate
        })
    }
}

/// Bytes the socket took per second over about the last second: what left the outbox.
#[derive(Debug, Default)]
struct DeliveryMeter {
    /// (when, bytes that had left the outbox by then), oldest first, ~every 50 ms.
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl DeliveryMeter {
    const SPACING: Duration = Duration::from_millis(50);
    const WINDOW: Duration = Duration::from_secs(1);

    fn record(&mut self, now: Instant, left_total: u64) {
        if self
            .samples
            .back()
            .is_some_and(|(t, _)| now - *t < Self::SPACING)
        {
            return;
        }
        self.samples.push_back((now, left_total));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now - *t >= Self::WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn rate(&self) -> Option<f64> {
        let (t0, b0) = *self.samples.front()?;
        let (t1, b1) = *self.samples.back()?;
        let dt = (t1 - t0).as_secs_f64();
        (dt >= 0.5).then(|| (b1 - b0) as f64 / dt)
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
    /// Bytes the socket took from the outbox so far, and what the outbox held when the
    /// channel last left it.
    left_outbox: u64,
    pending_after: usize,
    delivery: DeliveryMeter,
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
            left_outbox: 0,
            pending_after: 0,
            delivery: DeliveryMeter::default(),
        }
    }

    /// Frames dropped since the last look fit the Opus bit rate to the link (`LinkRate`).
    fn follow_link(&mut self, out: &Outbox) {
        let now = Instant::now();
        // Only the socket empties the outbox between two calls.
        self.left_outbox += self.pending_after.saturating_sub(out.pending()) as u64;
        self.delivery.record(now, self.left_outbox);
        let drops = self.stream.dropped();
        let dropped = drops != self.drops_seen;
        self.drops_seen = drops;
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let Some(bits) = self.link_rate.update(dropped, self.delivery.rate(), now) else {
            return;
        };
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

    /// What `produce` does: the stream's state and frames to the client.
    fn serve(&mut self, out: &mut Outbox) {
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
        self.follow_link(out);
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
        self.serve(out);
        self.pending_after = out.pending();
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
