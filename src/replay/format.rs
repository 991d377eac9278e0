//! The records of a spice-server recording (`SPICE_WORKER_RECORD_FILENAME`), read into
//! owned values. The file is text, one `key value…` line per field in the order the C
//! recorder (`red-record-qxl.cpp`) prints them, with raw `binary` blobs for pixel data,
//! chunks and strings:
//!
//! ```text
//! SPICE_REPLAY 1
//! event <counter> <what> <type> <timestamp>   what 0: a QXL command of type <type> follows
//!                                             what 1: a worker call (RED_WORKER_MESSAGE_*)
//! ```
//!
//! Numbers keep the bits of the C fields they were printed from; narrower fields are
//! truncated as the C reader's assignments truncate them.

use super::reader::{ReplayError, Result, Scanner};
use crate::geometry::Rect;
use std::io::BufRead;

/// Most chunks one chunk list may have (each costs a block of memory when replayed).
const MAX_CHUNKS: u32 = 1 << 16;
/// Most palette entries (8 bpp images use 256).
const MAX_PALETTE: u32 = u16::MAX as u32;

pub(crate) mod cmd {
    pub(crate) const DRAW: u32 = 1;
    pub(crate) const UPDATE: u32 = 2;
    pub(crate) const CURSOR: u32 = 3;
    pub(crate) const MESSAGE: u32 = 4;
    pub(crate) const SURFACE: u32 = 5;
}

/// `RED_WORKER_MESSAGE_*` values the replay acts on (spice-server's `red-worker.h`; the
/// recorder stores them, so they never change).
pub(crate) mod worker_msg {
    pub(crate) const DESTROY_SURFACES: u32 = 19;
    pub(crate) const CREATE_PRIMARY_SURFACE: u32 = 20;
    pub(crate) const DESTROY_PRIMARY_SURFACE: u32 = 21;
    pub(crate) const DESTROY_SURFACES_ASYNC: u32 = 28;
    pub(crate) const CREATE_PRIMARY_SURFACE_ASYNC: u32 = 29;
    pub(crate) const DESTROY_PRIMARY_SURFACE_ASYNC: u32 = 30;
}

/// `QXL_DRAW_*`: the draw types, as the parser knows them.
pub(crate) use crate::qxl::draw::kind as draw;

pub(crate) const IMAGE_BITMAP: u8 = 0;
pub(crate) const IMAGE_QUIC: u8 = 1;
pub(crate) const IMAGE_SURFACE: u8 = 104;
pub(crate) const BITMAP_DIRECT: u8 = 1;
pub(crate) const BRUSH_SOLID: u32 = 1;
pub(crate) const BRUSH_PATTERN: u32 = 2;
pub(crate) const CLIP_RECTS: u32 = 1;
pub(crate) const LINE_STYLED: u8 = 1 << 3;
pub(crate) const SURFACE_CREATE: u8 = 0;
pub(crate) const SURFACE_DESTROY: u8 = 1;
pub(crate) const SURFACE_KEEP_DATA: u32 = 1;
pub(crate) const CURSOR_SET: u8 = 0;
pub(crate) const CURSOR_MOVE: u8 = 1;
pub(crate) const CURSOR_TRAIL: u8 = 3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Point {
    pub x: i32,
    pub y: i32,
}

/// A `QXLDataChunk` list: the data of each chunk, in order (at least one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chunks(pub Vec<Vec<u8>>);

