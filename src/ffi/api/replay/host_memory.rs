//! Host memory for replayed commands: each laid-out block (`replay::layout`) is copied
//! into its own allocation that Rust never references again while the server (C or
//! another thread) reads and writes it, and the links between blocks are written as host
//! addresses. Freed when the command is freed.

use crate::replay::layout::Layout;
use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use std::ptr::NonNull;

/// pixman and the canvas want 4-byte aligned pixels; 16 covers every field.
const ALIGN: usize = 16;

/// One zero-initialised allocation, owned through a raw pointer only.
pub(super) struct HostBlock {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the block is plain bytes with no thread affinity; the replay hands its address
// to the server's threads, which is the point of it.
unsafe impl Send for HostBlock {}
// SAFETY: shared access is only `address()`; writes happen before the block is shared.
unsafe impl Sync for HostBlock {}

impl HostBlock {
    /// A copy of `bytes` (at least 1 byte long, so every block has its own address).
    pub(super) fn new(bytes: &[u8]) -> Option<HostBlock> {
        let len = bytes.len().max(1);
        let layout = AllocLayout::from_size_align(len, ALIGN).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        // SAFETY: `ptr` is a fresh allocation of `len >= bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), bytes.len()) };
        Some(HostBlock { ptr, len })
    }

    pub(super) fn address(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Writes `value` at byte `at`; false when it would not fit.
    fn write_u64(&mut self, at: usize, value: u64) -> bool {
        if at.checked_add(8).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: [at, at+8) lies inside the allocation (checked above); unaligned write.
        unsafe { (self.ptr.as_ptr().add(at) as *mut u64).write_unaligned(value.to_le()) };
        true
    }
}

impl Drop for HostBlock {
    fn drop(&mut self) {
        if let Ok(layout) = AllocLayout::from_size_align(self.len, ALIGN) {
            // SAFETY: allocated in `new` with this very layout, freed once (we own it).
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// A command in host memory: block 0 is its `QXLCommandExt`.
pub(super) struct HostCommand {
    blocks: Vec<HostBlock>,
    /// Replay surface id to free once the server released this (destroy) command.
    pub frees_surface: Option<u32>,
}

impl HostCommand {
    /// Copies `layout` out and resolves its links; None if memory ran out or a link
    /// does not fit (a bug in the layout, never worth writing out of bounds for).
    pub(super) fn materialise(layout: &Layout) -> Option<HostCommand> {
        let mut blocks = layout
            .blocks
            .iter()
            .map(|b| HostBlock::new(&b.bytes))
            .collect::<Option<Vec<_>>>()?;
        for (i, block) in layout.blocks.iter().enumerate() {
            for link in &block.links {
                let target = blocks.get(link.target)?;
                if link.offset > target.len {
                    return None;
                }
                let address = target.address() + link.offset as u64;
                if !blocks[i].write_u64(link.at, address) {
                    return None;
                }
            }
        }
        blocks.first()?;
        Some(HostCommand {
            blocks,
            frees_surface: layout.frees_surface,
        })
    }

    /// Address of the `QXLCommandExt` handed to the caller.
    pub(super) fn address(&self) -> u64 {
        self.blocks.first().map_or(0, HostBlock::address)
    }
}
