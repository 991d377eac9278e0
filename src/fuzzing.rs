//! Entry points for the cargo-fuzz targets in `fuzz/` (built only with the `fuzzing`
//! feature): the library's modules stay private to the crate, and each fuzz target is one
//! call here.

use crate::canvas::{self, framebuffer::Framebuffer, Surfaces};
use crate::qxl::command::{self, GuestMemory};
use crate::qxl::draw;
use crate::qxl::image::Pixels;
use crate::qxl::memslot::MemError;

/// The fuzz input is the guest memory at `BASE..BASE + len`.
const BASE: u64 = 0x1000;

struct Memory<'a>(&'a [u8]);

impl GuestMemory for Memory<'_> {
    fn read(&self, _group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
        let err = MemError::OutOfSlot {
            address,
            size: len as u64,
        };
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

/// Arbitrary guest memory through every QXL command parser: drawables (native and
/// compat, with their images, brushes, masks, clips, paths and glyphs), surface and
/// cursor commands, monitors configs. Whatever parses is also rendered on a small canvas.
pub fn qxl_command(data: &[u8]) {
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
}

/// Arbitrary bytes from a client through the link handshake (header, `SpiceLinkMess`
/// and its caps), fed in the pieces the reactor would read. The first byte says whether
/// the hub refuses the request (cheap) or accepts it (a key is made, then the
/// mechanism and ticket phases see the rest).
pub fn link(data: &[u8]) {
    use crate::net::link::{Link, ServerCaps, Step};
    use crate::proto::link::LinkError;
    let Some((&accept, mut rest)) = data.split_first() else {
        return;
    };
    let mut link = Link::default();
    while !rest.is_empty() && link.wanted() > 0 {
        let n = link.wanted().min(rest.len()).min(512);
        let step = link.feed(&rest[..n], |_| {
            if accept & 1 == 1 {
                Ok(ServerCaps {
                    common: vec![0xb],
                    channel: vec![],
                    sasl: accept & 2 == 2,
                })
            } else {
                Err(LinkError::ChannelNotAvailable)
            }
        });
        rest = &rest[n..];
        if matches!(step, Step::Fail(_) | Step::Authenticate(_)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    /// The harness itself runs on hostile bytes without panicking.
    #[test]
    fn survives_arbitrary_memory() {
        for seed in 0u32..64 {
            let data: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            super::qxl_command(&data);
        }
    }

    #[test]
    fn link_survives_arbitrary_bytes() {
        for seed in 0u32..32 {
            let mut data: Vec<u8> = (0..600u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            data[0] = 0;
            data[1..5].copy_from_slice(b"REDQ");
            super::link(&data);
        }
    }
}
