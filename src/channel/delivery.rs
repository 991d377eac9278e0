//! What the socket takes per second while output waits for it: the link's delivery
//! rate, measured where it shows first.
//!
//! A channel's outbox holding bytes after a write means the socket was full (its
//! kernel queue is capped, see `DISPLAY_UNSENT`): from then until the next look, the
//! socket took bytes exactly as fast as the link delivered them (BBR's delivery rate,
//! counted only while not limited by the application). The client's stream reports
//! say the same a round trip and a report window later, and not at all while the
//! client is busy receiving a queue: a link that narrows shows here within a frame.

use std::collections::VecDeque;

/// Busy time (ms) the rate is measured over: short, so a link that narrows shows in
/// the next few hundred milliseconds.
const WINDOW_BUSY_MS: u64 = 400;
/// Least busy time (ms) a rate is given for (one write burst says little).
const LEAST_BUSY_MS: u64 = 100;
/// A rate not confirmed by busy time for this long (ms) is forgotten: the link may have
/// widened since (a link that keeps up leaves nothing waiting to measure).
const FORGET_MS: u64 = 3_000;

/// One look at the outbox: when, how many bytes the socket had taken in all, and
/// whether bytes still waited for it.
#[derive(Debug, Clone, Copy)]
struct Look {
    at_ms: u64,
    taken: u64,
    waiting: bool,
}

#[derive(Debug, Default)]
pub(crate) struct DeliveryRate {
    last: Option<Look>,
    /// (end, ms, bytes) of intervals the socket was the bottleneck all through, and
    /// their sums (looked at after every write: not summed again each time).
    busy: VecDeque<(u64, u64, u64)>,
    busy_ms: u64,
    busy_bytes: u64,
}

impl DeliveryRate {
    /// A look at the outbox after a write: `taken` bytes written to the socket so far,
    /// `pending` still waiting for it.
    pub(crate) fn look(&mut self, now_ms: u64, taken: u64, pending: usize) {
        let look = Look {
            at_ms: now_ms,
            taken,
            waiting: pending > 0,
        };
        if let Some(last) = self.last.filter(|l| l.waiting && now_ms > l.at_ms) {
            let (ms, bytes) = (now_ms - last.at_ms, taken.saturating_sub(last.taken));
            self.busy.push_back((now_ms, ms, bytes));
            self.busy_ms += ms;
            self.busy_bytes += bytes;
            while let Some(&(_, ms, bytes)) = self.busy.front() {
                if self.busy_ms - ms < WINDOW_BUSY_MS {
                    break;
                }
                self.busy_ms -= ms;
                self.busy_bytes -= bytes;
                self.busy.pop_front();
            }
        }
        self.last = Some(look);
    }

    /// The link's rate (bit/s) now, if measured lately: the lower of the window's rate
    /// and that of its newest `LEAST_BUSY_MS`. A link that narrowed shows in the last
    /// writes first; the window, still full of the wider link's, said a queue was a
    /// quarter of what it was, and the playout delay rose in five steps over a second
    /// while the frames queued came late.
    pub(crate) fn bps(&self, now_ms: u64) -> Option<u64> {
        let window = self.window_bps(now_ms)?;
        Some(self.recent_bps().map_or(window, |r| r.min(window)))
    }

    /// The rate over the last `WINDOW_BUSY_MS` of busy time.
    fn window_bps(&self, now_ms: u64) -> Option<u64> {
        let (latest, _, _) = *self.busy.back()?;
        if now_ms.saturating_sub(latest) > FORGET_MS {
            return None;
        }
        if self.busy_ms < LEAST_BUSY_MS {
            return None;
        }
        Some(self.busy_bytes.saturating_mul(8000) / self.busy_ms)
    }

    /// The rate over the newest busy intervals that add up to `LEAST_BUSY_MS`.
    fn recent_bps(&self) -> Option<u64> {
        let (mut ms, mut bytes) = (0, 0);
        for &(_, m, b) in self.busy.iter().rev() {
            ms += m;
            bytes += b;
            if ms >= LEAST_BUSY_MS {
                return Some(bytes.saturating_mul(8000) / ms);
            }
        }
        None
    }
}

/// What the kernel says of a TCP socket's queue: the bytes it holds unsent, and the
/// round trip (a queue at the path's bottleneck shows as a round trip over its least).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendQueue {
    pub unsent_bytes: u32,
    /// Smoothed round trip now and the least seen, µs.
    pub rtt_us: u32,
    pub min_rtt_us: u32,
}

