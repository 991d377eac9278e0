//! Which codec an image goes with: spice-server's `get_compression_for_bitmap` (dcc.cpp)
//! over the server's `image-compression` or the client's preferred compression.

/// `SpiceImageCompression` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageCompression {
    Off = 1,
    AutoGlz = 2,
    AutoLz = 3,
    Quic = 4,
    Glz = 5,
    Lz = 6,
    Lz4 = 7,
}

impl ImageCompression {
    pub(crate) fn from_c(value: i32) -> Option<ImageCompression> {
        Some(match value {
            1 => ImageCompression::Off,
            2 => ImageCompression::AutoGlz,
            3 => ImageCompression::AutoLz,
            4 => ImageCompression::Quic,
            5 => ImageCompression::Glz,
            6 => ImageCompression::Lz,
            7 => ImageCompression::Lz4,
            _ => return None,
        })
    }
}

/// `spice_wan_compression_t`: when JPEG / zlib-over-GLZ are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WanCompression {
    /// When the main channel's network test found the client's link slow.
    Auto = 1,
    Always = 2,
    Never = 3,
}

impl WanCompression {
    pub(crate) fn from_c(value: i32) -> Option<WanCompression> {
        match value {
            1 => Some(WanCompression::Auto),
            2 => Some(WanCompression::Always),
            3 => Some(WanCompression::Never),
            _ => None,
        }
    }

    /// Whether it applies to a client whose link is `low_bandwidth` (C's
    /// `display_channel_update_compression`).
    pub(crate) fn applies(self, low_bandwidth: bool) -> bool {
        match self {
            WanCompression::Auto => low_bandwidth,
            WanCompression::Always => true,
            WanCompression::Never => false,
        }
    }
}

/// How one image travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Raw,
    Lz,
    Glz,
    Lz4,
    Quic,
    /// JPEG (JPEG_ALPHA for RGBA), lossy: where QUIC would go when the client's link is
    /// slow and the image may be lossy.
    Jpeg,
}

/// Images of fewer bytes go raw (C's `MIN_SIZE_TO_COMPRESS`).
const MIN_SIZE_TO_COMPRESS: usize = 54;
/// QUIC (and so photographic-image detection) needs at least this many rows and columns
/// (`MIN_DIMENSION_TO_QUIC`).
const MIN_DIMENSION: u32 = 3;

/// What the client can take besides LZ (which every client decodes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientCodecs {
    pub lz4: bool,
    /// It has a GLZ dictionary with room for this image.
    pub glz: bool,
    /// JPEG is on for it (`jpeg-wan-compression`) and this image may be lossy.
    pub jpeg: bool,
}

/// The codec for a `width` x `height` 32-bit image under `setting`: QUIC when set
/// (images too thin for it go raw, as in C) and, under `auto_*`, for photographic
/// images, which it codes far smaller than LZ and which would only evict text from the
/// GLZ window; LZ or GLZ for the rest. JPEG replaces QUIC where the client takes it, as
/// in C's `dcc_compress_image`: text-like images stay lossless.
pub(crate) fn choose(
    setting: ImageCompression,
    width: u32,
    height: u32,
    pixels: &[u32],
    client: ClientCodecs,
) -> Codec {
    if pixels.len() * 4 < MIN_SIZE_TO_COMPRESS {
        return Codec::Raw;
    }
    let quic_fits = width >= MIN_DIMENSION && height >= MIN_DIMENSION;
    let glz_or_lz = if client.glz { Codec::Glz } else { Codec::Lz };
    let photo = if client.jpeg {
        Codec::Jpeg
    } else {
        Codec::Quic
    };
    match setting {
        ImageCompression::Off => Codec::Raw,
        ImageCompression::Quic if quic_fits => photo,
        ImageCompression::Quic => Codec::Raw,
        ImageCompression::Lz => Codec::Lz,
        ImageCompression::Lz4 if client.lz4 => Codec::Lz4,
        ImageCompression::Lz4 => Codec::Lz,
        ImageCompression::Glz => glz_or_lz,
        ImageCompression::AutoLz | ImageCompression::AutoGlz => {
            if quic_fits && graduality(width, pixels) == Graduality::High {
                photo
            } else if setting == ImageCompression::AutoGlz {
                glz_or_lz
            } else {
                Codec::Lz
            }
        }
    }
}

/// spice-server's `BitmapGradualType`: how smoothly colours change (photographs: high).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Graduality {
    High,
    Medium,
    Low,
}

/// Every 15th pixel is sampled with its right and lower neighbours.
const SAMPLE_JUMP: usize = 15;
const CONTRAST: i32 = 60;

