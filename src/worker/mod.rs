//! One worker thread per QXL instance: it drains the guest's command rings, keeps the
//! memory slots and surfaces, and answers QEMU's synchronous and asynchronous requests.
//!
//! QEMU holds its global lock while it waits for the synchronous requests, so nothing
//! here may wait for QEMU's main loop. The worker talks to the device only through the
//! `Device` trait; QEMU's callbacks implement it in `ffi/`.

mod device;
mod guest_damage;
mod handle;
pub(crate) mod surfaces;
mod video;

pub(crate) use device::{Command, Device, CLIENT_CAPS_BYTES};
pub(crate) use handle::{Done, Msg, PrimarySurface, WorkerHandle};

use crate::canvas;
use crate::display::forward;
use crate::display::pointer::Pointer;
use crate::display::scroll;
use crate::display::Screen;
use crate::geometry::{Area, Rect};
use crate::qxl::command::{self, ParseError};
use crate::qxl::draw::{self, SurfaceCommand};
use crate::qxl::guest::{self, SlotMemory};
use crate::qxl::image::Image;
use crate::qxl::memslot::{Layout, MemSlots};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use guest_damage::GuestDamage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use surfaces::{GuestSurface, Surfaces};

/// An update_area rectangle covering any surface.
const EVERYWHERE: Rect = Rect {
    top: 0,
    left: 0,
    bottom: i32::MAX,
    right: i32::MAX,
};

/// Most commands one flush takes (a guest refilling its ring as fast as we drain it
/// must not keep QEMU waiting forever).
const MAX_FLUSH_COMMANDS: usize = 1 << 16;

/// How many ring entries to take before looking at QEMU's requests again.
const COMMANDS_PER_ROUND: usize = 64;
/// How soon the rings are read again unasked when no notification is armed (draining
/// them failed). With both armed the worker sleeps until a message, as spice-server's
/// does: an idle VM's worker never wakes.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Plain copies (QEMU's framebuffer updates) drawn together, so that a scroll split
/// into QEMU's column strips is seen whole: at most this many, and pixels.
const MAX_BATCH_COPIES: usize = 4096;
const MAX_BATCH_PIXELS: u64 = 16 << 20;

/// `QXL_COMMAND_FLAG_COMPAT`: the command uses the old (qxl-1) drawable layout.
const COMMAND_FLAG_COMPAT: u32 = 1;
/// `QXL_COMMAND_FLAG_COMPAT_16BPP`: colours and palettes are given as x1r5g5b5.
const COMMAND_FLAG_COMPAT_16BPP: u32 = 2;

/// Draws `copy` (a bitmap in guest memory) onto `fb` row by row: 32-bit rows copied
/// straight in, others decoded a row at a time. A row that cannot be read stops it
/// (`failed` hears why).
fn draw_guest_rows(
    fb: &mut crate::canvas::framebuffer::Framebuffer,
    copy: &draw::GuestCopy,
    mem: &dyn command::GuestMemory,
    mut failed: impl FnMut(ParseError),
) -> Option<Area> {
    let bitmap = &copy.bitmap;
    let (mut scratch, mut decoded) = (Vec::new(), Vec::new());
    canvas::put_image_rows(
        fb,
        &copy.bbox,
        &copy.clip,
        &copy.area,
        (bitmap.width, bitmap.height),
        |y, x0, x1, target| {
            let done = match bitmap.copy_words(mem, y, x0, x1, target.words()) {
                Some(r) => r.map(|()| target.words_done(bitmap.has_alpha())),
                None => {
                    decoded.clear();
                    bitmap
                        .append_row(mem, y, x0, x1, &mut scratch, &mut decoded)
                        .map(|()| target.put(&decoded))
                }
            };
            done.map_err(&mut failed).is_ok()
        },
    )
}

/// `QXL_CMD_*` ring entry types (the whole table; NOP and MESSAGE are skipped).
#[allow(dead_code)]
pub(crate) mod command_type {
    pub(crate) const NOP: u32 = 0;
    pub(crate) const DRAW: u32 = 1;
    pub(crate) const UPDATE: u32 = 2;
    pub(crate) const CURSOR: u32 = 3;
    pub(crate) const MESSAGE: u32 = 4;
    pub(crate) const SURFACE: u32 = 5;
}