impl SendQueue {
    /// What a queue on the path adds (ms) to the time a byte written now takes.
    pub(crate) fn path_queue_ms(&self) -> u64 {
        u64::from(self.rtt_us.saturating_sub(self.min_rtt_us)) / 1000
    }

    /// The path's one-way time without a queue (ms): half the least round trip.
    pub(crate) fn one_way_ms(&self) -> u64 {
        u64::from(self.min_rtt_us) / 2000
    }
}

/// How long (ms) `bytes` take on a link of `bps` (none for a rate of 0).
pub(crate) fn time_on_link(bytes: u64, bps: u64) -> Option<u64> {
    (bps > 0).then(|| bytes.saturating_mul(8000) / bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket taking `bps` while 10 kB wait, looked at every 20 ms from `from_ms`.
    fn backlogged(rate: &mut DeliveryRate, taken: &mut u64, from_ms: u64, ms: u64, bps: u64) {
        for t in (from_ms..from_ms + ms).step_by(20) {
            *taken += bps * 20 / 8000;
            rate.look(t + 20, *taken, 10_000);
        }
    }

    #[test]
    fn a_queue_on_the_path_is_the_round_trip_over_its_least() {
        let queue = SendQueue {
            unsent_bytes: 0,
            rtt_us: 250_000,
            min_rtt_us: 80_000,
        };
        assert_eq!(queue.path_queue_ms(), 170);
        assert_eq!(queue.one_way_ms(), 40);
        let noisy = SendQueue {
            rtt_us: 70_000,
            ..queue
        };
        assert_eq!(noisy.path_queue_ms(), 0);
    }

    #[test]
    fn measures_only_while_output_waits() {
        let mut rate = DeliveryRate::default();
        let mut taken = 0;
        // Everything written at once: the application, not the link, set the pace.
        for t in (0..2_000).step_by(20) {
            taken += 500;
            rate.look(t, taken, 0);
        }
        assert_eq!(rate.bps(2_000), None);
        rate.look(2_000, taken, 10_000);
        backlogged(&mut rate, &mut taken, 2_000, 500, 4_000_000);
        let bps = rate.bps(2_500).unwrap();
        assert!((3_900_000..=4_100_000).contains(&bps), "{bps}");
    }

    #[test]
    fn a_link_that_narrows_shows_within_its_window() {
        let mut rate = DeliveryRate::default();
        let mut taken = 0;
        rate.look(0, 0, 10_000);
        backlogged(&mut rate, &mut taken, 0, 2_000, 4_000_000);
        backlogged(&mut rate, &mut taken, 2_000, WINDOW_BUSY_MS, 1_000_000);
        let bps = rate.bps(2_000 + WINDOW_BUSY_MS).unwrap();
        assert!((950_000..=1_050_000).contains(&bps), "{bps}");
        assert_eq!(
            time_on_link(125_000, bps),
            Some(1_000),
            "125 kB at 1 Mbit/s"
        );
    }

    #[test]
    fn the_newest_rate_counts_when_it_is_lower() {
        let mut rate = DeliveryRate::default();
        let mut taken = 0;
        rate.look(0, 0, 10_000);
        backlogged(&mut rate, &mut taken, 0, 2_000, 4_000_000);
        backlogged(&mut rate, &mut taken, 2_000, LEAST_BUSY_MS, 1_000_000);
        let now = 2_000 + LEAST_BUSY_MS;
        let window = rate.window_bps(now).unwrap();
        assert!(
            window > 2_000_000,
            "the window is mostly the wider link: {window}"
        );
        let bps = rate.bps(now).unwrap();
        assert_eq!(time_on_link(125_000, bps), Some(1_000), "at 1 Mbit/s");
        // A wider link again: the window's rate, not a moment's.
        backlogged(&mut rate, &mut taken, now, LEAST_BUSY_MS, 8_000_000);
        let later = now + LEAST_BUSY_MS;
        let at_window = 125_000 * 8_000 / rate.window_bps(later).unwrap();
        let bps = rate.bps(later).unwrap();
        assert_eq!(time_on_link(125_000, bps), Some(at_window));
    }

    #[test]
    fn an_old_measure_is_forgotten() {
        let mut rate = DeliveryRate::default();
        let mut taken = 0;
        rate.look(0, 0, 10_000);
        backlogged(&mut rate, &mut taken, 0, 500, 1_000_000);
        rate.look(520, taken, 0);
        assert!(rate.bps(1_000).is_some());
        assert_eq!(
            rate.bps(520 + FORGET_MS + 1),
            None,
            "the link may be wider now"
        );
    }
}
