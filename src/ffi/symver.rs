//! Binds an exported function to its spice-server symbol version node.
//!
//! rustc exports `#[no_mangle]` functions unversioned; a `.symver name, name@@NODE`
//! directive makes the linker attach the default version `NODE` (defined by the version
//! script `build.rs` passes), which is what QEMU's modules were linked against.

macro_rules! symver {
    ($name:ident, $node:literal) => {
        ::core::arch::global_asm!(concat!(
            ".symver ",
            stringify!($name),
            ", ",
            stringify!($name),
            "@@",
            $node
        ));
    };
}
