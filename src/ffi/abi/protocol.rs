//! The spice-protocol types the server API refers to.
//!
//! In C these come from spice-protocol's headers (`<spice/qxl_dev.h>`,
//! `<spice/vd_agent.h>`, `<spice/enums.h>`), which our generated headers include just
//! as spice-server's do; this file is therefore **not** fed to cbindgen. Structs that
//! spice-protocol declares inside `start-packed.h`/`end-packed.h` are
//! `#[repr(C, packed)]` here: read their fields by value (`let c = ext.cmd;`), never
//! take references to them.

use std::ffi::c_uint;

/// A 64-bit "physical" address as the QXL device sees it: slot id, generation and
/// offset, translated through a memory slot (`QXLDevMemSlot`).
pub type QXLPHYSICAL = u64;

/// A rectangle in surface coordinates (`<spice/qxl_dev.h>`, packed, 16 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLRect {
    pub top: i32,
    pub left: i32,
    pub bottom: i32,
    pub right: i32,
}

impl From<QXLRect> for crate::geometry::Rect {
    fn from(r: QXLRect) -> Self {
        crate::geometry::Rect {
            top: r.top,
            left: r.left,
            bottom: r.bottom,
            right: r.right,
        }
    }
}

impl From<crate::geometry::Rect> for QXLRect {
    fn from(r: crate::geometry::Rect) -> Self {
        QXLRect {
            top: r.top,
            left: r.left,
            bottom: r.bottom,
            right: r.right,
        }
    }
}

/// One QXL ring entry (packed, 16 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLCommand {
    /// Address of the command body (`QXLDrawable`, `QXLSurfaceCmd`, `QXLCursorCmd`, …).
    pub data: QXLPHYSICAL,
    /// `QXL_CMD_*` (C name: `type`).
    pub type_: u32,
    pub padding: u32,
}

/// `QXLCommandExt.flags`: a QXL revision-1 ("compat") command.
pub const QXL_COMMAND_FLAG_COMPAT: u32 = 1 << 0;
/// `QXLCommandExt.flags`: a compat command from a 16 bpp mode.
pub const QXL_COMMAND_FLAG_COMPAT_16BPP: u32 = 2;

/// A command as `get_command`/`get_cursor_command` return it (packed, 24 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLCommandExt {
    pub cmd: QXLCommand,
    /// Memory slot group `cmd.data` belongs to (QEMU: 0 = host, 1 = guest).
    pub group_id: u32,
    /// `QXL_COMMAND_FLAG_*`.
    pub flags: u32,
}

/// First member of every releasable QXL command body (packed union, 8 bytes): the
/// guest's id on the way in, the release-ring link on the way out.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub union QXLReleaseInfo {
    pub id: u64,
    pub next: u64,
}

/// What `QXLInterface.release_resource` receives, **by value** (not packed, 16 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QXLReleaseInfoExt {
    /// Host address of the `QXLReleaseInfo` inside the released command.
    pub info: *mut QXLReleaseInfo,
    /// Memory slot group of the released command.
    pub group_id: u32,
}

/// One monitor of a QXL monitors configuration (packed, 28 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QXLHead {
    pub id: u32,
    pub surface_id: u32,
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
    pub flags: u32,
}

/// The guest's monitors configuration (packed, 4 bytes + `count` × `QXLHead`).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QXLMonitorsConfig {
    pub count: u16,
    /// 0 = no limit given by the driver.
    pub max_allowed: u16,
    pub heads: [QXLHead; 0],
}

/// One monitor of a client's monitors configuration (`<spice/vd_agent.h>`, packed, 20 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VDAgentMonConfig {
    pub height: u32,
    pub width: u32,
    pub depth: u32,
    pub x: i32,
    pub y: i32,
}

/// `VDAgentMonitorsConfig.flags`: `x`/`y` are meaningful.
pub const VD_AGENT_CONFIG_MONITORS_FLAG_USE_POS: u32 = 1 << 0;
/// `VDAgentMonitorsConfig.flags`: `num_of_monitors` × `VDAgentMonitorMM` follow the monitors.
pub const VD_AGENT_CONFIG_MONITORS_FLAG_PHYSICAL_SIZE: u32 = 1 << 1;

/// A client's monitors configuration (packed, 8 bytes + `num_of_monitors` ×
/// `VDAgentMonConfig`, then optionally as many `VDAgentMonitorMM`).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VDAgentMonitorsConfig {
    pub num_of_monitors: u32,
    /// `VD_AGENT_CONFIG_MONITORS_FLAG_*`.
    pub flags: u32,
    pub monitors: [VDAgentMonConfig; 0],
}

/// Physical size of one monitor in millimetres (packed, 4 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VDAgentMonitorMM {
    pub height: u16,
    pub width: u16,
}

/// `enum SpiceImageCompression` (`<spice/enums.h>`); an integer here because C passes it in.
pub type SpiceImageCompression = c_uint;
pub const SPICE_IMAGE_COMPRESSION_INVALID: SpiceImageCompression = 0;
pub const SPICE_IMAGE_COMPRESSION_OFF: SpiceImageCompression = 1;
pub const SPICE_IMAGE_COMPRESSION_AUTO_GLZ: SpiceImageCompression = 2;
pub const SPICE_IMAGE_COMPRESSION_AUTO_LZ: SpiceImageCompression = 3;
pub const SPICE_IMAGE_COMPRESSION_QUIC: SpiceImageCompression = 4;
pub const SPICE_IMAGE_COMPRESSION_GLZ: SpiceImageCompression = 5;
pub const SPICE_IMAGE_COMPRESSION_LZ: SpiceImageCompression = 6;
pub const SPICE_IMAGE_COMPRESSION_LZ4: SpiceImageCompression = 7;
pub const SPICE_IMAGE_COMPRESSION_ENUM_END: SpiceImageCompression = 8;

/// `sizeof(((QXLRom *)0)->client_capabilities)`: bytes of QXL client capabilities.
pub const QXL_ROM_CLIENT_CAPABILITIES_SIZE: usize = 58;
