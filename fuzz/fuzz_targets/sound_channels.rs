//! Feeds arbitrary client messages to the playback and record channels
//! (`spice_server::fuzzing::sound_channels`) while QEMU's side starts, stops, puts
//! frames, reads samples and changes volume, mute, rate and compression. Nothing may
//! panic, and the playback queue and record ring stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::sound_channels(data);
});
