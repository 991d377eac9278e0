//! Raster operations: spice's rop descriptors (`SPICE_ROPD_*`) and ternary rop3 codes.

pub(crate) use crate::proto::display::ROPD_OP_PUT as OP_PUT;

const INVERS_SRC: u16 = 1 << 0;
const INVERS_BRUSH: u16 = 1 << 1;
const INVERS_DEST: u16 = 1 << 2;
const OP_OR: u16 = 1 << 4;
const OP_AND: u16 = 1 << 5;
const OP_XOR: u16 = 1 << 6;
const OP_BLACKNESS: u16 = 1 << 7;
const OP_WHITENESS: u16 = 1 << 8;
const OP_INVERS: u16 = 1 << 9;
const INVERS_RES: u16 = 1 << 10;

/// Applies a rop descriptor to a source (`src`, or the brush when `src_is_brush`) and
/// the destination. Only the colour bits matter.
pub(crate) fn apply(desc: u16, src: u32, dst: u32, src_is_brush: bool) -> u32 {
    let invert_src = if src_is_brush {
        INVERS_BRUSH
    } else {
        INVERS_SRC
    };
    combine(desc, src, dst, invert_src, INVERS_DEST)
}

/// DRAW_OPAQUE's brush pass: the brush is the operand and the image just copied is the
/// destination, which `INVERS_SRC` (not `INVERS_DEST`) inverts, as in spice-common.
pub(crate) fn apply_opaque(desc: u16, brush: u32, copied: u32) -> u32 {
    combine(desc, brush, copied, INVERS_BRUSH, INVERS_SRC)
}

fn combine(desc: u16, src: u32, dst: u32, invert_src: u16, invert_dst: u16) -> u32 {
    let s = if desc & invert_src != 0 { !src } else { src };
    let d = if desc & invert_dst != 0 { !dst } else { dst };
    let r = if desc & OP_PUT != 0 {
        s
    } else if desc & OP_OR != 0 {
        s | d
    } else if desc & OP_AND != 0 {
        s & d
    } else if desc & OP_XOR != 0 {
        s ^ d
    } else {
        // BLACKNESS, WHITENESS and INVERS ignore every inversion flag (INVERS_RES too),
        // and a descriptor without an operation bit is a plain copy of the operand, as
        // spice-common's ropd_descriptor_to_rop maps them.
        return if desc & OP_BLACKNESS != 0 {
            0
        } else if desc & OP_WHITENESS != 0 {
            !0
        } else if desc & OP_INVERS != 0 {
            !dst
        } else {
            src
        };
    };
    if desc & INVERS_RES != 0 {
        !r
    } else {
        r
    }
}

/// A ternary raster operation (`rop3`): bit `(p<<2)|(s<<1)|d` of the code gives the
/// result for pattern/brush bit p, source bit s and destination bit d.
pub(crate) fn ternary(code: u8, p: u32, s: u32, d: u32) -> u32 {
    let mut r = 0;
    for i in 0..8u8 {
        if code & (1 << i) != 0 {
            let pp = if i & 4 != 0 { p } else { !p };
            let ss = if i & 2 != 0 { s } else { !s };
            let dd = if i & 1 != 0 { d } else { !d };
            r |= pp & ss & dd;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        assert_eq!(apply(OP_PUT, 0x12, 0x34, false), 0x12);
        assert_eq!(apply(OP_PUT | INVERS_SRC, 0x12, 0x34, false) & 0xff, 0xed);
        assert_eq!(
            apply(OP_PUT | INVERS_SRC, 0x12, 0x34, true),
            0x12,
            "brush not inverted by INVERS_SRC"
        );
        assert_eq!(apply(OP_XOR, 0xf0, 0xff, false), 0x0f);
        assert_eq!(apply(OP_AND | INVERS_RES, 0xf0, 0xff, false) & 0xff, 0x0f);
        assert_eq!(apply(0, 1, 2, false), 1);
    }

    #[test]
    fn fixed_results_ignore_the_inversion_flags() {
        // spice-common's ropd_descriptor_to_rop: BLACKNESS/WHITENESS/INVERS become CLEAR,
        // SET and INVERT whatever INVERS_RES/INVERS_DEST say; no operation bit is COPY of
        // the operand as it is.
        assert_eq!(apply(OP_BLACKNESS | INVERS_RES, 0x12, 0x34, true), 0);
        assert_eq!(apply(OP_WHITENESS | INVERS_RES, 0x12, 0x34, true), !0);
        let all = INVERS_RES | INVERS_DEST | INVERS_BRUSH;
        assert_eq!(apply(OP_INVERS | all, 0x12, 0x34, true), !0x34);
        assert_eq!(apply(all, 0x12, 0x34, true), 0x12);
    }

    #[test]
    fn ternary_codes() {
        // 0xCC = SRCCOPY, 0xF0 = PATCOPY, 0x66 = SRCINVERT (s ^ d), 0x00 = black.
        assert_eq!(ternary(0xcc, 1, 0xab, 2), 0xab);
        assert_eq!(ternary(0xf0, 0x5a, 1, 2), 0x5a);
        assert_eq!(ternary(0x66, 0, 0xf0, 0xff), 0x0f);
        assert_eq!(ternary(0x00, 1, 2, 3), 0);
    }
}