/// spice-server's `bitmap_get_graduality_level` for 32-bit pixels: samples pairs of
/// neighbours; equal ones score 0.5, sharply different ones (a channel differing by 60 or
/// more) 1, gently different ones -0.25. A mean below -0.03 means gradients (a
/// photograph), below 0.002 some. Scores are kept in quarters, as integers.
pub(crate) fn graduality(width: u32, pixels: &[u32]) -> Graduality {
    let width = width as usize;
    let rows = pixels.len().checked_div(width).unwrap_or(0);
    let (mut sum, mut samples) = (4i64, 1i64);
    if width > 1 && rows > 1 {
        (sum, samples) = (0, 0);
        let jump = if !SAMPLE_JUMP.is_multiple_of(width) {
            SAMPLE_JUMP
        } else {
            SAMPLE_JUMP - 1
        };
        let last_row = (rows - 1) * width;
        let (mut at, mut x) = (width / 2, width / 2);
        while at < last_row {
            if x + 1 == width {
                // The last pixel of a row has no right neighbour: C steps back one, for
                // good (every later sample is one pixel further left).
                at -= 1;
                x -= 1;
            }
            let square = &pixels[at..at + width + 2];
            sum += square_score(square[0], square[1], square[width], square[width + 1]);
            samples += 3;
            at += jump;
            x += jump;
            while x >= width {
                x -= width;
            }
        }
    }
    if sum * 100 < -12 * samples {
        Graduality::High
    } else if sum * 1000 < 8 * samples {
        Graduality::Medium
    } else {
        Graduality::Low
    }
}

/// 0: equal, 1: contrasting, 2: gently different.
#[inline]
fn compare(a: u32, b: u32) -> usize {
    if (a ^ b) & 0x00ff_ffff == 0 {
        return 0;
    }
    let channel = |shift: u32| ((a >> shift) & 0xff) as i32 - ((b >> shift) & 0xff) as i32;
    if [channel(16), channel(8), channel(0)]
        .iter()
        .any(|d| d.abs() >= CONTRAST)
    {
        1
    } else {
        2
    }
}

/// The square's score in quarters (equal 2, contrasting 4, gently different -1); a
/// square of identical pixels scores 0.
#[inline]
fn square_score(p: u32, right: u32, below: u32, below_right: u32) -> i64 {
    const SCORE: [i64; 3] = [2, 4, -1];
    if (p ^ right) & 0x00ff_ffff == 0
        && (p ^ below) & 0x00ff_ffff == 0
        && (p ^ below_right) & 0x00ff_ffff == 0
    {
        return 0;
    }
    SCORE[compare(p, right)] + SCORE[compare(p, below)] + SCORE[compare(p, below_right)]
}

/// The server's `image-compression`, `jpeg-wan-compression` and
/// `zlib-glz-wan-compression` (QEMU may change them at any time), the clients' GLZ
/// dictionaries and their links' verdicts, as display channels read them.
#[derive(Clone)]
pub(crate) struct ImageSettings {
    compression: std::sync::Arc<std::sync::atomic::AtomicU8>,
    jpeg: std::sync::Arc<std::sync::atomic::AtomicU8>,
    zlib_glz: std::sync::Arc<std::sync::atomic::AtomicU8>,
    pub dictionaries: std::sync::Arc<super::glz::Dictionaries>,
    pub links: std::sync::Arc<LinkVerdicts>,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            compression: std::sync::Arc::new((ImageCompression::AutoGlz as u8).into()),
            jpeg: std::sync::Arc::new((WanCompression::Auto as u8).into()),
            zlib_glz: std::sync::Arc::new((WanCompression::Auto as u8).into()),
            dictionaries: Default::default(),
            links: Default::default(),
        }
    }
}

/// What each client session's network test measured (its main channel measures, its
/// display channels read): the link's rate, and from it low bandwidth, as C's
/// `is_low_bandwidth`, below 10 Mbit/s. A session is absent until its test ends, and
/// then counts as a fast link, as in C.
#[derive(Default)]
pub(crate) struct LinkVerdicts {
    bits_per_second: parking_lot::Mutex<std::collections::HashMap<u32, u64>>,
}

/// C's threshold (`10 * 1024 * 1024` bits per second).
pub(crate) const LOW_BANDWIDTH_BPS: u64 = 10 * 1024 * 1024;

impl LinkVerdicts {
    pub(crate) fn set(&self, session_id: u32, bits_per_second: u64) {
        self.bits_per_second
            .lock()
            .insert(session_id, bits_per_second);
    }

    /// The session's main channel closed.
    pub(crate) fn forget(&self, session_id: u32) {
        self.bits_per_second.lock().remove(&session_id);
    }

    /// The session's measured link rate (bits per second), once its test ended.
    pub(crate) fn rate(&self, session_id: u32) -> Option<u64> {
        self.bits_per_second.lock().get(&session_id).copied()
    }
}

fn load_wan(slot: &std::sync::atomic::AtomicU8) -> WanCompression {
    let value = slot.load(std::sync::atomic::Ordering::Relaxed);
    WanCompression::from_c(i32::from(value)).unwrap_or(WanCompression::Auto)
}

