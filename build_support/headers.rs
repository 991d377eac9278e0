//! Header generation (filled in by the headers work).
pub fn generate() {}
