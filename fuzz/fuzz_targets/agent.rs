//! Feeds a hostile guest agent and two hostile clients to the agent hub
//! (`spice_server::fuzzing::agent`): device bytes, AGENT_DATA pieces, tokens, attach and
//! detach. The hub must never panic or grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::agent(data);
});
