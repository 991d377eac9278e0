//! JPEG images for clients on a slow link (spice-server's `image_encoders_compress_jpeg`):
//! `JPEG` for opaque pixels, `JPEG_ALPHA` (the colours as JPEG, then the alpha plane as
//! an `LZ_IMAGE_TYPE_XXXA` image) for RGBA ones. Lossy: used only where the display
//! channel allows it (see `display::viewer`'s lossy region).

use super::lz::{self, LzType};
use turbojpeg::{Compressor, Image, OutputBuf, PixelFormat, Subsamp};

/// spice-server's `jpeg_quality` (fixed at 85); libjpeg's default 4:2:0 subsampling, as
/// its encoder keeps.
pub(crate) const QUALITY: i32 = 85;

/// An image as JPEG, with its alpha plane when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Jpeg {
    Opaque(Vec<u8>),
    /// The JPEG's length, then the JPEG and the LZ alpha plane.
    Alpha {
        jpeg_size: u32,
        data: Vec<u8>,
    },
}

/// `pixels` (`width * height`, top-down, 0xAARRGGBB) as JPEG (`alpha`: JPEG_ALPHA), or
/// `None` when libjpeg-turbo refuses them or the result is no smaller than the raw
/// pixels (as C, which then sends them another way).
pub(crate) fn encode(width: u32, height: u32, pixels: &[u32], alpha: bool) -> Option<Jpeg> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || pixels.len() != w * h || w > 65_535 || h > 65_535 {
        return None;
    }
    let bytes: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    let mut compressor = Compressor::new().ok()?;
    compressor.set_subsamp(Subsamp::Sub2x2);
    compressor.set_quality(QUALITY);
    let image = Image {
        pixels: bytes.as_slice(),
        width: w,
        pitch: w * 4,
        height: h,
        format: PixelFormat::BGRX,
    };
    let mut out = OutputBuf::new_owned();
    compressor.compress(image, &mut out).ok()?;
    let jpeg = out.to_vec();
    let raw = pixels.len() * 4;
    if !alpha {
        return (jpeg.len() < raw).then_some(Jpeg::Opaque(jpeg));
    }
    let jpeg_size = jpeg.len() as u32;
    let mut data = jpeg;
    data.extend_from_slice(&lz::encode(LzType::Xxxa, width, height, pixels));
    (data.len() < raw).then_some(Jpeg::Alpha { jpeg_size, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbojpeg::Decompressor;

    fn photo(width: u32, height: u32) -> Vec<u32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                let r = (x * 255 / width) & 0xff;
                let g = (y * 255 / height) & 0xff;
                let b = ((x + y) * 3) & 0xff;
                0xff00_0000 | r << 16 | g << 8 | b
            })
            .collect()
    }

    fn decode_rgb(jpeg: &[u8], width: u32, height: u32) -> Vec<u32> {
        let (w, h) = (width as usize, height as usize);
        let mut out = vec![0u8; w * h * 4];
        let image = Image {
            pixels: out.as_mut_slice(),
            width: w,
            pitch: w * 4,
            height: h,
            format: PixelFormat::BGRX,
        };
        Decompressor::new()
            .unwrap()
            .decompress(jpeg, image)
            .unwrap();
        out.chunks_exact(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
            .collect()
    }

    /// Peak signal to noise ratio over the RGB channels, in dB.
    pub(crate) fn psnr(a: &[u32], b: &[u32]) -> f64 {
        let mut sum = 0f64;
        for (&p, &q) in a.iter().zip(b) {
            for shift in [0, 8, 16] {
                let d = f64::from((p >> shift) & 0xff) - f64::from((q >> shift) & 0xff);
                sum += d * d;
            }
        }
        let mse = sum / (a.len() * 3) as f64;
        if mse == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (255.0 * 255.0 / mse).log10()
    }

    #[test]
    fn a_photograph_goes_small_and_close() {
        let pixels = photo(64, 48);
        let Some(Jpeg::Opaque(data)) = encode(64, 48, &pixels, false) else {
            panic!("opaque JPEG expected");
        };
        assert!(data.len() < pixels.len() * 4 / 4, "{} bytes", data.len());
        let back = decode_rgb(&data, 64, 48);
        assert!(psnr(&pixels, &back) > 30.0, "{}", psnr(&pixels, &back));
    }

    #[test]
    fn jpeg_alpha_carries_the_exact_alpha_plane_after_the_jpeg() {
        let pixels: Vec<u32> = photo(40, 30)
            .iter()
            .enumerate()
            .map(|(i, p)| (p & 0x00ff_ffff) | (((i % 40) as u32 * 6) << 24))
            .collect();
        let Some(Jpeg::Alpha { jpeg_size, data }) = encode(40, 30, &pixels, true) else {
            panic!("JPEG_ALPHA expected");
        };
        let (jpeg, alpha) = data.split_at(jpeg_size as usize);
        let back = decode_rgb(jpeg, 40, 30);
        assert!(psnr(&pixels, &back) > 30.0);
        let plane = crate::image::decode::lz(alpha).expect("alpha decodes");
        assert_eq!((plane.width, plane.height), (40, 30));
        let alphas: Vec<u32> = plane.pixels.iter().map(|p| p >> 24).collect();
        let want: Vec<u32> = pixels.iter().map(|p| p >> 24).collect();
        assert_eq!(alphas, want);
    }

    #[test]
    fn refused_when_it_would_not_be_smaller_or_cannot_be() {
        assert_eq!(encode(0, 4, &[], false), None);
        assert_eq!(encode(4, 4, &[0; 3], false), None);
        // 1x1: the JPEG's headers alone are larger than four bytes.
        assert_eq!(encode(1, 1, &[0xff12_3456], false), None);
    }
}
