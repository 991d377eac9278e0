//! The LZ, GLZ and QUIC encoders round-trip arbitrary pixels, as do the WAN layouts
//! (JPEG_ALPHA's alpha plane exactly, ZLIB_GLZ_RGB), and the decoders survive arbitrary
//! data (`spice_server::fuzzing::image_codecs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spice_server::fuzzing::image_codecs(data);
});
