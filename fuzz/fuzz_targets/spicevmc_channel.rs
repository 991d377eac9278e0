//! Feeds arbitrary client messages to a spicevmc port channel
//! (`spice_server::fuzzing::spicevmc_channel`): data, LZ4 data that may lie about its
//! size, port events, while the guest side writes, flaps the port and drains. The
//! channel must never panic or grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::spicevmc_channel(data);
});
