//! The C ABI of spice-server 0.15.1's public headers, in Rust.
//!
//! Every `#[repr(C)]` struct, callback type and constant that `<spice.h>` defines, with
//! the exact C names, so that the rest of the crate can write
//! `crate::ffi::abi::QXLInstance`. One file per public header; `build_support/headers.rs`
//! turns each of them (plus the exported functions in `src/ffi/api/<same name>.rs`)
//! into `include/spice-server/spice-<name>.h` with cbindgen:
//!
//! | module        | header              |
//! |---------------|---------------------|
//! | `core`        | `spice-core.h`      |
//! | `server`      | `spice-server.h`    |
//! | `qxl`         | `spice-qxl.h`       |
//! | `input`       | `spice-input.h`     |
//! | `audio`       | `spice-audio.h`     |
//! | `char_device` | `spice-char.h`      |
//! | `migration`   | `spice-migration.h` |
//! | `replay`      | `spice-replay.h`    |
//! | `version`     | `spice-version.h`   |
//!
//! `protocol` holds the few spice-protocol types (`<spice/qxl_dev.h>`,
//! `<spice/vd_agent.h>`, `<spice/enums.h>`) the API refers to. They are never emitted
//! into our headers: those include spice-protocol's own, exactly as the C headers do.
//!
//! Rules followed here:
//! * C enums that C code passes *into* the library are integer aliases plus `pub const`
//!   values, never Rust enums (an out-of-range value from C would be undefined behaviour).
//! * Callbacks are `Option<unsafe extern "C" fn(..)>` (a NULL slot is `None`).
//! * Handle types the library owns (`SpiceServer`, `QXLState`, `SpiceKbdState`, …) and
//!   the ones QEMU owns (`SpiceTimer`, `SpiceWatch`) are opaque: zero-sized, not
//!   `repr(C)` (so cbindgen emits `typedef struct X X;` only), never dereferenced.
//! * Layouts are pinned by compile-time assertions in `layout` (x86-64 Linux) and, against
//!   the C headers, by `tests/abi/run.sh`.

#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

pub mod audio;
pub mod char_device;
pub mod core;
pub mod input;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod layout;
pub mod migration;
pub mod protocol;
pub mod qxl;
pub mod replay;
pub mod server;
pub mod version;

pub use self::audio::*;
pub use self::char_device::*;
pub use self::core::*;
pub use self::input::*;
pub use self::migration::*;
pub use self::protocol::*;
pub use self::qxl::*;
pub use self::replay::*;
pub use self::server::*;
pub use self::version::*;
