//! Lays a command out as the QXL device's structs (`spice/qxl_dev.h`, packed): a list of
//! byte blocks plus the links (QXLPHYSICAL fields) between them. The C boundary copies
//! each block into host memory and writes the host address of each link's target, so the
//! server reads the command exactly as a guest would have queued it, through a memslot
//! that maps addresses 1:1 (group 0).
//!
//! Block 0 is the `QXLCommandExt`; block 1 the command body, whose `QXLReleaseInfo.id`
//! links back to block 0: the id a `release_resource` callback hands to
//! `spice_replay_free_cmd` is the command's own address, as in spice-server.

use super::format::*;
use super::reader::{ReplayError, Result, MAX_BLOB};
use crate::geometry::Rect;

/// A QXLPHYSICAL field at `at` in a block, to be set to the address of `offset` bytes
/// into block `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub at: usize,
    pub target: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Block {
    pub bytes: Vec<u8>,
    pub links: Vec<Link>,
}

/// A command ready to be materialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub blocks: Vec<Block>,
    /// `QXL_CMD_*`.
    pub cmd_type: u32,
    /// The replay surface id to free when this (destroy) command is released.
    pub frees_surface: Option<u32>,
}

const EXT: usize = 0;
const BODY: usize = 1;
const CHUNK_HEADER: usize = 20;

struct Builder {
    blocks: Vec<Block>,
}

impl Builder {
    fn block(&mut self, size: usize) -> usize {
        self.blocks.push(Block {
            bytes: vec![0; size],
            links: Vec::new(),
        });
        self.blocks.len() - 1
    }

