//! Display channel messages (`spice.proto` channel DisplayChannel).

use super::msg::{base, display as m};
use super::outgoing::{self, ServerMessage};
use super::wire::{Reader, Truncated, Writer};
use crate::geometry::Rect;

/// `SPICE_SURFACE_FMT_32_xRGB`.
pub(crate) const SURFACE_FMT_32_XRGB: u32 = 32;
/// `SPICE_SURFACE_FLAGS_PRIMARY`.
pub(crate) const SURFACE_FLAGS_PRIMARY: u32 = 1;
/// `SPICE_ROPD_OP_PUT`.
pub(crate) const ROPD_OP_PUT: u16 = 8;

/// `SpiceImageType`.
pub(crate) const IMAGE_TYPE_BITMAP: u8 = 0;
pub(crate) const IMAGE_TYPE_QUIC: u8 = 1;
pub(crate) const IMAGE_TYPE_LZ_RGB: u8 = 101;
pub(crate) const IMAGE_TYPE_GLZ_RGB: u8 = 102;
pub(crate) const IMAGE_TYPE_JPEG: u8 = 105;
pub(crate) const IMAGE_TYPE_ZLIB_GLZ_RGB: u8 = 107;
pub(crate) const IMAGE_TYPE_JPEG_ALPHA: u8 = 108;
pub(crate) const IMAGE_TYPE_LZ4: u8 = 109;
/// `SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN`: the alpha plane's rows are top-down.
const JPEG_ALPHA_FLAGS_TOP_DOWN: u8 = 1;
/// `SPICE_BITMAP_FMT_32BIT` (BGRX).
pub(crate) const BITMAP_FMT_32BIT: u8 = 8;
/// `SPICE_BITMAP_FLAGS_TOP_DOWN`.
pub(crate) const BITMAP_FLAGS_TOP_DOWN: u8 = 4;

/// spice.proto's `Rect`: top, left, bottom, right.
fn rect(w: &mut Writer, r: Rect) {
    w.i32(r.top).i32(r.left).i32(r.bottom).i32(r.right);
}

/// `SURFACE_CREATE`: u32 id, u32 width, u32 height, u32 format, u32 flags.
fn surface_create(w: &mut Writer, id: u32, width: u32, height: u32, primary: bool) {
    w.u32(id).u32(width).u32(height).u32(SURFACE_FMT_32_XRGB);
    w.u32(if primary { SURFACE_FLAGS_PRIMARY } else { 0 });
}

/// One monitor of a display channel (`Head` in spice.proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    pub id: u32,
    pub surface_id: u32,
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
    pub flags: u32,
}

/// `MONITORS_CONFIG`: u16 count, u16 max_allowed, then each head: u32 monitor_id,
/// surface_id, width, height, x, y, flags.
fn monitors_config(w: &mut Writer, heads: &[Head], max_allowed: u16) {
    w.u16(heads.len() as u16).u16(max_allowed.max(1));
    for h in heads {
        w.u32(h.id)
            .u32(h.surface_id)
            .u32(h.width)
            .u32(h.height)
            .u32(h.x)
            .u32(h.y)
            .u32(h.flags);
    }
}

