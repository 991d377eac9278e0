//! Feeds arbitrary client messages to the main channel (`spice_server::fuzzing::main_channel`):
//! sequences of (type, body) through `on_message` and `produce` as the reactor feeds
//! them, with server-side changes between them. The channel must never panic or grow
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::main_channel(data);
});
