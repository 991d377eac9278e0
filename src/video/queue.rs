//! Queueing delay on the path to one client, from the client's stream reports. Pure:
//! time comes in as `now_ms`.
//!
//! A report says how early (or late) its last frame arrived before its display time;
//! with the playout delay the client's clock runs behind ours, that is how long the
//! frame took from capture to the client: encoding, our queues, the kernel's, every
//! buffer on the way, and the path's own delay. The least of that over a long window
//! is the path without queues (as Google Congestion Control and BBR take the least
//! RTT); anything above it is a queue building up somewhere, seen whatever buffer it
//! sits in, before the frames come late.

use std::collections::VecDeque;

/// How long the least delay is remembered: longer than any queue we let stand, so a
/// standing queue cannot become the base.
const BASE_WINDOW_MS: u64 = 30_000;
/// Samples kept (reports come every 5 frames or every second).
const MAX_SAMPLES: usize = 1024;
/// Delays beyond a minute say nothing more (a client's number: anything).
const MAX_DELAY_MS: i64 = 60_000;

#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDelay {
    /// (time, capture-to-arrival delay) of recent reports, oldest first.
    samples: VecDeque<(u64, u32)>,
    last: Option<u32>,
}

impl QueueDelay {
    /// A report whose last frame took `delay_ms` from capture to the client.
    pub(crate) fn sample(&mut self, now_ms: u64, delay_ms: i64) {
        let delay = delay_ms.clamp(0, MAX_DELAY_MS) as u32;
        self.last = Some(delay);
        // Only a new minimum or a later sample matters for the window's least value:
        // drop the ones it outlives and beats (a monotonic queue).
        while self.samples.back().is_some_and(|s| s.1 >= delay) {
            self.samples.pop_back();
        }
        self.samples.push_back((now_ms, delay));
        while self
            .samples
            .front()
            .is_some_and(|s| now_ms.saturating_sub(s.0) > BASE_WINDOW_MS)
            || self.samples.len() > MAX_SAMPLES
        {
            self.samples.pop_front();
        }
    }

    /// The path's delay without queues (ms), once a report came.
    pub(crate) fn base_ms(&self) -> Option<u32> {
        self.samples.front().map(|s| s.1)
    }

    /// How much longer than the base the last report's frame took (ms).
    pub(crate) fn queue_ms(&self) -> Option<u32> {
        Some(self.last?.saturating_sub(self.base_ms()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_the_delay_above_the_least() {
        let mut q = QueueDelay::default();
        assert_eq!(q.queue_ms(), None);
        for (t, d) in [(0, 120), (200, 90), (400, 95), (600, 300)] {
            q.sample(t, d);
        }
        assert_eq!(q.base_ms(), Some(90));
        assert_eq!(q.queue_ms(), Some(210));
    }

    #[test]
    fn the_base_forgets_a_path_that_got_longer() {
        let mut q = QueueDelay::default();
        q.sample(0, 20);
        for t in 1..=40 {
            q.sample(t * 1000, 80);
        }
        assert_eq!(q.base_ms(), Some(80), "the old minimum aged out");
        assert_eq!(q.queue_ms(), Some(0));
    }

    #[test]
    fn hostile_numbers_stay_bounded() {
        let mut q = QueueDelay::default();
        q.sample(0, i64::MIN);
        q.sample(1, i64::MAX);
        assert_eq!(q.queue_ms(), Some(MAX_DELAY_MS as u32));
        for t in 0..10_000u64 {
            q.sample(t, 10_000 - t as i64);
        }
        assert!(q.samples.len() <= MAX_SAMPLES);
    }
}
