//! Opus through the system libopus (the `opus` crate), as spice's `snd_codec`:
//! `OPUS_APPLICATION_AUDIO`, stereo, one 480-frame packet per audio frame.

use super::{join, split, FRAME_SAMPLES};

/// Largest packet libopus writes.
const MAX_PACKET: usize = 1275;
/// Largest frame a packet decodes to: 120 ms at 48 kHz.
pub(crate) const MAX_DECODED: usize = 5760;

pub(crate) struct Encoder {
    inner: opus::Encoder,
    pcm: Vec<i16>,
    packet: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new(rate: u32) -> Result<Encoder, String> {
        let inner = opus::Encoder::new(rate, opus::Channels::Stereo, opus::Application::Audio)
            .map_err(|e| format!("cannot create an Opus encoder at {rate} Hz: {e}"))?;
        Ok(Encoder {
            inner,
            pcm: Vec::with_capacity(FRAME_SAMPLES * 2),
            packet: vec![0; MAX_PACKET],
        })
    }

    /// One packet for one frame; the slice lives until the next call.
    /// Bits per second to aim at; None: libopus chooses (about 110 kbit/s for stereo).
    pub(crate) fn set_bitrate(&mut self, bits: Option<i32>) -> Result<(), String> {
        let bitrate = bits.map_or(opus::Bitrate::Auto, opus::Bitrate::Bits);
        self.inner
            .set_bitrate(bitrate)
            .map_err(|e| format!("cannot set the Opus bit rate: {e}"))
    }

    pub(crate) fn encode(&mut self, frames: &[u32]) -> Result<&[u8], String> {
        self.pcm.clear();
        self.pcm.extend(frames.iter().flat_map(|f| split(*f)));
        let n = self
            .inner
            .encode(&self.pcm, &mut self.packet)
            .map_err(|e| format!("Opus encoding failed: {e}"))?;
        Ok(&self.packet[..n])
    }
}

pub(crate) struct Decoder {
    inner: opus::Decoder,
    pcm: Vec<i16>,
    frames: Vec<u32>,
}

impl Decoder {
    pub(crate) fn new(rate: u32) -> Result<Decoder, String> {
        let inner = opus::Decoder::new(rate, opus::Channels::Stereo)
            .map_err(|e| format!("cannot create an Opus decoder at {rate} Hz: {e}"))?;
        Ok(Decoder {
            inner,
            pcm: vec![0; MAX_DECODED * 2],
            frames: Vec::with_capacity(MAX_DECODED),
        })
    }

    /// The stereo frames of one packet (an empty packet is refused: libopus would
    /// take it as a lost one and make up audio).
    pub(crate) fn decode(&mut self, packet: &[u8]) -> Result<&[u32], String> {
        if packet.is_empty() {
            return Err("empty Opus packet".into());
        }
        let n = self
            .inner
            .decode(packet, &mut self.pcm, false)
            .map_err(|e| format!("Opus packet does not decode: {e}"))?;
        self.frames.clear();
        self.frames.extend(
            self.pcm[..n * 2]
                .chunks_exact(2)
                .map(|lr| join(lr[0], lr[1])),
        );
        Ok(&self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz tone, left and right in opposite phase.
    pub(crate) fn tone(start: usize, n: usize) -> Vec<u32> {
        (start..start + n)
            .map(|i| {
                let v = (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI / 48.0).sin()) as i16;
                join(v, v.wrapping_neg())
            })
            .collect()
    }

    #[test]
    fn a_tone_survives_the_round_trip() {
        let mut enc = Encoder::new(48_000).unwrap();
        let mut dec = Decoder::new(48_000).unwrap();
        let mut out = Vec::new();
        let mut input = Vec::new();
        for k in 0..50 {
            let frame = tone(k * FRAME_SAMPLES, FRAME_SAMPLES);
            let packet = enc.encode(&frame).unwrap().to_vec();
            assert!(packet.len() < FRAME_SAMPLES * 4 / 4, "{}", packet.len());
            out.extend_from_slice(dec.decode(&packet).unwrap());
            input.extend(frame);
        }
        assert_eq!(out.len(), input.len());
        // Opus delays by its lookahead: compare energy, not sample for sample.
        let energy = |f: &[u32]| -> f64 {
            f.iter()
                .map(|x| split(*x)[0] as f64)
                .map(|v| v * v)
                .sum::<f64>()
        };
        let tail = 10 * FRAME_SAMPLES;
        let ratio = energy(&out[tail..]) / energy(&input[tail..]);
        assert!((0.8..1.25).contains(&ratio), "{ratio}");
    }

    #[test]
    fn garbage_and_empty_packets_are_refused() {
        let mut dec = Decoder::new(48_000).unwrap();
        assert!(dec.decode(&[]).is_err());
        // TOC byte announcing a code-3 packet with a frame count of zero.
        assert!(dec.decode(&[0xff, 0x00]).is_err());
    }
}
