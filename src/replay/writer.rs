//! Writes records exactly as spice-server's recorder (`red-record-qxl.cpp`) prints them,
//! so tests can build recordings by hand and read them back.

use super::format::*;
use crate::geometry::Rect;
use std::fmt::Write as _;

#[derive(Default)]
pub(crate) struct RecordWriter {
    pub out: Vec<u8>,
    counter: u32,
}

impl RecordWriter {
    pub(crate) fn new() -> Self {
        let mut w = RecordWriter::default();
        w.text("SPICE_REPLAY 1\n");
        w
    }

    fn text(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn line(&mut self, args: std::fmt::Arguments) {
        let mut s = String::new();
        let _ = s.write_fmt(args);
        s.push('\n');
        self.text(&s);
    }

    fn binary(&mut self, prefix: &str, data: &[u8]) {
        self.text(&format!("binary 0 {prefix} {}:", data.len()));
        self.out.extend_from_slice(data);
        self.text("\n");
    }

    fn event(&mut self, what: u32, kind: u32) {
        let n = self.counter;
        self.counter += 1;
        self.line(format_args!(
            "event {n} {what} {kind} {}",
            1000 + u64::from(n)
        ));
    }

    pub(crate) fn worker_call(&mut self, kind: u32) {
        self.event(1, kind);
    }

    pub(crate) fn create_primary(&mut self, kind: u32, p: &PrimarySurface) {
        self.event(1, kind);
        self.line(format_args!(
            "{} {} {} {}",
            p.width, p.height, p.stride, p.format as i32
        ));
        self.line(format_args!(
            "{} {} {} {}",
            p.position as i32, p.mouse_mode as i32, p.flags as i32, p.kind as i32
        ));
        self.binary("data", &p.data);
    }

    pub(crate) fn command(&mut self, c: &Command) {
        self.event(0, c.type_code());
        match c {
            Command::Draw(d) => self.drawable(d),
            Command::Update(u) => {
                self.text("update\n");
                self.rect("area", &u.area);
                self.line(format_args!("update_id {}", u.update_id as i32));
                self.line(format_args!("surface_id {}", u.surface_id as i32));
            }
            Command::Message(m) => self.binary("message", m),
            Command::Surface(s) => {
                self.text("surface_cmd\n");
                self.line(format_args!("surface_id {}", s.surface_id as i32));
                self.line(format_args!("type {}", s.kind));
                self.line(format_args!("flags {}", s.flags as i32));
                if let Some(c) = &s.create {
                    self.line(format_args!("u.surface_create.format {}", c.format as i32));
                    self.line(format_args!("u.surface_create.width {}", c.width as i32));
                    self.line(format_args!("u.surface_create.height {}", c.height as i32));
                    self.line(format_args!("u.surface_create.stride {}", c.stride));
                    if let Some(d) = &c.data {
                        self.binary("data", d);
                    }
                }
            }
            Command::Cursor(c) => {
                self.text("cursor_cmd\n");
                self.line(format_args!("type {}", c.kind));
                match &c.op {
                    CursorOp::Set {
                        position,
                        visible,
                        shape,
                    } => {
                        self.line(format_args!("point16 {} {}", position.0, position.1));
                        self.line(format_args!("u.set.visible {visible}"));
                        self.line(format_args!("header.unique {}", shape.unique));
                        self.line(format_args!("header.type {}", shape.kind));
                        self.line(format_args!("header.width {}", shape.width));
                        self.line(format_args!("header.height {}", shape.height));
                        self.line(format_args!("header.hot_spot_x {}", shape.hot_spot_x));
                        self.line(format_args!("header.hot_spot_y {}", shape.hot_spot_y));
                        self.line(format_args!("data_size {}", shape.data_size as i32));
                        self.chunks("cursor", &shape.chunks);
                    }
                    CursorOp::Move { position } => {
                        self.line(format_args!("point16 {} {}", position.0, position.1))
                    }
                    CursorOp::Trail { length, frequency } => {
                        self.line(format_args!("u.trail.length {length}"));
                        self.line(format_args!("u.trail.frequency {frequency}"));
                    }
                    CursorOp::Other => {}
                }
            }
        }
    }

    fn rect(&mut self, name: &str, r: &Rect) {
        self.line(format_args!(
            "rect {name} {} {} {} {}",
            r.top, r.left, r.bottom, r.right
        ));
    }

    fn point(&mut self, p: &Point) {
        self.line(format_args!("point {} {}", p.x, p.y));
    }

    fn chunks(&mut self, prefix: &str, c: &Chunks) {
        self.line(format_args!("data_chunks {} {}", c.0.len() - 1, c.total()));
        for chunk in &c.0 {
            self.binary(prefix, chunk);
        }
    }

    fn image(&mut self, image: &Option<Image>) {
        let Some(image) = image else {
            self.text("image 0\n");
            return;
        };
        self.text("image 1\n");
        let d = &image.descriptor;
        self.line(format_args!("descriptor.id {}", d.id));
        self.line(format_args!("descriptor.type {}", d.kind));
        self.line(format_args!("descriptor.flags {}", d.flags));
        self.line(format_args!("descriptor.width {}", d.width as i32));
        self.line(format_args!("descriptor.height {}", d.height as i32));
        match &image.data {
            ImageData::Bitmap(b) => {
                self.line(format_args!("bitmap.format {}", b.format));
                self.line(format_args!("bitmap.flags {}", b.flags));
                self.line(format_args!("bitmap.x {}", b.x as i32));
                self.line(format_args!("bitmap.y {}", b.y as i32));
                self.line(format_args!("bitmap.stride {}", b.stride as i32));
                self.line(format_args!(
                    "has_palette {}",
                    u8::from(b.palette.is_some())
                ));
                if let Some(p) = &b.palette {
                    self.line(format_args!("qp.num_ents {}", p.entries.len()));
                    self.line(format_args!("unique {}", p.unique));
                    for e in &p.entries {
                        self.line(format_args!("ents {}", *e as i32));
                    }
                }
                match &b.data {
                    BitmapData::Flat(d) => self.binary("image_data_flat", d),
                    BitmapData::Chunked(c) => self.chunks("bitmap.data", c),
                }
            }
            ImageData::Surface { surface_id } => self.line(format_args!(
                "surface_image.surface_id {}",
                *surface_id as i32
            )),
            ImageData::Quic { data_size, chunks } => {
                self.line(format_args!("quic.data_size {}", *data_size as i32));
                self.chunks("quic.data", chunks);
            }
        }
    }

    fn brush(&mut self, b: &Brush) {
        match b {
            Brush::Solid(c) => {
                self.line(format_args!("type {BRUSH_SOLID}"));
                self.line(format_args!("u.color {}", *c as i32));
            }
            Brush::Pattern { image, pos } => {
                self.line(format_args!("type {BRUSH_PATTERN}"));
                self.image(image);
                self.point(pos);
            }
            Brush::Other(t) => self.line(format_args!("type {t}")),
        }
    }

    fn qmask(&mut self, m: &QMask) {
        self.line(format_args!("flags {}", m.flags));
        self.point(&m.pos);
        self.image(&m.bitmap);
    }

    fn copy_op(&mut self, c: &CopyOp) {
        self.image(&c.src);
        self.rect("src_area", &c.src_area);
        self.line(format_args!("rop_descriptor {}", c.rop_descriptor));
        self.line(format_args!("scale_mode {}", c.scale_mode));
        self.qmask(&c.mask);
    }

    fn drawable(&mut self, d: &Drawable) {
        self.text("drawable\n");
        self.rect("bbox", &d.bbox);
        match &d.clip {
            Clip::Rects { num_rects, chunks } => {
                self.line(format_args!("type {CLIP_RECTS}"));
                self.line(format_args!("num_rects {num_rects}"));
                self.chunks("clip_rects", chunks);
            }
            Clip::Other(t) => self.line(format_args!("type {t}")),
        }
        self.line(format_args!("effect {}", d.effect));
        self.line(format_args!("mm_time {}", d.mm_time as i32));
        self.line(format_args!("self_bitmap {}", d.self_bitmap));
        self.rect("self_bitmap_area", &d.self_bitmap_area);
        self.line(format_args!("surface_id {}", d.surface_id as i32));
        for i in 0..3 {
            self.line(format_args!("surfaces_dest {}", d.surfaces_dest[i] as i32));
            self.rect("surfaces_rects", &d.surfaces_rects[i]);
        }
        self.line(format_args!("type {}", d.op.type_code()));
        match &d.op {
            DrawOp::Nop => {}
            DrawOp::Fill {
                brush,
                rop_descriptor,
                mask,
            } => {
                self.brush(brush);
                self.line(format_args!("rop_descriptor {rop_descriptor}"));
                self.qmask(mask);
            }
            DrawOp::Opaque {
                src,
                src_area,
                brush,
                rop_descriptor,
                scale_mode,
                mask,
            } => {
                self.image(src);
                self.rect("src_area", src_area);
                self.brush(brush);
                self.line(format_args!("rop_descriptor {rop_descriptor}"));
                self.line(format_args!("scale_mode {scale_mode}"));
                self.qmask(mask);
            }
            DrawOp::Copy(c) | DrawOp::Blend(c) => self.copy_op(c),
            DrawOp::CopyBits { src_pos } => self.point(src_pos),
            DrawOp::Blackness(m) | DrawOp::Whiteness(m) | DrawOp::Invers(m) => self.qmask(m),
            DrawOp::Rop3 {
                src,
                src_area,
                brush,
                rop3,
                scale_mode,
                mask,
            } => {
                self.image(src);
                self.rect("src_area", src_area);
                self.brush(brush);
                self.line(format_args!("rop3 {rop3}"));
                self.line(format_args!("scale_mode {scale_mode}"));
                self.qmask(mask);
            }
            DrawOp::Stroke {
                path,
                attr_flags,
                style,
                brush,
                fore_mode,
                back_mode,
            } => {
                self.chunks("path", path);
                self.line(format_args!("attr.flags {attr_flags}"));
                if let Some((nseg, segs)) = style {
                    self.line(format_args!("attr.style_nseg {nseg}"));
                    self.binary("style", segs);
                }
                self.brush(brush);
                self.line(format_args!("fore_mode {fore_mode}"));
                self.line(format_args!("back_mode {back_mode}"));
            }
            DrawOp::Text {
                string,
                back_area,
                fore_brush,
                back_brush,
                fore_mode,
                back_mode,
            } => {
                self.line(format_args!("data_size {}", string.data_size as i32));
                self.line(format_args!("length {}", string.length));
                self.line(format_args!("flags {}", string.flags));
                self.chunks("string", &string.chunks);
                self.rect("back_area", back_area);
                self.brush(fore_brush);
                self.brush(back_brush);
                self.line(format_args!("fore_mode {fore_mode}"));
                self.line(format_args!("back_mode {back_mode}"));
            }
            DrawOp::Transparent {
                src,
                src_area,
                src_color,
                true_color,
            } => {
                self.image(src);
                self.rect("src_area", src_area);
                self.line(format_args!("src_color {}", *src_color as i32));
                self.line(format_args!("true_color {}", *true_color as i32));
            }
            DrawOp::AlphaBlend {
                alpha_flags,
                alpha,
                src,
                src_area,
            } => {
                self.line(format_args!("alpha_flags {alpha_flags}"));
                self.line(format_args!("alpha {alpha}"));
                self.image(src);
                self.rect("src_area", src_area);
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
                self.line(format_args!("flags {}", *flags as i32));
                self.image(src);
                self.line(format_args!(
                    "src_transform {}",
                    u8::from(src_transform.is_some())
                ));
                if let Some(t) = src_transform {
                    self.binary("transform", t);
                }
                self.line(format_args!("mask {}", u8::from(mask.is_some())));
                if mask.is_some() {
                    self.image(mask);
                }
                self.line(format_args!(
                    "mask_transform {}",
                    u8::from(mask_transform.is_some())
                ));
                if let Some(t) = mask_transform {
                    self.binary("transform", t);
                }
                self.line(format_args!("src_origin {} {}", src_origin.0, src_origin.1));
                self.line(format_args!(
                    "mask_origin {} {}",
                    mask_origin.0, mask_origin.1
                ));
            }
        }
    }
}
