//! Test support: guest memory as a few byte ranges at fake addresses.

use super::command::GuestMemory;
use super::memslot::MemError;
use std::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct FakeMemory(pub BTreeMap<u64, Vec<u8>>);

impl GuestMemory for FakeMemory {
    fn read(&self, _group: u32, address: u64, len: usize) -> Result<Vec<u8>, MemError> {
        let out = MemError::OutOfSlot {
            address,
            size: len as u64,
        };
        let (start, bytes) = self.0.range(..=address).next_back().ok_or(out)?;
        let off = (address - start) as usize;
        bytes.get(off..off + len).map(<[u8]>::to_vec).ok_or(out)
    }
}

/// A `QXLDataChunk` header followed by `data`.
pub(crate) fn chunk(size: u32, next: u64, data: &[u8]) -> Vec<u8> {
    let mut c = size.to_le_bytes().to_vec();
    c.extend_from_slice(&0u64.to_le_bytes());
    c.extend_from_slice(&next.to_le_bytes());
    c.extend_from_slice(data);
    c
}

/// A `QXLImage` of type BITMAP (descriptor + bitmap header).
pub(crate) fn bitmap_image(
    format: u8,
    flags: u8,
    w: u32,
    h: u32,
    stride: u32,
    data: u64,
) -> Vec<u8> {
    let mut b = vec![0u8; 48];
    b[10..14].copy_from_slice(&w.to_le_bytes());
    b[14..18].copy_from_slice(&h.to_le_bytes());
    b[18] = format;
    b[19] = flags;
    b[20..24].copy_from_slice(&w.to_le_bytes());
    b[24..28].copy_from_slice(&h.to_le_bytes());
    b[28..32].copy_from_slice(&stride.to_le_bytes());
    b[40..48].copy_from_slice(&data.to_le_bytes());
    b
}
