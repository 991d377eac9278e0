//! Memory slots: how a QXL "physical" address (slot id | generation | offset) maps to a
//! host virtual address, with every bound checked.
//!
//! QEMU sets up group 0 as the host (slot 0 covers all of the address space, so its
//! addresses are plain host pointers) and group 1 for the guest's PCI BARs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemError {
    /// Address 0: a NULL pointer, never valid even where a slot covers it.
    Null,
    BadGroup(u32),
    BadSlot {
        group: u32,
        slot: u32,
    },
    EmptySlot {
        group: u32,
        slot: u32,
    },
    StaleGeneration {
        slot: u32,
        expected: u32,
        got: u32,
    },
    OutOfSlot {
        address: u64,
        size: u64,
    },
}

impl std::fmt::Display for MemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemError::Null => write!(f, "NULL address"),
            MemError::BadGroup(g) => write!(f, "memslot group {g} does not exist"),
            MemError::BadSlot { group, slot } => {
                write!(f, "slot {slot} out of range in group {group}")
            }
            MemError::EmptySlot { group, slot } => {
                write!(f, "slot {slot} of group {group} is not set up")
            }
            MemError::StaleGeneration {
                slot,
                expected,
                got,
            } => {
                write!(f, "slot {slot}: generation {got}, current is {expected}")
            }
            MemError::OutOfSlot { address, size } => {
                write!(f, "{size} bytes at {address:#x} fall outside their slot")
            }
        }
    }
}

/// One slot as QEMU describes it (`QXLDevMemSlot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub generation: u32,
    pub virt_start: u64,
    pub virt_end: u64,
    pub addr_delta: u64,
}

/// The slot layout announced by `get_init_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub groups: u32,
    pub slots: u32,
    pub gen_bits: u8,
    pub id_bits: u8,
    /// How many surfaces the device supports (ids 0..n).
    pub n_surfaces: u32,
}

impl Layout {
    /// Clamps what the device announced to sane sizes (a hostile or buggy device must
    /// not make us allocate gigabytes or shift by 64).
    pub(crate) fn sanitized(self) -> Layout {
        let id_bits = self.id_bits.min(16);
        let gen_bits = self.gen_bits.min(16);
        Layout {
            groups: self.groups.clamp(1, 16),
            slots: self.slots.clamp(1, 256),
            gen_bits,
            id_bits,
            n_surfaces: self.n_surfaces.clamp(1, 4096),
        }
    }
}

pub(crate) struct MemSlots {
    layout: Layout,
    slots: Vec<Vec<Option<Slot>>>,
}

impl MemSlots {
    pub(crate) fn new(layout: Layout) -> MemSlots {
        let layout = layout.sanitized();
        MemSlots {
            layout,
            slots: vec![vec![None; layout.slots as usize]; layout.groups as usize],
        }
    }

    fn entry(&mut self, group: u32, slot: u32) -> Result<&mut Option<Slot>, MemError> {
        self.slots
            .get_mut(group as usize)
            .ok_or(MemError::BadGroup(group))?
            .get_mut(slot as usize)
            .ok_or(MemError::BadSlot { group, slot })
    }

    pub(crate) fn add(&mut self, group: u32, slot: u32, value: Slot) -> Result<(), MemError> {
        *self.entry(group, slot)? = Some(value);
        Ok(())
    }

    pub(crate) fn remove(&mut self, group: u32, slot: u32) -> Result<(), MemError> {
        *self.entry(group, slot)? = None;
        Ok(())
    }

    pub(crate) fn reset(&mut self) {
        for group in &mut self.slots {
            group.iter_mut().for_each(|s| *s = None);
        }
    }

