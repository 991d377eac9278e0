//! Feeds arbitrary guest memory to every QXL command parser and renders what parses
//! (`spice_server::fuzzing::qxl_command`). Parsing must never panic or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::qxl_command(data);
});