/// How the pixels of a `DRAW_COPY` travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageData<'a> {
    /// Raw BGRX rows, top-down, packed.
    Raw(&'a [u8]),
    /// `LZ4` image payload (top-down flag, format, then BE-length-prefixed blocks).
    Lz4(&'a [u8]),
    /// `LZ_RGB` data (`image::lz`).
    Lz(&'a [u8]),
    /// `GLZ_RGB` data (`image::glz`), valid only for the client whose dictionary made it.
    Glz(&'a [u8]),
    /// `QUIC` data (`image::quic`).
    Quic(&'a [u8]),
    /// `JPEG` data (`image::jpeg`).
    Jpeg(&'a [u8]),
    /// `JPEG_ALPHA`: the JPEG's size, then the JPEG and the LZ alpha plane.
    JpegAlpha { jpeg_size: u32, data: &'a [u8] },
    /// `ZLIB_GLZ_RGB`: the GLZ data's size, then the GLZ data deflated.
    ZlibGlz { glz_size: u32, data: &'a [u8] },
}

impl ImageData<'_> {
    /// The bytes of the image's data.
    pub(crate) fn len(&self) -> usize {
        match self {
            ImageData::Raw(b)
            | ImageData::Lz4(b)
            | ImageData::Lz(b)
            | ImageData::Glz(b)
            | ImageData::Quic(b)
            | ImageData::Jpeg(b)
            | ImageData::JpegAlpha { data: b, .. }
            | ImageData::ZlibGlz { data: b, .. } => b.len(),
        }
    }
}

/// `SPICE_BITMAP_FMT_RGBA` (premultiplied ARGB).
pub(crate) const BITMAP_FMT_RGBA: u8 = 9;

/// Encodes the LZ4 image payload spice-gtk decodes: u8 top_down, u8 bitmap format, then
/// one `[u32 big-endian length][LZ4 block]`.
pub(crate) fn lz4_payload(pixels: &[u8]) -> Vec<u8> {
    lz4_payload_of(pixels, BITMAP_FMT_32BIT)
}

pub(crate) fn lz4_payload_of(pixels: &[u8], format: u8) -> Vec<u8> {
    let block = lz4_flex::block::compress(pixels);
    let mut out = Vec::with_capacity(block.len() + 6);
    out.push(1);
    out.push(format);
    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
    out.extend_from_slice(&block);
    out
}

/// Size of DisplayBase (u32 surface, Rect box, u8 clip NONE) + the fixed DRAW_COPY fields.
const DRAW_COPY_FIXED: u32 = 4 + 16 + 1 + 4 + 16 + 2 + 1 + 1 + 8 + 4;

/// `DRAW_COPY` of a whole image at `dest` on `surface_id`, no clip, no mask.
fn draw_copy(w: &mut Writer, surface_id: u32, dest: Rect, image_id: u64, data: ImageData<'_>) {
    let width = (dest.right - dest.left) as u32;
    let height = (dest.bottom - dest.top) as u32;
    let start = w.len();
    w.u32(surface_id);
    rect(w, dest);
    w.u8(0); // clip type NONE
    w.u32(DRAW_COPY_FIXED); // src_bitmap: the image follows the fixed part
    rect(
        w,
        Rect {
            top: 0,
            left: 0,
            bottom: height as i32,
            right: width as i32,
        },
    );
    w.u16(ROPD_OP_PUT).u8(0); // rop, scale mode
    w.u8(0).i32(0).i32(0).u32(0); // mask: flags, pos, no bitmap
    debug_assert_eq!((w.len() - start) as u32, DRAW_COPY_FIXED);
    image(w, image_id, width, height, BITMAP_FMT_32BIT, data);
}

/// An `Image`: the descriptor (u64 id, u8 type, u8 flags, u32 width, u32 height), then
/// its data; `format` is the bitmap format of raw pixels (32BIT or RGBA).
pub(crate) fn image(
    w: &mut Writer,
    image_id: u64,
    width: u32,
    height: u32,
    format: u8,
    data: ImageData<'_>,
) {
    w.u64(image_id);
    match data {
        ImageData::Raw(pixels) => {
            w.u8(IMAGE_TYPE_BITMAP).u8(0).u32(width).u32(height);
            // Bitmap: u8 format, u8 flags, u32 x, u32 y, u32 stride, u32 palette ptr, data.
            w.u8(format).u8(BITMAP_FLAGS_TOP_DOWN);
            w.u32(width).u32(height).u32(width * 4).u32(0);
            w.bytes(pixels);
        }
        ImageData::Lz4(payload) => {
            w.u8(IMAGE_TYPE_LZ4).u8(0).u32(width).u32(height);
            w.u32(payload.len() as u32).bytes(payload);
        }
        // `BinaryData`: u32 size, then the data.
        ImageData::Lz(data) => {
            w.u8(IMAGE_TYPE_LZ_RGB).u8(0).u32(width).u32(height);
            w.u32(data.len() as u32).bytes(data);
        }
        ImageData::Glz(data) => {
            w.u8(IMAGE_TYPE_GLZ_RGB).u8(0).u32(width).u32(height);
            w.u32(data.len() as u32).bytes(data);
        }
        ImageData::Quic(data) => {
            w.u8(IMAGE_TYPE_QUIC).u8(0).u32(width).u32(height);
            w.u32(data.len() as u32).bytes(data);
        }
        ImageData::Jpeg(data) => {
            w.u8(IMAGE_TYPE_JPEG).u8(0).u32(width).u32(height);
            w.u32(data.len() as u32).bytes(data);
        }
        ImageData::JpegAlpha { jpeg_size, data } => {
            w.u8(IMAGE_TYPE_JPEG_ALPHA).u8(0).u32(width).u32(height);
            w.u8(JPEG_ALPHA_FLAGS_TOP_DOWN).u32(jpeg_size);
            w.u32(data.len() as u32).bytes(data);
        }
        ImageData::ZlibGlz { glz_size, data } => {
            w.u8(IMAGE_TYPE_ZLIB_GLZ_RGB).u8(0).u32(width).u32(height);
            w.u32(glz_size).u32(data.len() as u32).bytes(data);
        }
    }
}

/// `STREAM_FLAGS_TOP_DOWN`.
pub(crate) const STREAM_FLAGS_TOP_DOWN: u8 = 1;

/// `STREAM_CREATE`: u32 surface_id, u32 id, u8 flags, u8 codec_type, u64 stamp,
/// u32 stream_width, u32 stream_height, u32 src_width, u32 src_height, Rect dest,
/// Clip (NONE: the whole destination shows).
fn stream_create(w: &mut Writer, id: u32, codec_type: u8, dest: Rect) {
    let (width, height) = (
        (dest.right - dest.left) as u32,
        (dest.bottom - dest.top) as u32,
    );
    w.u32(0)
        .u32(id)
        .u8(STREAM_FLAGS_TOP_DOWN)
        .u8(codec_type)
        .u64(0);
    w.u32(width).u32(height).u32(width).u32(height);
    rect(w, dest);
    w.u8(0);
}

/// The client's `STREAM_REPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamReport {
    pub stream_id: u32,
    pub unique_id: u32,
    pub start_frame_mm_time: u32,
    pub end_frame_mm_time: u32,
    pub num_frames: u32,
    pub num_drops: u32,
    /// How early the last frame arrived before its display time (negative: late).
    pub last_frame_delay: i32,
    pub audio_delay: u32,
}

impl StreamReport {
    pub(crate) fn parse(body: &[u8]) -> Result<StreamReport, Truncated> {
        let mut r = Reader::new(body);
        Ok(StreamReport {
            stream_id: r.u32()?,
            unique_id: r.u32()?,
            start_frame_mm_time: r.u32()?,
            end_frame_mm_time: r.u32()?,
            num_frames: r.u32()?,
            num_drops: r.u32()?,
            last_frame_delay: r.i32()?,
            audio_delay: r.u32()?,
        })
    }

    /// `num_frames == 0 && num_drops == u32::MAX`: the client cannot decode the stream.
    pub(crate) fn cannot_decode(&self) -> bool {
        self.num_frames == 0 && self.num_drops == u32::MAX
    }
}

/// Client's `DISPLAY_INIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DisplayInit {
    pub pixmap_cache_id: u8,
    pub pixmap_cache_size: i64,
    pub glz_dictionary_id: u8,
    pub glz_window_size: i32,
}

impl DisplayInit {
    pub(crate) fn parse(body: &[u8]) -> Result<DisplayInit, Truncated> {
        let mut r = Reader::new(body);
        Ok(DisplayInit {
            pixmap_cache_id: r.u8()?,
            pixmap_cache_size: r.u64()? as i64,
            glz_dictionary_id: r.u8()?,
            glz_window_size: r.i32()?,
        })
    }
}

/// What the display channel sends besides forwarded drawings (`display::draw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisplayMessage<'a> {
    /// The ack window: u32 generation, u32 window.
    SetAck {
        generation: u32,
        window: u32,
    },
    InvalAllPalettes,
    SurfaceCreate {
        id: u32,
        width: u32,
        height: u32,
        primary: bool,
    },
    /// u32 id.
    SurfaceDestroy {
        id: u32,
    },
    MonitorsConfig {
        heads: &'a [Head],
        max_allowed: u16,
    },
    /// A whole image at `dest` on `surface_id`, no clip, no mask.
    DrawCopy {
        surface_id: u32,
        dest: Rect,
        image_id: u64,
        data: ImageData<'a>,
    },
    StreamCreate {
        id: u32,
        codec_type: u8,
        dest: Rect,
    },
    /// u32 stream_id, u32 unique_id, u32 max_window_size, u32 timeout_ms (spice-server
    /// asks for a report every 5 frames or 1 s).
    StreamActivateReport {
        id: u32,
        unique_id: u32,
    },
    /// u32 id, u32 multi_media_time, u32 data_size, data.
    StreamData {
        id: u32,
        mm_time: u32,
        data: &'a [u8],
    },
    /// u32 id.
    StreamDestroy {
        id: u32,
    },
    /// The first full picture of a surface is out (no body).
    Mark,
}

impl ServerMessage for DisplayMessage<'_> {
    fn msg_type(&self) -> u16 {
        match self {
            DisplayMessage::SetAck { .. } => base::SET_ACK,
            DisplayMessage::InvalAllPalettes => m::INVAL_ALL_PALETTES,
            DisplayMessage::SurfaceCreate { .. } => m::SURFACE_CREATE,
            DisplayMessage::SurfaceDestroy { .. } => m::SURFACE_DESTROY,
            DisplayMessage::MonitorsConfig { .. } => m::MONITORS_CONFIG,
            DisplayMessage::DrawCopy { .. } => m::DRAW_COPY,
            DisplayMessage::StreamCreate { .. } => m::STREAM_CREATE,
            DisplayMessage::StreamActivateReport { .. } => m::STREAM_ACTIVATE_REPORT,
            DisplayMessage::StreamData { .. } => m::STREAM_DATA,
            DisplayMessage::StreamDestroy { .. } => m::STREAM_DESTROY,
            DisplayMessage::Mark => m::MARK,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match *self {
            DisplayMessage::SetAck { generation, window } => {
                outgoing::set_ack(w, generation, window)
            }
            DisplayMessage::InvalAllPalettes | DisplayMessage::Mark => {}
            DisplayMessage::SurfaceCreate {
                id,
                width,
                height,
                primary,
            } => surface_create(w, id, width, height, primary),
            DisplayMessage::SurfaceDestroy { id } | DisplayMessage::StreamDestroy { id } => {
                w.u32(id);
            }
            DisplayMessage::MonitorsConfig { heads, max_allowed } => {
                monitors_config(w, heads, max_allowed)
            }
            DisplayMessage::DrawCopy {
                surface_id,
                dest,
                image_id,
                data,
            } => draw_copy(w, surface_id, dest, image_id, data),
            DisplayMessage::StreamCreate {
                id,
                codec_type,
                dest,
            } => stream_create(w, id, codec_type, dest),
            DisplayMessage::StreamActivateReport { id, unique_id } => {
                w.u32(id)
                    .u32(unique_id)
                    .u32(crate::video::rate::REPORT_WINDOW as u32)
                    .u32(crate::video::rate::REPORT_TIMEOUT_MS as u32);
            }
            DisplayMessage::StreamData { id, mm_time, data } => {
                w.u32(id).u32(mm_time).u32(data.len() as u32).bytes(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::outgoing::body_of;

    #[test]
    fn raw_draw_copy_matches_the_documented_layout() {
        let pixels = vec![0x11u8; 2 * 2 * 4];
        let body = body_of(&DisplayMessage::DrawCopy {
            surface_id: 0,
            dest: Rect {
                top: 1,
                left: 2,
                bottom: 3,
                right: 4,
            },
            image_id: 5,
            data: ImageData::Raw(&pixels),
        });
        assert_eq!(body.len(), 57 + 18 + 18 + 16);
        assert_eq!(&body[21..25], &57u32.to_le_bytes());
        assert_eq!(body[57 + 8], IMAGE_TYPE_BITMAP);
        assert_eq!(body[57 + 18], BITMAP_FMT_32BIT);
        assert_eq!(body[57 + 19], BITMAP_FLAGS_TOP_DOWN);
        assert_eq!(&body[57 + 28..57 + 32], &8u32.to_le_bytes(), "stride");
    }

    #[test]
    fn lz4_payload_decodes_back() {
        let pixels: Vec<u8> = (0..4096u32).map(|i| (i / 7) as u8).collect();
        let p = lz4_payload(&pixels);
        assert_eq!(&p[..2], &[1, BITMAP_FMT_32BIT]);
        let len = u32::from_be_bytes([p[2], p[3], p[4], p[5]]) as usize;
        assert_eq!(p.len(), 6 + len);
        assert_eq!(
            lz4_flex::block::decompress(&p[6..], pixels.len()).unwrap(),
            pixels
        );
    }

    #[test]
    fn display_init_parse() {
        let mut w = Writer::new();
        w.u8(1).u64(20_971_520).u8(1).i32(3_145_728);
        let init = DisplayInit::parse(&w.into_inner()).unwrap();
        assert_eq!(init.pixmap_cache_size, 20_971_520);
        assert!(DisplayInit::parse(&[1, 2]).is_err());
    }
}
