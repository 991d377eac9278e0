//! The QXL instances clients can watch: for each, its worker, screen and pointer (the
//! display model the display and cursor channels read), and opening those channels.
//! The one place in `server/` that knows the worker's outputs.

use super::channels::{OpenRequest, Opening};
use super::host::QxlHost;
use crate::channel::cursor::CursorChannel;
use crate::channel::display::DisplayChannel;
use crate::display::pointer::Pointer;
use crate::display::Screen;
use crate::image::choose::ImageSettings;
use crate::proto::caps::Caps;
use crate::proto::link::LinkError;
use crate::worker::{Msg, WorkerHandle, CLIENT_CAPS_BYTES};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What one QXL instance shows: a display channel and a cursor channel with its id.
#[derive(Clone)]
pub(crate) struct DisplaySource {
    pub id: u8,
    /// The device, for the client's monitor layout.
    pub host: Arc<dyn QxlHost>,
    /// The device's worker (told when display clients come and go).
    pub worker: Arc<WorkerHandle>,
    pub screen: Screen,
    pub pointer: Pointer,
    pub max_monitors: u16,
    pub ram_hint: u32,
    /// Display channels linked to it; the worker hears when the last one leaves.
    pub viewers: Arc<AtomicUsize>,
}

pub(crate) struct Displays {
    list: Mutex<Vec<DisplaySource>>,
    next_viewer: AtomicU64,
}

impl Default for Displays {
    fn default() -> Self {
        Displays {
            list: Mutex::default(),
            next_viewer: AtomicU64::new(1),
        }
    }
}

impl Displays {
    pub(crate) fn add(&self, source: DisplaySource) {
        self.list.lock().push(source);
    }

    pub(crate) fn remove(&self, id: u8) {
        self.list.lock().retain(|d| d.id != id);
    }

    /// The monitor count a display device supports (`set_device_info`), for clients that
    /// connect from now on.
    pub(crate) fn set_max_monitors(&self, qxl_id: i32, max: u32) {
        for d in self.list.lock().iter_mut() {
            if i32::from(d.id) == qxl_id {
                d.max_monitors = u16::try_from(max.clamp(1, 16)).unwrap_or(16);
            }
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.list.lock().len()
    }

    /// The first device's RAM size, which the main channel hints to clients.
    pub(crate) fn ram_hint(&self) -> u32 {
        self.list.lock().first().map_or(0, |d| d.ram_hint)
    }

    pub(crate) fn primary_size(&self) -> Option<(u32, u32)> {
        self.list.lock().first().and_then(|d| d.screen.size())
    }

    pub(crate) fn hosts(&self) -> Vec<(u8, Arc<dyn QxlHost>)> {
        self.list
            .lock()
            .iter()
            .map(|d| (d.id, d.host.clone()))
            .collect()
    }

    fn get(&self, id: u8) -> Option<DisplaySource> {
        self.list.lock().iter().find(|d| d.id == id).cloned()
    }

    /// A display channel: the worker learns a client watches, with its caps, and again
    /// when the last one leaves.
    pub(crate) fn open_display(
        &self,
        request: &OpenRequest,
        images: &ImageSettings,
    ) -> Result<Opening, LinkError> {
        let source = self
            .get(request.channel_id)
            .ok_or(LinkError::ChannelNotAvailable)?;
        source.worker.post(Msg::ClientPresence {
            present: true,
            caps: caps_bytes(&request.caps),
        });
        source.viewers.fetch_add(1, Ordering::Relaxed);
        let viewer = self.next_viewer.fetch_add(1, Ordering::Relaxed);
        let (viewers, worker) = (source.viewers.clone(), Arc::downgrade(&source.worker));
        let channel = DisplayChannel::new(
            source.screen,
            viewer,
            request.caps.clone(),
            source.max_monitors,
        )
        .with_images(images.clone(), request.session_id);
        Ok(Opening::new(channel).on_close(move || {
            let last = viewers.fetch_sub(1, Ordering::Relaxed) == 1;
            // A removed device's worker is gone and needs no news.
            if let Some(worker) = worker.upgrade().filter(|_| last) {
                worker.post(Msg::ClientPresence {
                    present: false,
                    caps: [0; CLIENT_CAPS_BYTES],
                });
            }
        }))
    }

    pub(crate) fn open_cursor(&self, request: &OpenRequest) -> Result<Opening, LinkError> {
        let source = self
            .get(request.channel_id)
            .ok_or(LinkError::ChannelNotAvailable)?;
        Ok(Opening::new(CursorChannel::new(source.pointer)))
    }
}

/// Display caps as the byte bitmap QXL devices take (bit i in byte i/8).
fn caps_bytes(caps: &Caps) -> [u8; CLIENT_CAPS_BYTES] {
    let mut out = [0u8; CLIENT_CAPS_BYTES];
    for (i, word) in caps.0.iter().enumerate() {
        for (j, b) in word.to_le_bytes().into_iter().enumerate() {
            if let Some(slot) = out.get_mut(4 * i + j) {
                *slot = b;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_become_the_device_byte_bitmap() {
        let bytes = caps_bytes(&Caps::from_bits(&[0, 9, 33]));
        assert_eq!(&bytes[..6], &[0b1, 0b10, 0, 0, 0b10, 0]);
        assert!(bytes[6..].iter().all(|&b| b == 0));
    }
}
