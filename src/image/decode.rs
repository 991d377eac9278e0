//! Decoders for what `lz` and `glz` write, accepting exactly what the clients' decoders
//! accept (spice-common's `lz_decompress_tmpl.c`, spice-gtk's `decode-glz-tmpl.c`) and
//! refusing the rest with an error, never a panic. Used by tests and the fuzz targets.

use super::lz::{MAGIC, VERSION};
use super::matcher::Plane;
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub width: u32,
    pub height: u32,
    /// 0xAARRGGBB (RGB32: alpha byte 0, as the client's decoder leaves it), or the 16-bit
    /// value for RGB16.
    pub pixels: Vec<u32>,
}

struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> Result<u8, &'static str> {
        let b = *self.data.get(self.at).ok_or("truncated")?;
        self.at += 1;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = (v << 8) | u32::from(self.u8()?);
        }
        Ok(v)
    }

    fn length_extension(&mut self, mut len: usize) -> Result<usize, &'static str> {
        loop {
            let code = self.u8()?;
            len += usize::from(code);
            if code != 255 {
                return Ok(len);
            }
        }
    }

    fn literal(&mut self, plane: Plane) -> Result<u32, &'static str> {
        Ok(match plane {
            Plane::Rgb => {
                let (b, g, r) = (self.u8()?, self.u8()?, self.u8()?);
                u32::from_le_bytes([b, g, r, 0])
            }
            Plane::Alpha => u32::from(self.u8()?),
            Plane::Rgb16 => u32::from(u16::from_be_bytes([self.u8()?, self.u8()?])),
        })
    }
}

/// Writes `key` into pixel `at` for this plane (the alpha pass only sets the top byte).
fn put(pixels: &mut [u32], at: usize, plane: Plane, key: u32) {
    match plane {
        Plane::Alpha => pixels[at] = (pixels[at] & 0x00ff_ffff) | (key << 24),
        _ => pixels[at] = key,
    }
}

fn plane_key(plane: Plane, pixel: u32) -> u32 {
    match plane {
        // The client copies whole pixels in the RGB pass (alpha comes after).
        Plane::Rgb | Plane::Rgb16 => pixel,
        Plane::Alpha => pixel >> 24,
    }
}

fn planes(image_type: u32) -> Result<&'static [Plane], &'static str> {
    Ok(match image_type {
        6 => &[Plane::Rgb16],
        8 => &[Plane::Rgb],
        9 => &[Plane::Rgb, Plane::Alpha],
        10 => &[Plane::Alpha],
        _ => return Err("image type we do not send"),
    })
}

/// An `LZ_RGB` image's data.
pub(crate) fn lz(data: &[u8]) -> Result<Decoded, &'static str> {
    let mut inp = Input { data, at: 0 };
    if inp.u32()? != MAGIC || inp.u32()? != VERSION {
        return Err("bad magic or version");
    }
    let image_type = inp.u32()?;
    let (width, height, stride, _top_down) = (inp.u32()?, inp.u32()?, inp.u32()?, inp.u32()?);
    let planes = planes(image_type)?;
    let bpp = if image_type == 6 { 2 } else { 4 };
    if u64::from(width) * bpp != u64::from(stride) {
        return Err("stride is not width times bytes per pixel");
    }
    let n = width as usize * height as usize;
    if n == 0 || n > 1 << 22 {
        return Err("image size");
    }
    let mut pixels = vec![0u32; n];
    for &plane in planes {
        let mut op = 0;
        while op < n {
            let ctrl = usize::from(inp.u8()?);
            if ctrl >= 32 {
                let mut len = (ctrl >> 5) - 1;
                let mut ofs = (ctrl & 31) << 8;
                if len == 6 {
                    len = inp.length_extension(len)?;
                }
                let code = usize::from(inp.u8()?);
                ofs += code;
                if code == 255 && ofs - code == 31 << 8 {
                    ofs = (usize::from(inp.u8()?) << 8) + usize::from(inp.u8()?) + 8191;
                }
                len += plane.min_match();
                ofs += 1;
                if ofs > op || op + len > n {
                    return Err("match out of the image");
                }
                for k in 0..len {
                    let key = plane_key(plane, pixels[op - ofs + k]);
                    put(&mut pixels, op + k, plane, key);
                }
                op += len;
            } else {
                let count = ctrl + 1;
                if op + count > n {
                    return Err("literals past the image");
                }
                for _ in 0..count {
                    let key = inp.literal(plane)?;
                    put(&mut pixels, op, plane, key);
                    op += 1;
                }
            }
        }
    }
    if inp.at != data.len() {
        return Err("bytes after the image");
    }
    Ok(Decoded {
        width,
        height,
        pixels,
    })
}

