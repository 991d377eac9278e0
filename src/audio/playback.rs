//! The playback stream: QEMU's audio timer hands frames in (`put`, on QEMU's thread with
//! its lock held), the linked client's playback channel takes them out (`pop`, on the
//! reactor). One short mutex, never held across anything but a copy of one frame, and
//! a wake of the reactor: neither side ever waits for the other.
//!
//! Bounded: frames come from a pool allocated once, and at most `MAX_QUEUED` wait. A
//! client that cannot keep up (its socket backs up, so the channel stops taking) makes
//! the queue overflow, and then one whole frame goes: a silent one if any is waiting,
//! else the oldest, so audio skips at a pause or loses 10 ms rather than stretching
//! latency or clicking on partial frames.
//!
//! While the video needs it (`MediaClock::audio_hold`), frames wait that long before the
//! channel may take them; QEMU's next frame (every 10 ms) wakes the channel again.

use super::{is_silent, BEST_RATE, FRAME_SAMPLES};
use crate::video::VideoConfig;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// Frames waiting for the channel: 160 ms, plus those held back for the video.
pub(crate) const MAX_QUEUED: usize = 16;
const FRAME_MS: u32 = 10;
/// How long before `put_samples` a frame's sound left the guest (ms), so that its stamp
/// says when it was played there, as a video frame's says when it was drawn: its first
/// sample entered the frame 10 ms before it was full, and QEMU's sound device keeps some
/// more between the guest's DMA and the mixer. Stamped at `put_samples` (as spice-server
/// does), video ran 8-28 ms ahead of the sound at the client (tests/e2e/test_av_sync.py).
const STAMP_LEAD_MS: u32 = 20;
const MAX_HELD: usize = crate::video::clock::MAX_AUDIO_HOLD_MS.div_ceil(FRAME_MS) as usize;
/// Every frame buffer there is: the queue at its longest and the one being coded.
const POOL: usize = MAX_QUEUED + MAX_HELD + 1;

pub(crate) type Samples = Box<[u32; FRAME_SAMPLES]>;

/// One frame on its way to the client.
pub(crate) struct Frame {
    /// Multimedia-clock time its sound left the guest (`STAMP_LEAD_MS` before QEMU handed
    /// it over; the same clock video frames carry).
    pub time: u32,
    pub samples: Samples,
    silent: bool,
}

/// Volume and mute as QEMU last set them, sent to each client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Levels {
    /// One value per channel (QEMU's 0..255 × 257); None until QEMU sets it.
    pub volume: Option<Vec<u16>>,
    pub mute: bool,
}

struct State {
    rate: u32,
    /// QEMU's voice is on (`playback_start`).
    active: bool,
    /// The channel that owns the stream (0: none).
    owner: u64,
    last_owner: u64,
    /// QEMU removed the instance.
    detached: bool,
    levels: Levels,
    /// Bumped on every volume/mute change.
    levels_gen: u64,
    queue: VecDeque<Frame>,
    spare: Vec<Samples>,
    dropped: u64,
}

pub(crate) struct PlaybackStream {
    state: Mutex<State>,
    wake: Arc<dyn Fn() + Send + Sync>,
    video: Arc<VideoConfig>,
}

