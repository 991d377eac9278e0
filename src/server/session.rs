//! Connection lifecycle as QEMU sees it: `channel_event` CONNECTED / INITIALIZED /
//! DISCONNECTED, always delivered on QEMU's main loop, with one `SpiceChannelEventInfo`
//! per connection kept alive until after DISCONNECTED (QEMU keeps the pointer).

use super::mainloop::MainLoopHandle;
use crate::ffi::core::EventInfo;
use crate::net::reactor::ConnectionEvents;
use crate::net::stream::Endpoints;
use crate::proto::link::{LinkError, LinkMess};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub const CHANNEL_EVENT_CONNECTED: i32 = 1;
pub const CHANNEL_EVENT_INITIALIZED: i32 = 2;
pub const CHANNEL_EVENT_DISCONNECTED: i32 = 3;

pub struct Session {
    mainloop: MainLoopHandle,
    /// Owned by the main loop side; only touched from jobs that run there.
    infos: Arc<Mutex<HashMap<u64, EventInfo>>>,
}

impl Session {
    pub fn new(mainloop: MainLoopHandle) -> Session {
        Session {
            mainloop,
            infos: Arc::default(),
        }
    }
}

impl ConnectionEvents for Session {
    fn connected(&self, id: u64, endpoints: Endpoints) {
        let infos = self.infos.clone();
        self.mainloop.post(Box::new(move |core| {
            let mut info = EventInfo::new(endpoints);
            core.channel_event(CHANNEL_EVENT_CONNECTED, info.raw_mut());
            infos.lock().insert(id, info);
        }));
    }

    fn disconnected(&self, id: u64) {
        let infos = self.infos.clone();
        self.mainloop.post(Box::new(move |core| {
            let Some(mut info) = infos.lock().remove(&id) else {
                return;
            };
            core.channel_event(CHANNEL_EVENT_DISCONNECTED, info.raw_mut());
        }));
    }

    fn link_request(&self, _id: u64, request: &LinkMess) -> LinkError {
        crate::log_info!(
            "client asked for channel type {} id {}; no channel is served yet",
            request.channel_type,
            request.channel_id
        );
        LinkError::ChannelNotAvailable
    }
}
