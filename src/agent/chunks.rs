//! The device's byte stream as `VDIChunkHeader` chunks, cut into pieces of at most
//! `VD_AGENT_MAX_DATA_SIZE` (what one AGENT_DATA carries to a client), as spice-server
//! reads it. Holds at most one chunk header and one piece.

use crate::proto::agent::{CHUNK_HEADER, MAX_DATA_SIZE};

#[derive(Default)]
pub(crate) struct ChunkReader {
    header: [u8; CHUNK_HEADER],
    have: usize,
    port: u32,
    /// Chunk bytes not yet read.
    left: u32,
    piece: Vec<u8>,
}

impl ChunkReader {
    /// Feeds device bytes; `emit(port, piece)` for every piece completed.
    pub(crate) fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(u32, Vec<u8>)) {
        while !data.is_empty() {
            if self.left == 0 && self.piece.is_empty() {
                let n = (CHUNK_HEADER - self.have).min(data.len());
                self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have < CHUNK_HEADER {
                    return;
                }
                self.have = 0;
                let word = |o: usize| u32::from_le_bytes(self.header[o..o + 4].try_into().unwrap());
                self.port = word(0);
                self.left = word(4);
                if self.left == 0 {
                    continue;
                }
            }
            let want = (MAX_DATA_SIZE - self.piece.len()).min(self.left as usize);
            let n = want.min(data.len());
            self.piece.extend_from_slice(&data[..n]);
            self.left -= n as u32;
            data = &data[n..];
            if self.piece.len() == MAX_DATA_SIZE || self.left == 0 {
                emit(self.port, std::mem::take(&mut self.piece));
            }
        }
    }

    /// Forgets a partial chunk (the agent went away).
    pub(crate) fn reset(&mut self) {
        *self = ChunkReader::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::agent::chunk;

    fn read(bytes: &[u8], step: usize) -> Vec<(u32, usize)> {
        let mut r = ChunkReader::default();
        let mut got = vec![];
        for part in bytes.chunks(step) {
            r.push(part, |port, piece| got.push((port, piece.len())));
        }
        got
    }

    #[test]
    fn chunks_become_pieces_of_at_most_2048() {
        let mut bytes = chunk(1, &[5; 5000]);
        bytes.extend(chunk(2, &[6; 10]));
        bytes.extend(chunk(1, &[]));
        let want = vec![(1, 2048), (1, 2048), (1, 904), (2, 10)];
        assert_eq!(read(&bytes, bytes.len()), want);
        assert_eq!(read(&bytes, 3), want, "split anywhere, same pieces");
    }
}
