//! The lexical layer of the recording format: whitespace-separated words and numbers
//! (read as C's `fscanf` reads them: any run of whitespace separates, none is required
//! before a newline) and `binary` blobs of raw bytes. Every size is capped, so a hostile
//! file can neither crash the reader nor make it allocate more than it actually holds.

use std::io::{self, BufRead, Read};

/// Longest word or number the format has; anything longer is garbage.
const MAX_WORD: usize = 64;
/// Largest blob accepted (a 4096x4096 32-bit surface is 64 MiB).
pub(crate) const MAX_BLOB: u64 = 256 << 20;
/// Blobs are read in steps of this, so a truncated file never causes a large allocation.
const READ_STEP: u64 = 1 << 20;

/// Why a recording cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// Reading the file failed.
    Io(String),
    /// The file ends inside a record (a recorder interrupted mid-write).
    Truncated { offset: u64 },
    /// Something else than the format allows.
    Malformed {
        offset: u64,
        expected: String,
        found: String,
    },
    /// A size beyond what this reader accepts.
    TooLarge { what: &'static str, size: u64 },
    /// A valid record this reader does not replay.
    Unsupported(&'static str),
    /// No surface id became free within the wait (the server never released a destroy).
    SurfaceIdsExhausted,
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Io(e) => write!(f, "read error: {e}"),
            ReplayError::Truncated { offset } => {
                write!(f, "the recording ends inside a record (byte {offset})")
            }
            ReplayError::Malformed {
                offset,
                expected,
                found,
            } => write!(f, "byte {offset}: expected {expected}, found {found:?}"),
            ReplayError::TooLarge { what, size } => {
                write!(f, "{what} of {size} bytes is too large")
            }
            ReplayError::Unsupported(what) => write!(f, "unsupported record: {what}"),
            ReplayError::SurfaceIdsExhausted => {
                write!(f, "no free surface id (none was released in time)")
            }
        }
    }
}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> Self {
        ReplayError::Io(e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, ReplayError>;

/// Reads words, numbers and blobs from a recording.
pub(crate) struct Scanner<R: BufRead> {
    input: R,
    offset: u64,
}

impl<R: BufRead> Scanner<R> {
    pub(crate) fn new(input: R) -> Self {
        Scanner { input, offset: 0 }
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        self.input.consume(1);
        self.offset += 1;
    }

    fn skip_space(&mut self) -> Result<()> {
        while let Some(b) = self.peek()? {
            if !b.is_ascii_whitespace() && b != 0x0b {
                break;
            }
            self.bump();
        }
        Ok(())
    }

    /// True when only whitespace is left.
    pub(crate) fn at_end(&mut self) -> Result<bool> {
        self.skip_space()?;
        Ok(self.peek()?.is_none())
    }

    /// The next word, without consuming it (None at the end of the file).
    pub(crate) fn peek_word(&mut self) -> Result<Option<String>> {
        self.skip_space()?;
        let buf = self.input.fill_buf()?;
        let len = buf
            .iter()
            .take(MAX_WORD)
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(buf.len().min(MAX_WORD));
        Ok((len > 0).then(|| String::from_utf8_lossy(&buf[..len]).into_owned()))
    }

    /// The next word: up to whitespace or `stop`, at most `MAX_WORD` bytes.
    fn word_until(&mut self, stop: u8) -> Result<String> {
        self.skip_space()?;
        let start = self.offset;
        let mut word = Vec::new();
        while let Some(b) = self.peek()? {
            if b.is_ascii_whitespace() || b == stop {
                break;
            }
            if word.len() == MAX_WORD {
                return Err(self.malformed_at(start, "a word", &word));
            }
            word.push(b);
            self.bump();
        }
        if word.is_empty() {
            return Err(match self.peek()? {
                None => ReplayError::Truncated {
                    offset: self.offset,
                },
                Some(b) => self.malformed_at(start, "a word", &[b]),
            });
        }
        Ok(String::from_utf8_lossy(&word).into_owned())
    }

    fn malformed_at(&self, offset: u64, expected: &str, found: &[u8]) -> ReplayError {
        ReplayError::Malformed {
            offset,
            expected: expected.to_string(),
            found: String::from_utf8_lossy(found).into_owned(),
        }
    }

    /// Consumes the word `word` or fails.
    pub(crate) fn expect(&mut self, word: &str) -> Result<()> {
        let start = self.offset;
        let got = self.word_until(0)?;
        if got == word {
            Ok(())
        } else {
            Err(self.malformed_at(start, &format!("{word:?}"), got.as_bytes()))
        }
    }

    /// A signed decimal number that fits in 64 bits.
    pub(crate) fn int(&mut self) -> Result<i64> {
        let start = self.offset;
        let w = self.word_until(b':')?;
        w.parse::<i64>()
            .map_err(|_| self.malformed_at(start, "a number", w.as_bytes()))
    }

    /// An unsigned 64-bit decimal number (`%PRIu64`).
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let start = self.offset;
        let w = self.word_until(b':')?;
        w.parse::<u64>()
            .map_err(|_| self.malformed_at(start, "an unsigned number", w.as_bytes()))
    }

    /// A number printed from a 32-bit field with `%d` or `%u`: both spellings of the
    /// same bits are accepted, as `fscanf` does.
    pub(crate) fn bits32(&mut self) -> Result<u32> {
        let start = self.offset;
        let v = self.int()?;
        if (-(1i64 << 31)..(1i64 << 32)).contains(&v) {
            Ok(v as u32)
        } else {
            Err(self.malformed_at(start, "a 32-bit number", v.to_string().as_bytes()))
        }
    }

    /// `binary <compressed> <prefix> <size>:<size bytes>` and the newline after it.
    pub(crate) fn binary(&mut self, prefix: &str) -> Result<Vec<u8>> {
        self.expect("binary")?;
        let compressed = self.int()?;
        self.expect(prefix)?;
        let size = self.u64()?;
        let start = self.offset;
        match self.peek()? {
            Some(b':') => self.bump(),
            None => {
                return Err(ReplayError::Truncated {
                    offset: self.offset,
                })
            }
            Some(b) => return Err(self.malformed_at(start, "':'", &[b])),
        }
        if compressed != 0 {
            // spice-server's recorder never compresses (WITH_ZLIB is 0).
            return Err(ReplayError::Unsupported("zlib-compressed binary"));
        }
        if size > MAX_BLOB {
            return Err(ReplayError::TooLarge {
                what: "binary",
                size,
            });
        }
        let mut data = Vec::with_capacity(size.min(READ_STEP) as usize);
        let got = (&mut self.input).take(size).read_to_end(&mut data)?;
        self.offset += got as u64;
        if (got as u64) < size {
            return Err(ReplayError::Truncated {
                offset: self.offset,
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &[u8]) -> Scanner<&[u8]> {
        Scanner::new(s)
    }

    #[test]
    fn words_and_numbers_like_fscanf() {
        let mut s = scan(b"  rect bbox -1 2\n3 4294967295\n");
        s.expect("rect").unwrap();
        s.expect("bbox").unwrap();
        assert_eq!(s.int().unwrap(), -1);
        assert_eq!(s.bits32().unwrap(), 2);
        assert_eq!(s.bits32().unwrap(), 3);
        assert_eq!(s.bits32().unwrap(), u32::MAX);
        assert!(s.at_end().unwrap());
    }

    #[test]
    fn negative_and_unsigned_spellings_of_32_bits_agree() {
        let mut s = scan(b"-16777216 4278190080");
        assert_eq!(s.bits32().unwrap(), s.bits32().unwrap());
    }

    #[test]
    fn binary_blob_may_hold_any_byte() {
        let mut s = scan(b"binary 0 data 5:\n a\0b\nevent");
        assert_eq!(s.binary("data").unwrap(), b"\n a\0b");
        assert_eq!(s.peek_word().unwrap().as_deref(), Some("event"));
    }

    #[test]
    fn truncated_blob_is_reported_not_allocated() {
        let mut s = scan(b"binary 0 data 200000000:abc");
        assert_eq!(s.binary("data"), Err(ReplayError::Truncated { offset: 27 }));
    }

    #[test]
    fn oversized_blob_is_refused_before_reading() {
        let mut s = scan(b"binary 0 data 99999999999999:abc");
        assert!(matches!(
            s.binary("data"),
            Err(ReplayError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            scan(b"rect x").expect("point"),
            Err(ReplayError::Malformed { .. })
        ));
        assert!(matches!(
            scan(b"12x").int(),
            Err(ReplayError::Malformed { .. })
        ));
        assert!(matches!(
            scan(b"99999999999").bits32(),
            Err(ReplayError::Malformed { .. })
        ));
        let long = vec![b'a'; 1000];
        assert!(matches!(
            scan(&long).expect("a"),
            Err(ReplayError::Malformed { .. })
        ));
        assert!(matches!(
            scan(b"binary 1 data 3:abc\n").binary("data"),
            Err(ReplayError::Unsupported(_))
        ));
        assert!(matches!(
            scan(b"  ").int(),
            Err(ReplayError::Truncated { .. })
        ));
    }
}
