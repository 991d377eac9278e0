//! Who is linked: the current client session and every linked connection. Plain data,
//! kept under the session's lock and read by the link policy.

use crate::proto::msg::channel as ch;
use std::collections::HashMap;

/// One linked connection.
pub(crate) struct LinkedChannel {
    pub session_id: u32,
    pub channel_type: u8,
    pub channel_id: u8,
    /// Runs when the connection ends (e.g. a display's last viewer leaving).
    pub on_close: Option<Box<dyn FnOnce() + Send>>,
}

#[derive(Default)]
pub(crate) struct Clients {
    /// The linked client's session id (its main channel's connection id).
    current: Option<u32>,
    /// Reactor connection id → what it linked.
    linked: HashMap<u64, LinkedChannel>,
}

impl Clients {
    pub(crate) fn current(&self) -> Option<u32> {
        self.current
    }

    /// Clients with a main channel (one at a time, as spice-server without multi-client).
    pub(crate) fn count(&self) -> usize {
        usize::from(self.current.is_some())
    }

    /// A main channel is being opened: its session becomes the current one.
    pub(crate) fn start_session(&mut self, session_id: u32) {
        self.current = Some(session_id);
    }

    pub(crate) fn has(&self, session_id: u32, channel_type: u8, channel_id: u8) -> bool {
        self.linked.values().any(|l| {
            l.session_id == session_id
                && l.channel_type == channel_type
                && l.channel_id == channel_id
        })
    }

    pub(crate) fn link(&mut self, conn: u64, channel: LinkedChannel) {
        self.linked.insert(conn, channel);
    }

    /// Forgets a connection; the current session ends with its main channel.
    pub(crate) fn unlink(&mut self, conn: u64) -> Option<LinkedChannel> {
        let gone = self.linked.remove(&conn)?;
        if gone.channel_type == ch::MAIN && self.current == Some(gone.session_id) {
            self.current = None;
        }
        Some(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(session_id: u32, channel_type: u8) -> LinkedChannel {
        LinkedChannel {
            session_id,
            channel_type,
            channel_id: 0,
            on_close: None,
        }
    }

    #[test]
    fn the_session_ends_with_its_main_channel() {
        let mut c = Clients::default();
        assert_eq!((c.current(), c.count()), (None, 0));
        c.start_session(5);
        c.link(1, linked(5, ch::MAIN));
        c.link(2, linked(5, ch::DISPLAY));
        assert_eq!((c.current(), c.count()), (Some(5), 1));
        assert!(c.has(5, ch::DISPLAY, 0) && !c.has(6, ch::DISPLAY, 0));
        assert!(c.unlink(2).is_some());
        assert!(!c.has(5, ch::DISPLAY, 0));
        assert_eq!(c.current(), Some(5), "a display leaving keeps the session");
        assert!(c.unlink(1).is_some());
        assert_eq!((c.current(), c.count()), (None, 0));
        assert!(c.unlink(1).is_none());
    }

    #[test]
    fn an_old_sessions_main_leaving_keeps_the_new_one() {
        let mut c = Clients::default();
        c.start_session(5);
        c.link(1, linked(5, ch::MAIN));
        c.start_session(6);
        c.link(2, linked(6, ch::MAIN));
        c.unlink(1);
        assert_eq!((c.current(), c.count()), (Some(6), 1));
    }
}