impl ImageSettings {
    pub(crate) fn compression(&self) -> ImageCompression {
        let value = self.compression.load(std::sync::atomic::Ordering::Relaxed);
        ImageCompression::from_c(i32::from(value)).unwrap_or(ImageCompression::AutoGlz)
    }

    pub(crate) fn set_compression(&self, value: ImageCompression) {
        self.compression
            .store(value as u8, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn set_wan(&self, jpeg: WanCompression, zlib_glz: WanCompression) {
        use std::sync::atomic::Ordering::Relaxed;
        self.jpeg.store(jpeg as u8, Relaxed);
        self.zlib_glz.store(zlib_glz as u8, Relaxed);
    }

    /// (JPEG, zlib over GLZ) for a client whose network test measured `rate` (bit/s;
    /// `None` until it ends), now.
    pub(crate) fn wan_at(&self, rate: Option<u64>) -> (bool, bool) {
        let slow = rate.is_some_and(|bps| bps < LOW_BANDWIDTH_BPS);
        (
            load_wan(&self.jpeg).applies(slow),
            load_wan(&self.zlib_glz).applies(slow),
        )
    }

    /// (JPEG, zlib over GLZ) for the client session `session_id`, now.
    #[cfg(test)]
    fn wan_for(&self, session_id: u32) -> (bool, bool) {
        self.wan_at(self.links.rate(session_id))
    }
}

#[cfg(test)]
mod wan_tests {
    use super::*;

    fn photo(width: u32, height: u32) -> Vec<u32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                ((x * 3 + y) & 0xff)
                    | ((y * 2 + x / 2) & 0xff) << 8
                    | (((x + y * 3) / 2) & 0xff) << 16
            })
            .collect()
    }

    fn text(width: u32, height: u32) -> Vec<u32> {
        (0..width * height)
            .map(|i| if i % 7 == 0 { 0 } else { 0xeeeeee })
            .collect()
    }

    #[test]
    fn each_wan_setting_on_fast_and_slow_links() {
        for (setting, fast, slow) in [
            (WanCompression::Auto, false, true),
            (WanCompression::Always, true, true),
            (WanCompression::Never, false, false),
        ] {
            assert_eq!(setting.applies(false), fast, "{setting:?} on a LAN");
            assert_eq!(setting.applies(true), slow, "{setting:?} on a WAN");
        }
        assert_eq!(WanCompression::from_c(0), None);
        assert_eq!(WanCompression::from_c(4), None);
    }

    #[test]
    fn the_network_test_decides_per_session() {
        let settings = ImageSettings::default();
        assert_eq!(
            settings.wan_for(5),
            (false, false),
            "not tested: a fast link"
        );
        settings.links.set(5, LOW_BANDWIDTH_BPS - 1);
        settings.links.set(6, LOW_BANDWIDTH_BPS);
        assert_eq!(settings.wan_for(5), (true, true));
        assert_eq!(settings.wan_for(6), (false, false));
        settings.set_wan(WanCompression::Never, WanCompression::Always);
        assert_eq!(settings.wan_for(5), (false, true));
        assert_eq!(settings.wan_for(6), (false, true));
        settings.set_wan(WanCompression::Always, WanCompression::Auto);
        assert_eq!(settings.wan_for(6), (true, false));
        settings.links.forget(5);
        assert_eq!(settings.wan_for(5), (true, false));
    }

    #[test]
    fn jpeg_replaces_quic_only_where_the_image_may_be_lossy() {
        let (photo, text) = (photo(64, 48), text(64, 48));
        let lossy = ClientCodecs {
            glz: true,
            jpeg: true,
            ..Default::default()
        };
        let exact = ClientCodecs {
            jpeg: false,
            ..lossy
        };
        for setting in [ImageCompression::AutoGlz, ImageCompression::AutoLz] {
            assert_eq!(choose(setting, 64, 48, &photo, lossy), Codec::Jpeg);
            assert_eq!(choose(setting, 64, 48, &photo, exact), Codec::Quic);
            assert_ne!(choose(setting, 64, 48, &text, lossy), Codec::Jpeg);
        }
        assert_eq!(
            choose(ImageCompression::Quic, 64, 48, &text, lossy),
            Codec::Jpeg
        );
        for setting in [
            ImageCompression::Off,
            ImageCompression::Glz,
            ImageCompression::Lz,
            ImageCompression::Lz4,
        ] {
            assert_ne!(
                choose(setting, 64, 48, &photo, lossy),
                Codec::Jpeg,
                "{setting:?}"
            );
        }
        // Too small or too thin for QUIC: never JPEG either.
        assert_eq!(
            choose(ImageCompression::Quic, 2, 48, &photo[..96], lossy),
            Codec::Raw
        );
        assert_eq!(
            choose(ImageCompression::AutoGlz, 3, 3, &photo[..9], lossy),
            Codec::Raw
        );
    }
}
