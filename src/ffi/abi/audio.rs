//! `spice-audio.h`: playback and record interfaces. Both tables are only the base
//! header; the data flows through `spice_server_playback_*`/`spice_server_record_*`.

use super::core::{SpiceBaseInstance, SpiceBaseInterface};
use std::ffi::c_int;
use std::marker::{PhantomData, PhantomPinned};

/// `SpiceBaseInterface.type` of the playback interface.
pub const SPICE_INTERFACE_PLAYBACK: &str = "playback";
/// Major version of the playback interface.
pub const SPICE_INTERFACE_PLAYBACK_MAJOR: u32 = 1;
/// Minor version of the playback interface (3: rate negotiation).
pub const SPICE_INTERFACE_PLAYBACK_MINOR: u32 = 3;

/// Sample format: signed 16-bit, native endian (C: an anonymous enum constant).
pub const SPICE_INTERFACE_AUDIO_FMT_S16: c_int = 1;

/// Default playback rate in Hz (before rate negotiation).
pub const SPICE_INTERFACE_PLAYBACK_FREQ: c_int = 44100;
/// Playback channels.
pub const SPICE_INTERFACE_PLAYBACK_CHAN: c_int = 2;
/// Playback sample format.
pub const SPICE_INTERFACE_PLAYBACK_FMT: c_int = SPICE_INTERFACE_AUDIO_FMT_S16;

/// The library's playback state behind `SpicePlaybackInstance.st`.
pub struct SpicePlaybackState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Playback interface (`SPICE_INTERFACE_PLAYBACK`, 1.3): no callbacks.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpicePlaybackInterface {
    /// "playback", 1.3.
    pub base: SpiceBaseInterface,
}

/// A playback (guest → client audio) instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpicePlaybackInstance {
    /// `base.sif` points to a `SpicePlaybackInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpicePlaybackState,
}

/// `SpiceBaseInterface.type` of the record interface.
pub const SPICE_INTERFACE_RECORD: &str = "record";
/// Major version of the record interface.
pub const SPICE_INTERFACE_RECORD_MAJOR: u32 = 2;
/// Minor version of the record interface (3: rate negotiation).
pub const SPICE_INTERFACE_RECORD_MINOR: u32 = 3;

/// Default record rate in Hz (before rate negotiation).
pub const SPICE_INTERFACE_RECORD_FREQ: c_int = 44100;
/// Record channels.
pub const SPICE_INTERFACE_RECORD_CHAN: c_int = 2;
/// Record sample format.
pub const SPICE_INTERFACE_RECORD_FMT: c_int = SPICE_INTERFACE_AUDIO_FMT_S16;

/// The library's record state behind `SpiceRecordInstance.st`.
pub struct SpiceRecordState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Record interface (`SPICE_INTERFACE_RECORD`, 2.3): no callbacks.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceRecordInterface {
    /// "record", 2.3.
    pub base: SpiceBaseInterface,
}

/// A record (client → guest audio) instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceRecordInstance {
    /// `base.sif` points to a `SpiceRecordInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceRecordState,
}