    /// Host address of `size` bytes at guest address `address` in `group`, checked to
    /// lie entirely inside one valid slot of the current generation.
    pub(crate) fn translate(&self, group: u32, address: u64, size: u64) -> Result<u64, MemError> {
        if address == 0 {
            return Err(MemError::Null);
        }
        let Layout {
            gen_bits, id_bits, ..
        } = self.layout;
        let offset_bits = 64 - u32::from(gen_bits) - u32::from(id_bits);
        let slot_id = if id_bits == 0 {
            0
        } else {
            (address >> (64 - u32::from(id_bits))) as u32
        };
        let generation = if gen_bits == 0 {
            0
        } else {
            ((address >> offset_bits) & ((1u64 << gen_bits) - 1)) as u32
        };
        let offset = if offset_bits >= 64 {
            address
        } else {
            address & ((1u64 << offset_bits) - 1)
        };
        let slot = self
            .slots
            .get(group as usize)
            .ok_or(MemError::BadGroup(group))?
            .get(slot_id as usize)
            .ok_or(MemError::BadSlot {
                group,
                slot: slot_id,
            })?
            .ok_or(MemError::EmptySlot {
                group,
                slot: slot_id,
            })?;
        if slot.generation != generation {
            return Err(MemError::StaleGeneration {
                slot: slot_id,
                expected: slot.generation,
                got: generation,
            });
        }
        let out = MemError::OutOfSlot { address, size };
        let start = offset.checked_add(slot.addr_delta).ok_or(out)?;
        let end = start.checked_add(size).ok_or(out)?;
        if start < slot.virt_start || end > slot.virt_end {
            return Err(out);
        }
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_like() -> MemSlots {
        let mut m = MemSlots::new(Layout {
            groups: 2,
            slots: 8,
            gen_bits: 8,
            id_bits: 8,
            n_surfaces: 16,
        });
        // Group 0: host identity mapping, as QEMU registers it.
        m.add(
            0,
            0,
            Slot {
                generation: 0,
                virt_start: 0,
                virt_end: u64::MAX,
                addr_delta: 0,
            },
        )
        .unwrap();
        // Group 1, slot 1: a 1 MiB BAR at host 0x7000_0000 that the guest sees at 0xf000_0000.
        m.add(
            1,
            1,
            Slot {
                generation: 3,
                virt_start: 0x7000_0000,
                virt_end: 0x7010_0000,
                addr_delta: 0x7000_0000,
            },
        )
        .unwrap();
        m
    }

    fn guest_addr(slot: u64, gen: u64, offset: u64) -> u64 {
        (slot << 56) | (gen << 48) | offset
    }

    #[test]
    fn host_group_is_identity() {
        let m = qemu_like();
        assert_eq!(m.translate(0, 0x5555_0000, 64), Ok(0x5555_0000));
    }

    #[test]
    fn guest_slot_translates_inside_bounds() {
        let m = qemu_like();
        assert_eq!(m.translate(1, guest_addr(1, 3, 0x100), 16), Ok(0x7000_0100));
        assert_eq!(
            m.translate(1, guest_addr(1, 3, 0xf_fff0), 16),
            Ok(0x700f_fff0)
        );
    }

    #[test]
    fn rejects_every_kind_of_bad_address() {
        let m = qemu_like();
        assert!(matches!(
            m.translate(1, guest_addr(1, 3, 0xf_fff1), 16),
            Err(MemError::OutOfSlot { .. })
        ));
        assert!(matches!(
            m.translate(1, guest_addr(1, 2, 0), 1),
            Err(MemError::StaleGeneration { .. })
        ));
        assert!(matches!(
            m.translate(1, guest_addr(2, 0, 0), 1),
            Err(MemError::EmptySlot { .. })
        ));
        assert!(matches!(
            m.translate(1, guest_addr(9, 0, 0), 1),
            Err(MemError::BadSlot { .. })
        ));
        assert!(matches!(m.translate(5, 1, 1), Err(MemError::BadGroup(5))));
        assert_eq!(m.translate(0, 0, 1), Err(MemError::Null));
        assert!(matches!(
            m.translate(1, guest_addr(1, 3, 0), u64::MAX),
            Err(MemError::OutOfSlot { .. })
        ));
    }

    #[test]
    fn reset_and_remove_forget_slots() {
        let mut m = qemu_like();
        m.remove(1, 1).unwrap();
        assert!(m.translate(1, guest_addr(1, 3, 0), 1).is_err());
        m.reset();
        assert!(m.translate(0, 0x1000, 1).is_err());
        assert!(m
            .add(
                7,
                0,
                Slot {
                    generation: 0,
                    virt_start: 0,
                    virt_end: 1,
                    addr_delta: 0
                }
            )
            .is_err());
    }
}
