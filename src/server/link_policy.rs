//! Who may link which channel, as spice-server decides it: the transport a channel
//! demands, the ticket, the session a non-main channel joins, one connection per channel
//! per client. Pure: no sockets, no QEMU.

use super::clients::Clients;
use super::config::{Auth, ServerConfig, SECURITY_NONE, SECURITY_SSL};
use crate::proto::caps::{common, Caps};
use crate::proto::link::{LinkError, LinkMess};
use crate::proto::msg::channel as ch;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkPolicy {
    pub auth: Auth,
    /// SASL authenticates instead of the ticket (`spice_server_set_sasl`).
    pub sasl: bool,
    /// `SPICE_CHANNEL_SECURITY_*` bits for channels without an override.
    pub default_security: i32,
    /// Per channel type overrides.
    pub security: Vec<(u8, i32)>,
}

impl Default for LinkPolicy {
    fn default() -> Self {
        LinkPolicy {
            auth: Auth::Ticket(None),
            sasl: false,
            default_security: SECURITY_NONE | SECURITY_SSL,
            security: Vec::new(),
        }
    }
}

impl LinkPolicy {
    pub(crate) fn from_config(config: &ServerConfig) -> LinkPolicy {
        LinkPolicy {
            auth: config.auth.clone(),
            sasl: config.sasl,
            default_security: config.default_security,
            security: config.channel_security.clone(),
        }
    }

    /// Our common caps for a link reply: spice tickets, selectable, and mini headers.
    pub(crate) fn common_caps() -> Vec<u32> {
        Caps::from_bits(&[
            common::AUTH_SELECTION,
            common::AUTH_SPICE,
            common::MINI_HEADER,
        ])
        .0
    }

    /// Checked on the link request: may this channel be linked over the transport it
    /// arrived on? As spice-server's `reds_security_check`: a TLS link needs the channel's
    /// SSL bit, a plain one its NONE bit; the refusal tells the client which port to use.
    pub(crate) fn check_transport(&self, channel_type: u8, tls: bool) -> Result<(), LinkError> {
        let security = self
            .security
            .iter()
            .find(|(t, _)| *t == channel_type)
            .map_or(self.default_security, |(_, s)| *s);
        match (
            tls,
            security & SECURITY_SSL != 0,
            security & SECURITY_NONE != 0,
        ) {
            (true, true, _) | (false, _, true) => Ok(()),
            (true, false, _) => {
                crate::log_warn!("channel type {channel_type} must not be encrypted");
                Err(LinkError::NeedUnsecured)
            }
            (false, _, false) => {
                crate::log_warn!("channel type {channel_type} must be encrypted");
                Err(LinkError::NeedSecured)
            }
        }
    }

