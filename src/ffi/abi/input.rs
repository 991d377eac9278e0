//! `spice-input.h`: keyboard, mouse and tablet interfaces (implemented by QEMU; the
//! library calls them when a client sends input).

use super::core::{SpiceBaseInstance, SpiceBaseInterface};
use std::ffi::c_int;
use std::marker::{PhantomData, PhantomPinned};

/// `SpiceBaseInterface.type` of the keyboard interface.
pub const SPICE_INTERFACE_KEYBOARD: &str = "keyboard";
/// Major version of the keyboard interface.
pub const SPICE_INTERFACE_KEYBOARD_MAJOR: u32 = 1;
/// Minor version of the keyboard interface.
pub const SPICE_INTERFACE_KEYBOARD_MINOR: u32 = 1;

/// The library's keyboard state behind `SpiceKbdInstance.st`.
pub struct SpiceKbdState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Keyboard interface (`SPICE_INTERFACE_KEYBOARD`, 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceKbdInterface {
    /// "keyboard", 1.1.
    pub base: SpiceBaseInterface,
    /// Injects one byte of a PC scancode set 1 sequence (0xE0 prefix, bit 7 = release).
    pub push_scan_freg: Option<unsafe extern "C" fn(sin: *mut SpiceKbdInstance, frag: u8)>,
    /// Current LED state (`SPICE_KEYBOARD_MODIFIER_FLAGS_*`: scroll 1, num 2, caps 4).
    pub get_leds: Option<unsafe extern "C" fn(sin: *mut SpiceKbdInstance) -> u8>,
}

/// A keyboard instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceKbdInstance {
    /// `base.sif` points to a `SpiceKbdInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceKbdState,
}

/// `SpiceBaseInterface.type` of the relative mouse interface.
pub const SPICE_INTERFACE_MOUSE: &str = "mouse";
/// Major version of the mouse interface.
pub const SPICE_INTERFACE_MOUSE_MAJOR: u32 = 1;
/// Minor version of the mouse interface.
pub const SPICE_INTERFACE_MOUSE_MINOR: u32 = 1;

/// The library's mouse state behind `SpiceMouseInstance.st`.
pub struct SpiceMouseState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Relative mouse interface (`SPICE_INTERFACE_MOUSE`, 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceMouseInterface {
    /// "mouse", 1.1.
    pub base: SpiceBaseInterface,
    /// Relative motion; `dz` is the wheel (negative = up); `buttons_state` in QEMU's
    /// layout (left 1, right 2, middle 4, side 0x40, extra 0x80).
    pub motion: Option<
        unsafe extern "C" fn(
            sin: *mut SpiceMouseInstance,
            dx: c_int,
            dy: c_int,
            dz: c_int,
            buttons_state: u32,
        ),
    >,
    /// Button state changed.
    pub buttons: Option<unsafe extern "C" fn(sin: *mut SpiceMouseInstance, buttons_state: u32)>,
}

/// A mouse instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceMouseInstance {
    /// `base.sif` points to a `SpiceMouseInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceMouseState,
}

/// `SpiceBaseInterface.type` of the absolute pointer (tablet) interface.
pub const SPICE_INTERFACE_TABLET: &str = "tablet";
/// Major version of the tablet interface.
pub const SPICE_INTERFACE_TABLET_MAJOR: u32 = 1;
/// Minor version of the tablet interface.
pub const SPICE_INTERFACE_TABLET_MINOR: u32 = 1;

/// The library's tablet state behind `SpiceTabletInstance.st`.
pub struct SpiceTabletState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Absolute pointer interface (`SPICE_INTERFACE_TABLET`, 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceTabletInterface {
    /// "tablet", 1.1.
    pub base: SpiceBaseInterface,
    /// The coordinate range of `position` (the client's display size).
    pub set_logical_size:
        Option<unsafe extern "C" fn(tablet: *mut SpiceTabletInstance, width: c_int, height: c_int)>,
    /// Absolute position and button state.
    pub position: Option<
        unsafe extern "C" fn(
            tablet: *mut SpiceTabletInstance,
            x: c_int,
            y: c_int,
            buttons_state: u32,
        ),
    >,
    /// Wheel motion (negative = up) and button state.
    pub wheel: Option<
        unsafe extern "C" fn(
            tablet: *mut SpiceTabletInstance,
            wheel_moution: c_int,
            buttons_state: u32,
        ),
    >,
    /// Button state changed.
    pub buttons: Option<unsafe extern "C" fn(tablet: *mut SpiceTabletInstance, buttons_state: u32)>,
}

/// A tablet instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceTabletInstance {
    /// `base.sif` points to a `SpiceTabletInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceTabletState,
}
