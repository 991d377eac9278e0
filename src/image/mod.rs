//! Image codecs the display channel sends pixels with, as SPICE clients decode them:
//! `lz` (spice-common's LZ, any client), `quic` (spice-common's QUIC, for photographs),
//! `glz` (LZ whose matches may also point into
//! earlier images of the same client's dictionary), and `choose`, which picks one per
//! image from `image-compression` and the client's preference, as spice-server's dcc does;
//! for clients on a slow link (`jpeg-wan-compression`, `zlib-glz-wan-compression`),
//! `jpeg` (lossy, for photographs) and `zlib` (deflated GLZ).
//!
//! The decoders in `decode`, `decode_quic` and `decode_wan` are ours too (for tests and fuzzing): they accept exactly
//! what spice-common's `lz_decompress_tmpl.c` and spice-gtk's `decode-glz-tmpl.c` accept.

pub(crate) mod choose;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod decode;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod decode_quic;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod decode_wan;
pub(crate) mod glz;
pub(crate) mod jpeg;
pub(crate) mod lz;
mod matcher;
pub(crate) mod quic;
pub(crate) mod zlib;

#[cfg(test)]
mod tests;
