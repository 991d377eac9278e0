//! The record stream: the linked client's record channel writes the samples it
//! receives (`write`, on the reactor), QEMU's audio timer reads them (`read`, on QEMU's
//! thread with its lock held). A fixed ring behind one short mutex; neither side waits.
//!
//! QEMU asks at its own pace and substitutes silence when we have nothing, so whatever
//! is buffered when delivery starts is the cushion against the client's jitter for the
//! rest of the recording, and it is also the delay. Delivery starts once `PREFILL`
//! frames (60 ms) are in, where spice-server waits for 85 ms. When the ring runs dry
//! anyway (the client's packets come more unevenly than that), the cushion grows by
//! `PREFILL_STEP` up to `MAX_PREFILL` and delivery starts over once it is filled: one gap,
//! then a link that needs more gets more. A client faster than the guest overwrites the
//! oldest samples: the ring, and so the delay, never grows past `RING_FRAMES`.

use super::BEST_RATE;
use parking_lot::Mutex;
use std::sync::Arc;

/// Ring size in stereo frames (170 ms at 48 kHz, as spice-server's).
pub(crate) const RING_FRAMES: usize = 8192;
/// Frames buffered before delivery starts: 60 ms (40 ms ran dry now and then in the e2e
/// test with the machine loaded).
pub(crate) const PREFILL: usize = 2880;
/// What each underrun adds to it (20 ms), and its bound (140 ms).
pub(crate) const PREFILL_STEP: usize = 960;
pub(crate) const MAX_PREFILL: usize = 6720;

pub(crate) use super::playback::Levels;

struct State {
    rate: u32,
    active: bool,
    owner: u64,
    last_owner: u64,
    detached: bool,
    levels: Levels,
    levels_gen: u64,
    ring: Box<[u32]>,
    /// Frames written and read since the ring was last cleared.
    written: u64,
    read: u64,
    /// Delivery started (after the prefill).
    flowing: bool,
    /// Frames to buffer before delivery (re)starts.
    prefill: usize,
    underruns: u64,
    overwritten: u64,
}

impl State {
    fn level(&self) -> usize {
        (self.written - self.read) as usize
    }

    fn clear(&mut self) {
        self.written = 0;
        self.read = 0;
        self.flowing = false;
    }
}

