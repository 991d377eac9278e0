//! Video: stream detection, the encode pipeline and the encoders.

pub mod codecs;
