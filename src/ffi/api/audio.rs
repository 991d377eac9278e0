//! `spice-audio.h`: playback and record streams.
//!
//! Until the audio channels land there is never a client to play to or record from,
//! which QEMU handles: no buffer means it drops the audio, no samples mean silence.

use crate::ffi::abi::{SpicePlaybackInstance, SpiceRecordInstance};
use crate::ffi::instances;

/// Opus' rate; spice-server 0.15 reports it as the best for both directions.
const BEST_RATE: u32 = 48_000;

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_start(sin: *mut SpicePlaybackInstance) {
    let _ = sin;
}
symver!(spice_server_playback_start, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_stop(sin: *mut SpicePlaybackInstance) {
    let _ = sin;
}
symver!(spice_server_playback_stop, "SPICE_SERVER_0.6.0");

/// No client: no buffer (`*samples = NULL`, `*num_samples = 0`).
#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_get_buffer(
    sin: *mut SpicePlaybackInstance,
    samples: *mut *mut u32,
    num_samples: *mut u32,
) {
    let _ = sin;
    // SAFETY: QEMU passes valid out-pointers (or NULL, which we skip).
    unsafe {
        if let Some(s) = samples.as_mut() {
            *s = std::ptr::null_mut();
        }
        if let Some(n) = num_samples.as_mut() {
            *n = 0;
        }
    }
}
symver!(spice_server_playback_get_buffer, "SPICE_SERVER_0.6.0");

/// Only buffers from `get_buffer` may come back, and it hands none out yet.
#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_put_samples(
    sin: *mut SpicePlaybackInstance,
    samples: *mut u32,
) {
    let _ = (sin, samples);
}
symver!(spice_server_playback_put_samples, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_set_volume(
    sin: *mut SpicePlaybackInstance,
    nchannels: u8,
    volume: *mut u16,
) {
    let _ = (sin, nchannels, volume);
}
symver!(spice_server_playback_set_volume, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_set_mute(sin: *mut SpicePlaybackInstance, mute: u8) {
    let _ = (sin, mute);
}
symver!(spice_server_playback_set_mute, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_start(sin: *mut SpiceRecordInstance) {
    let _ = sin;
}
symver!(spice_server_record_start, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_stop(sin: *mut SpiceRecordInstance) {
    let _ = sin;
}
symver!(spice_server_record_stop, "SPICE_SERVER_0.6.0");

/// No client: no samples (QEMU substitutes silence).
#[no_mangle]
pub unsafe extern "C" fn spice_server_record_get_samples(
    sin: *mut SpiceRecordInstance,
    samples: *mut u32,
    bufsize: u32,
) -> u32 {
    let _ = (sin, samples, bufsize);
    0
}
symver!(spice_server_record_get_samples, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_set_volume(
    sin: *mut SpiceRecordInstance,
    nchannels: u8,
    volume: *mut u16,
) {
    let _ = (sin, nchannels, volume);
}
symver!(spice_server_record_set_volume, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_set_mute(sin: *mut SpiceRecordInstance, mute: u8) {
    let _ = (sin, mute);
}
symver!(spice_server_record_set_mute, "SPICE_SERVER_0.10.0");

/// QEMU asks with a NULL instance before registering one.
#[no_mangle]
pub unsafe extern "C" fn spice_server_get_best_playback_rate(
    sin: *mut SpicePlaybackInstance,
) -> u32 {
    let _ = sin;
    BEST_RATE
}
symver!(spice_server_get_best_playback_rate, "SPICE_SERVER_0.12.5");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_playback_rate(
    sin: *mut SpicePlaybackInstance,
    frequency: u32,
) {
    // SAFETY: `sin` is NULL or the playback instance QEMU registered.
    unsafe {
        instances::with_instance_server("spice_server_set_playback_rate", sin.cast(), |s| {
            s.playback_rate = frequency
        })
    }
}
symver!(spice_server_set_playback_rate, "SPICE_SERVER_0.12.5");

#[no_mangle]
pub unsafe extern "C" fn spice_server_get_best_record_rate(sin: *mut SpiceRecordInstance) -> u32 {
    let _ = sin;
    BEST_RATE
}
symver!(spice_server_get_best_record_rate, "SPICE_SERVER_0.12.5");

#[no_mangle]
pub unsafe extern "C" fn spice_server_set_record_rate(
    sin: *mut SpiceRecordInstance,
    frequency: u32,
) {
    // SAFETY: `sin` is NULL or the record instance QEMU registered.
    unsafe {
        instances::with_instance_server("spice_server_set_record_rate", sin.cast(), |s| {
            s.record_rate = frequency
        })
    }
}
symver!(spice_server_set_record_rate, "SPICE_SERVER_0.12.5");