pub(crate) struct Worker<D: Device> {
    device: D,
    inbox: Receiver<Msg>,
    slots: MemSlots,
    running: bool,
    primary: Option<PrimarySurface>,
    /// Drawings on the primary surface not yet in the guest's memory for it.
    primary_dirty: GuestDamage,
    /// Set when a ring may hold commands we have not taken yet.
    rings_dirty: bool,
    /// Both rings were found empty and their notifications armed: the device wakes us.
    armed: bool,
    /// Shared with `WorkerHandle::wakeup`, which skips queueing while this is set.
    wakeup_pending: Arc<AtomicBool>,
    /// What the display and cursor channels show.
    outputs: Outputs,
    /// Off-screen surfaces (ids 1..n).
    surfaces: Surfaces,
    /// The release info (address, group) of each live surface's create command, kept
    /// until the surface is destroyed as spice-server keeps it: the guest's qxl driver
    /// builds the destroy command inside the create command's memory, and frees that
    /// memory when the create is released (Linux oopses in `qxl_release_list_add`).
    surface_creates: HashMap<u32, (u64, u32)>,
    pub stats: Stats,
    video: video::Video,
    /// How soon the video path wants to run again (None: nothing live).
    video_wait: Option<Duration>,
    /// Plain copies on the primary surface taken from the ring and not drawn yet (drawn
    /// before anything else happens: another command, a request, an empty ring).
    plain_copies: Vec<draw::Draw>,
    plain_copy_pixels: u64,
    /// The last async cookie completed, so a request that panics after completing its
    /// cookie is not completed twice.
    last_completed: Option<u64>,
    /// The guest's driver sends monitor layouts (`monitors_config_async` came since the
    /// last driver unload): a new primary's one-head layout is then not announced, as
    /// spice-server's `driver_cap_monitors_config`.
    driver_sends_monitors: bool,
}

/// The state the worker draws into, shared with the channels.
#[derive(Clone, Default)]
pub(crate) struct Outputs {
    pub screen: Screen,
    pub pointer: Pointer,
}

/// What becomes of a command once applied.
enum Applied {
    /// Back to the guest now.
    Release,
    /// A surface's create command: back to the guest when that surface is destroyed.
    KeepUntilDestroyed(u32),
}

/// Counters a test (or a debug log) can read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub commands: u64,
    pub cursor_commands: u64,
    pub released: u64,
    pub rejected: u64,
}

impl<D: Device> Worker<D> {
    pub(crate) fn new(
        device: D,
        layout: Layout,
        inbox: Receiver<Msg>,
        wakeup_pending: Arc<AtomicBool>,
        outputs: Outputs,
    ) -> Worker<D> {
        Worker {
            device,
            inbox,
            slots: MemSlots::new(layout),
            running: false,
            primary: None,
            primary_dirty: GuestDamage::default(),
            rings_dirty: false,
            armed: false,
            wakeup_pending,
            surfaces: Surfaces::new(layout.n_surfaces),
            surface_creates: HashMap::new(),
            outputs,
            stats: Stats::default(),
            video: video::Video::default(),
            video_wait: None,
            plain_copies: Vec::new(),
            plain_copy_pixels: 0,
            last_completed: None,
            driver_sends_monitors: false,
        }
    }

