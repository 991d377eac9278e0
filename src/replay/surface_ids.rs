//! Surface ids: the recording's ids are mapped onto ids `0..nsurfaces` of the replaying
//! device, as spice-server's replay does. A destroyed surface's id becomes free only when
//! the server releases the destroy command; while none is free, creating a surface waits.

use super::reader::{ReplayError, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Ids are "none" as in the recording (`-1`).
pub(crate) const NO_SURFACE: u32 = u32::MAX;

#[derive(Default)]
struct Tables {
    /// Recorded id → replay id (`NO_SURFACE` once destroyed).
    to_replay: HashMap<u32, u32>,
    /// Replay id → recorded id (`NO_SURFACE` when free).
    to_recorded: Vec<u32>,
    free: VecDeque<u32>,
}

pub(crate) struct SurfaceIds {
    tables: Mutex<Tables>,
    freed: Condvar,
    limit: u32,
    wait: Duration,
}

impl SurfaceIds {
    /// `limit` replay ids (at least 1; id 0, the primary, maps to itself).
    pub(crate) fn new(limit: u32, wait: Duration) -> Self {
        let ids = SurfaceIds {
            tables: Mutex::new(Tables::default()),
            freed: Condvar::new(),
            limit: limit.max(1),
            wait,
        };
        let _ = ids.create(0);
        ids
    }

    /// The replay id of recorded id `id`. Unknown ids become 0, as in spice-server.
    pub(crate) fn get(&self, id: u32) -> u32 {
        if id == NO_SURFACE {
            return id;
        }
        match self.tables.lock().to_replay.get(&id) {
            Some(&replay) => replay,
            None => {
                crate::log_warn!("replay: surface {id} used before it was created");
                0
            }
        }
    }

    /// A replay id for a surface the recording creates with id `id`.
    pub(crate) fn create(&self, id: u32) -> Result<u32> {
        let mut t = self.tables.lock();
        let replay = loop {
            let candidate = match t.free.front() {
                Some(&free) => free,
                None => t.to_recorded.len() as u32,
            };
            if candidate < self.limit {
                if t.free.pop_front().is_none() {
                    t.to_recorded.push(NO_SURFACE);
                }
                break candidate;
            }
            if self.freed.wait_for(&mut t, self.wait).timed_out() {
                return Err(ReplayError::SurfaceIdsExhausted);
            }
        };
        t.to_replay.insert(id, replay);
        t.to_recorded[replay as usize] = id;
        Ok(replay)
    }

    /// Replay id `replay` is free again (its destroy command was released).
    pub(crate) fn release(&self, replay: u32) {
        let mut t = self.tables.lock();
        let Some(slot) = t.to_recorded.get_mut(replay as usize) else {
            return;
        };
        let recorded = std::mem::replace(slot, NO_SURFACE);
        if recorded != NO_SURFACE {
            if t.to_replay.get(&recorded) == Some(&replay) {
                t.to_replay.insert(recorded, NO_SURFACE);
            }
            t.free.push_back(replay);
        }
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_densely_and_are_reused_after_release() {
        let ids = SurfaceIds::new(3, Duration::from_millis(10));
        assert_eq!(ids.get(0), 0);
        assert_eq!(ids.create(700).unwrap(), 1);
        assert_eq!(ids.create(5).unwrap(), 2);
        assert_eq!(ids.get(700), 1);
        assert_eq!(ids.get(NO_SURFACE), NO_SURFACE);
        assert_eq!(ids.create(9), Err(ReplayError::SurfaceIdsExhausted));
        ids.release(1);
        assert_eq!(ids.get(700), NO_SURFACE);
        assert_eq!(ids.create(9).unwrap(), 1);
        ids.release(1);
        ids.release(1);
        assert_eq!(ids.create(10).unwrap(), 1);
        assert_eq!(ids.get(12345), 0);
    }

    #[test]
    fn create_waits_for_a_release_from_another_thread() {
        let ids = std::sync::Arc::new(SurfaceIds::new(2, Duration::from_secs(10)));
        assert_eq!(ids.create(1).unwrap(), 1);
        let other = ids.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            other.release(1);
        });
        assert_eq!(ids.create(2).unwrap(), 1);
        t.join().unwrap();
    }
}