impl Chunks {
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().map(|c| c.len() as u64).sum()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ImageDescriptor {
    pub id: u64,
    pub kind: u8,
    pub flags: u8,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Palette {
    pub unique: u64,
    pub entries: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BitmapData {
    /// `QXL_BITMAP_DIRECT`: one flat buffer.
    Flat(Vec<u8>),
    Chunked(Chunks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bitmap {
    pub format: u8,
    pub flags: u8,
    pub x: u32,
    pub y: u32,
    pub stride: u32,
    pub palette: Option<Palette>,
    pub data: BitmapData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageData {
    Bitmap(Bitmap),
    Surface { surface_id: u32 },
    Quic { data_size: u32, chunks: Chunks },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    pub descriptor: ImageDescriptor,
    pub data: ImageData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Brush {
    Solid(u32),
    Pattern {
        image: Option<Image>,
        pos: Point,
    },
    /// `SPICE_BRUSH_TYPE_NONE` or a type the recorder stores nothing for.
    Other(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QMask {
    pub flags: u8,
    pub pos: Point,
    pub bitmap: Option<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clip {
    Rects {
        num_rects: u32,
        chunks: Chunks,
    },
    /// `SPICE_CLIP_TYPE_NONE` (or another type without data).
    Other(u32),
}

/// The fields QXLCopy and QXLBlend share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyOp {
    pub src: Option<Image>,
    pub src_area: Rect,
    pub rop_descriptor: u16,
    pub scale_mode: u8,
    pub mask: QMask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QxlString {
    pub data_size: u32,
    pub length: u16,
    pub flags: u16,
    pub chunks: Chunks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrawOp {
    Nop,
    Fill {
        brush: Brush,
        rop_descriptor: u16,
        mask: QMask,
    },
    Opaque {
        src: Option<Image>,
        src_area: Rect,
        brush: Brush,
        rop_descriptor: u16,
        scale_mode: u8,
        mask: QMask,
    },
    Copy(CopyOp),
    CopyBits {
        src_pos: Point,
    },
    Blend(CopyOp),
    Blackness(QMask),
    Whiteness(QMask),
    Invers(QMask),
    Rop3 {
        src: Option<Image>,
        src_area: Rect,
        brush: Brush,
        rop3: u8,
        scale_mode: u8,
        mask: QMask,
    },
    Stroke {
        path: Chunks,
        attr_flags: u8,
        /// `SPICE_LINE_FLAGS_STYLED`: segment count and the raw `QXLFIXED` segments.
        style: Option<(u8, Vec<u8>)>,
        brush: Brush,
        fore_mode: u16,
        back_mode: u16,
    },
    Text {
        string: QxlString,
        back_area: Rect,
        fore_brush: Brush,
        back_brush: Brush,
        fore_mode: u16,
        back_mode: u16,
    },
    Transparent {
        src: Option<Image>,
        src_area: Rect,
        src_color: u32,
        true_color: u32,
    },
    AlphaBlend {
        alpha_flags: u16,
        alpha: u8,
        src: Option<Image>,
        src_area: Rect,
    },
    Composite {
        flags: u32,
        src: Option<Image>,
        src_transform: Option<Vec<u8>>,
        mask: Option<Image>,
        mask_transform: Option<Vec<u8>>,
        src_origin: (i16, i16),
        mask_origin: (i16, i16),
    },
}

impl DrawOp {
    pub(crate) fn type_code(&self) -> u8 {
        match self {
            DrawOp::Nop => draw::NOP,
            DrawOp::Fill { .. } => draw::FILL,
            DrawOp::Opaque { .. } => draw::OPAQUE,
            DrawOp::Copy(_) => draw::COPY,
            DrawOp::CopyBits { .. } => draw::COPY_BITS,
            DrawOp::Blend(_) => draw::BLEND,
            DrawOp::Blackness(_) => draw::BLACKNESS,
            DrawOp::Whiteness(_) => draw::WHITENESS,
            DrawOp::Invers(_) => draw::INVERS,
            DrawOp::Rop3 { .. } => draw::ROP3,
            DrawOp::Stroke { .. } => draw::STROKE,
            DrawOp::Text { .. } => draw::TEXT,
            DrawOp::Transparent { .. } => draw::TRANSPARENT,
            DrawOp::AlphaBlend { .. } => draw::ALPHA_BLEND,
            DrawOp::Composite { .. } => draw::COMPOSITE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Drawable {
    pub bbox: Rect,
    pub clip: Clip,
    pub effect: u8,
    pub mm_time: u32,
    pub self_bitmap: u8,
    pub self_bitmap_area: Rect,
    pub surface_id: u32,
    pub surfaces_dest: [u32; 3],
    pub surfaces_rects: [Rect; 3],
    pub op: DrawOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SurfaceCreate {
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pub stride: i32,
    /// The pixels, when the command asked to keep them (`QXL_SURF_FLAG_KEEP_DATA`).
    pub data: Option<Vec<u8>>,
}

impl SurfaceCreate {
    /// Bytes the surface's memory spans: height × |stride|.
    pub(crate) fn size(&self) -> u64 {
        u64::from(self.height) * u64::from(self.stride.unsigned_abs())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SurfaceCmd {
    pub surface_id: u32,
    pub kind: u8,
    pub flags: u32,
    pub create: Option<SurfaceCreate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorShape {
    pub unique: u64,
    pub kind: u16,
    pub width: u16,
    pub height: u16,
    pub hot_spot_x: u16,
    pub hot_spot_y: u16,
    pub data_size: u32,
    pub chunks: Chunks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CursorOp {
    Set {
        position: (i16, i16),
        visible: u8,
        shape: CursorShape,
    },
    Move {
        position: (i16, i16),
    },
    Trail {
        length: u16,
        frequency: u16,
    },
    /// HIDE, or another type without fields.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorCmd {
    pub kind: u8,
    pub op: CursorOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateCmd {
    pub area: Rect,
    pub update_id: u32,
    pub surface_id: u32,
}

/// One QXL command as the guest had queued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Draw(Box<Drawable>),
    Update(UpdateCmd),
    /// `QXLMessage` text (without a terminator).
    Message(Vec<u8>),
    Surface(SurfaceCmd),
    Cursor(CursorCmd),
}

impl Command {
    /// `QXL_CMD_*`.
    pub(crate) fn type_code(&self) -> u32 {
        match self {
            Command::Draw(_) => cmd::DRAW,
            Command::Update(_) => cmd::UPDATE,
            Command::Message(_) => cmd::MESSAGE,
            Command::Surface(_) => cmd::SURFACE,
            Command::Cursor(_) => cmd::CURSOR,
        }
    }
}

/// `QXLDevSurfaceCreate` of a recorded `create_primary_surface` and its pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrimarySurface {
    pub width: u32,
    pub height: u32,
    pub stride: i32,
    pub format: u32,
    pub position: u32,
    pub mouse_mode: u32,
    pub flags: u32,
    pub kind: u32,
    pub data: Vec<u8>,
}

impl PrimarySurface {
    pub(crate) fn size(&self) -> u64 {
        u64::from(self.height) * u64::from(self.stride.unsigned_abs())
    }
}

/// What one `event` line introduces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Command(Command),
    /// A QXL command type the recorder stores no body for (nothing to replay).
    EmptyCommand(u32),
    /// `create_primary_surface` (sync or async), with its surface when recorded.
    CreatePrimary(Option<PrimarySurface>),
    DestroyPrimary,
    DestroySurfaces,
    /// Another worker call (wakeup, update, memslots…): nothing to replay.
    OtherCall(u32),
}

/// Reads the records of one recording.
pub(crate) struct RecordReader<R: BufRead> {
    s: Scanner<R>,
}

impl<R: BufRead> RecordReader<R> {
    /// Checks the `SPICE_REPLAY 1` header.
    pub(crate) fn new(input: R) -> Result<Self> {
        let mut s = Scanner::new(input);
        s.expect("SPICE_REPLAY")?;
        let version = s.int()?;
        if version != 1 {
            return Err(ReplayError::Unsupported("recording version other than 1"));
        }
        Ok(RecordReader { s })
    }

    /// The next record, or None at the end of the file.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>> {
        if self.s.at_end()? {
            return Ok(None);
        }
        self.s.expect("event")?;
        let _counter = self.s.bits32()?;
        let what = self.s.bits32()?;
        let kind = self.s.bits32()?;
        let _timestamp = self.s.u64()?;
        Ok(Some(match what {
            0 => self.command(kind)?,
            1 => self.worker_call(kind)?,
            _ => Record::OtherCall(kind),
        }))
    }

    fn worker_call(&mut self, kind: u32) -> Result<Record> {
        use worker_msg::*;
        Ok(match kind {
            CREATE_PRIMARY_SURFACE | CREATE_PRIMARY_SURFACE_ASYNC => {
                // The recorder logs the call before checking it; a refused surface has
                // no data lines.
                match self.s.peek_word()?.as_deref() {
                    None | Some("event") => Record::CreatePrimary(None),
                    Some(_) => Record::CreatePrimary(Some(self.primary()?)),
                }
            }
            DESTROY_PRIMARY_SURFACE | DESTROY_PRIMARY_SURFACE_ASYNC => Record::DestroyPrimary,
            DESTROY_SURFACES | DESTROY_SURFACES_ASYNC => Record::DestroySurfaces,
            other => Record::OtherCall(other),
        })
    }

    fn primary(&mut self) -> Result<PrimarySurface> {
        let s = &mut self.s;
        let width = s.bits32()?;
        let height = s.bits32()?;
        let stride = s.bits32()? as i32;
        let format = s.bits32()?;
        let position = s.bits32()?;
        let mouse_mode = s.bits32()?;
        let flags = s.bits32()?;
        let kind = s.bits32()?;
        let data = s.binary("data")?;
        Ok(PrimarySurface {
            width,
            height,
            stride,
            format,
            position,
            mouse_mode,
            flags,
            kind,
            data,
        })
    }

    fn command(&mut self, kind: u32) -> Result<Record> {
        Ok(Record::Command(match kind {
            cmd::DRAW => {
                self.s.expect("drawable")?;
                Command::Draw(Box::new(self.drawable()?))
            }
            cmd::UPDATE => Command::Update(self.update()?),
            cmd::MESSAGE => Command::Message(self.s.binary("message")?),
            cmd::SURFACE => Command::Surface(self.surface()?),
            cmd::CURSOR => Command::Cursor(self.cursor()?),
            other => return Ok(Record::EmptyCommand(other)),
        }))
    }

    // ------------------------------------------------------------------ fields

    fn u32_field(&mut self, key: &str) -> Result<u32> {
        self.s.expect(key)?;
        self.s.bits32()
    }

    fn u16_field(&mut self, key: &str) -> Result<u16> {
        Ok(self.u32_field(key)? as u16)
    }

    fn u8_field(&mut self, key: &str) -> Result<u8> {
        Ok(self.u32_field(key)? as u8)
    }

    fn u64_field(&mut self, key: &str) -> Result<u64> {
        self.s.expect(key)?;
        self.s.u64()
    }

    fn flag_field(&mut self, key: &str) -> Result<bool> {
        Ok(self.u32_field(key)? != 0)
    }

    fn rect(&mut self, name: &str) -> Result<Rect> {
        self.s.expect("rect")?;
        self.s.expect(name)?;
        Ok(Rect {
            top: self.s.bits32()? as i32,
            left: self.s.bits32()? as i32,
            bottom: self.s.bits32()? as i32,
            right: self.s.bits32()? as i32,
        })
    }

    fn point(&mut self) -> Result<Point> {
        self.s.expect("point")?;
        Ok(Point {
            x: self.s.bits32()? as i32,
            y: self.s.bits32()? as i32,
        })
    }

    fn point16(&mut self, key: &str) -> Result<(i16, i16)> {
        self.s.expect(key)?;
        Ok((self.s.bits32()? as i16, self.s.bits32()? as i16))
    }

    fn chunks(&mut self, prefix: &str) -> Result<Chunks> {
        self.s.expect("data_chunks")?;
        let more = self.s.bits32()?;
        let _total = self.s.u64()?;
        if more >= MAX_CHUNKS {
            return Err(ReplayError::TooLarge {
                what: "chunk list",
                size: u64::from(more),
            });
        }
        let mut chunks = Vec::new();
        for _ in 0..=more {
            chunks.push(self.s.binary(prefix)?);
        }
        Ok(Chunks(chunks))
    }

    fn image(&mut self) -> Result<Option<Image>> {
        if !self.flag_field("image")? {
            return Ok(None);
        }
        let descriptor = ImageDescriptor {
            id: self.u64_field("descriptor.id")?,
            kind: self.u8_field("descriptor.type")?,
            flags: self.u8_field("descriptor.flags")?,
            width: self.u32_field("descriptor.width")?,
            height: self.u32_field("descriptor.height")?,
        };
        let data = match descriptor.kind {
            IMAGE_BITMAP => ImageData::Bitmap(self.bitmap()?),
            IMAGE_SURFACE => ImageData::Surface {
                surface_id: self.u32_field("surface_image.surface_id")?,
            },
            IMAGE_QUIC => {
                let data_size = self.u32_field("quic.data_size")?;
                let chunks = self.chunks("quic.data")?;
                ImageData::Quic { data_size, chunks }
            }
            _ => return Err(ReplayError::Unsupported("image type")),
        };
        Ok(Some(Image { descriptor, data }))
    }

    fn bitmap(&mut self) -> Result<Bitmap> {
        let format = self.u8_field("bitmap.format")?;
        let flags = self.u8_field("bitmap.flags")?;
        let x = self.u32_field("bitmap.x")?;
        let y = self.u32_field("bitmap.y")?;
        let stride = self.u32_field("bitmap.stride")?;
        let palette = if self.flag_field("has_palette")? {
            let count = self.u32_field("qp.num_ents")?;
            if count > MAX_PALETTE {
                return Err(ReplayError::TooLarge {
                    what: "palette",
                    size: u64::from(count),
                });
            }
            let unique = self.u64_field("unique")?;
            let mut entries = Vec::new();
            for _ in 0..count {
                entries.push(self.u32_field("ents")?);
            }
            Some(Palette { unique, entries })
        } else {
            None
        };
        let data = if flags & BITMAP_DIRECT != 0 {
            BitmapData::Flat(self.s.binary("image_data_flat")?)
        } else {
            BitmapData::Chunked(self.chunks("bitmap.data")?)
        };
        Ok(Bitmap {
            format,
            flags,
            x,
            y,
            stride,
            palette,
            data,
        })
    }

    fn brush(&mut self) -> Result<Brush> {
        Ok(match self.u32_field("type")? {
            BRUSH_SOLID => Brush::Solid(self.u32_field("u.color")?),
            BRUSH_PATTERN => Brush::Pattern {
                image: self.image()?,
                pos: self.point()?,
            },
            other => Brush::Other(other),
        })
    }

    fn qmask(&mut self) -> Result<QMask> {
        Ok(QMask {
            flags: self.u8_field("flags")?,
            pos: self.point()?,
            bitmap: self.image()?,
        })
    }

    fn copy_op(&mut self) -> Result<CopyOp> {
        Ok(CopyOp {
            src: self.image()?,
            src_area: self.rect("src_area")?,
            rop_descriptor: self.u16_field("rop_descriptor")?,
            scale_mode: self.u8_field("scale_mode")?,
            mask: self.qmask()?,
        })
    }

    fn clip(&mut self) -> Result<Clip> {
        Ok(match self.u32_field("type")? {
            CLIP_RECTS => Clip::Rects {
                num_rects: self.u32_field("num_rects")?,
                chunks: self.chunks("clip_rects")?,
            },
            other => Clip::Other(other),
        })
    }

    fn transform(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        if self.flag_field(key)? {
            Ok(Some(self.s.binary("transform")?))
        } else {
            Ok(None)
        }
    }

    fn drawable(&mut self) -> Result<Drawable> {
        let bbox = self.rect("bbox")?;
        let clip = self.clip()?;
        let effect = self.u8_field("effect")?;
        let mm_time = self.u32_field("mm_time")?;
        if self.s.peek_word()?.as_deref() == Some("bitmap_offset") {
            // QXL revision 1 ("compat") drawables: the C replay cannot read them either.
            return Err(ReplayError::Unsupported("compat drawable"));
        }
        let self_bitmap = self.u8_field("self_bitmap")?;
        let self_bitmap_area = self.rect("self_bitmap_area")?;
        let surface_id = self.u32_field("surface_id")?;
        let mut surfaces_dest = [0u32; 3];
        let mut surfaces_rects = [Rect::default(); 3];
        for i in 0..3 {
            surfaces_dest[i] = self.u32_field("surfaces_dest")?;
            surfaces_rects[i] = self.rect("surfaces_rects")?;
        }
        let op = match self.u8_field("type")? {
            draw::NOP => DrawOp::Nop,
            draw::FILL => DrawOp::Fill {
                brush: self.brush()?,
                rop_descriptor: self.u16_field("rop_descriptor")?,
                mask: self.qmask()?,
            },
            draw::OPAQUE => DrawOp::Opaque {
                src: self.image()?,
                src_area: self.rect("src_area")?,
                brush: self.brush()?,
                rop_descriptor: self.u16_field("rop_descriptor")?,
                scale_mode: self.u8_field("scale_mode")?,
                mask: self.qmask()?,
            },
            draw::COPY => DrawOp::Copy(self.copy_op()?),
            draw::BLEND => DrawOp::Blend(self.copy_op()?),
            draw::COPY_BITS => DrawOp::CopyBits {
                src_pos: self.point()?,
            },
            draw::BLACKNESS => DrawOp::Blackness(self.qmask()?),
            draw::WHITENESS => DrawOp::Whiteness(self.qmask()?),
            draw::INVERS => DrawOp::Invers(self.qmask()?),
            draw::ROP3 => DrawOp::Rop3 {
                src: self.image()?,
                src_area: self.rect("src_area")?,
                brush: self.brush()?,
                rop3: self.u8_field("rop3")?,
                scale_mode: self.u8_field("scale_mode")?,
                mask: self.qmask()?,
            },
            draw::STROKE => {
                let path = self.chunks("path")?;
                let attr_flags = self.u8_field("attr.flags")?;
                let style = if attr_flags & LINE_STYLED != 0 {
                    let nseg = self.u8_field("attr.style_nseg")?;
                    Some((nseg, self.s.binary("style")?))
                } else {
                    None
                };
                DrawOp::Stroke {
                    path,
                    attr_flags,
                    style,
                    brush: self.brush()?,
                    fore_mode: self.u16_field("fore_mode")?,
                    back_mode: self.u16_field("back_mode")?,
                }
            }
            draw::TEXT => DrawOp::Text {
                string: QxlString {
                    data_size: self.u32_field("data_size")?,
                    length: self.u16_field("length")?,
                    flags: self.u16_field("flags")?,
                    chunks: self.chunks("string")?,
                },
                back_area: self.rect("back_area")?,
                fore_brush: self.brush()?,
                back_brush: self.brush()?,
                fore_mode: self.u16_field("fore_mode")?,
                back_mode: self.u16_field("back_mode")?,
            },
            draw::TRANSPARENT => DrawOp::Transparent {
                src: self.image()?,
                src_area: self.rect("src_area")?,
                src_color: self.u32_field("src_color")?,
                true_color: self.u32_field("true_color")?,
            },
            draw::ALPHA_BLEND => DrawOp::AlphaBlend {
                alpha_flags: self.u16_field("alpha_flags")?,
                alpha: self.u8_field("alpha")?,
                src: self.image()?,
                src_area: self.rect("src_area")?,
            },
            draw::COMPOSITE => {
                let flags = self.u32_field("flags")?;
                let src = self.image()?;
                let src_transform = self.transform("src_transform")?;
                let mask = if self.flag_field("mask")? {
                    self.image()?
                } else {
                    None
                };
                let mask_transform = self.transform("mask_transform")?;
                DrawOp::Composite {
                    flags,
                    src,
                    src_transform,
                    mask,
                    mask_transform,
                    src_origin: self.point16("src_origin")?,
                    mask_origin: self.point16("mask_origin")?,
                }
            }
            _ => return Err(ReplayError::Unsupported("drawable type")),
        };
        Ok(Drawable {
            bbox,
            clip,
            effect,
            mm_time,
            self_bitmap,
            self_bitmap_area,
            surface_id,
            surfaces_dest,
            surfaces_rects,
            op,
        })
    }

    fn update(&mut self) -> Result<UpdateCmd> {
        self.s.expect("update")?;
        Ok(UpdateCmd {
            area: self.rect("area")?,
            update_id: self.u32_field("update_id")?,
            surface_id: self.u32_field("surface_id")?,
        })
    }

    fn surface(&mut self) -> Result<SurfaceCmd> {
        self.s.expect("surface_cmd")?;
        let surface_id = self.u32_field("surface_id")?;
        let kind = self.u8_field("type")?;
        let flags = self.u32_field("flags")?;
        let create = if kind == SURFACE_CREATE {
            let format = self.u32_field("u.surface_create.format")?;
            let width = self.u32_field("u.surface_create.width")?;
            let height = self.u32_field("u.surface_create.height")?;
            let stride = self.u32_field("u.surface_create.stride")? as i32;
            let data = if flags & SURFACE_KEEP_DATA != 0 {
                Some(self.s.binary("data")?)
            } else {
                None
            };
            Some(SurfaceCreate {
                format,
                width,
                height,
                stride,
                data,
            })
        } else {
            None
        };
        Ok(SurfaceCmd {
            surface_id,
            kind,
            flags,
            create,
        })
    }

    fn cursor(&mut self) -> Result<CursorCmd> {
        self.s.expect("cursor_cmd")?;
        let kind = self.u8_field("type")?;
        let op = match kind {
            CURSOR_SET => CursorOp::Set {
                position: self.point16("point16")?,
                visible: self.u8_field("u.set.visible")?,
                shape: CursorShape {
                    unique: self.u64_field("header.unique")?,
                    kind: self.u16_field("header.type")?,
                    width: self.u16_field("header.width")?,
                    height: self.u16_field("header.height")?,
                    hot_spot_x: self.u16_field("header.hot_spot_x")?,
                    hot_spot_y: self.u16_field("header.hot_spot_y")?,
                    data_size: self.u32_field("data_size")?,
                    chunks: self.chunks("cursor")?,
                },
            },
            CURSOR_MOVE => CursorOp::Move {
                position: self.point16("point16")?,
            },
            CURSOR_TRAIL => CursorOp::Trail {
                length: self.u16_field("u.trail.length")?,
                frequency: self.u16_field("u.trail.frequency")?,
            },
            _ => CursorOp::Other,
        };
        Ok(CursorCmd { kind, op })
    }
}