impl PlaybackStream {
    pub(crate) fn new(
        video: Arc<VideoConfig>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Arc<PlaybackStream> {
        Arc::new(PlaybackStream {
            state: Mutex::new(State {
                rate: BEST_RATE,
                active: false,
                owner: 0,
                last_owner: 0,
                detached: false,
                levels: Levels::default(),
                levels_gen: 0,
                queue: VecDeque::with_capacity(POOL),
                spare: (0..POOL).map(|_| Box::new([0u32; FRAME_SAMPLES])).collect(),
                dropped: 0,
            }),
            wake,
            video,
        })
    }

    pub(crate) fn rate(&self) -> u32 {
        self.state.lock().rate
    }

    /// `spice_server_set_playback_rate`.
    pub(crate) fn set_rate(&self, rate: u32) {
        self.state.lock().rate = rate;
    }

    /// True when QEMU may fill a frame: a client is linked and the voice is on
    /// (`get_buffer` hands out nothing otherwise and QEMU drops the audio).
    pub(crate) fn wants_frames(&self) -> bool {
        let s = self.state.lock();
        s.active && s.owner != 0 && !s.detached
    }

    /// `spice_server_playback_start` / `_stop`.
    pub(crate) fn set_active(&self, active: bool) {
        {
            let mut s = self.state.lock();
            if s.active == active {
                return;
            }
            s.active = active;
            self.update_clock(&s);
        }
        (self.wake)();
    }

    /// QEMU's filled frame: stamped and queued for the client, or dropped when nobody
    /// listens. Never blocks and never allocates.
    pub(crate) fn put(&self, samples: &[u32]) {
        if samples.len() != FRAME_SAMPLES {
            return;
        }
        let silent = is_silent(samples);
        {
            let mut s = self.state.lock();
            if !s.active || s.owner == 0 || s.detached {
                return;
            }
            let held = self.video.clock.audio_hold().div_ceil(FRAME_MS) as usize;
            let buffer = if s.queue.len() >= MAX_QUEUED + held {
                s.dropped += 1;
                if s.dropped == 1 || s.dropped.is_multiple_of(100) {
                    crate::log_info!(
                        "playback: the client does not keep up, {} frames dropped",
                        s.dropped
                    );
                }
                if silent {
                    return;
                }
                let victim = s.queue.iter().position(|f| f.silent).unwrap_or(0);
                s.queue.remove(victim).map(|f| f.samples)
            } else {
                s.spare.pop()
            };
            let Some(mut buffer) = buffer else {
                return;
            };
            buffer.copy_from_slice(samples);
            let time = self.video.clock.now().wrapping_sub(STAMP_LEAD_MS);
            s.queue.push_back(Frame {
                time,
                samples: buffer,
                silent,
            });
        }
        (self.wake)();
    }

    /// `spice_server_playback_set_volume` / `_set_mute`.
    pub(crate) fn set_volume(&self, volume: Vec<u16>) {
        self.change_levels(|l| l.volume = Some(volume));
    }

    pub(crate) fn set_mute(&self, mute: bool) {
        self.change_levels(|l| l.mute = mute);
    }

    fn change_levels(&self, change: impl FnOnce(&mut Levels)) {
        {
            let mut s = self.state.lock();
            change(&mut s.levels);
            s.levels_gen += 1;
            crate::log_debug!(
                "playback: QEMU set {:?} (client linked: {})",
                s.levels,
                s.owner != 0
            );
        }
        (self.wake)();
    }

    /// QEMU removed the instance: its channel closes.
    pub(crate) fn detach(&self) {
        {
            let mut s = self.state.lock();
            s.detached = true;
            s.active = false;
            Self::clear(&mut s);
            self.update_clock(&s);
        }
        (self.wake)();
    }

    /// Takes the stream for a new client; the previous owner's channel sees it lost it
    /// and closes (one client per sound channel, the newest wins, as spice-server).
    /// None when the instance is gone.
    pub(crate) fn claim(&self) -> Option<u64> {
        let token = {
            let mut s = self.state.lock();
            if s.detached {
                return None;
            }
            s.last_owner += 1;
            s.owner = s.last_owner;
            Self::clear(&mut s);
            self.update_clock(&s);
            s.owner
        };
        (self.wake)();
        Some(token)
    }

    /// The channel `token` closed.
    pub(crate) fn release(&self, token: u64) {
        let mut s = self.state.lock();
        if s.owner == token {
            s.owner = 0;
            Self::clear(&mut s);
            self.update_clock(&s);
        }
    }

    pub(crate) fn owns(&self, token: u64) -> bool {
        let s = self.state.lock();
        s.owner == token && !s.detached
    }

    /// Whether QEMU's voice is on, and the volume/mute with their generation.
    pub(crate) fn status(&self) -> (bool, u64) {
        let s = self.state.lock();
        (s.active, s.levels_gen)
    }

    pub(crate) fn levels(&self) -> Levels {
        self.state.lock().levels.clone()
    }

    /// The oldest waiting frame, for `token`'s channel, once it has been held as long
    /// as the video needs (all of them at once when the voice stopped).
    pub(crate) fn pop(&self, token: u64) -> Option<Frame> {
        let mut s = self.state.lock();
        if s.owner != token {
            return None;
        }
        let hold = self.video.clock.audio_hold();
        if s.active && hold > 0 {
            let due = s.queue.front()?.time.wrapping_add(hold);
            if (self.video.clock.now().wrapping_sub(due) as i32) < 0 {
                return None;
            }
        }
        s.queue.pop_front()
    }

    pub(crate) fn queued(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// A frame's buffer back to the pool once it was coded.
    pub(crate) fn recycle(&self, samples: Samples) {
        let mut s = self.state.lock();
        if s.spare.len() < POOL {
            s.spare.push(samples);
        }
    }

    /// Frames dropped so far because the client did not keep up.
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    fn clear(s: &mut State) {
        while let Some(f) = s.queue.pop_front() {
            s.spare.push(f.samples);
        }
    }

    /// While audio plays the client sets its clock from the audio stamps: the main
    /// channel stops setting it (spice-server's `reds_disable_mm_time`).
    fn update_clock(&self, s: &State) {
        let playing = s.active && s.owner != 0 && !s.detached;
        self.video.clock.set_audio_playing(playing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::join;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn stream() -> (Arc<PlaybackStream>, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let s = PlaybackStream::new(
            Arc::default(),
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (s, wakes)
    }

    fn frame(level: i16) -> Vec<u32> {
        vec![join(level, level); FRAME_SAMPLES]
    }

    #[test]
    fn frames_flow_only_to_a_linked_client_of_a_started_voice() {
        let (s, wakes) = stream();
        assert!(!s.wants_frames());
        s.put(&frame(1000));
        assert_eq!(s.queued(), 0, "nobody listens");
        let token = s.claim().unwrap();
        assert!(!s.wants_frames(), "voice off");
        s.set_active(true);
        assert!(s.wants_frames());
        let before = wakes.load(Ordering::SeqCst);
        s.put(&frame(1000));
        assert!(
            wakes.load(Ordering::SeqCst) > before,
            "the reactor is woken"
        );
        let f = s.pop(token).unwrap();
        assert_eq!(f.samples[0], join(1000, 1000));
        assert!(s.pop(token + 1).is_none());
        s.recycle(f.samples);
        s.release(token);
        assert!(!s.wants_frames());
    }

    #[test]
    fn a_full_queue_drops_silence_first_then_the_oldest() {
        let (s, _) = stream();
        let token = s.claim().unwrap();
        s.set_active(true);
        for k in 0..MAX_QUEUED {
            let level = if k == 3 { 0 } else { 1000 + k as i16 };
            s.put(&frame(level));
        }
        s.put(&frame(0));
        assert_eq!(s.dropped(), 1, "a silent newcomer is the one dropped");
        s.put(&frame(5000));
        assert_eq!(s.queued(), MAX_QUEUED);
        let levels: Vec<i16> = std::iter::from_fn(|| s.pop(token))
            .map(|f| {
                let level = crate::audio::split(f.samples[0])[0];
                s.recycle(f.samples);
                level
            })
            .collect();
        assert!(
            !levels.contains(&0),
            "the queued silent frame went: {levels:?}"
        );
        assert_eq!(levels[0], 1000);
        s.put(&frame(1)); // re-fill after drain
        for _ in 0..2 * MAX_QUEUED {
            s.put(&frame(2000));
        }
        assert_eq!(s.queued(), MAX_QUEUED, "bounded");
    }

    #[test]
    fn audio_waits_while_the_video_needs_it_to() {
        let (s, _) = stream();
        let token = s.claim().unwrap();
        s.set_active(true);
        s.video.clock.stream_report(-40, 1, false);
        let hold = s.video.clock.audio_hold();
        assert!(hold >= 40, "{hold}");
        s.put(&frame(1000));
        assert!(s.pop(token).is_none(), "held");
        for _ in 0..MAX_QUEUED + 2 {
            s.put(&frame(1000));
        }
        assert_eq!(s.dropped(), 0, "held frames do not count as a slow client");
        std::thread::sleep(std::time::Duration::from_millis(hold as u64 + 5));
        let f = s.pop(token).expect("due now");
        s.recycle(f.samples);
        s.set_active(false);
        let mut flushed = 0;
        while let Some(f) = s.pop(token) {
            s.recycle(f.samples);
            flushed += 1;
        }
        assert_eq!(
            flushed,
            MAX_QUEUED + 2,
            "a stopped voice flushes what it held"
        );
    }

    #[test]
    fn a_new_client_takes_the_stream_from_the_old() {
        let (s, _) = stream();
        let old = s.claim().unwrap();
        let new = s.claim().unwrap();
        assert!(!s.owns(old) && s.owns(new));
        s.release(old);
        assert!(s.owns(new), "the old channel closing leaves the new one");
        s.detach();
        assert!(!s.owns(new));
        assert!(s.claim().is_none());
    }

    #[test]
    fn the_main_channel_leaves_the_clock_to_audio_while_it_plays() {
        let (s, _) = stream();
        let clock = &s.video.clock;
        let token = s.claim().unwrap();
        assert!(!clock.audio_playing());
        s.set_active(true);
        assert!(clock.audio_playing());
        let gen = clock.generation();
        s.release(token);
        assert!(!clock.audio_playing());
        assert!(
            clock.generation() > gen,
            "main channels send the clock again"
        );
    }
}
