//! `spice-version.h`: the spice-server version this library is a drop-in for.

/// 0x000f01 = 0.15.1 (`(major << 16) | (minor << 8) | micro`). QEMU compiles its
/// 0.15-only code paths (`attached_worker`, `spice_qxl_set_device_info`, …) when this is
/// at least 0x000f00; a value of 0x000f03 or more would make later QEMU expect entry
/// points 0.15.1 does not have.
pub const SPICE_SERVER_VERSION: u32 = 0x000f01;