pub(crate) struct RecordStream {
    state: Mutex<State>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl RecordStream {
    pub(crate) fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Arc<RecordStream> {
        Arc::new(RecordStream {
            state: Mutex::new(State {
                rate: BEST_RATE,
                active: false,
                owner: 0,
                last_owner: 0,
                detached: false,
                levels: Levels::default(),
                levels_gen: 0,
                ring: vec![0; RING_FRAMES].into_boxed_slice(),
                written: 0,
                read: 0,
                flowing: false,
                prefill: PREFILL,
                underruns: 0,
                overwritten: 0,
            }),
            wake,
        })
    }

    pub(crate) fn rate(&self) -> u32 {
        self.state.lock().rate
    }

    pub(crate) fn set_rate(&self, rate: u32) {
        self.state.lock().rate = rate;
    }

    /// `spice_server_record_start` / `_stop`; a start begins with an empty ring.
    pub(crate) fn set_active(&self, active: bool) {
        {
            let mut s = self.state.lock();
            if s.active == active {
                return;
            }
            s.active = active;
            s.clear();
            s.prefill = PREFILL;
        }
        (self.wake)();
    }

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
        }
        (self.wake)();
    }

    /// `spice_server_record_get_samples`: copies what is ready into `out`, returns the
    /// frame count (0: QEMU records silence).
    pub(crate) fn read(&self, out: &mut [u32]) -> usize {
        let mut s = self.state.lock();
        if !s.active || s.owner == 0 || s.detached {
            return 0;
        }
        let level = s.level();
        if !s.flowing {
            if level < s.prefill {
                return 0;
            }
            s.flowing = true;
        }
        if level == 0 {
            // Ran dry: a larger cushion, filled before delivery goes on.
            s.flowing = false;
            s.underruns += 1;
            s.prefill = (s.prefill + PREFILL_STEP).min(MAX_PREFILL);
            crate::log_info!(
                "record: the client's audio came late ({} times): buffering {} ms now",
                s.underruns,
                s.prefill * 1000 / s.rate.max(1) as usize
            );
            return 0;
        }
        let n = level.min(out.len());
        let start = (s.read % RING_FRAMES as u64) as usize;
        let first = n.min(RING_FRAMES - start);
        out[..first].copy_from_slice(&s.ring[start..start + first]);
        out[first..n].copy_from_slice(&s.ring[..n - first]);
        s.read += n as u64;
        n
    }

    /// Samples from `token`'s client, dropped unless QEMU records.
    pub(crate) fn write(&self, token: u64, frames: &[u32]) {
        let mut s = self.state.lock();
        if s.owner != token || !s.active || s.detached {
            return;
        }
        // Only the newest RING_FRAMES of a huge write can survive anyway.
        let frames = &frames[frames.len().saturating_sub(RING_FRAMES)..];
        let mut at = (s.written % RING_FRAMES as u64) as usize;
        let mut rest = frames;
        while !rest.is_empty() {
            let n = rest.len().min(RING_FRAMES - at);
            s.ring[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at = 0;
        }
        s.written += frames.len() as u64;
        if s.level() > RING_FRAMES {
            let lost = s.level() - RING_FRAMES;
            s.read += lost as u64;
            s.overwritten += lost as u64;
            if s.overwritten == lost as u64 {
                crate::log_info!(
                    "record: the guest reads slower than the client sends; oldest samples dropped"
                );
            }
        }
    }

    pub(crate) fn detach(&self) {
        {
            let mut s = self.state.lock();
            s.detached = true;
            s.active = false;
            s.clear();
        }
        (self.wake)();
    }

    /// As `PlaybackStream::claim`: the newest client wins.
    pub(crate) fn claim(&self) -> Option<u64> {
        let token = {
            let mut s = self.state.lock();
            if s.detached {
                return None;
            }
            s.last_owner += 1;
            s.owner = s.last_owner;
            s.clear();
            s.owner
        };
        (self.wake)();
        Some(token)
    }

    pub(crate) fn release(&self, token: u64) {
        let mut s = self.state.lock();
        if s.owner == token {
            s.owner = 0;
            s.clear();
        }
    }

    pub(crate) fn owns(&self, token: u64) -> bool {
        let s = self.state.lock();
        s.owner == token && !s.detached
    }

    pub(crate) fn status(&self) -> (bool, u64) {
        let s = self.state.lock();
        (s.active, s.levels_gen)
    }

    pub(crate) fn levels(&self) -> Levels {
        self.state.lock().levels.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<RecordStream> {
        RecordStream::new(Arc::new(|| {}))
    }

    fn ramp(start: u32, n: usize) -> Vec<u32> {
        (start..start + n as u32).collect()
    }

    #[test]
    fn delivery_starts_after_a_short_prefill_and_keeps_order() {
        let s = stream();
        let token = s.claim().unwrap();
        let mut out = vec![0; 480];
        s.write(token, &ramp(0, 480));
        assert_eq!(s.read(&mut out), 0, "recording is off");
        s.set_active(true);
        let packets = PREFILL / 480;
        for k in 0..packets - 1 {
            s.write(token, &ramp(k as u32 * 480, 480));
            assert_eq!(s.read(&mut out), 0, "{} ms is not enough", (k + 1) * 10);
        }
        s.write(token, &ramp((PREFILL - 480) as u32, 480));
        assert_eq!(s.read(&mut out), 480);
        assert_eq!(out, ramp(0, 480));
        let mut big = vec![0; 8000];
        assert_eq!(s.read(&mut big), PREFILL - 480);
        assert_eq!(&big[..PREFILL - 480], &ramp(480, PREFILL - 480)[..]);
        assert_eq!(s.read(&mut big), 0, "dry");
        s.write(token, &ramp(0, PREFILL));
        assert_eq!(
            s.read(&mut big),
            0,
            "after running dry the cushion is larger"
        );
        s.write(token, &ramp(0, PREFILL_STEP));
        assert_eq!(s.read(&mut big), PREFILL + PREFILL_STEP);
        for _ in 0..20 {
            assert_eq!(s.read(&mut big), 0);
            s.write(token, &ramp(0, 100));
        }
        s.write(token, &ramp(0, MAX_PREFILL));
        assert!(s.read(&mut big) > 0, "the cushion is bounded");
        s.set_active(false);
        s.set_active(true);
        s.write(token, &ramp(0, PREFILL));
        assert_eq!(
            s.read(&mut big),
            PREFILL,
            "a new recording starts small again"
        );
    }

    #[test]
    fn the_ring_wraps_and_never_holds_more_than_its_size() {
        let s = stream();
        let token = s.claim().unwrap();
        s.set_active(true);
        for k in 0..40 {
            s.write(token, &ramp(k * 480, 480));
        }
        let mut out = vec![0; RING_FRAMES * 2];
        let n = s.read(&mut out);
        assert_eq!(n, RING_FRAMES);
        let last = 40 * 480;
        assert_eq!(out[..n], ramp(last - RING_FRAMES as u32, RING_FRAMES)[..]);
        s.write(token, &ramp(0, 3 * RING_FRAMES));
        assert_eq!(s.read(&mut out), RING_FRAMES);
        assert_eq!(out[0], 2 * RING_FRAMES as u32, "the newest survive");
    }

    #[test]
    fn only_the_owner_writes() {
        let s = stream();
        let old = s.claim().unwrap();
        let new = s.claim().unwrap();
        s.set_active(true);
        s.write(old, &ramp(0, 3000));
        let mut out = vec![0; 3000];
        assert_eq!(s.read(&mut out), 0);
        s.write(new, &ramp(0, 3000));
        assert_eq!(s.read(&mut out), 3000);
        s.write(new, &ramp(0, 3000));
        s.release(new);
        s.write(new, &ramp(0, 3000));
        assert_eq!(s.read(&mut out), 0);
    }
}
