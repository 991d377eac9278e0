//! The LZ, GLZ and QUIC encoders round-trip arbitrary pixels, and the decoders survive
//! arbitrary data (`spice_server::fuzzing::image_codecs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::image_codecs(data);
});
