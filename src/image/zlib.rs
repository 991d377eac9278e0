//! zlib over GLZ (spice-server's `image_encoders_compress_glz` with
//! `enable_zlib_glz_wrap`): a GLZ image's bytes deflated (zlib format, level 3) for
//! clients on a slow link, kept only when smaller.

use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

/// spice-server's `ZLIB_DEFAULT_COMPRESSION_LEVEL`.
const LEVEL: u32 = 3;
/// GLZ images smaller than this go as they are (`MIN_GLZ_SIZE_FOR_ZLIB`).
pub(crate) const MIN_GLZ_SIZE: usize = 100;

/// The deflated GLZ data, or `None` when it is too small to try or does not shrink.
pub(crate) fn wrap(glz: &[u8]) -> Option<Vec<u8>> {
    if glz.len() < MIN_GLZ_SIZE {
        return None;
    }
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(glz.len() / 2), Compression::new(LEVEL));
    encoder.write_all(glz).ok()?;
    let data = encoder.finish().ok()?;
    (data.len() < glz.len()).then_some(data)
}

/// Inflates what `wrap` made (tests), refusing more than `max` bytes.
#[cfg(test)]
pub(crate) fn unwrap(data: &[u8], max: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() <= max).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_glz_shrinks_and_inflates_back() {
        let glz: Vec<u8> = (0..4000u32).map(|i| (i % 37) as u8).collect();
        let z = wrap(&glz).expect("shrinks");
        assert!(z.len() < glz.len() / 4);
        assert_eq!(unwrap(&z, glz.len()).unwrap(), glz);
        assert_eq!(unwrap(&z, glz.len() - 1), None, "bounded");
    }

    #[test]
    fn small_or_incompressible_data_is_left_alone() {
        assert_eq!(wrap(&[7; MIN_GLZ_SIZE - 1]), None);
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(wrap(&noise), None);
    }
}
