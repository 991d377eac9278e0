//! Feeds arbitrary client bytes to the WebSocket upgrade parser and frame decoder
//! (`spice_server::fuzzing::websocket`): they must never panic, stall or buffer without
//! bound, and our own frames must decode back to their payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::websocket(data);
});
