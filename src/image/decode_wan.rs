//! Decoders for the two WAN image layouts as they go on the wire (an `Image`: descriptor,
//! then its data), accepting what spice-common's `canvas_get_jpeg_alpha` and
//! `canvas_get_zlib_glz_rgb` accept: JPEG_ALPHA's JPEG must be the descriptor's size and
//! its LZ alpha plane `XXXA` of the same size and row order; ZLIB_GLZ's data must inflate
//! to exactly the GLZ size it announces. Errors, never panics. Tests and fuzzing only.

use super::decode::{self, Decoded, GlzWindow};
use std::io::Read;
use turbojpeg::{Decompressor, Image, PixelFormat};

/// `SPICE_IMAGE_TYPE_JPEG_ALPHA`, `SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB`.
const JPEG_ALPHA: u8 = 108;
const ZLIB_GLZ_RGB: u8 = 107;
/// `SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN`.
const TOP_DOWN: u8 = 1;
/// Images larger than this are refused (the decoders' own bound, 1 << 22 pixels).
const MAX_PIXELS: u64 = 1 << 22;

struct Le<'a>(&'a [u8]);

impl<'a> Le<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// One `Image` (u64 id, u8 type, u8 flags, u32 width, u32 height, then the type's data)
/// of type JPEG_ALPHA or ZLIB_GLZ_RGB; GLZ images decode against (and join) `window`.
/// Pixels as 0xAARRGGBB (ZLIB_GLZ: alpha 0, as the GLZ decoder leaves it).
pub(crate) fn image(bytes: &[u8], window: &mut GlzWindow) -> Result<Decoded, &'static str> {
    let mut r = Le(bytes);
    r.take(8)?;
    let image_type = r.u8()?;
    r.u8()?;
    let (width, height) = (r.u32()?, r.u32()?);
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err("image size out of bounds");
    }
    let decoded = match image_type {
        JPEG_ALPHA => {
            let flags = r.u8()?;
            let jpeg_size = r.u32()? as usize;
            let data = binary(&mut r)?;
            jpeg_alpha(width, height, flags & TOP_DOWN != 0, jpeg_size, data)?
        }
        ZLIB_GLZ_RGB => {
            let glz_size = r.u32()? as usize;
            let data = binary(&mut r)?;
            let glz = inflate_exactly(data, glz_size)?;
            window.decode(&glz)?.1
        }
        _ => return Err("not a WAN image type"),
    };
    if (decoded.width, decoded.height) != (width, height) {
        return Err("data does not match the descriptor's size");
    }
    Ok(decoded)
}

/// `BinaryData`: u32 size, then that many bytes.
fn binary<'a>(r: &mut Le<'a>) -> Result<&'a [u8], &'static str> {
    let size = r.u32()? as usize;
    r.take(size)
}

fn jpeg_alpha(
    width: u32,
    height: u32,
    top_down: bool,
    jpeg_size: usize,
    data: &[u8],
) -> Result<Decoded, &'static str> {
    if jpeg_size > data.len() {
        return Err("JPEG size beyond the data");
    }
    let (jpeg, alpha) = data.split_at(jpeg_size);
    let mut decompressor = Decompressor::new().map_err(|_| "no JPEG decoder")?;
    let header = decompressor
        .read_header(jpeg)
        .map_err(|_| "bad JPEG header")?;
    if (header.width, header.height) != (width as usize, height as usize) {
        return Err("JPEG size differs from the descriptor's");
    }
    let (w, h) = (width as usize, height as usize);
    let mut bgrx = vec![0u8; w * h * 4];
    let out = Image {
        pixels: bgrx.as_mut_slice(),
        width: w,
        pitch: w * 4,
        height: h,
        format: PixelFormat::BGRX,
    };
    decompressor
        .decompress(jpeg, out)
        .map_err(|_| "bad JPEG data")?;
    let plane = decode::lz(alpha)?;
    if !lz_is_alpha_plane(alpha, top_down) {
        return Err("alpha plane is not XXXA in the flags' row order");
    }
    if (plane.width, plane.height) != (width, height) {
        return Err("alpha plane size differs");
    }
    let pixels = bgrx
        .chunks_exact(4)
        .zip(&plane.pixels)
        .map(|(c, a)| u32::from_le_bytes([c[0], c[1], c[2], 0]) | (a & 0xff00_0000))
        .collect();
    Ok(Decoded {
        width,
        height,
        pixels,
    })
}

