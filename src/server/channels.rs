//! The channels a client can link, registered by whatever provides them (spice-server's
//! `reds_register_channel`): the main and inputs channels exist from the start, each QXL
//! instance registers a display and a cursor channel with its id and unregisters them
//! when it goes. A new channel is its state machine in `channel/` plus one `register`.

use crate::channel::Channel;
use crate::proto::caps::Caps;
use crate::proto::link::LinkError;
use crate::proto::msg::channel as ch;
use std::sync::Arc;

/// What opening a channel learns about the link.
pub(crate) struct OpenRequest {
    /// The client session the channel joins (its main channel's connection id).
    pub session_id: u32,
    pub channel_id: u8,
    /// The client's caps for this channel.
    pub caps: Caps,
}

/// A channel just opened, and what must happen when its connection ends.
pub(crate) struct Opening {
    pub channel: Box<dyn Channel>,
    pub on_close: Option<Box<dyn FnOnce() + Send>>,
}

impl Opening {
    pub(crate) fn new(channel: impl Channel + 'static) -> Opening {
        Opening {
            channel: Box::new(channel),
            on_close: None,
        }
    }

    pub(crate) fn on_close(mut self, f: impl FnOnce() + Send + 'static) -> Opening {
        self.on_close = Some(Box::new(f));
        self
    }
}

pub(crate) type OpenFn = Arc<dyn Fn(&OpenRequest) -> Result<Opening, LinkError> + Send + Sync>;

/// Who provides a channel. Clients are told about device channels first, in the order
/// they were added, then about the server's own (the order clients have always seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Server,
    Device,
}

/// One linkable channel: its type and id, our caps for it, and how to open it.
#[derive(Clone)]
pub(crate) struct ChannelKind {
    pub channel_type: u8,
    pub id: u8,
    /// Our channel caps for the link reply, as u32 words.
    pub caps: Vec<u32>,
    pub provider: Provider,
    open: OpenFn,
}

impl ChannelKind {
    /// `cap_bits`: the `SPICE_*_CAP_*` numbers we announce.
    pub(crate) fn new(
        channel_type: u8,
        id: u8,
        cap_bits: &[u32],
        provider: Provider,
        open: impl Fn(&OpenRequest) -> Result<Opening, LinkError> + Send + Sync + 'static,
    ) -> ChannelKind {
        ChannelKind {
            channel_type,
            id,
            caps: Caps::from_bits(cap_bits).0,
            provider,
            open: Arc::new(open),
        }
    }

    /// How to open it (tests open a kind without a registry).
    #[cfg(test)]
    pub(crate) fn open_fn(&self) -> OpenFn {
        self.open.clone()
    }

    fn is(&self, channel_type: u8, id: u8) -> bool {
        self.channel_type == channel_type && self.id == id
    }
}

#[derive(Default)]
pub(crate) struct ChannelRegistry {
    kinds: Vec<ChannelKind>,
}

impl ChannelRegistry {
    /// Adds a channel; false (and nothing changes) when its type and id are taken.
    pub(crate) fn register(&mut self, kind: ChannelKind) -> bool {
        if self.find(kind.channel_type, kind.id).is_some() {
            crate::log_warn!(
                "channel {}:{} is already registered",
                kind.channel_type,
                kind.id
            );
            return false;
        }
        self.kinds.push(kind);
        true
    }

    pub(crate) fn unregister(&mut self, channel_type: u8, id: u8) -> bool {
        let before = self.kinds.len();
        self.kinds.retain(|k| !k.is(channel_type, id));
        self.kinds.len() != before
    }

    /// New caps for a registered channel (clients linking from now on see them).
    pub(crate) fn set_caps(&mut self, channel_type: u8, id: u8, cap_bits: &[u32]) {
        if let Some(kind) = self.kinds.iter_mut().find(|k| k.is(channel_type, id)) {
            kind.caps = Caps::from_bits(cap_bits).0;
        }
    }

    pub(crate) fn find(&self, channel_type: u8, id: u8) -> Option<&ChannelKind> {
        self.kinds.iter().find(|k| k.is(channel_type, id))
    }

    /// The open function, to call without holding the registry's lock.
    pub(crate) fn opener(&self, channel_type: u8, id: u8) -> Option<OpenFn> {
        self.find(channel_type, id).map(|k| k.open.clone())
    }

