//! Off-screen surfaces (`QXL_CMD_SURFACE`) and writing surfaces back into guest memory.
//!
//! Surfaces are drawn in Rust-owned framebuffers; `update_area` copies the requested
//! area back into the guest's surface memory, which is what QEMU and the guest read.

use super::guest_damage::GuestDamage;
use crate::canvas::framebuffer::{Framebuffer, MAX_DIMENSION};
use crate::geometry::Area;
use crate::qxl::guest;
use crate::qxl::image::Pixels;
use crate::qxl::memslot::{MemError, MemSlots};

/// `SPICE_SURFACE_FMT_*` the canvas handles.
pub(crate) mod format {
    pub(crate) const XRGB32: u32 = 32;
    pub(crate) const ARGB32: u32 = 96;
    pub(crate) const RGB555: u32 = 16;
    pub(crate) const RGB565: u32 = 80;
}

/// Most host memory one worker spends on guest surfaces besides the primary: the
/// off-screen surfaces it keeps plus the copies one drawing takes of surfaces it reads.
/// The C server draws surfaces in guest memory; we copy them, so a guest creating
/// surfaces (many over the same guest memory) must meet a bound. 256 MiB holds the
/// whole video memory of QEMU's default qxl (64 MiB) several times over.
pub(crate) const MAX_SURFACE_BYTES: usize = 256 << 20;

/// Where a surface lives in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuestSurface {
    pub width: u32,
    pub height: u32,
    pub stride: i32,
    pub format: u32,
    pub mem: u64,
    pub group: u32,
}

impl GuestSurface {
    fn bytes_per_pixel(&self) -> Option<u64> {
        match self.format {
            format::XRGB32 | format::ARGB32 => Some(4),
            format::RGB555 | format::RGB565 => Some(2),
            _ => None,
        }
    }

    /// Address of row `y` (a negative stride stores rows bottom-up).
    fn row_address(&self, y: u32) -> u64 {
        let pitch = u64::from(self.stride.unsigned_abs());
        let index = if self.stride < 0 {
            u64::from(self.height - 1 - y)
        } else {
            u64::from(y)
        };
        self.mem + index * pitch
    }

