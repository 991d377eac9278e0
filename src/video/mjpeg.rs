//! The built-in MJPEG encoder: every frame a complete baseline JPEG (JFIF, 4:2:0,
//! Huffman and quantisation tables included) from libjpeg-turbo, which spice-gtk's
//! MJPEG decoder (plain libjpeg) reads frame by frame.
//!
//! BGRX goes to libjpeg-turbo as is (its SIMD colour conversion reads it directly),
//! and one compressor and one output buffer live as long as the stream.

use super::codecs::Codec;
use super::encoder::{rows_fit, EncodeError, Frame, Target, VideoEncoder};
use super::shrink::Shrinker;
use turbojpeg::{Compressor, Image, OutputBuf, PixelFormat, Subsamp};

/// JPEG's own limit on each dimension.
const MAX_SIDE: u32 = 65_535;

pub(crate) struct MjpegEncoder {
    jpeg: JpegWriter,
    /// Shrinks the frame when the rate control asks for a smaller picture.
    shrinker: Shrinker,
}

/// libjpeg-turbo's compressor with its settings and output buffer.
struct JpegWriter {
    compressor: Compressor,
    /// Output buffer, grown to the worst case of the largest frame seen, so libjpeg-turbo
    /// never reallocates while writing.
    scratch: Vec<u8>,
    quality: u8,
}

impl MjpegEncoder {
    pub(crate) fn new() -> Result<MjpegEncoder, EncodeError> {
        let mut compressor = Compressor::new().map_err(|e| EncodeError::Failed(e.to_string()))?;
        compressor.set_subsamp(Subsamp::Sub2x2);
        let quality = 70;
        compressor.set_quality(quality.into());
        Ok(MjpegEncoder {
            jpeg: JpegWriter {
                compressor,
                scratch: Vec::new(),
                quality,
            },
            shrinker: Shrinker::default(),
        })
    }
}

impl JpegWriter {
    /// Compresses BGRX pixels laid out with `stride` bytes per row (top row first).
    fn encode_bgrx(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        stride: usize,
        quality: u8,
    ) -> Result<Vec<u8>, EncodeError> {
        check_layout(pixels.len(), width, height, stride)?;
        let quality = quality.clamp(1, 100);
        if quality != self.quality {
            self.compressor.set_quality(quality.into());
            self.quality = quality;
        }
        let (width, height) = (width as usize, height as usize);
        let worst = self
            .compressor
            .buf_len(width, height)
            .map_err(|e| EncodeError::Unsupported(e.to_string()))?;
        if self.scratch.len() < worst {
            self.scratch.resize(worst, 0);
        }
        let image = Image {
            pixels,
            width,
            pitch: stride,
            height,
            format: PixelFormat::BGRX,
        };
        let mut out = OutputBuf::borrowed(&mut self.scratch);
        self.compressor
            .compress(image, &mut out)
            .map_err(|e| EncodeError::Failed(e.to_string()))?;
        let len = out.len();
        drop(out);
        Ok(self.scratch[..len].to_vec())
    }
}

/// Refuses what libjpeg-turbo cannot take (it would assert on a short buffer).
fn check_layout(len: usize, width: u32, height: u32, stride: usize) -> Result<(), EncodeError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(EncodeError::Unsupported(format!(
            "{width}x{height} is outside JPEG's 1..={MAX_SIDE}"
        )));
    }
    if rows_fit(len, width, height, stride) {
        Ok(())
    } else {
        Err(EncodeError::Unsupported(format!(
            "{len} bytes with stride {stride} do not hold {width}x{height} BGRX"
        )))
    }
}

impl VideoEncoder for MjpegEncoder {
    fn codec(&self) -> Codec {
        Codec::Mjpeg
    }

