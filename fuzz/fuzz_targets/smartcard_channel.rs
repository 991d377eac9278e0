//! Feeds arbitrary client VSC messages to a smartcard channel
//! (`spice_server::fuzzing::smartcard_channel`) while the device writes arbitrary VSC
//! streams and a second client competes for the reader. The channel must never panic or
//! grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::smartcard_channel(data);
});