/// The client's GLZ window (spice-gtk's `SpiceGlzDecoderWindow`): decoded images by id,
/// released as each image's `win_head_dist` allows.
#[derive(Default)]
pub(crate) struct GlzWindow {
    images: BTreeMap<u64, Vec<u32>>,
    /// Lowest id not yet received (spice-gtk's `tail_gap`).
    tail_gap: u64,
    win_head: BTreeMap<u64, u64>,
}

impl GlzWindow {
    /// A `GLZ_RGB` image's data, decoded against the window and added to it.
    pub(crate) fn decode(&mut self, data: &[u8]) -> Result<(u64, Decoded), &'static str> {
        let mut inp = Input { data, at: 0 };
        if inp.u32()? != MAGIC || inp.u32()? != VERSION {
            return Err("bad magic or version");
        }
        let type_byte = inp.u8()?;
        let image_type = u32::from(type_byte & 0x0f);
        let (width, height, stride) = (inp.u32()?, inp.u32()?, inp.u32()?);
        let id = (u64::from(inp.u32()?) << 32) | u64::from(inp.u32()?);
        let win_head_dist = u64::from(inp.u32()?);
        let planes = planes(image_type)?;
        if image_type == 6 || u64::from(width) * 4 != u64::from(stride) {
            return Err("GLZ images we send are 32-bit");
        }
        let n = width as usize * height as usize;
        if n == 0 || n > 1 << 22 {
            return Err("image size");
        }
        if self.images.contains_key(&id) {
            return Err("image id sent twice");
        }
        let mut pixels = vec![0u32; n];
        for &plane in planes {
            let mut op = 0;
            while op < n {
                let ctrl = usize::from(inp.u8()?);
                if ctrl >= 32 {
                    let mut len = ctrl >> 5;
                    let pixel_flag = (ctrl >> 4) & 1;
                    let mut pixel_ofs = ctrl & 0x0f;
                    if len == 7 {
                        len = inp.length_extension(len)?;
                    }
                    pixel_ofs += usize::from(inp.u8()?) << 4;
                    let code = usize::from(inp.u8()?);
                    let image_flag = (code >> 6) & 3;
                    let mut image_dist: u64;
                    if pixel_flag == 0 {
                        image_dist = (code & 0x3f) as u64;
                        for i in 0..image_flag {
                            image_dist += u64::from(inp.u8()?) << (6 + 8 * i);
                        }
                    } else {
                        let long = (code >> 5) & 1;
                        pixel_ofs += (code & 0x1f) << 12;
                        image_dist = 0;
                        for i in 0..image_flag {
                            image_dist += u64::from(inp.u8()?) << (8 * i);
                        }
                        if long == 1 {
                            pixel_ofs += usize::from(inp.u8()?) << 17;
                        }
                    }
                    len += plane.min_match() - 1;
                    if op + len > n {
                        return Err("match past the image");
                    }
                    if image_dist == 0 {
                        pixel_ofs += 1;
                        if pixel_ofs > op {
                            return Err("match before the image");
                        }
                        for k in 0..len {
                            let key = plane_key(plane, pixels[op - pixel_ofs + k]);
                            put(&mut pixels, op + k, plane, key);
                        }
                    } else {
                        let source = id
                            .checked_sub(image_dist)
                            .and_then(|ref_id| self.images.get(&ref_id))
                            .ok_or("reference to an image the client does not hold")?;
                        // spice-gtk checks only the start; reading past the end would
                        // show garbage, so we refuse it.
                        if pixel_ofs + len > source.len() {
                            return Err("reference past the referenced image");
                        }
                        for k in 0..len {
                            let key = plane_key(plane, source[pixel_ofs + k]);
                            put(&mut pixels, op + k, plane, key);
                        }
                    }
                    op += len;
                } else {
                    let count = ctrl + 1;
                    if op + count > n {
                        return Err("literals past the image");
                    }
                    for _ in 0..count {
                        let key = inp.literal(plane)?;
                        put(&mut pixels, op, plane, key);
                        op += 1;
                    }
                }
            }
        }
        if inp.at != data.len() {
            return Err("bytes after the image");
        }
        if image_type == 8 {
            // The client's RGB32 image is x8r8g8b8: whatever a copy brought in the top byte.
            for p in &mut pixels {
                *p &= 0x00ff_ffff;
            }
        }
        self.images.insert(id, pixels.clone());
        self.win_head.insert(id, id - win_head_dist.min(id));
        while self.images.contains_key(&self.tail_gap) {
            self.tail_gap += 1;
        }
        // Release what the newest image of the gap-free prefix says is out of the window.
        if let Some(&oldest) = self
            .tail_gap
            .checked_sub(1)
            .and_then(|last| self.win_head.get(&last))
        {
            self.images.retain(|&k, _| k >= oldest);
            self.win_head.retain(|&k, _| k >= oldest);
        }
        Ok((
            id,
            Decoded {
                width,
                height,
                pixels,
            },
        ))
    }
}
