//! The one place that reads guest (or QEMU-owned) memory.
//!
//! Addresses reaching this module have been checked by `MemSlots::translate` to lie in
//! memory QEMU mapped for the device. Reads copy out once, so a guest changing the
//! memory afterwards cannot change what we validated.

use super::memslot::{MemError, MemSlots};

/// Copies `len` bytes at guest address `address` of `group`.
pub(crate) fn read_bytes(
    slots: &MemSlots,
    group: u32,
    address: u64,
    len: usize,
) -> Result<Vec<u8>, MemError> {
    let host = slots.translate(group, address, len as u64)?;
    let mut out = Vec::with_capacity(len);
    // SAFETY: `translate` checked [host, host+len) lies inside a slot QEMU registered as
    // mapped device memory that stays mapped while the slot exists (QEMU removes slots
    // only through us, on this same worker thread). A volatile-free byte copy is fine:
    // the guest may race with us, but we only ever use the copy. The copy initialises
    // all `len` bytes of the capacity before `set_len` exposes them (no zeroing pass).
    unsafe {
        std::ptr::copy_nonoverlapping(host as usize as *const u8, out.as_mut_ptr(), len);
        out.set_len(len);
    }
    Ok(out)
}

/// Host address of the `QXLReleaseInfo` at the start of a command, checked to be mapped;
/// QEMU's `release_resource` wants exactly this pointer.
pub(crate) fn release_info_address(
    slots: &MemSlots,
    group: u32,
    command: u64,
) -> Result<u64, MemError> {
    slots.translate(group, command, 8)
}

/// Guest memory as the command parser reads it: through the slots, copied out once.
pub(crate) struct SlotMemory<'a>(pub &'a MemSlots);

impl super::command::GuestMemory for SlotMemory<'_> {
    fn read(&self, group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
        read_bytes(self.0, group, address, len)
    }

    fn read_into(&self, group: u32, address: u64, out: &mut [u8]) -> Result<(), MemError> {
        let host = self.0.translate(group, address, out.len() as u64)?;
        // SAFETY: as in `read_bytes`: [host, host+len) is checked, mapped device memory;
        // `out` is a distinct, writable host slice of exactly that length.
        unsafe {
            std::ptr::copy_nonoverlapping(host as usize as *const u8, out.as_mut_ptr(), out.len());
        }
        Ok(())
    }

    fn check(&self, group: u32, address: u64, len: usize) -> Result<(), MemError> {
        self.0.translate(group, address, len as u64).map(drop)
    }

    fn append_words(
        &self,
        group: u32,
        address: u64,
        count: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), MemError> {
        let len = count.checked_mul(4).ok_or(MemError::OutOfSlot {
            address,
            size: u64::MAX,
        })?;
        let host = self.0.translate(group, address, len as u64)?;
        out.reserve(count);
        // SAFETY: as in `read_bytes`: [host, host+len) is checked, mapped device memory.
        // `reserve` made room for `count` more words after `out.len()`; the copy fills
        // exactly those (any bit pattern is a valid u32; u32 words are little-endian on
        // every target this library builds for, see the assertion below) before
        // `set_len` exposes them. The source is plain bytes, so its alignment is free.
        unsafe {
            let dst = out.as_mut_ptr().add(out.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(host as usize as *const u8, dst, len);
            out.set_len(out.len() + count);
        }
        Ok(())
    }
}

// Guest pixels are little-endian words; `append_words` copies them as they are.
const _: () = assert!(cfg!(target_endian = "little"));

/// Writes `data` to guest address `address` of `group` (rendering a surface back into
/// the guest's memory for `update_area`).
pub(crate) fn write_bytes(
    slots: &MemSlots,
    group: u32,
    address: u64,
    data: &[u8],
) -> Result<(), MemError> {
    let host = slots.translate(group, address, data.len() as u64)?;
    // SAFETY: `translate` checked [host, host+len) lies inside a slot QEMU registered as
    // mapped device memory, which QEMU keeps mapped while the slot exists; the guest may
    // read concurrently, which only means it sees a partly updated surface, as with any
    // device writing its framebuffer.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), host as usize as *mut u8, data.len()) };
    Ok(())
}