    fn put(&mut self, b: usize, at: usize, bytes: &[u8]) {
        self.blocks[b].bytes[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn u8(&mut self, b: usize, at: usize, v: u8) {
        self.put(b, at, &[v]);
    }
    fn u16(&mut self, b: usize, at: usize, v: u16) {
        self.put(b, at, &v.to_le_bytes());
    }
    fn u32(&mut self, b: usize, at: usize, v: u32) {
        self.put(b, at, &v.to_le_bytes());
    }
    fn i32(&mut self, b: usize, at: usize, v: i32) {
        self.put(b, at, &v.to_le_bytes());
    }
    fn u64(&mut self, b: usize, at: usize, v: u64) {
        self.put(b, at, &v.to_le_bytes());
    }
    fn link(&mut self, b: usize, at: usize, target: usize, offset: usize) {
        self.blocks[b].links.push(Link { at, target, offset });
    }

    fn rect(&mut self, b: usize, at: usize, r: &Rect) {
        self.i32(b, at, r.top);
        self.i32(b, at + 4, r.left);
        self.i32(b, at + 8, r.bottom);
        self.i32(b, at + 12, r.right);
    }
    fn point(&mut self, b: usize, at: usize, p: &Point) {
        self.i32(b, at, p.x);
        self.i32(b, at + 4, p.y);
    }
    fn point16(&mut self, b: usize, at: usize, p: (i16, i16)) {
        self.put(b, at, &p.0.to_le_bytes());
        self.put(b, at + 2, &p.1.to_le_bytes());
    }

    /// A new block holding `data` (at least `min_len` bytes, zero-padded) — what a
    /// QXLPHYSICAL of plain data points to.
    fn data(&mut self, data: &[u8], min_len: u64) -> Result<usize> {
        if min_len > MAX_BLOB {
            return Err(ReplayError::TooLarge {
                what: "data block",
                size: min_len,
            });
        }
        let b = self.block(data.len().max(min_len as usize));
        self.put(b, 0, data);
        Ok(b)
    }

    /// A block of `header` bytes followed by a `QXLDataChunk` with the first chunk's data;
    /// the other chunks get blocks of their own, linked both ways. Returns the block.
    fn chunked(&mut self, header: usize, chunks: &Chunks) -> usize {
        let first = chunks.0.first().map(Vec::as_slice).unwrap_or(&[]);
        let b = self.block(header + CHUNK_HEADER + first.len());
        self.u32(b, header, first.len() as u32);
        self.put(b, header + CHUNK_HEADER, first);
        let (mut prev, mut prev_at) = (b, header);
        for chunk in chunks.0.iter().skip(1) {
            let c = self.block(CHUNK_HEADER + chunk.len());
            self.u32(c, 0, chunk.len() as u32);
            self.put(c, CHUNK_HEADER, chunk);
            self.link(c, 4, prev, prev_at);
            self.link(prev, prev_at + 12, c, 0);
            (prev, prev_at) = (c, 0);
        }
        b
    }

    /// Sets the QXLPHYSICAL at (`b`, `at`) to a laid-out image (0 for none).
    fn image(&mut self, b: usize, at: usize, image: &Option<Image>) -> Result<()> {
        let Some(image) = image else {
            return Ok(());
        };
        let d = &image.descriptor;
        let img = match &image.data {
            ImageData::Quic { data_size, chunks } => {
                let img = self.chunked(22, chunks);
                self.u32(img, 18, *data_size);
                img
            }
            _ => self.block(48),
        };
        self.u64(img, 0, d.id);
        self.u8(img, 8, d.kind);
        self.u8(img, 9, d.flags);
        self.u32(img, 10, d.width);
        self.u32(img, 14, d.height);
        match &image.data {
            ImageData::Bitmap(bm) => {
                self.u8(img, 18, bm.format);
                self.u8(img, 19, bm.flags);
                self.u32(img, 20, bm.x);
                self.u32(img, 24, bm.y);
                self.u32(img, 28, bm.stride);
                if let Some(p) = &bm.palette {
                    let pal = self.block(10 + 4 * p.entries.len());
                    self.u64(pal, 0, p.unique);
                    self.u16(pal, 8, p.entries.len() as u16);
                    for (i, e) in p.entries.iter().enumerate() {
                        self.u32(pal, 10 + 4 * i, *e);
                    }
                    self.link(img, 32, pal, 0);
                }
                let data = match &bm.data {
                    BitmapData::Flat(data) => {
                        // The server reads y × stride bytes whatever the file held.
                        self.data(data, u64::from(bm.y) * u64::from(bm.stride))?
                    }
                    BitmapData::Chunked(chunks) => self.chunked(0, chunks),
                };
                self.link(img, 40, data, 0);
            }
            ImageData::Surface { surface_id } => self.u32(img, 18, *surface_id),
            ImageData::Quic { .. } => {}
        }
        self.link(b, at, img, 0);
        Ok(())
    }

    fn brush(&mut self, b: usize, at: usize, brush: &Brush) -> Result<()> {
        match brush {
            Brush::Solid(color) => {
                self.u32(b, at, BRUSH_SOLID);
                self.u32(b, at + 4, *color);
            }
            Brush::Pattern { image, pos } => {
                self.u32(b, at, BRUSH_PATTERN);
                self.image(b, at + 4, image)?;
                self.point(b, at + 12, pos);
            }
            Brush::Other(kind) => self.u32(b, at, *kind),
        }
        Ok(())
    }

    fn qmask(&mut self, b: usize, at: usize, m: &QMask) -> Result<()> {
        self.u8(b, at, m.flags);
        self.point(b, at + 1, &m.pos);
        self.image(b, at + 9, &m.bitmap)
    }

    /// QXLCopy / QXLBlend.
    fn copy_op(&mut self, b: usize, at: usize, c: &CopyOp) -> Result<()> {
        self.image(b, at, &c.src)?;
        self.rect(b, at + 8, &c.src_area);
        self.u16(b, at + 24, c.rop_descriptor);
        self.u8(b, at + 26, c.scale_mode);
        self.qmask(b, at + 27, &c.mask)
    }

    fn drawable(&mut self, d: &Drawable) -> Result<()> {
        let b = self.block(191);
        self.u32(b, 8, d.surface_id);
        self.u8(b, 12, d.effect);
        self.u8(b, 13, d.op.type_code());
        self.u16(b, 14, u16::from(d.self_bitmap));
        self.rect(b, 15, &d.self_bitmap_area);
        self.rect(b, 31, &d.bbox);
        match &d.clip {
            Clip::Rects { num_rects, chunks } => {
                self.u32(b, 47, CLIP_RECTS);
                let rects = self.chunked(4, chunks);
                self.u32(rects, 0, *num_rects);
                self.link(b, 51, rects, 0);
            }
            Clip::Other(kind) => self.u32(b, 47, *kind),
        }
        self.u32(b, 59, d.mm_time);
        for i in 0..3 {
            self.u32(b, 63 + 4 * i, d.surfaces_dest[i]);
            self.rect(b, 75 + 16 * i, &d.surfaces_rects[i]);
        }
        const U: usize = 123;
        match &d.op {
            DrawOp::Nop => {}
            DrawOp::Fill {
                brush,
                rop_descriptor,
                mask,
            } => {
                self.brush(b, U, brush)?;
                self.u16(b, U + 20, *rop_descriptor);
                self.qmask(b, U + 22, mask)?;
            }
            DrawOp::Opaque {
                src,
                src_area,
                brush,
                rop_descriptor,
                scale_mode,
                mask,
            } => {
                self.image(b, U, src)?;
                self.rect(b, U + 8, src_area);
                self.brush(b, U + 24, brush)?;
                self.u16(b, U + 44, *rop_descriptor);
                self.u8(b, U + 46, *scale_mode);
                self.qmask(b, U + 47, mask)?;
            }
            DrawOp::Copy(c) | DrawOp::Blend(c) => self.copy_op(b, U, c)?,
            DrawOp::CopyBits { src_pos } => self.point(b, U, src_pos),
            DrawOp::Blackness(m) | DrawOp::Whiteness(m) | DrawOp::Invers(m) => {
                self.qmask(b, U, m)?
            }
            DrawOp::Rop3 {
                src,
                src_area,
                brush,
                rop3,
                scale_mode,
                mask,
            } => {
                self.image(b, U, src)?;
                self.rect(b, U + 8, src_area);
                self.brush(b, U + 24, brush)?;
                self.u8(b, U + 44, *rop3);
                self.u8(b, U + 45, *scale_mode);
                self.qmask(b, U + 46, mask)?;
            }
            DrawOp::Stroke {
                path,
                attr_flags,
                style,
                brush,
                fore_mode,
                back_mode,
            } => {
                let p = self.chunked(4, path);
                self.u32(p, 0, path.total() as u32);
                self.link(b, U, p, 0);
                self.u8(b, U + 8, *attr_flags);
                if let Some((nseg, segments)) = style {
                    self.u8(b, U + 11, *nseg);
                    let s = self.data(segments, 0)?;
                    self.link(b, U + 20, s, 0);
                }
                self.brush(b, U + 28, brush)?;
                self.u16(b, U + 48, *fore_mode);
                self.u16(b, U + 50, *back_mode);
            }
            DrawOp::Text {
                string,
                back_area,
                fore_brush,
                back_brush,
                fore_mode,
                back_mode,
            } => {
                let s = self.chunked(8, &string.chunks);
                self.u32(s, 0, string.data_size);
                self.u16(s, 4, string.length);
                self.u16(s, 6, string.flags);
                self.link(b, U, s, 0);
                self.rect(b, U + 8, back_area);
                self.brush(b, U + 24, fore_brush)?;
                self.brush(b, U + 44, back_brush)?;
                self.u16(b, U + 64, *fore_mode);
                self.u16(b, U + 66, *back_mode);
            }
            DrawOp::Transparent {
                src,
                src_area,
                src_color,
                true_color,
            } => {
                self.image(b, U, src)?;
                self.rect(b, U + 8, src_area);
                self.u32(b, U + 24, *src_color);
                self.u32(b, U + 28, *true_color);
            }
            DrawOp::AlphaBlend {
                alpha_flags,
                alpha,
                src,
                src_area,
            } => {
                self.u16(b, U, *alpha_flags);
                self.u8(b, U + 2, *alpha);
                self.image(b, U + 3, src)?;
                self.rect(b, U + 11, src_area);
            }
            DrawOp::Composite {
                flags,
                src,
                src_transform,
                mask,
                mask_transform,
                src_origin,
                mask_origin,
            } => {
                self.u32(b, U, *flags);
                self.image(b, U + 4, src)?;
                if let Some(t) = src_transform {
                    let t = self.data(t, 0)?;
                    self.link(b, U + 12, t, 0);
                }
                self.image(b, U + 20, mask)?;
                if let Some(t) = mask_transform {
                    let t = self.data(t, 0)?;
                    self.link(b, U + 28, t, 0);
                }
                self.point16(b, U + 36, *src_origin);
                self.point16(b, U + 40, *mask_origin);
            }
        }
        Ok(())
    }

    fn surface(&mut self, s: &SurfaceCmd) -> Result<()> {
        let b = self.block(41);
        self.u32(b, 8, s.surface_id);
        self.u8(b, 12, s.kind);
        self.u32(b, 13, s.flags);
        if let Some(c) = &s.create {
            self.u32(b, 17, c.format);
            self.u32(b, 21, c.width);
            self.u32(b, 25, c.height);
            self.i32(b, 29, c.stride);
            // The surface's own memory: the server draws into it until it is destroyed.
            let data = self.data(c.data.as_deref().unwrap_or(&[]), c.size())?;
            self.link(b, 33, data, 0);
        }
        Ok(())
    }

    fn cursor(&mut self, c: &CursorCmd) {
        let b = self.block(150);
        self.u8(b, 8, c.kind);
        match &c.op {
            CursorOp::Set {
                position,
                visible,
                shape,
            } => {
                self.point16(b, 9, *position);
                self.u8(b, 13, *visible);
                let s = self.chunked(22, &shape.chunks);
                self.u64(s, 0, shape.unique);
                self.u16(s, 8, shape.kind);
                self.u16(s, 10, shape.width);
                self.u16(s, 12, shape.height);
                self.u16(s, 14, shape.hot_spot_x);
                self.u16(s, 16, shape.hot_spot_y);
                // As spice-server's replay: the size of the data actually recorded.
                self.u32(s, 18, shape.chunks.total() as u32);
                self.link(b, 14, s, 0);
            }
            CursorOp::Move { position } => self.point16(b, 9, *position),
            CursorOp::Trail { length, frequency } => {
                self.u16(b, 9, *length);
                self.u16(b, 11, *frequency);
            }
            CursorOp::Other => {}
        }
    }
}

/// Lays out `command` (surface ids already mapped to the replay's).
pub(crate) fn lay_out(command: &Command) -> Result<Layout> {
    let mut b = Builder { blocks: Vec::new() };
    let ext = b.block(24);
    debug_assert_eq!(ext, EXT);
    b.u32(EXT, 8, command.type_code());
    let mut frees_surface = None;
    match command {
        Command::Draw(d) => b.drawable(d)?,
        Command::Update(u) => {
            let body = b.block(32);
            b.rect(body, 8, &u.area);
            b.u32(body, 24, u.update_id);
            b.u32(body, 28, u.surface_id);
        }
        Command::Message(text) => {
            // NUL-terminated: the server reads it as a C string.
            let body = b.block(8 + text.len() + 1);
            b.put(body, 8, text);
        }
        Command::Surface(s) => {
            b.surface(s)?;
            if s.kind == SURFACE_DESTROY {
                frees_surface = Some(s.surface_id);
            }
        }
        Command::Cursor(c) => b.cursor(c),
    }
    b.link(EXT, 0, BODY, 0);
    b.link(BODY, 0, EXT, 0);
    Ok(Layout {
        blocks: b.blocks,
        cmd_type: command.type_code(),
        frees_surface,
    })
}