    /// Copies `area` of `fb` into the guest's memory for this surface.
    pub(crate) fn write_back(
        &self,
        slots: &MemSlots,
        fb: &Framebuffer,
        area: Area,
    ) -> Result<(), MemError> {
        let Some(bpp) = self.bytes_per_pixel() else {
            return Ok(());
        };
        let area =
            area.intersect(&fb.bounds())
                .intersect(&Area::new(0, 0, self.width, self.height));
        if area.is_empty() || u64::from(self.stride.unsigned_abs()) < u64::from(self.width) * bpp {
            return Ok(());
        }
        let pixels = fb.read(area);
        let row = area.width() as usize * 4;
        for (i, line) in pixels.chunks(row).enumerate() {
            let address = self.row_address(area.top + i as u32) + u64::from(area.left) * bpp;
            let bytes: Vec<u8> = match self.format {
                format::RGB555 | format::RGB565 => line
                    .chunks(4)
                    .flat_map(|p| {
                        let (b, g, r) = (u16::from(p[0]), u16::from(p[1]), u16::from(p[2]));
                        let v = if self.format == format::RGB555 {
                            (r >> 3) << 10 | (g >> 3) << 5 | b >> 3
                        } else {
                            (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
                        };
                        v.to_le_bytes()
                    })
                    .collect(),
                _ => line.to_vec(),
            };
            guest::write_bytes(slots, self.group, address, &bytes)?;
        }
        Ok(())
    }

    /// Reads the guest's current pixels (a surface created over existing data).
    pub(crate) fn read_into(&self, slots: &MemSlots, fb: &mut Framebuffer) -> Result<(), MemError> {
        if !matches!(self.format, format::XRGB32 | format::ARGB32) {
            return Ok(());
        }
        let row = self.width as usize * 4;
        for y in 0..self.height {
            let line = guest::read_bytes(slots, self.group, self.row_address(y), row)?;
            fb.blit(Area::new(0, y, self.width, y + 1), &line, row);
        }
        Ok(())
    }
}

pub(crate) struct OffScreen {
    pub fb: Framebuffer,
    pub guest: GuestSurface,
    /// Drawn since the guest's memory was last updated.
    pub dirty: GuestDamage,
}

/// The off-screen surfaces of one QXL device (id 0, the primary, lives in the screen).
pub(crate) struct Surfaces {
    list: Vec<Option<OffScreen>>,
    bytes: usize,
    /// Most bytes for surfaces and the copies of one drawing (`MAX_SURFACE_BYTES`).
    budget: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SurfaceError {
    BadId(u32),
    BadSize,
    TooMuchMemory,
    /// The host refused the allocation.
    OutOfMemory,
    Memory(MemError),
}

impl std::fmt::Display for SurfaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SurfaceError::BadId(id) => write!(f, "surface id {id} out of range"),
            SurfaceError::BadSize => write!(f, "bad surface size or stride"),
            SurfaceError::TooMuchMemory => write!(f, "off-screen surfaces over their budget"),
            SurfaceError::OutOfMemory => write!(f, "no host memory for it"),
            SurfaceError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl Surfaces {
    pub(crate) fn new(count: u32) -> Surfaces {
        let count = count.clamp(1, 4096) as usize;
        Surfaces {
            list: (0..count).map(|_| None).collect(),
            bytes: 0,
            budget: MAX_SURFACE_BYTES,
        }
    }

    pub(crate) fn create(
        &mut self,
        id: u32,
        guest: GuestSurface,
        slots: &MemSlots,
    ) -> Result<(), SurfaceError> {
        if id == 0 || id as usize >= self.list.len() {
            return Err(SurfaceError::BadId(id));
        }
        self.destroy(id);
        let (w, h) = (guest.width, guest.height);
        if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(SurfaceError::BadSize);
        }
        // Counted before anything is allocated.
        if self.bytes + Framebuffer::bytes_for(w, h) > self.budget {
            return Err(SurfaceError::TooMuchMemory);
        }
        let fb = Framebuffer::new(w, h).ok_or(SurfaceError::OutOfMemory)?;
        let bpp = if matches!(guest.format, format::RGB555 | format::RGB565) {
            2
        } else {
            4
        };
        if u64::from(guest.stride.unsigned_abs()) < u64::from(guest.width) * bpp {
            return Err(SurfaceError::BadSize);
        }
        let mut surface = OffScreen {
            fb,
            guest,
            dirty: Default::default(),
        };
        // Validates the whole surface memory once, and keeps what the guest put there.
        let last = guest.row_address(if guest.stride < 0 {
            0
        } else {
            guest.height - 1
        });
        let first = guest.row_address(if guest.stride < 0 {
            guest.height - 1
        } else {
            0
        });
        slots
            .translate(
                guest.group,
                first.min(last),
                u64::from(guest.stride.unsigned_abs()) * u64::from(guest.height),
            )
            .map_err(SurfaceError::Memory)?;
        guest
            .read_into(slots, &mut surface.fb)
            .map_err(SurfaceError::Memory)?;
        self.bytes += surface.fb.pixels().len();
        self.list[id as usize] = Some(surface);
        Ok(())
    }

    pub(crate) fn destroy(&mut self, id: u32) {
        if let Some(Some(s)) = self.list.get_mut(id as usize).map(Option::take) {
            self.bytes -= s.fb.pixels().len();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.list.iter_mut().for_each(|s| *s = None);
        self.bytes = 0;
    }

    pub(crate) fn get(&self, id: u32) -> Option<&OffScreen> {
        self.list.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut OffScreen> {
        self.list.get_mut(id as usize)?.as_mut()
    }

    pub(crate) fn count(&self) -> u32 {
        self.list.len() as u32
    }

    /// Host bytes a drawing may still spend on copies of surfaces it reads.
    pub(crate) fn room(&self) -> usize {
        self.budget.saturating_sub(self.bytes)
    }

    #[cfg(test)]
    pub(crate) fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }
}

/// A framebuffer's pixels as a canvas source; None when the host has no memory for the
/// copy.
pub(crate) fn pixels_of(fb: &Framebuffer) -> Option<Pixels> {
    let mut data = Vec::new();
    data.try_reserve_exact(fb.pixels().len() / 4).ok()?;
    data.extend(
        fb.pixels()
            .chunks(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) | 0xff00_0000),
    );
    Some(Pixels {
        width: fb.width,
        height: fb.height,
        data,
        alpha: false,
        format: 8,
    })
}
