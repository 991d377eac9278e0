//! Capability bitmaps: cap N is bit N%32 of word N/32. Unknown bits are kept, so a newer
//! client is never refused for announcing something we do not know.
// The whole table from spice.proto, the numbers no channel sends yet included.
#![allow(dead_code)]

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Caps(pub Vec<u32>);

impl Caps {
    pub(crate) fn from_bits(bits: &[u32]) -> Caps {
        let mut caps = Caps::default();
        for &b in bits {
            caps.set(b);
        }
        caps
    }

    pub(crate) fn has(&self, bit: u32) -> bool {
        self.0
            .get((bit / 32) as usize)
            .is_some_and(|w| w & (1 << (bit % 32)) != 0)
    }

    pub(crate) fn set(&mut self, bit: u32) {
        let word = (bit / 32) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (bit % 32);
    }

    pub(crate) fn clear(&mut self, bit: u32) {
        if let Some(w) = self.0.get_mut((bit / 32) as usize) {
            *w &= !(1 << (bit % 32));
        }
    }
}

/// Common capabilities (`SPICE_COMMON_CAP_*`).
pub(crate) mod common {
    pub(crate) const AUTH_SELECTION: u32 = 0;
    pub(crate) const AUTH_SPICE: u32 = 1;
    pub(crate) const AUTH_SASL: u32 = 2;
    pub(crate) const MINI_HEADER: u32 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_words() {
        let c = Caps::from_bits(&[0, 1, 3]);
        assert_eq!(c.0, vec![0x0b]);
        assert!(c.has(3) && !c.has(2) && !c.has(100));
        let mut d = Caps(vec![0, 0x8000_0000]);
        assert!(d.has(63));
        d.set(64);
        assert_eq!(d.0.len(), 3);
    }
}
