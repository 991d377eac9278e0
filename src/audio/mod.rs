//! Audio between QEMU's sound card and the playback and record channels: the streams
//! QEMU's audio timer feeds and drains (`playback.rs`, `record.rs`, shared with the
//! channel on the reactor through short uncontended locks) and the Opus codec.
//!
//! Samples are what QEMU's interface carries: one `u32` per stereo frame, two S16
//! samples in memory order (left, right).

pub(crate) mod opus;
pub(crate) mod playback;
pub(crate) mod record;

/// Frames in one audio frame: 10 ms at 48 kHz (spice-server's `SND_CODEC_MAX_FRAME_SIZE`).
pub(crate) const FRAME_SAMPLES: usize = 480;
/// The rate QEMU is told is best, and the one Opus runs at.
pub(crate) const BEST_RATE: u32 = 48_000;

/// Whether a 480-frame Opus frame exists at `rate` (spice-server also offers 16 kHz,
/// where 480 frames are 30 ms, which Opus cannot code).
pub(crate) fn opus_supports(rate: u32) -> bool {
    matches!(rate, 48_000 | 24_000 | 12_000 | 8_000)
}

/// The two S16 samples of a stereo frame.
pub(crate) fn split(frame: u32) -> [i16; 2] {
    let b = frame.to_ne_bytes();
    [
        i16::from_ne_bytes([b[0], b[1]]),
        i16::from_ne_bytes([b[2], b[3]]),
    ]
}

/// A stereo frame from its two samples.
pub(crate) fn join(left: i16, right: i16) -> u32 {
    let (l, r) = (left.to_ne_bytes(), right.to_ne_bytes());
    u32::from_ne_bytes([l[0], l[1], r[0], r[1]])
}

/// Below this amplitude a frame counts as silence (about -60 dBFS).
const SILENCE: i16 = 32;

/// True when every sample of `frames` is near zero: such a frame is the first to go
/// when a slow client makes the playback queue overflow.
pub(crate) fn is_silent(frames: &[u32]) -> bool {
    frames
        .iter()
        .all(|f| split(*f).iter().all(|s| s.unsigned_abs() < SILENCE as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let f = join(-2, 300);
        assert_eq!(split(f), [-2, 300]);
        assert!(is_silent(&[join(0, 0), join(-31, 31)]));
        assert!(!is_silent(&[join(0, 0), join(-32, 0)]));
        assert!(!is_silent(&[join(i16::MIN, 0)]));
    }

    #[test]
    fn opus_rates() {
        assert!(opus_supports(BEST_RATE));
        assert!(!opus_supports(44_100));
        assert!(!opus_supports(16_000));
    }
}