    /// What the main channel's `CHANNELS_LIST` carries: every channel but main itself.
    pub(crate) fn listed(&self) -> Vec<(u8, u8)> {
        [Provider::Device, Provider::Server]
            .into_iter()
            .flat_map(|p| self.kinds.iter().filter(move |k| k.provider == p))
            .filter(|k| k.channel_type != ch::MAIN)
            .map(|k| (k.channel_type, k.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelError, Outbox};

    /// A channel that remembers what it was opened with.
    struct Probe(u8);

    /// An empty message whose type says which probe sent it.
    struct ProbeSays(u16);

    impl crate::proto::outgoing::ServerMessage for ProbeSays {
        fn msg_type(&self) -> u16 {
            self.0
        }
        fn encode_body(&self, _: &mut crate::proto::wire::Writer) {}
    }

    impl Channel for Probe {
        fn start(&mut self, out: &mut Outbox) {
            out.send(&ProbeSays(u16::from(self.0)));
        }

        fn on_message(&mut self, _: u16, _: &[u8], _: &mut Outbox) -> Result<(), ChannelError> {
            Ok(())
        }
    }

    fn kind(channel_type: u8, id: u8, bits: &[u32], provider: Provider) -> ChannelKind {
        ChannelKind::new(channel_type, id, bits, provider, move |r| {
            Ok(Opening::new(Probe(r.channel_id * 10 + channel_type)))
        })
    }

    fn request(channel_id: u8) -> OpenRequest {
        OpenRequest {
            session_id: 7,
            channel_id,
            caps: Caps::default(),
        }
    }

    fn with_server_channels() -> ChannelRegistry {
        let mut r = ChannelRegistry::default();
        assert!(r.register(kind(ch::MAIN, 0, &[], Provider::Server)));
        assert!(r.register(kind(ch::INPUTS, 0, &[0], Provider::Server)));
        r
    }

    #[test]
    fn devices_register_and_unregister_their_channels() {
        let mut r = with_server_channels();
        assert!(r.find(ch::DISPLAY, 0).is_none());
        assert!(r.register(kind(ch::DISPLAY, 0, &[], Provider::Device)));
        assert!(r.register(kind(ch::CURSOR, 0, &[], Provider::Device)));
        assert!(
            !r.register(kind(ch::DISPLAY, 0, &[], Provider::Device)),
            "one channel per type and id"
        );
        assert!(r.find(ch::DISPLAY, 0).is_some() && r.find(ch::CURSOR, 0).is_some());
        assert!(r.unregister(ch::DISPLAY, 0));
        assert!(!r.unregister(ch::DISPLAY, 0));
        assert!(r.find(ch::DISPLAY, 0).is_none());
        assert!(r.find(ch::CURSOR, 0).is_some());
    }

    #[test]
    fn the_list_leaves_main_out_and_puts_devices_first() {
        let mut r = with_server_channels();
        assert_eq!(r.listed(), vec![(ch::INPUTS, 0)]);
        for id in [0, 1] {
            r.register(kind(ch::DISPLAY, id, &[], Provider::Device));
            r.register(kind(ch::CURSOR, id, &[], Provider::Device));
        }
        assert_eq!(
            r.listed(),
            vec![
                (ch::DISPLAY, 0),
                (ch::CURSOR, 0),
                (ch::DISPLAY, 1),
                (ch::CURSOR, 1),
                (ch::INPUTS, 0)
            ]
        );
        r.unregister(ch::DISPLAY, 0);
        r.unregister(ch::CURSOR, 0);
        assert_eq!(
            r.listed(),
            vec![(ch::DISPLAY, 1), (ch::CURSOR, 1), (ch::INPUTS, 0)]
        );
    }

    #[test]
    fn caps_are_per_channel() {
        let mut r = with_server_channels();
        r.register(kind(ch::DISPLAY, 0, &[0, 1, 33], Provider::Device));
        assert_eq!(r.find(ch::DISPLAY, 0).unwrap().caps, vec![0b11, 0b10]);
        assert_eq!(r.find(ch::INPUTS, 0).unwrap().caps, vec![1]);
        assert!(r.find(ch::MAIN, 0).unwrap().caps.iter().all(|&w| w == 0));
    }

    #[test]
    fn open_dispatches_to_the_registered_kind() {
        let mut r = with_server_channels();
        r.register(kind(ch::DISPLAY, 2, &[], Provider::Device));
        let mut out = Outbox::new(crate::proto::frame::HeaderKind::Mini);
        let open = r.opener(ch::DISPLAY, 2).expect("registered");
        let mut opened = open(&request(2)).unwrap_or_else(|_| panic!("open failed"));
        opened.channel.start(&mut out);
        let open = r.opener(ch::INPUTS, 0).expect("registered");
        let mut opened = open(&request(0)).unwrap_or_else(|_| panic!("open failed"));
        opened.channel.start(&mut out);
        assert_eq!(
            crate::channel::testing::drain_types(&mut out),
            vec![u16::from(2 * 10 + ch::DISPLAY), u16::from(ch::INPUTS)]
        );
        assert!(r.opener(ch::DISPLAY, 3).is_none());
    }
}
