//! Video: stream detection, the encode pipeline and the encoders.

pub mod clock;
pub mod codecs;
pub mod detect;
pub mod encoder;
