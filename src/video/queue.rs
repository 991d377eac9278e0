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
//!
//! A bigger frame takes longer on the link with nothing ahead of it: the difference
//! between the sizes of the last frame and of the base's frame, at the link's rate,
//! is no queue. Only the difference: subtracting each frame's whole time on the link
//! at an estimated rate made the base as wrong as the estimate (a low one turned a
//! 20 kB frame's 160 ms at 1 Mbit/s into a base near zero, then every steady report
//! into a 130 ms queue to cut for).

use std::collections::VecDeque;

/// How long the least delay is remembered: longer than any queue we let stand, so a
/// standing queue cannot become the base.
const BASE_WINDOW_MS: u64 = 30_000;
/// Samples kept (reports come every 5 frames or every second).
const MAX_SAMPLES: usize = 1024;
/// Delays beyond a minute say nothing more (a client's number: anything).
const MAX_DELAY_MS: i64 = 60_000;
/// Most of a delay put down to a frame being bigger than the base's.
const MAX_SIZE_EXCUSE_MS: f64 = 1_000.0;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: u64,
    delay_ms: u32,
    /// Bytes of the frame the report was about.
    bytes: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDelay {
    /// Recent reports whose delay no later one beat, oldest (and least) first.
    samples: VecDeque<Sample>,
    last: Option<Sample>,
}

impl QueueDelay {
    /// A report whose last frame, of `bytes`, took `delay_ms` from capture to the
    /// client.
    pub(crate) fn sample(&mut self, now_ms: u64, delay_ms: i64, bytes: u32) {
        let sample = Sample {
            at_ms: now_ms,
            delay_ms: delay_ms.clamp(0, MAX_DELAY_MS) as u32,
            bytes,
        };
        self.last = Some(sample);
        // Only a new minimum or a later sample matters for the window's least value:
        // drop the ones it outlives and beats (a monotonic queue).
        while self
            .samples
            .back()
            .is_some_and(|s| s.delay_ms >= sample.delay_ms)
        {
            self.samples.pop_back();
        }
        self.samples.push_back(sample);
        while self
            .samples
            .front()
            .is_some_and(|s| now_ms.saturating_sub(s.at_ms) > BASE_WINDOW_MS)
            || self.samples.len() > MAX_SAMPLES
        {
            self.samples.pop_front();
        }
    }

    /// The path's delay without queues (ms), once a report came.
    #[cfg(test)]
    pub(crate) fn base_ms(&self) -> Option<u32> {
        self.samples.front().map(|s| s.delay_ms)
    }

    /// How much longer than the base the last report's frame took (ms), less the time
    /// its extra bytes over the base frame's take at `link_bps` (0: unknown).
    pub(crate) fn queue_ms(&self, link_bps: f64) -> Option<u32> {
        let last = self.last?;
        let base = self.samples.front()?;
        let extra_bytes = f64::from(last.bytes.saturating_sub(base.bytes));
        let excuse = if link_bps > 0.0 {
            (extra_bytes * 8000.0 / link_bps).min(MAX_SIZE_EXCUSE_MS) as u32
        } else {
            0
        };
        Some(
            last.delay_ms
                .saturating_sub(base.delay_ms)
                .saturating_sub(excuse),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_the_delay_above_the_least() {
        let mut q = QueueDelay::default();
        assert_eq!(q.queue_ms(1e6), None);
        for (t, d) in [(0, 120), (200, 90), (400, 95), (600, 300)] {
            q.sample(t, d, 10_000);
        }
        assert_eq!(q.base_ms(), Some(90));
        assert_eq!(q.queue_ms(1e6), Some(210));
    }

    #[test]
    fn a_bigger_frame_s_own_time_on_the_link_is_no_queue() {
        // 1 Mbit/s: 5 kB frames take 40 ms, 25 kB frames 200 ms.
        let mut q = QueueDelay::default();
        q.sample(0, 100, 5_000);
        q.sample(500, 260, 25_000);
        assert_eq!(q.queue_ms(1e6), Some(0), "160 ms more for 20 kB more");
        q.sample(1000, 460, 25_000);
        assert_eq!(q.queue_ms(1e6), Some(200), "then 200 ms more is a queue");
        // Steady big frames whatever the rate estimate: the base is their own delay.
        let mut q = QueueDelay::default();
        for t in 0..20 {
            q.sample(t * 500, 130 + (t % 3) as i64, 20_000);
            assert!(q.queue_ms(0.0).unwrap() <= 2);
            assert!(q.queue_ms(1e5).unwrap() <= 2);
        }
    }

    #[test]
    fn the_base_forgets_a_path_that_got_longer() {
        let mut q = QueueDelay::default();
        q.sample(0, 20, 1000);
        for t in 1..=40 {
            q.sample(t * 1000, 80, 1000);
        }
        assert_eq!(q.base_ms(), Some(80), "the old minimum aged out");
        assert_eq!(q.queue_ms(1e6), Some(0));
    }

    #[test]
    fn hostile_numbers_stay_bounded() {
        let mut q = QueueDelay::default();
        q.sample(0, i64::MIN, 0);
        q.sample(1, i64::MAX, 0);
        assert_eq!(q.queue_ms(f64::MIN_POSITIVE), Some(MAX_DELAY_MS as u32));
        q.sample(2, i64::MAX, u32::MAX);
        assert_eq!(
            q.queue_ms(f64::MIN_POSITIVE),
            Some(MAX_DELAY_MS as u32 - MAX_SIZE_EXCUSE_MS as u32)
        );
        for t in 0..10_000u64 {
            q.sample(t, 10_000 - t as i64, 1);
        }
        assert!(q.samples.len() <= MAX_SAMPLES);
    }
}
