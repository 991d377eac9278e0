//! Feeds arbitrary guest memory to every QXL command parser: drawables (native and
//! compat, with their images, brushes, masks, clips, paths and glyphs), surface and
//! cursor commands, monitors configs. Parsing must never panic or allocate without
//! bound; whatever parses is also rendered on a small canvas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spice_server::canvas::{self, Surfaces};
use spice_server::qxl::command::{self, GuestMemory};
use spice_server::qxl::draw;
use spice_server::qxl::image::Pixels;
use spice_server::qxl::memslot::MemError;
use spice_server::canvas::framebuffer::Framebuffer;

/// The fuzz input is the guest memory at BASE..BASE+len.
const BASE: u64 = 0x1000;

struct Memory<'a>(&'a [u8]);

impl GuestMemory for Memory<'_> {
    fn read(&self, _group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
        let err = MemError::OutOfSlot { address, size: len as u64 };
        let start = address.checked_sub(BASE).ok_or(err)? as usize;
        let end = start.checked_add(len).ok_or(err)?;
        self.0.get(start..end).map(<[u8]>::to_vec).ok_or(err)
    }
}

struct NoSurfaces;

impl Surfaces for NoSurfaces {
    fn pixels_of(&self, _: u32) -> Option<Pixels> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let mem = Memory(data);
    for compat in [false, true] {
        if let Ok(d) = draw::parse(&mem, 0, BASE, compat) {
            if let Some(mut fb) = Framebuffer::new(64, 48) {
                canvas::render(&mut fb, &d, &NoSurfaces);
            }
        }
    }
    let _ = draw::parse_surface_command(&mem, 0, BASE);
    let _ = command::parse_cursor(&mem, 0, BASE);
    let _ = command::parse_monitors(&mem, 0, BASE);
});