    /// Checked once the ticket arrived: the password, then (for any channel but main) that
    /// the session is the linked client's and does not have this channel yet.
    /// `skip_auth`: QEMU handed the socket over vouching for its client
    /// (`spice_server_add_client(.., skip_auth)`, QMP `add_client skipauth=true`), or SASL
    /// authenticated it, so the ticket is not checked, as reds.c skips it; the session
    /// rules still apply.
    pub(crate) fn admit(
        &self,
        request: &LinkMess,
        password: &[u8],
        skip_auth: bool,
        now: Instant,
        clients: &Clients,
    ) -> Result<(), LinkError> {
        if !skip_auth && !self.auth.admits(password, now) {
            return Err(LinkError::PermissionDenied);
        }
        if request.channel_type == ch::MAIN {
            return Ok(());
        }
        if clients.current() != Some(request.connection_id) {
            return Err(LinkError::BadConnectionId);
        }
        if clients.has(
            request.connection_id,
            request.channel_type,
            request.channel_id,
        ) {
            crate::log_warn!(
                "refusing a duplicate channel {}:{} in session {}",
                request.channel_type,
                request.channel_id,
                request.connection_id
            );
            return Err(LinkError::ChannelNotAvailable);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::clients::LinkedChannel;
    use crate::server::config::Ticket;
    use std::time::Duration;

    fn request(connection_id: u32, channel_type: u8) -> LinkMess {
        LinkMess::plain(connection_id, channel_type)
    }

    fn open_access() -> LinkPolicy {
        LinkPolicy {
            auth: Auth::None,
            ..LinkPolicy::default()
        }
    }

    fn ticket(password: &str, expires: Option<Instant>) -> LinkPolicy {
        LinkPolicy {
            auth: Auth::Ticket(Some(Ticket {
                password: password.into(),
                expires,
            })),
            ..LinkPolicy::default()
        }
    }

    fn admits(policy: &LinkPolicy, password: &[u8], now: Instant) -> bool {
        policy
            .admit(
                &request(0, ch::MAIN),
                password,
                false,
                now,
                &Clients::default(),
            )
            .is_ok()
    }

    const PLAIN: bool = false;
    const TLS: bool = true;

    #[test]
    fn security_per_channel_with_a_default() {
        let mut p = LinkPolicy::default();
        assert_eq!(p.check_transport(ch::DISPLAY, PLAIN), Ok(()));
        assert_eq!(
            p.check_transport(ch::DISPLAY, TLS),
            Ok(()),
            "default: either"
        );
        p.security.push((ch::DISPLAY, SECURITY_SSL));
        assert_eq!(
            p.check_transport(ch::DISPLAY, PLAIN),
            Err(LinkError::NeedSecured)
        );
        assert_eq!(p.check_transport(ch::DISPLAY, TLS), Ok(()));
        assert_eq!(p.check_transport(ch::MAIN, PLAIN), Ok(()));
        p.default_security = SECURITY_SSL;
        p.security = vec![(ch::INPUTS, SECURITY_NONE)];
        assert_eq!(
            p.check_transport(ch::MAIN, PLAIN),
            Err(LinkError::NeedSecured)
        );
        assert_eq!(p.check_transport(ch::MAIN, TLS), Ok(()));
        assert_eq!(p.check_transport(ch::INPUTS, PLAIN), Ok(()));
        assert_eq!(
            p.check_transport(ch::INPUTS, TLS),
            Err(LinkError::NeedUnsecured),
            "plaintext-channel=inputs refuses TLS"
        );
    }

    #[test]
    fn a_channel_with_no_security_bit_is_refused_both_ways() {
        let p = LinkPolicy {
            security: vec![(ch::CURSOR, 0)],
            ..LinkPolicy::default()
        };
        assert_eq!(
            p.check_transport(ch::CURSOR, PLAIN),
            Err(LinkError::NeedSecured)
        );
        assert_eq!(
            p.check_transport(ch::CURSOR, TLS),
            Err(LinkError::NeedUnsecured)
        );
    }

    #[test]
    fn tickets() {
        let now = Instant::now();
        assert!(admits(&open_access(), b"", now), "ticketing off");
        assert!(!admits(&LinkPolicy::default(), b"", now), "no ticket set");
        assert!(!admits(&ticket("", None), b"", now), "empty password");
        assert!(!admits(&ticket("", None), b"x", now), "empty password");
        let pw = ticket("pw", Some(now + Duration::from_secs(10)));
        assert!(admits(&pw, b"pw", now), "right");
        assert!(!admits(&pw, b"pW", now), "wrong");
        assert!(!admits(&pw, b"pw\0", now), "wrong length");
        assert!(
            !admits(&pw, b"pw", now + Duration::from_secs(10)),
            "expired"
        );
        let refused = LinkPolicy::default().admit(
            &request(0, ch::MAIN),
            b"",
            false,
            now,
            &Clients::default(),
        );
        assert_eq!(refused, Err(LinkError::PermissionDenied));
    }

    #[test]
    fn other_channels_join_the_current_session_once() {
        let now = Instant::now();
        let p = open_access();
        let mut clients = Clients::default();
        let display = request(5, ch::DISPLAY);
        assert_eq!(
            p.admit(&display, b"", false, now, &clients),
            Err(LinkError::BadConnectionId),
            "no session yet"
        );
        clients.start_session(5);
        assert_eq!(p.admit(&display, b"", false, now, &clients), Ok(()));
        assert_eq!(
            p.admit(&request(6, ch::DISPLAY), b"", false, now, &clients),
            Err(LinkError::BadConnectionId),
            "another session"
        );
        clients.link(
            9,
            LinkedChannel {
                session_id: 5,
                channel_type: ch::DISPLAY,
                channel_id: 0,
                on_close: None,
            },
        );
        assert_eq!(
            p.admit(&display, b"", false, now, &clients),
            Err(LinkError::ChannelNotAvailable),
            "duplicate"
        );
        assert_eq!(
            p.admit(&request(5, ch::CURSOR), b"", false, now, &clients),
            Ok(())
        );
        assert_eq!(
            p.admit(&request(0, ch::MAIN), b"", false, now, &clients),
            Ok(()),
            "main starts its own session"
        );
    }

    #[test]
    fn auth_is_checked_before_the_session() {
        let p = LinkPolicy::default();
        assert_eq!(
            p.admit(
                &request(5, ch::DISPLAY),
                b"",
                false,
                Instant::now(),
                &Clients::default()
            ),
            Err(LinkError::PermissionDenied)
        );
    }

    #[test]
    fn a_client_the_host_vouches_for_skips_only_the_ticket() {
        let now = Instant::now();
        let expired = ticket("pw", Some(now));
        let none = &Clients::default();
        for policy in [LinkPolicy::default(), ticket("", None), expired.clone()] {
            assert_eq!(
                policy.admit(&request(0, ch::MAIN), b"", false, now, none),
                Err(LinkError::PermissionDenied)
            );
            assert_eq!(
                policy.admit(&request(0, ch::MAIN), b"wrong", true, now, none),
                Ok(()),
                "{policy:?}"
            );
        }
        assert_eq!(
            expired.admit(&request(5, ch::DISPLAY), b"", true, now, none),
            Err(LinkError::BadConnectionId),
            "the session rules still apply"
        );
        let mut clients = Clients::default();
        clients.start_session(5);
        assert_eq!(
            expired.admit(&request(5, ch::DISPLAY), b"", true, now, &clients),
            Ok(())
        );
        assert_eq!(
            expired.admit(&request(5, ch::DISPLAY), b"pw", false, now, &clients),
            Err(LinkError::PermissionDenied),
            "the same session's channel over a normal socket still needs the ticket"
        );
    }
}
