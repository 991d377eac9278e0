//! `spice-audio.h`: playback and record streams. QEMU calls these from its audio timer
//! (main loop, its lock held); each one copies or flags something in the instance's
//! stream and wakes the reactor, never waiting on a socket or another thread.

use crate::audio::BEST_RATE;
use crate::ffi::abi::{SpicePlaybackInstance, SpiceRecordInstance};
use crate::ffi::{guard, instances};
use crate::server::interfaces::InstanceId;

/// The volume array QEMU passes (`nchannels` u16s).
///
/// # Safety
/// `volume` must be NULL or valid for `nchannels` reads.
unsafe fn volume_of(nchannels: u8, volume: *mut u16) -> Vec<u16> {
    if volume.is_null() {
        return Vec::new();
    }
    // SAFETY: forwarded contract.
    unsafe { std::slice::from_raw_parts(volume, usize::from(nchannels)) }.to_vec()
}

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_start(sin: *mut SpicePlaybackInstance) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    if let Some(p) = unsafe { instances::playback(sin) } {
        guard("spice_server_playback_start", (), || {
            p.stream.set_active(true)
        });
    }
}
symver!(spice_server_playback_start, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_stop(sin: *mut SpicePlaybackInstance) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    if let Some(p) = unsafe { instances::playback(sin) } {
        guard("spice_server_playback_stop", (), || {
            p.stream.set_active(false)
        });
    }
}
symver!(spice_server_playback_stop, "SPICE_SERVER_0.6.0");

/// The instance's frame (480 stereo frames), or NULL/0 when no client listens or the
/// voice is off (QEMU then drops the audio).
#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_get_buffer(
    sin: *mut SpicePlaybackInstance,
    samples: *mut *mut u32,
    num_samples: *mut u32,
) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    let buffer = unsafe { instances::playback(sin) }
        .and_then(|p| guard("spice_server_playback_get_buffer", None, || p.buffer()));
    let (ptr, n) = buffer.unwrap_or((std::ptr::null_mut(), 0));
    // SAFETY: QEMU passes valid out-pointers (or NULL, which we skip).
    unsafe {
        if let Some(s) = samples.as_mut() {
            *s = ptr;
        }
        if let Some(out) = num_samples.as_mut() {
            *out = n;
        }
    }
}
symver!(spice_server_playback_get_buffer, "SPICE_SERVER_0.6.0");

/// QEMU filled the frame `get_buffer` gave it: it goes to the client, stamped.
#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_put_samples(
    sin: *mut SpicePlaybackInstance,
    samples: *mut u32,
) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    if let Some(p) = unsafe { instances::playback(sin) } {
        guard("spice_server_playback_put_samples", (), || p.put(samples));
    }
}
symver!(spice_server_playback_put_samples, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_set_volume(
    sin: *mut SpicePlaybackInstance,
    nchannels: u8,
    volume: *mut u16,
) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    if let Some(p) = unsafe { instances::playback(sin) } {
        // SAFETY: QEMU passes `nchannels` values.
        let volume = unsafe { volume_of(nchannels, volume) };
        guard("spice_server_playback_set_volume", (), || {
            p.stream.set_volume(volume)
        });
    }
}
symver!(spice_server_playback_set_volume, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_playback_set_mute(sin: *mut SpicePlaybackInstance, mute: u8) {
    // SAFETY: `sin` is NULL or a registered playback instance.
    if let Some(p) = unsafe { instances::playback(sin) } {
        guard("spice_server_playback_set_mute", (), || {
            p.stream.set_mute(mute != 0)
        });
    }
}
symver!(spice_server_playback_set_mute, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_start(sin: *mut SpiceRecordInstance) {
    // SAFETY: `sin` is NULL or a registered record instance.
    if let Some(r) = unsafe { instances::record(sin) } {
        guard("spice_server_record_start", (), || r.set_active(true));
    }
}
symver!(spice_server_record_start, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_stop(sin: *mut SpiceRecordInstance) {
    // SAFETY: `sin` is NULL or a registered record instance.
    if let Some(r) = unsafe { instances::record(sin) } {
        guard("spice_server_record_stop", (), || r.set_active(false));
    }
}
symver!(spice_server_record_stop, "SPICE_SERVER_0.6.0");

/// Copies up to `bufsize` recorded stereo frames; 0 when there are none yet (QEMU
/// substitutes silence).
#[no_mangle]
pub unsafe extern "C" fn spice_server_record_get_samples(
    sin: *mut SpiceRecordInstance,
    samples: *mut u32,
    bufsize: u32,
) -> u32 {
    if samples.is_null() || bufsize == 0 {
        return 0;
    }
    // SAFETY: `sin` is NULL or a registered record instance.
    let Some(r) = (unsafe { instances::record(sin) }) else {
        return 0;
    };
    // SAFETY: QEMU's buffer holds `bufsize` frames and is ours for the call.
    let out = unsafe { std::slice::from_raw_parts_mut(samples, bufsize as usize) };
    guard("spice_server_record_get_samples", 0, || r.read(out) as u32)
}
symver!(spice_server_record_get_samples, "SPICE_SERVER_0.6.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_set_volume(
    sin: *mut SpiceRecordInstance,
    nchannels: u8,
    volume: *mut u16,
) {
    // SAFETY: `sin` is NULL or a registered record instance.
    if let Some(r) = unsafe { instances::record(sin) } {
        // SAFETY: QEMU passes `nchannels` values.
        let volume = unsafe { volume_of(nchannels, volume) };
        guard("spice_server_record_set_volume", (), || {
            r.set_volume(volume)
        });
    }
}
symver!(spice_server_record_set_volume, "SPICE_SERVER_0.10.0");

#[no_mangle]
pub unsafe extern "C" fn spice_server_record_set_mute(sin: *mut SpiceRecordInstance, mute: u8) {
    // SAFETY: `sin` is NULL or a registered record instance.
    if let Some(r) = unsafe { instances::record(sin) } {
        guard("spice_server_record_set_mute", (), || r.set_mute(mute != 0));
    }
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

/// The rate QEMU runs the voice at; Opus is offered when it allows it.
#[no_mangle]
pub unsafe extern "C" fn spice_server_set_playback_rate(
    sin: *mut SpicePlaybackInstance,
    frequency: u32,
) {
    // SAFETY: `sin` is NULL or the playback instance QEMU registered.
    unsafe {
        instances::with_instance_server("spice_server_set_playback_rate", sin.cast(), |s| {
            s.session
                .set_audio_rate(InstanceId(sin as usize), frequency)
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
            s.session
                .set_audio_rate(InstanceId(sin as usize), frequency)
        })
    }
}
symver!(spice_server_set_record_rate, "SPICE_SERVER_0.12.5");
