//! What every video encoder (built-in MJPEG, GStreamer, hardware) offers the stream
//! pipeline: BGRX frames in, one compressed frame out, or a reason it was not encoded.

use super::codecs::Codec;
use std::fmt;
use std::sync::Arc;

/// A frame of the screen: BGRX rows, top-down, `width * 4` bytes each, row `y` at
/// `offset + y * stride` of `pixels`. `pixels` is either a copy of the stream's area or
/// the screen itself, shared until the worker next draws on it (copy on write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    pub pixels: Arc<Vec<u8>>,
    pub offset: usize,
    pub stride: usize,
    /// Server multimedia time (ms) when the pixels were captured.
    pub mm_time: u32,
}

impl Frame {
    /// A frame of packed rows.
    pub(crate) fn packed(width: u32, height: u32, pixels: Vec<u8>, mm_time: u32) -> Frame {
        Frame {
            width,
            height,
            pixels: Arc::new(pixels),
            offset: 0,
            stride: width as usize * 4,
            mm_time,
        }
    }

    /// The bytes from the first pixel on (rows `stride` apart).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.pixels.get(self.offset..).unwrap_or(&[])
    }

    /// Whether the rows the frame names lie inside its buffer.
    pub(crate) fn is_complete(&self) -> bool {
        rows_fit(self.bytes().len(), self.width, self.height, self.stride)
    }
}

/// Whether `len` bytes hold `height` rows of `width` BGRX pixels `stride` bytes apart
/// (the last row need not be padded to the stride).
pub(crate) fn rows_fit(len: usize, width: u32, height: u32, stride: usize) -> bool {
    let row = width as usize * 4;
    width > 0
        && height > 0
        && stride >= row
        && (height as usize - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(row))
            .is_some_and(|n| n <= len)
}

/// What the rate control asks of the next frame. Quality-driven encoders (MJPEG) use
/// `quality`; bitrate-driven ones (H.264, VP8…) use `bitrate_bps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// 1..=100, as libjpeg's quality.
    pub quality: u8,
    pub bitrate_bps: u64,
    pub fps: u32,
    /// Each side of the picture divided by this (1, 2 or 4) before encoding: the
    /// client scales the frame back to the stream's size. Only MJPEG plans it.
    pub scale: u8,
}

#[derive(Debug)]
pub(crate) enum EncodeError {
    /// The frame does not fit the encoder (size, format).
    Unsupported(String),
    /// The encoder failed; the stream should end and its area go out as pixels.
    Failed(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Unsupported(why) => write!(f, "frame not supported: {why}"),
            EncodeError::Failed(why) => write!(f, "encoder failed: {why}"),
        }
    }
}

impl std::error::Error for EncodeError {}

pub(crate) trait VideoEncoder: Send {
    fn codec(&self) -> Codec;
    /// Compresses one frame; `Ok(None)` means the encoder holds it back (it may return
    /// it with a later call; one-in/one-out encoders never do).
    fn encode(&mut self, frame: &Frame, target: Target) -> Result<Option<Vec<u8>>, EncodeError>;
    /// Makes the next frame a key frame, one a decoder can start from (a viewer joined,
    /// or lost the picture). Encoders whose every frame is one (MJPEG) ignore it.
    fn request_key_frame(&mut self) {}
}
