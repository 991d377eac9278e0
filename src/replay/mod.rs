//! Replay of a recorded QXL command stream (`spice-replay.h`).
//!
//! spice-server writes every command its worker takes from the guest, and the worker calls
//! QEMU made, to the file named by `SPICE_WORKER_RECORD_FILENAME`. A replay reads that
//! file back and hands out the commands one by one, laid out in host memory as the guest
//! had them, so a program playing QEMU's qxl device can feed them to a server again.
//!
//! * `reader`: words, numbers and blobs, with every size capped
//! * `format`: the records, read into owned values
//! * `surface_ids`: recorded surface ids mapped onto the replaying device's
//! * `layout`: a command as QXL structs (byte blocks and the links between them)
//!
//! The C boundary (`ffi::api::replay`) copies layouts into host memory and carries out
//! the worker calls (primary surface creation and destruction) on the QXL instance.

pub(crate) mod format;
pub(crate) mod layout;
pub(crate) mod reader;
pub(crate) mod surface_ids;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod writer;

use format::{Command, DrawOp, Drawable, Image, ImageData, PrimarySurface, Record, SurfaceCmd};
use layout::Layout;
pub(crate) use reader::{ReplayError, Result};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;
use surface_ids::SurfaceIds;

/// How long creating a surface waits for the server to release a destroyed one.
const SURFACE_ID_WAIT: Duration = Duration::from_secs(10);
/// Largest primary surface accepted (bytes).
const MAX_PRIMARY: u64 = reader::MAX_BLOB;

/// What the replay asks its caller to do next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Create the primary surface (destroying the current one first, if any).
    CreatePrimary(PrimarySurface),
    DestroyPrimary,
    DestroySurfaces,
    /// Hand this command to the server.
    Command(Layout),
}

/// One recording being replayed.
pub(crate) struct Session<R: BufRead> {
    records: format::RecordReader<R>,
    ids: Arc<SurfaceIds>,
    finished: bool,
}

impl<R: BufRead> Session<R> {
    /// Reads the header; `nsurfaces` replay surface ids are available (at least 1).
    pub(crate) fn new(input: R, nsurfaces: u32) -> Result<Self> {
        Ok(Session {
            records: format::RecordReader::new(input)?,
            ids: Arc::new(SurfaceIds::new(nsurfaces, SURFACE_ID_WAIT)),
            finished: false,
        })
    }

    /// The id table, shared with whoever releases commands.
    pub(crate) fn surface_ids(&self) -> Arc<SurfaceIds> {
        self.ids.clone()
    }

    /// The next step, or None once the recording is over (at its end, or at the first
    /// record that cannot be read: the error is returned once, then None).
    pub(crate) fn next_step(&mut self) -> Result<Option<Step>> {
        if self.finished {
            return Ok(None);
        }
        let step = self.read_step();
        if !matches!(step, Ok(Some(_))) {
            self.finished = true;
        }
        step
    }

    fn read_step(&mut self) -> Result<Option<Step>> {
        loop {
            let Some(record) = self.records.next_record()? else {
                return Ok(None);
            };
            return Ok(Some(match record {
                Record::Command(mut command) => {
                    self.map_surfaces(&mut command)?;
                    Step::Command(layout::lay_out(&command)?)
                }
                Record::CreatePrimary(Some(surface)) => {
                    if surface.size() > MAX_PRIMARY {
                        return Err(ReplayError::TooLarge {
                            what: "primary surface",
                            size: surface.size(),
                        });
                    }
                    Step::CreatePrimary(surface)
                }
                Record::DestroyPrimary => Step::DestroyPrimary,
                Record::DestroySurfaces => Step::DestroySurfaces,
                Record::CreatePrimary(None) | Record::EmptyCommand(_) | Record::OtherCall(_) => {
                    continue
                }
            }));
        }
    }

    /// Rewrites recorded surface ids to the replay's.
    fn map_surfaces(&self, command: &mut Command) -> Result<()> {
        let ids = &self.ids;
        match command {
            Command::Draw(d) => map_drawable(ids, d),
            Command::Update(u) => u.surface_id = ids.get(u.surface_id),
            Command::Surface(SurfaceCmd {
                surface_id,
                kind,
                create,
                ..
            }) => {
                *surface_id = if *kind == format::SURFACE_CREATE && create.is_some() {
                    if create.as_ref().is_some_and(|c| c.size() > reader::MAX_BLOB) {
                        return Err(ReplayError::TooLarge {
                            what: "surface",
                            size: create.as_ref().map_or(0, |c| c.size()),
                        });
                    }
                    ids.create(*surface_id)?
                } else {
                    ids.get(*surface_id)
                }
            }
            Command::Message(_) | Command::Cursor(_) => {}
        }
        Ok(())
    }
}

fn map_image(ids: &SurfaceIds, image: &mut Option<Image>) {
    if let Some(Image {
        data: ImageData::Surface { surface_id },
        ..
    }) = image
    {
        *surface_id = ids.get(*surface_id);
    }
}

fn map_brush(ids: &SurfaceIds, brush: &mut format::Brush) {
    if let format::Brush::Pattern { image, .. } = brush {
        map_image(ids, image);
    }
}

fn map_drawable(ids: &SurfaceIds, d: &mut Drawable) {
    d.surface_id = ids.get(d.surface_id);
    for dest in &mut d.surfaces_dest {
        *dest = ids.get(*dest);
    }
    match &mut d.op {
        DrawOp::Fill { brush, mask, .. } => {
            map_brush(ids, brush);
            map_image(ids, &mut mask.bitmap);
        }
        DrawOp::Opaque {
            src, brush, mask, ..
        }
        | DrawOp::Rop3 {
            src, brush, mask, ..
        } => {
            map_image(ids, src);
            map_brush(ids, brush);
            map_image(ids, &mut mask.bitmap);
        }
        DrawOp::Copy(c) | DrawOp::Blend(c) => {
            map_image(ids, &mut c.src);
            map_image(ids, &mut c.mask.bitmap);
        }
        DrawOp::Blackness(m) | DrawOp::Whiteness(m) | DrawOp::Invers(m) => {
            map_image(ids, &mut m.bitmap)
        }
        DrawOp::Stroke { brush, .. } => map_brush(ids, brush),
        DrawOp::Text {
            fore_brush,
            back_brush,
            ..
        } => {
            map_brush(ids, fore_brush);
            map_brush(ids, back_brush);
        }
        DrawOp::Transparent { src, .. } | DrawOp::AlphaBlend { src, .. } => map_image(ids, src),
        DrawOp::Composite { src, mask, .. } => {
            map_image(ids, src);
            map_image(ids, mask);
        }
        DrawOp::Nop | DrawOp::CopyBits { .. } => {}
    }
}
