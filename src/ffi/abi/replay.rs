//! `spice-replay.h`: replaying a recorded QXL command stream (`spice-server-replay`).

use std::marker::{PhantomData, PhantomPinned};

/// A replay session over a recording file, created by `spice_replay_new`.
pub struct SpiceReplay {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}