    /// Runs until `Msg::Shutdown` or until every sender is gone.
    pub(crate) fn run(&mut self) {
        loop {
            let next = if self.running && self.rings_dirty {
                match self.inbox.try_recv() {
                    Ok(m) => Some(m),
                    Err(crossbeam_channel::TryRecvError::Empty) => None,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            } else {
                let poll = (self.running && !self.armed).then_some(IDLE_POLL);
                match self.video_wait.or(poll) {
                    Some(wait) => match self.inbox.recv_timeout(wait) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => {
                            // A video tick is not a lost wakeup: only the poll re-reads
                            // the rings unasked.
                            self.rings_dirty |= self.running && self.video_wait.is_none();
                            None
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                    None => match self.inbox.recv() {
                        Ok(m) => Some(m),
                        Err(_) => return,
                    },
                }
            };
            if let Some(msg) = next {
                if matches!(msg, Msg::Shutdown) {
                    return;
                }
                self.handle_guarded(msg);
            }
            if self.running
                && self.rings_dirty
                && !self.contain("draining the rings", Self::drain_rings)
            {
                // Retried at the next wakeup, not in a hot loop.
                self.rings_dirty = false;
            }
            let update_done = !(self.running && self.rings_dirty);
            let mut wait = None;
            self.contain("the video tick", |w| {
                wait = w.video.tick(&w.outputs.screen, update_done);
            });
            self.video_wait = wait;
        }
    }

    /// Handles one request; a panic drops it but still completes its async cookie, so
    /// QEMU never waits forever (a sync caller is released when its sender drops).
    fn handle_guarded(&mut self, msg: Msg) {
        let cookie = msg.async_cookie();
        self.last_completed = None;
        if !self.contain("a request", |w| w.handle(msg)) {
            if let Some(cookie) = cookie.filter(|&c| self.last_completed != Some(c)) {
                self.device.async_complete(cookie);
            }
        }
    }

    /// Runs `work`, containing a panic (logged): false when it panicked. The worker's
    /// state stays usable: each command is released as it is taken (`process`).
    fn contain(&mut self, what: &str, work: impl FnOnce(&mut Self)) -> bool {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self)));
        if outcome.is_err() {
            crate::log_error!("QXL worker: {what} panicked and was dropped");
        }
        outcome.is_ok()
    }

    /// Takes up to a round of commands from both rings; arms notifications when empty.
    fn drain_rings(&mut self) {
        self.armed = false;
        let mut display_empty = false;
        let mut cursor_empty = false;
        for _ in 0..COMMANDS_PER_ROUND {
            if !display_empty {
                match self.device.get_command() {
                    Some(cmd) => {
                        self.stats.commands += 1;
                        self.process(cmd);
                    }
                    None => display_empty = true,
                }
            }
            if !cursor_empty {
                match self.device.get_cursor_command() {
                    Some(cmd) => {
                        self.stats.cursor_commands += 1;
                        self.process(cmd);
                    }
                    None => cursor_empty = true,
                }
            }
            if display_empty && cursor_empty {
                break;
            }
        }
        if display_empty {
            self.draw_plain_copies();
        }
        if display_empty && cursor_empty {
            // The device answers false when commands arrived meanwhile: keep draining.
            let display_idle = self.device.req_cmd_notification();
            let cursor_idle = self.device.req_cursor_notification();
            self.rings_dirty = !(display_idle && cursor_idle);
            self.armed = display_idle && cursor_idle;
        }
    }

    /// Takes every command the rings hold now, as spice-server does before rendering a
    /// surface for QEMU, destroying surfaces or stopping: what QEMU reads back must
    /// include everything the guest queued before it asked.
    fn flush_commands(&mut self) {
        if !self.running {
            return;
        }
        for _ in 0..MAX_FLUSH_COMMANDS {
            let Some(cmd) = self.device.get_command() else {
                break;
            };
            self.stats.commands += 1;
            self.process(cmd);
        }
        for _ in 0..MAX_FLUSH_COMMANDS {
            let Some(cmd) = self.device.get_cursor_command() else {
                break;
            };
            self.stats.cursor_commands += 1;
            self.process(cmd);
        }
        self.draw_plain_copies();
    }

    /// Handles one ring entry: its effect is copied into the screen or pointer state,
    /// then the command is released at once so the guest (and QEMU's update queue) never
    /// backs up.
    fn process(&mut self, cmd: Command) {
        let mut applied = Ok(Applied::Release);
        // A panic while applying still releases what the guest handed over.
        if self.contain("a QXL command", |w| applied = w.apply(&cmd)) {
            if let Err(e) = &applied {
                crate::log_debug!("QXL command of type {} not applied: {e}", cmd.kind);
            }
        }
        let info = match guest::release_info_address(&self.slots, cmd.group, cmd.data) {
            Ok(info) => info,
            Err(e) => {
                self.stats.rejected += 1;
                crate::log_warn!("QXL command of type {} rejected: {e}", cmd.kind);
                return;
            }
        };
        match applied {
            Ok(Applied::KeepUntilDestroyed(id)) => self.hold_surface_create(id, info, cmd.group),
            _ => self.release(info, cmd.group),
        }
    }

    fn hold_surface_create(&mut self, id: u32, info: u64, group: u32) {
        // A create over a live surface replaced it: the old create goes back.
        if let Some((old, old_group)) = self.surface_creates.insert(id, (info, group)) {
            self.release(old, old_group);
        }
    }

    fn release(&mut self, info: u64, group: u32) {
        self.device.release_resource(info, group);
        self.stats.released += 1;
    }

    /// Surface `id` is gone: its create command goes back to the guest.
    fn release_surface_create(&mut self, id: u32) {
        if let Some((info, group)) = self.surface_creates.remove(&id) {
            self.release(info, group);
        }
    }

    /// Every off-screen surface is gone (`destroy_surfaces`, a reset).
    fn release_all_surface_creates(&mut self) {
        let mut held: Vec<(u32, (u64, u32))> = self.surface_creates.drain().collect();
        held.sort_unstable_by_key(|(id, _)| *id);
        for (_, (info, group)) in held {
            self.release(info, group);
        }
    }

    fn apply(&mut self, cmd: &Command) -> Result<Applied, ParseError> {
        if cmd.kind != command_type::DRAW {
            self.draw_plain_copies();
        }
        let mem = SlotMemory(&self.slots);
        match cmd.kind {
            command_type::DRAW => {
                let compat = cmd.flags & COMMAND_FLAG_COMPAT != 0;
                if cmd.flags & COMMAND_FLAG_COMPAT_16BPP == 0 {
                    if let Some(copy) = draw::parse_guest_copy(&mem, cmd.group, cmd.data, compat)?
                        .filter(|c| self.draws_from_guest(c))
                    {
                        return self.draw_guest_copy(&copy).map(|()| Applied::Release);
                    }
                }
                let mut d = draw::parse(&mem, cmd.group, cmd.data, compat)?;
                if cmd.flags & COMMAND_FLAG_COMPAT_16BPP != 0 {
                    surfaces::widen_compat16(&mut d.op);
                }
                let exists = |id: u32| {
                    if id == 0 {
                        self.primary.is_some()
                    } else {
                        self.surfaces.get(id).is_some()
                    }
                };
                if !d.depends_on.iter().all(|&id| exists(id)) {
                    return Err(ParseError::Invalid("drawing depends on a missing surface"));
                }
                // spice-server drops a drawing whose box leaves its surface.
                let size = if d.surface_id == 0 {
                    self.primary.map(|p| (p.width, p.height))
                } else {
                    self.surfaces
                        .get(d.surface_id)
                        .map(|s| (s.fb.width, s.fb.height))
                };
                let Some((w, h)) = size else {
                    return Err(ParseError::Invalid("drawing on a missing surface"));
                };
                let b = &d.bbox;
                if b.left < 0
                    || b.top < 0
                    || b.right as i64 > i64::from(w)
                    || b.bottom as i64 > i64::from(h)
                {
                    return Err(ParseError::Invalid("drawing box outside its surface"));
                }
                self.resolve_surface_images(&mut d.op)?;
                if let Some(new) = scroll::plain_copy(&d) {
                    let pixels = new.dest.pixels();
                    if self.plain_copies.len() >= MAX_BATCH_COPIES
                        || self.plain_copy_pixels + pixels > MAX_BATCH_PIXELS
                    {
                        self.draw_plain_copies();
                    }
                    self.plain_copy_pixels += pixels;
                    self.plain_copies.push(d);
                    return Ok(Applied::Release);
                }
                self.draw_plain_copies();
                if d.surface_id == 0 {
                    let screen = &self.outputs.screen;
                    let op = screen
                        .has_viewers()
                        .then(|| forward::for_client(&d))
                        .flatten();
                    if let Some(damage) =
                        screen.forward(op, |fb| canvas::render(fb, &d, &canvas::NoSurfaces))
                    {
                        self.primary_dirty.note(damage);
                        self.video.damage(damage, &self.outputs.screen);
                    }
                } else {
                    let id = d.surface_id;
                    let target = self
                        .surfaces
                        .get_mut(id)
                        .ok_or(ParseError::Invalid("surface id"))?;
                    let sixteen = target.guest.is_16bit().then_some(target.guest.format);
                    let xrgb = target.guest.format == surfaces::format::XRGB32;
                    if xrgb || target.guest.format == surfaces::format::ARGB32 {
                        surfaces::sources_onto_alpha(&mut d.op);
                    }
                    if let Some(fmt) = sixteen {
                        surfaces::prepare_for_16(&mut d.op, fmt);
                    }
                    if let Some(damage) = canvas::render(&mut target.fb, &d, &canvas::NoSurfaces) {
                        if let Some(fmt) = sixteen {
                            surfaces::quantize16(&mut target.fb, fmt, damage, &d.op);
                        }
                        if xrgb
                            && matches!(
                                d.op,
                                draw::Op::AlphaBlend {
                                    dest_has_alpha: false,
                                    ..
                                }
                            )
                        {
                            surfaces::clear_dest_alpha(&mut target.fb, &d.bbox);
                        }
                        target.dirty.note(damage);
                    }
                }
            }
            command_type::SURFACE => {
                match draw::parse_surface_command(&mem, cmd.group, cmd.data)? {
                    SurfaceCommand::Create {
                        id,
                        format,
                        width,
                        height,
                        stride,
                        data,
                        flags,
                    } => {
                        let guest = GuestSurface {
                            width,
                            height,
                            stride,
                            format,
                            mem: data,
                            group: cmd.group,
                        };
                        let keep = flags & draw::SURF_FLAG_KEEP_DATA != 0;
                        match self.surfaces.create(id, guest, keep, &self.slots) {
                            Ok(()) => return Ok(Applied::KeepUntilDestroyed(id)),
                            Err(e) => crate::log_warn!("surface {id} not created: {e}"),
                        }
                    }
                    SurfaceCommand::Destroy { id } => {
                        self.surfaces.destroy(id);
                        self.release_surface_create(id);
                    }
                }
            }
            command_type::CURSOR => {
                let cursor = command::parse_cursor(&mem, cmd.group, cmd.data)?;
                self.outputs.pointer.apply(cursor);
            }
            command_type::UPDATE => {
                // As red-worker.cpp: the area is put into guest memory (update_area), then
                // the device is told the update's id.
                let update = command::parse_update(&mem, cmd.group, cmd.data)?;
                let id = update.surface_id;
                let exists = if id == 0 {
                    self.primary.is_some()
                } else {
                    self.surfaces.get(id).is_some()
                };
                if !exists {
                    return Err(ParseError::Invalid("surface in QXL_CMD_UPDATE"));
                }
                self.render_to_guest(id, update.area);
                self.device.notify_update(update.update_id);
            }
            _ => {}
        }
        Ok(Applied::Release)
    }

    /// Whether `copy` is drawn straight from guest memory: a copy onto the primary
    /// surface that the plain-copy batch (scroll detection, which keeps the decoded
    /// pixels) does not take: the QXL driver's video frames, which come clipped.
    fn draws_from_guest(&self, copy: &draw::GuestCopy) -> bool {
        let whole = copy.area
            == Rect {
                left: 0,
                top: 0,
                right: copy.bitmap.width as i32,
                bottom: copy.bitmap.height as i32,
            };
        copy.surface_id == 0 && (copy.clip.is_some() || !whole)
    }

    /// Draws a plain copy onto the primary surface, each row read from the guest's bitmap
    /// and decoded into the surface (no decoded copy of the image; the stream then
    /// encodes from the surface). The same checks and pixels as the `Draw` path.
    fn draw_guest_copy(&mut self, copy: &draw::GuestCopy) -> Result<(), ParseError> {
        let Some(primary) = self.primary else {
            return Err(ParseError::Invalid("drawing on a missing surface"));
        };
        if !copy.depends_on.iter().all(|&id| {
            if id == 0 {
                true
            } else {
                self.surfaces.get(id).is_some()
            }
        }) {
            return Err(ParseError::Invalid("drawing depends on a missing surface"));
        }
        let b = &copy.bbox;
        if b.left < 0
            || b.top < 0
            || b.right as i64 > i64::from(primary.width)
            || b.bottom as i64 > i64::from(primary.height)
        {
            return Err(ParseError::Invalid("drawing box outside its surface"));
        }
        self.draw_plain_copies();
        let mem = SlotMemory(&self.slots);
        let mut failed = None;
        let damage = self.outputs.screen.forward(None, |fb| {
            draw_guest_rows(fb, copy, &mem, |e| failed = Some(e))
        });
        if let Some(damage) = damage {
            self.primary_dirty.note(damage);
            self.video.damage(damage, &self.outputs.screen);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Draws the plain copies taken so far, together (a scroll among them goes to
    /// clients as one copy, `display::scroll`).
    fn draw_plain_copies(&mut self) {
        if self.plain_copies.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.plain_copies);
        self.plain_copy_pixels = 0;
        let pairs: Vec<(&draw::Draw, scroll::NewPixels)> = batch
            .iter()
            .filter_map(|d| scroll::plain_copy(d).map(|p| (d, p)))
            .collect();
        let copies: Vec<scroll::NewPixels> = pairs.iter().map(|(_, p)| *p).collect();
        let drawn = self.outputs.screen.draw_plain_copies(&copies, |fb, i| {
            canvas::render(fb, pairs[i].0, &canvas::NoSurfaces)
        });
        for damage in drawn.into_iter().flatten() {
            self.primary_dirty.note(damage);
            self.video.damage(damage, &self.outputs.screen);
        }
        drop(pairs);
        batch.clear();
        self.plain_copies = batch;
    }

    /// Replaces surface sources by a copy of their current pixels, so a drawing may read
    /// any surface (itself included) while it writes its target. The copies count
    /// against the surface budget; past it, or when the host has no memory for one, the
    /// drawing is refused.
    fn resolve_surface_images(&self, op: &mut draw::Op) -> Result<(), ParseError> {
        let mut budget = self.surfaces.room();
        let src_alpha = matches!(
            op,
            draw::Op::AlphaBlend {
                src_has_alpha: true,
                ..
            }
        );
        for image in op.images_mut() {
            if let Image::Surface(id) = *image {
                let size = if id == 0 {
                    self.outputs.screen.with_surface(|fb| fb.pixels().len())
                } else {
                    self.surfaces.get(id).map(|s| s.fb.pixels().len())
                };
                let Some(size) = size else { continue };
                budget = budget.checked_sub(size).ok_or(ParseError::Invalid(
                    "surface copies over the surface budget",
                ))?;
                let pixels = if id == 0 {
                    self.outputs
                        .screen
                        .with_surface(|fb| surfaces::pixels_of(fb, src_alpha))
                } else {
                    // spice-common reads an X byte as alpha on 32-bit surfaces only.
                    self.surfaces.get(id).map(|s| {
                        let alpha = match s.guest.format {
                            surfaces::format::ARGB32 => true,
                            surfaces::format::XRGB32 => src_alpha,
                            _ => false,
                        };
                        surfaces::pixels_of(&s.fb, alpha)
                    })
                };
                match pixels {
                    Some(Some(p)) => *image = Image::Pixels(p),
                    Some(None) => {
                        return Err(ParseError::Invalid("no host memory to copy a surface"))
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Writes what a surface shows into the guest's memory for it, so QEMU (screendump,
    /// VNC) and the guest read back correct pixels.
    fn render_to_guest(&mut self, surface_id: u32, area: Rect) {
        let wanted = Area::new(
            area.left.max(0) as u32,
            area.top.max(0) as u32,
            area.right.max(0) as u32,
            area.bottom.max(0) as u32,
        );
        let result = if surface_id == 0 {
            let Some(guest) = self.primary_guest() else {
                return;
            };
            let slots = &self.slots;
            let areas = self.primary_dirty.take_overlapping(wanted);
            self.outputs.screen.with_surface(|fb| {
                areas
                    .iter()
                    .try_for_each(|&a| guest.write_back(slots, fb, a))
            })
        } else {
            self.surfaces.get_mut(surface_id).map(|s| {
                let areas = s.dirty.take_overlapping(wanted);
                areas
                    .iter()
                    .try_for_each(|&a| s.guest.write_back(&self.slots, &s.fb, a))
            })
        };
        if let Some(Err(e)) = result {
            crate::log_warn!("cannot render surface {surface_id} into guest memory: {e}");
        }
    }

    /// Replaces the primary's pixels with what the guest's memory holds (and tells the
    /// clients), forgetting drawings not written back yet.
    fn reload_primary(&mut self) {
        let Some(guest) = self.primary_guest() else {
            return;
        };
        let slots = &self.slots;
        self.outputs
            .screen
            .modify(|fb| match guest.read_into(slots, fb) {
                Ok(()) => Some(fb.bounds()),
                Err(e) => {
                    crate::log_warn!("cannot read the primary surface back: {e}");
                    None
                }
            });
        // Reading it back is not a drawing the guest lacks.
        self.primary_dirty.clear();
    }

    /// Where the primary surface lives in guest memory.
    fn primary_guest(&self) -> Option<GuestSurface> {
        self.primary.map(|p| GuestSurface {
            width: p.width,
            height: p.height,
            stride: p.stride,
            format: p.format,
            mem: p.mem,
            group: p.group,
        })
    }

    fn finish(&mut self, done: Done) {
        match done {
            Done::Sync(ack) => {
                let _ = ack.send(());
            }
            Done::Async(cookie) => {
                self.last_completed = Some(cookie);
                self.device.async_complete(cookie);
            }
            #[cfg(test)]
            Done::None => {}
        }
    }

    fn handle(&mut self, msg: Msg) {
        if !matches!(msg, Msg::Wakeup) {
            self.draw_plain_copies();
        }
        match msg {
            Msg::Wakeup => {
                self.wakeup_pending.store(false, Ordering::Release);
                self.rings_dirty = true;
            }
            Msg::Oom(pending) => {
                // The guest ran out of memory waiting for releases: as red-worker.cpp's
                // handle_dev_oom, take what it queued (releasing it) and have the device
                // hand the releases over now; when it had none pending, spice-server frees
                // the drawings it holds and asks again (we hold none: each command is
                // released once applied, so the second ask only keeps its order of calls).
                // Not while stopped: QEMU takes no callbacks then.
                if self.running {
                    self.flush_commands();
                    let mut pushed = self.device.flush_resources();
                    if pushed == 0 {
                        pushed = self.device.flush_resources();
                    }
                    crate::log_debug!("QXL out-of-memory notice: {pushed} releases pushed");
                    self.rings_dirty = true;
                }
                pending.store(false, Ordering::Release);
            }
            Msg::Start => {
                self.running = true;
                self.rings_dirty = true;
            }
            Msg::Stop(done) => {
                self.flush_commands();
                self.running = false;
                self.finish(done);
            }
            Msg::AddMemslot {
                group,
                slot,
                value,
                done,
            } => {
                if let Err(e) = self.slots.add(group, slot, value) {
                    crate::log_warn!("add_memslot refused: {e}");
                }
                self.finish(done);
            }
            Msg::DelMemslot { group, slot } => {
                if let Err(e) = self.slots.remove(group, slot) {
                    crate::log_warn!("del_memslot refused: {e}");
                }
            }
            Msg::ResetMemslots => self.slots.reset(),
            Msg::CreatePrimary { surface, done } => {
                if self
                    .outputs
                    .screen
                    .create_surface(surface.width, surface.height)
                {
                    self.primary_dirty
                        .reset(Area::new(0, 0, surface.width, surface.height));
                } else {
                    crate::log_warn!(
                        "primary surface {}x{} refused",
                        surface.width,
                        surface.height
                    );
                }
                self.primary = Some(surface);
                self.outputs
                    .screen
                    .reset_monitors(!self.driver_sends_monitors);
                self.video
                    .surface_changed(self.outputs.screen.size(), &self.outputs.screen);
                self.finish(done);
            }
            Msg::DestroyPrimary { done } => {
                self.flush_commands();
                self.video.surface_changed(None, &self.outputs.screen);
                self.outputs.screen.destroy_surface();
                self.primary = None;
                self.finish(done);
            }
            Msg::DestroySurfaces { done } => {
                self.flush_commands();
                self.video.surface_changed(None, &self.outputs.screen);
                self.outputs.screen.destroy_surface();
                self.surfaces.clear();
                self.release_all_surface_creates();
                self.primary = None;
                self.finish(done);
            }
            Msg::ResetCursor { done } => {
                self.outputs.pointer.reset();
                self.finish(done);
            }
            Msg::UpdateArea {
                surface_id,
                area,
                done,
            } => {
                self.flush_commands();
                self.render_to_guest(surface_id, area);
                if let Done::Async(_) = done {
                    self.device.update_area_complete(surface_id, &[area]);
                }
                self.finish(done);
            }
            Msg::DestroySurfaceWait { surface_id, done } => {
                // The guest is about to destroy the surface: like spice-server, drawings
                // not yet in its memory are dropped, and the memory is what remains.
                self.flush_commands();
                if surface_id == 0 {
                    self.reload_primary();
                } else {
                    self.surfaces.destroy(surface_id);
                }
                self.finish(done);
            }
            Msg::FlushSurfaces { done } => {
                self.flush_commands();
                self.render_to_guest(0, EVERYWHERE);
                for id in 1..self.surfaces.count() {
                    if self.surfaces.get(id).is_some() {
                        self.render_to_guest(id, EVERYWHERE);
                    }
                }
                self.finish(done);
            }
            Msg::ResetImageCache { done } | Msg::Nop { done } => self.finish(done),
            Msg::MonitorsConfig {
                max_monitors,
                address,
                group,
                done,
            } => {
                self.driver_sends_monitors = true;
                match command::parse_monitors(&SlotMemory(&self.slots), group, address) {
                    // As red-worker.cpp: no more heads, nor a larger maximum, than the
                    // device has.
                    Ok(mut config) => {
                        let cap = u16::try_from(max_monitors).unwrap_or(u16::MAX);
                        config.heads.truncate(usize::from(cap));
                        let max_allowed = config.max_allowed.min(cap);
                        self.outputs.screen.set_monitors(config.heads, max_allowed)
                    }
                    Err(e) => crate::log_warn!("monitors config rejected: {e}"),
                }
                self.finish(done);
            }
            Msg::Loadvm { commands, done } => {
                for cmd in &commands {
                    match self.apply(cmd) {
                        // A live surface's create, replayed after migration: released when
                        // the guest destroys the surface, as any other.
                        Ok(Applied::KeepUntilDestroyed(id)) => {
                            if let Ok(info) =
                                guest::release_info_address(&self.slots, cmd.group, cmd.data)
                            {
                                self.hold_surface_create(id, info, cmd.group);
                            }
                        }
                        Ok(Applied::Release) => {}
                        Err(e) => {
                            crate::log_warn!("loadvm command of type {} not applied: {e}", cmd.kind)
                        }
                    }
                }
                self.finish(done);
            }
            // The guest's driver is gone (QEMU's qxl enters VGA mode): the layouts it sent
            // stop, so the next primary's one-head layout is announced (red-worker.cpp
            // handle_dev_driver_unload forgets driver_cap_monitors_config, nothing else).
            Msg::DriverUnload => self.driver_sends_monitors = false,
            Msg::ClientPresence { present, caps } => {
                // QEMU only expects this while the VM runs.
                if self.running {
                    self.device.set_client_capabilities(present, &caps);
                }
            }
            Msg::Shutdown => {}
        }
    }

    #[cfg(test)]
    pub(crate) fn primary(&self) -> Option<&PrimarySurface> {
        self.primary.as_ref()
    }
}

#[cfg(test)]
mod tests;