/// The LZ header's image type is XXXA and its top-down word agrees with `top_down`.
fn lz_is_alpha_plane(lz: &[u8], top_down: bool) -> bool {
    let word = |i: usize| {
        lz.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    word(2) == Some(10) && word(6).map(|t| t != 0) == Some(top_down)
}

/// zlib data that inflates to exactly `size` bytes (the client's buffer is that size).
fn inflate_exactly(data: &[u8], size: usize) -> Result<Vec<u8>, &'static str> {
    if size as u64 > MAX_PIXELS * 8 {
        return Err("GLZ size out of bounds");
    }
    let mut out = Vec::with_capacity(size);
    flate2::read::ZlibDecoder::new(data)
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| "bad zlib data")?;
    if out.len() != size {
        return Err("zlib data does not inflate to the GLZ size");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::glz::Dictionary;
    use crate::image::jpeg::{self, Jpeg};
    use crate::image::zlib;
    use crate::proto::display::{self as wire_display, ImageData};
    use crate::proto::wire::Writer;

    fn wire(width: u32, height: u32, data: ImageData<'_>) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        wire_display::image(
            &mut w,
            1,
            width,
            height,
            wire_display::BITMAP_FMT_RGBA,
            data,
        );
        w.0
    }

    fn photo(width: u32, height: u32) -> Vec<u32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                ((x * 3) << 24) | ((x * 4) & 0xff) << 16 | ((y * 5) & 0xff) << 8 | (x + y) & 0xff
            })
            .collect()
    }

    #[test]
    fn jpeg_alpha_on_the_wire_decodes_close_with_its_exact_alpha() {
        let pixels = photo(48, 20);
        let Some(Jpeg::Alpha { jpeg_size, data }) = jpeg::encode(48, 20, &pixels, true) else {
            panic!("JPEG_ALPHA expected");
        };
        let bytes = wire(
            48,
            20,
            ImageData::JpegAlpha {
                jpeg_size,
                data: &data,
            },
        );
        let out = image(&bytes, &mut GlzWindow::default()).unwrap();
        let alpha = |p: &Vec<u32>| p.iter().map(|v| v >> 24).collect::<Vec<_>>();
        assert_eq!(alpha(&out.pixels), alpha(&pixels));
        let close = out.pixels.iter().zip(&pixels).all(|(a, b)| {
            (0..3).all(|i| ((a >> (8 * i)) & 0xff).abs_diff((b >> (8 * i)) & 0xff) < 40)
        });
        assert!(close, "colours far from the source");
        // A JPEG size beyond the data, or a truncated image: refused.
        let bad = wire(
            48,
            20,
            ImageData::JpegAlpha {
                jpeg_size: data.len() as u32 + 1,
                data: &data,
            },
        );
        assert!(image(&bad, &mut GlzWindow::default()).is_err());
        assert!(image(&bytes[..bytes.len() - 3], &mut GlzWindow::default()).is_err());
        // The descriptor says another size than the JPEG: refused, as the client does.
        let other = wire(
            47,
            20,
            ImageData::JpegAlpha {
                jpeg_size,
                data: &data,
            },
        );
        assert!(image(&other, &mut GlzWindow::default()).is_err());
    }

    #[test]
    fn zlib_glz_on_the_wire_decodes_exactly_and_must_inflate_to_its_size() {
        // Four colours at random: GLZ finds few matches, zlib shrinks its literals.
        let pixels: Vec<u32> = (0..64 * 16u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 30) * 0x0040_4040)
            .collect();
        let glz = Dictionary::new(4096).encode(64, 16, &pixels).unwrap();
        let deflated = zlib::wrap(&glz).expect("repetitive GLZ shrinks");
        let ok = |size: usize| {
            let bytes = wire(
                64,
                16,
                ImageData::ZlibGlz {
                    glz_size: size as u32,
                    data: &deflated,
                },
            );
            image(&bytes, &mut GlzWindow::default())
        };
        assert_eq!(ok(glz.len()).expect("decodes").pixels, pixels);
        assert!(ok(glz.len() - 1).is_err());
        assert!(ok(glz.len() + 1).is_err());
    }
}
