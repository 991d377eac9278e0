//! Feeds arbitrary client bytes to the link handshake (`spice_server::fuzzing::link`): the
//! link header and message parsers and the handshake's state machine must never panic or
//! allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::link(data);
});