    fn encode(&mut self, frame: &Frame, target: Target) -> Result<Option<Vec<u8>>, EncodeError> {
        let small = match target.scale {
            0 | 1 => None,
            d => {
                self.shrinker
                    .shrink_bgrx(frame.bytes(), frame.width, frame.height, frame.stride, d)
            }
        };
        // Too small to shrink (or whole size asked): the frame as it is.
        let (pixels, width, height, stride) = match small {
            Some((pixels, w, h)) => (pixels, w, h, w as usize * 4),
            None => (frame.bytes(), frame.width, frame.height, frame.stride),
        };
        self.jpeg
            .encode_bgrx(pixels, width, height, stride, target.quality)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use turbojpeg::Decompressor;

    /// A smooth diagonal gradient in three channels, as a sky or a blurred background.
    fn gradient(width: u32, height: u32) -> Frame {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
        for y in 0..height {
            for x in 0..width {
                let b = (x * 255 / width.max(1)) as u8;
                let g = (y * 255 / height.max(1)) as u8;
                let r = ((x + y) * 255 / (width + height).max(1)) as u8;
                pixels.extend_from_slice(&[b, g, r, 0]);
            }
        }
        Frame::packed(width, height, pixels, 0)
    }

    /// Video-like content: gradients, soft shapes and grain, so the entropy coder has
    /// real work (a flat gradient flatters the timing).
    fn photo_like(width: u32, height: u32) -> Frame {
        let mut frame = gradient(width, height);
        let mut seed = 0x2545_f491_u32;
        for y in 0..height as usize {
            for x in 0..width as usize {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let grain = (seed % 24) as i32 - 12;
                let wave = ((x as f32 / 23.0).sin() * (y as f32 / 31.0).cos() * 60.0) as i32;
                let i = (y * width as usize + x) * 4;
                let pixels = std::sync::Arc::make_mut(&mut frame.pixels);
                for c in 0..3 {
                    let v = pixels[i + c] as i32 + grain + wave;
                    pixels[i + c] = v.clamp(0, 255) as u8;
                }
            }
        }
        frame
    }

    fn target(quality: u8) -> Target {
        Target {
            quality,
            bitrate_bps: 0,
            fps: 30,
            scale: 1,
        }
    }

    /// Decodes to BGRX and returns (width, height, PSNR in dB over B, G and R).
    fn decode_psnr(jpeg: &[u8], original: &Frame) -> (usize, usize, f64) {
        let mut d = Decompressor::new().expect("decompressor");
        let header = d.read_header(jpeg).expect("a JPEG header");
        let (w, h) = (header.width, header.height);
        let mut out = vec![0u8; w * h * 4];
        let image = Image {
            pixels: &mut out[..],
            width: w,
            pitch: w * 4,
            height: h,
            format: PixelFormat::BGRX,
        };
        d.decompress(jpeg, image).expect("decodes");
        let mut sq = 0.0f64;
        for (a, b) in out.chunks_exact(4).zip(original.pixels.chunks_exact(4)) {
            for c in 0..3 {
                let e = a[c] as f64 - b[c] as f64;
                sq += e * e;
            }
        }
        let mse = sq / (w * h * 3) as f64;
        (w, h, 10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10())
    }

    #[test]
    fn a_frame_decodes_back_to_the_same_picture() {
        let frame = gradient(320, 200);
        let mut enc = MjpegEncoder::new().expect("encoder");
        let jpeg = enc
            .encode(&frame, target(80))
            .unwrap()
            .expect("one frame out");
        assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "starts with SOI");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xff, 0xd9], "ends with EOI");
        // Baseline (SOF0), so plain libjpeg decoders take it.
        assert!(jpeg.windows(2).any(|w| w == [0xff, 0xc0]), "baseline SOF0");
        let (w, h, psnr) = decode_psnr(&jpeg, &frame);
        println!(
            "320x200 gradient at quality 80: {} bytes, PSNR {psnr:.1} dB",
            jpeg.len()
        );
        assert_eq!((w, h), (320, 200));
        assert!(psnr > 30.0, "PSNR {psnr:.1} dB");
        let header = Decompressor::new().unwrap().read_header(&jpeg).unwrap();
        assert_eq!(header.subsamp, Subsamp::Sub2x2);
    }

    #[test]
    fn higher_quality_costs_more_bytes_and_looks_better() {
        let frame = photo_like(256, 192);
        let mut enc = MjpegEncoder::new().expect("encoder");
        let mut last = (0, 0.0);
        for q in [20, 40, 60, 80, 95] {
            let jpeg = enc.encode(&frame, target(q)).unwrap().expect("frame");
            let (_, _, psnr) = decode_psnr(&jpeg, &frame);
            println!("quality {q}: {} bytes, PSNR {psnr:.1} dB", jpeg.len());
            assert!(jpeg.len() > last.0, "quality {q} not bigger");
            assert!(psnr > last.1, "quality {q} not better");
            last = (jpeg.len(), psnr);
        }
    }

    #[test]
    fn a_smaller_picture_is_asked_for_and_costs_fewer_bytes() {
        let frame = photo_like(1280, 720);
        let mut enc = MjpegEncoder::new().expect("encoder");
        let mut sizes = vec![];
        for scale in [1u8, 2, 4] {
            let jpeg = enc
                .encode(
                    &frame,
                    Target {
                        scale,
                        ..target(50)
                    },
                )
                .unwrap()
                .expect("frame");
            let header = Decompressor::new().unwrap().read_header(&jpeg).unwrap();
            println!(
                "1/{scale}: {}x{}, {} bytes",
                header.width,
                header.height,
                jpeg.len()
            );
            assert_eq!(
                (header.width, header.height),
                (1280 / scale as usize, 720 / scale as usize)
            );
            sizes.push(jpeg.len());
        }
        assert!(
            sizes[1] * 2 < sizes[0] && sizes[2] * 2 < sizes[1],
            "{sizes:?}"
        );
        // A frame too small to shrink goes whole.
        let tiny = gradient(1, 1);
        let jpeg = enc
            .encode(
                &tiny,
                Target {
                    scale: 2,
                    ..target(50)
                },
            )
            .unwrap()
            .unwrap();
        let header = Decompressor::new().unwrap().read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (1, 1));
    }

    #[test]
    fn odd_sizes_and_strides_are_encoded() {
        // 3x5 pixels inside a 16-byte stride with garbage padding.
        let (w, h, stride) = (3u32, 5u32, 16usize);
        let mut pixels = vec![0xAB; stride * h as usize];
        for y in 0..h as usize {
            pixels[y * stride..y * stride + 12].fill(0x40);
        }
        let mut enc = MjpegEncoder::new().expect("encoder");
        let jpeg = enc
            .jpeg
            .encode_bgrx(&pixels, w, h, stride, 90)
            .expect("encodes");
        let header = Decompressor::new().unwrap().read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (3, 5));
    }

    #[test]
    fn bad_layouts_are_refused_not_panicking() {
        let mut enc = MjpegEncoder::new().expect("encoder");
        let px = vec![0u8; 100];
        for (w, h, stride) in [
            (0, 4, 16),
            (4, 0, 16),
            (5, 5, 16),
            (4, 4, 8),
            (70_000, 1, 280_000),
        ] {
            let r = enc.jpeg.encode_bgrx(&px, w, h, stride, 50);
            assert!(
                matches!(r, Err(EncodeError::Unsupported(_))),
                "{w}x{h}/{stride}: {r:?}"
            );
        }
        let short = Frame::packed(10, 10, vec![0; 399], 0);
        assert!(enc.encode(&short, target(50)).is_err());
    }

    /// Encode time per frame on video-like content; libjpeg-turbo is prebuilt, so the
    /// number is the same in debug and release builds.
    #[test]
    fn encode_time_720p_and_1080p() {
        let mut enc = MjpegEncoder::new().expect("encoder");
        for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
            let frame = photo_like(w, h);
            for q in [50u8, 80] {
                let jpeg = enc.encode(&frame, target(q)).unwrap().expect("frame");
                let runs = 10;
                let start = Instant::now();
                for _ in 0..runs {
                    enc.encode(&frame, target(q)).unwrap();
                }
                let ms = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
                let (dw, dh, psnr) = decode_psnr(&jpeg, &frame);
                println!(
                    "{w}x{h} quality {q}: {ms:.2} ms/frame, {} KiB, PSNR {psnr:.1} dB",
                    jpeg.len() / 1024
                );
                assert_eq!((dw, dh), (w as usize, h as usize));
            }
        }
    }
}
