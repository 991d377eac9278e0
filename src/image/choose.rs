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

/// How one image travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Raw,
    Lz,
    Glz,
    Lz4,
    Quic,
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
}

/// The codec for a `width` x `height` 32-bit image under `setting`: QUIC when set
/// (images too thin for it go raw, as in C) and, under `auto_*`, for photographic
/// images, which it codes far smaller than LZ and which would only evict text from the
/// GLZ window; LZ or GLZ for the rest.
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
    match setting {
        ImageCompression::Off => Codec::Raw,
        ImageCompression::Quic if quic_fits => Codec::Quic,
        ImageCompression::Quic => Codec::Raw,
        ImageCompression::Lz => Codec::Lz,
        ImageCompression::Lz4 if client.lz4 => Codec::Lz4,
        ImageCompression::Lz4 => Codec::Lz,
        ImageCompression::Glz => glz_or_lz,
        ImageCompression::AutoLz | ImageCompression::AutoGlz => {
            if quic_fits && graduality(width, pixels) == Graduality::High {
                Codec::Quic
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
            sum += square_score(
                pixels[at],
                pixels[at + 1],
                pixels[at + width],
                pixels[at + width + 1],
            );
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
    let channel = |shift: u32| ((a >> shift) & 0xff) as i32 - ((b >> shift) & 0xff) as i32;
    if [channel(16), channel(8), channel(0)]
        .iter()
        .any(|d| d.abs() >= CONTRAST)
    {
        1
    } else if (a ^ b) & 0x00ff_ffff != 0 {
        2
    } else {
        0
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

/// The server's `image-compression` (QEMU may change it at any time) and the clients' GLZ
/// dictionaries, as display channels read them.
#[derive(Clone)]
pub(crate) struct ImageSettings {
    compression: std::sync::Arc<std::sync::atomic::AtomicU8>,
    pub dictionaries: std::sync::Arc<super::glz::Dictionaries>,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            compression: std::sync::Arc::new((ImageCompression::AutoGlz as u8).into()),
            dictionaries: Default::default(),
        }
    }
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
}
