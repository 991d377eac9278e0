//! Flow control shared by the channels that carry one guest char device to one client
//! (spicevmc, smartcard).
//!
//! Guest → client: the device reads no more than `room`, which counts the items queued
//! here and the channel's unsent output against `CLIENT_QUEUE_LIMIT` (spice-server stops
//! reading at 1 MiB queued, not counting what its socket buffers hold); once the device
//! was told 0 it waits for `resume_reading`, which comes when half the bound is free
//! again. Client → guest: the reactor stops reading the client's socket while the device
//! holds `GUEST_QUEUE_LIMIT` bytes not yet taken by the guest, and reads again once the
//! device reports it took them (`written`).
//!
//! The queue lives inside each channel's own device state (behind its mutex, reached
//! through `AsMut`), so one lock covers it and the channel's other fields.

use super::Outbox;
use crate::server::char_device::GuestPort;
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Guest bytes queued for the client, here and in the outbox, before the device is no
/// longer read (`QUEUED_DATA_LIMIT`).
pub(crate) const CLIENT_QUEUE_LIMIT: usize = 1 << 20;
/// Client bytes the device may hold for the guest before the client's socket is no
/// longer read.
pub(crate) const GUEST_QUEUE_LIMIT: usize = 1 << 20;
/// Output left in the outbox before the channel stops framing more.
pub(crate) const OUTBOX_AHEAD: usize = 256 << 10;

/// An item of guest output and the bytes it counts against the bound.
pub(crate) trait Queued {
    fn bytes(&self) -> usize;
}

/// Guest output waiting for the client, and the state of both directions' pauses.
pub(crate) struct DeviceQueue<T> {
    items: VecDeque<T>,
    /// Bytes in `items`.
    queued: usize,
    /// The channel's unsent output at its last `produce`.
    backlog: usize,
    /// `room` said 0: the device waits for `resume_reading`.
    reading_paused: bool,
    /// The channel stopped reading its client: wake the reactor on `written`.
    input_blocked: bool,
}

impl<T> Default for DeviceQueue<T> {
    fn default() -> Self {
        DeviceQueue {
            items: VecDeque::new(),
            queued: 0,
            backlog: 0,
            reading_paused: false,
            input_blocked: false,
        }
    }
}

impl<T: Queued> DeviceQueue<T> {
    /// Bytes the device may read now for a client that is there.
    pub(crate) fn room(&self) -> usize {
        CLIENT_QUEUE_LIMIT.saturating_sub(self.queued + self.backlog)
    }

    /// Records what `DeviceSink::room` answered: 0 pauses the device's reads.
    pub(crate) fn answered_room(&mut self, room: usize) -> usize {
        if room == 0 {
            self.reading_paused = true;
        }
        room
    }

    pub(crate) fn push(&mut self, item: T) {
        self.queued += item.bytes();
        self.items.push_back(item);
    }

    /// Offers the newest item to `merge`, which returns whether it took in `bytes` more.
    pub(crate) fn try_merge(&mut self, bytes: usize, merge: impl FnOnce(&mut T) -> bool) -> bool {
        let merged = self.items.back_mut().is_some_and(merge);
        if merged {
            self.queued += bytes;
        }
        merged
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Empties the queue (a client came or left, the device went).
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.queued = 0;
        self.backlog = 0;
    }

    /// A new client: empty, reading its socket.
    pub(crate) fn reset(&mut self) {
        self.clear();
        self.input_blocked = false;
    }

    /// The client left: whether the device waits for `resume_reading`.
    pub(crate) fn release(&mut self) -> bool {
        self.reset();
        std::mem::take(&mut self.reading_paused)
    }

    /// `DeviceSink::written`: whether the reactor must be woken to read the client again.
    pub(crate) fn guest_took_input(&mut self) -> bool {
        std::mem::take(&mut self.input_blocked)
    }
}

/// Moves queued guest output into `out` (up to `OUTBOX_AHEAD` unsent), with `send`
/// framing each item; resumes the device's reads once half the bound is free.
pub(crate) fn drain<S, T>(
    state: &Mutex<S>,
    port: &dyn GuestPort,
    out: &mut Outbox,
    mut send: impl FnMut(T, &mut Outbox),
) where
    S: AsMut<DeviceQueue<T>>,
    T: Queued,
{
    let mut resume = false;
    loop {
        let item = {
            let mut s = state.lock();
            let q = s.as_mut();
            let item = if out.pending() < OUTBOX_AHEAD {
                q.items.pop_front()
            } else {
                None
            };
            match &item {
                Some(item) => q.queued -= item.bytes(),
                None => {
                    q.backlog = out.pending();
                    if q.reading_paused && q.room() >= CLIENT_QUEUE_LIMIT / 2 {
                        q.reading_paused = false;
                        resume = true;
                    }
                }
            }
            item
        };
        match item {
            Some(item) => send(item, out),
            None => break,
        }
    }
    if resume {
        port.resume_reading();
    }
}

/// `Channel::wants_input` for a device channel: whether the client's socket may be read.
pub(crate) fn guest_has_room<S, T>(state: &Mutex<S>, port: &dyn GuestPort) -> bool
where
    S: AsMut<DeviceQueue<T>>,
    T: Queued,
{
    if port.queued_to_guest() < GUEST_QUEUE_LIMIT {
        return true;
    }
    // Flag first, then look again: a `written` in between still wakes us.
    state.lock().as_mut().input_blocked = true;
    port.queued_to_guest() < GUEST_QUEUE_LIMIT
}
