//! What the `spice_server_set_*` calls configure, validated the way spice-server 0.15
//! validates it. Pure data: no sockets, no threads.

use crate::video::codecs::CodecList;
use crate::video::StreamMode;
use std::time::Instant;

/// Longest ticket the link protocol can carry (`SPICE_MAX_PASSWORD_LENGTH`).
pub(crate) const MAX_PASSWORD_LENGTH: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigError {
    PortOutOfRange(i32),
    PasswordTooLong,
    /// `set_ticket` with `fail_if_connected` while a client is connected.
    ClientConnected,
    TlsIncomplete,
    InvalidValue {
        what: &'static str,
        value: i32,
    },
    UnknownChannel(String),
    NoUsableCodec(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::PortOutOfRange(p) => write!(f, "port {p} is out of range 0..65535"),
            ConfigError::PasswordTooLong => {
                write!(f, "ticket longer than {MAX_PASSWORD_LENGTH} bytes")
            }
            ConfigError::ClientConnected => {
                write!(f, "a client is connected: the ticket is left unchanged")
            }
            ConfigError::TlsIncomplete => write!(f, "TLS needs a port, a CA, a cert and a key"),
            ConfigError::InvalidValue { what, value } => write!(f, "invalid {what}: {value}"),
            ConfigError::UnknownChannel(name) => write!(f, "unknown channel name '{name}'"),
            ConfigError::NoUsableCodec(list) => write!(f, "no usable video codec in '{list}'"),
        }
    }
}

/// Which address family the listening socket uses (`SPICE_ADDR_FLAG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AddrFamily {
    #[default]
    Any,
    Ipv4Only,
    Ipv6Only,
    /// `addr` is a filesystem path for a UNIX socket.
    Unix,
}

impl AddrFamily {
    /// Maps the C flags word. spice-server warns on anything else and keeps `Any`.
    pub(crate) fn from_flags(flags: i32) -> Option<AddrFamily> {
        match flags {
            0 => Some(AddrFamily::Any),
            1 => Some(AddrFamily::Ipv4Only),
            2 => Some(AddrFamily::Ipv6Only),
            4 => Some(AddrFamily::Unix),
            _ => None,
        }
    }
}

pub(crate) use crate::image::choose::ImageCompression;

pub(crate) use crate::image::choose::WanCompression;

/// The ticket a client must present, and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub password: String,
    /// `None` = never expires.
    pub expires: Option<Instant>,
}

impl Ticket {
    pub(crate) fn is_valid_at(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

/// Client authentication policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `disable-ticketing=on`: anyone may connect.
    None,
    /// Spice's RSA ticket. Without a ticket set, nobody can log in (spice-server's default).
    Ticket(Option<Ticket>),
}

impl Auth {
    /// Whether a client presenting `password` may link at `now`. As spice-server: with
    /// ticketing on, no ticket, an expired one or an empty password refuses everyone.
    pub(crate) fn admits(&self, password: &[u8], now: Instant) -> bool {
        let ticket = match self {
            Auth::None => return true,
            Auth::Ticket(ticket) => ticket.as_ref(),
        };
        match ticket {
            Some(t) if !t.is_valid_at(now) => {
                crate::log_warn!("client refused: the ticket has expired");
                false
            }
            Some(t) if !t.password.is_empty() => {
                crate::net::auth::password_matches(password, t.password.as_bytes())
            }
            _ => {
                crate::log_warn!(
                    "Ticketing is enabled, but no password is set. please set a ticket first"
                );
                false
            }
        }
    }
}

/// TLS files, as handed over by QEMU (`spice_server_set_tls`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsConfig {
    pub port: u16,
    pub ca_cert_file: String,
    pub certs_file: String,
    pub private_key_file: String,
    pub key_password: Option<String>,
    pub dh_key_file: Option<String>,
    pub ciphersuite: Option<String>,
}

/// `SPICE_CHANNEL_SECURITY_*` bits.
pub(crate) const SECURITY_NONE: i32 = 1;
pub(crate) const SECURITY_SSL: i32 = 2;

/// SPICE channel type numbers by the names `tls-channel=` accepts.
pub(crate) fn channel_type_by_name(name: &str) -> Option<u8> {
    Some(match name {
        "main" => 1,
        "display" => 2,
        "inputs" => 3,
        "cursor" => 4,
        "playback" => 5,
        "record" => 6,
        "tunnel" => 7,
        "smartcard" => 8,
        "usbredir" => 9,
        "port" => 10,
        "webdav" => 11,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub port: Option<u16>,
    pub addr: String,
    pub family: AddrFamily,
    pub listen_fd: Option<i32>,
    pub tls: Option<TlsConfig>,
    pub auth: Auth,
    /// `spice_server_set_sasl`: SASL replaces the ticket.
    pub sasl: bool,
    /// `spice_server_set_sasl_appname`: names libsasl2's config file (QEMU: "qemu").
    pub sasl_appname: Option<String>,
    pub exit_on_disconnect: bool,
    pub image_compression: ImageCompression,
    pub jpeg: WanCompression,
    pub zlib_glz: WanCompression,
    pub streaming_video: StreamMode,
    pub video_codecs: CodecList,
    pub playback_compression: bool,
    pub agent_mouse: bool,
    pub agent_copypaste: bool,
    pub agent_file_xfer: bool,
    pub seamless_migration: bool,
    pub name: Option<String>,
    pub uuid: Option<[u8; 16]>,
    pub default_security: i32,
    /// Per channel type overrides of `default_security`.
    pub channel_security: Vec<(u8, i32)>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: None,
            addr: String::new(),
            family: AddrFamily::Any,
            listen_fd: None,
            tls: None,
            auth: Auth::Ticket(None),
            sasl: false,
            sasl_appname: None,
            exit_on_disconnect: false,
            image_compression: ImageCompression::AutoGlz,
            jpeg: WanCompression::Auto,
            zlib_glz: WanCompression::Auto,
            streaming_video: StreamMode::Filter,
            video_codecs: CodecList::default(),
            playback_compression: true,
            agent_mouse: true,
            agent_copypaste: true,
            agent_file_xfer: true,
            seamless_migration: false,
            name: None,
            uuid: None,
            default_security: SECURITY_NONE | SECURITY_SSL,
            channel_security: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// `spice_server_set_port`: 0 means "no plain port".
    pub(crate) fn set_port(&mut self, port: i32) -> Result<(), ConfigError> {
        let port = u16::try_from(port).map_err(|_| ConfigError::PortOutOfRange(port))?;
        self.port = (port != 0).then_some(port);
        Ok(())
    }

    /// `spice_server_set_addr`. Unknown flags keep the family, as spice-server does.
    pub(crate) fn set_addr(&mut self, addr: &str, flags: i32) {
        self.addr = addr.to_owned();
        match AddrFamily::from_flags(flags) {
            Some(AddrFamily::Any) => {}
            Some(family) => self.family = family,
            None => crate::log_warn!("unknown address flag: {flags:#x}"),
        }
    }

    /// `spice_server_set_ticket`'s effect on the ticket, as reds.c: ticketing turns on;
    /// `lifetime` seconds from now (0 = forever, negative = already expired); no password
    /// clears it and expires at once. A password too long is refused after ticketing and
    /// the expiry were already set, keeping the old password (an empty one after
    /// `set_noauth`, which admits nobody): fail closed, as C.
    pub(crate) fn set_ticket(
        &mut self,
        password: Option<&str>,
        lifetime_s: i32,
        now: Instant,
    ) -> Result<(), ConfigError> {
        let seconds = std::time::Duration::from_secs(u64::from(lifetime_s.unsigned_abs()));
        let expires = match lifetime_s {
            0 => None,
            1.. => Some(now + seconds),
            _ => Some(now.checked_sub(seconds).unwrap_or(now)),
        };
        let old = match &self.auth {
            Auth::Ticket(Some(t)) => t.password.clone(),
            _ => String::new(),
        };
        let (password, expires, result) = match password {
            Some(p) if p.len() > MAX_PASSWORD_LENGTH => {
                (old, expires, Err(ConfigError::PasswordTooLong))
            }
            Some(p) => (p.to_owned(), expires, Ok(())),
            None => (String::new(), Some(now), Ok(())),
        };
        self.auth = Auth::Ticket(Some(Ticket { password, expires }));
        result
    }

    pub(crate) fn set_noauth(&mut self) {
        self.auth = Auth::None;
    }

    /// `spice_server_set_tls`; the caller has already refused missing CA/cert/key files.
    pub(crate) fn set_tls(&mut self, port: i32, tls: TlsConfig) -> Result<(), ConfigError> {
        if port == 0 {
            return Err(ConfigError::TlsIncomplete);
        }
        let port = u16::try_from(port).map_err(|_| ConfigError::PortOutOfRange(port))?;
        self.tls = Some(TlsConfig { port, ..tls });
        Ok(())
    }

    /// `spice_server_set_channel_security`: `None` sets the default for every channel.
    pub(crate) fn set_channel_security(
        &mut self,
        channel: Option<&str>,
        security: i32,
    ) -> Result<(), ConfigError> {
        let Some(name) = channel else {
            self.default_security = security;
            return Ok(());
        };
        // Smartcard is refused as spice-server does when built without it.
        let kind = channel_type_by_name(name)
            .filter(|&t| t != 8)
            .ok_or_else(|| ConfigError::UnknownChannel(name.to_owned()))?;
        self.channel_security.retain(|&(t, _)| t != kind);
        self.channel_security.push((kind, security));
        Ok(())
    }

    pub(crate) fn set_image_compression(&mut self, value: i32) -> Result<(), ConfigError> {
        self.image_compression =
            ImageCompression::from_c(value).ok_or(ConfigError::InvalidValue {
                what: "image compression",
                value,
            })?;
        Ok(())
    }

    pub(crate) fn set_wan(
        slot: &mut WanCompression,
        what: &'static str,
        value: i32,
    ) -> Result<(), ConfigError> {
        *slot = WanCompression::from_c(value).ok_or(ConfigError::InvalidValue { what, value })?;
        Ok(())
    }

    pub(crate) fn set_streaming_video(&mut self, value: i32) -> Result<(), ConfigError> {
        self.streaming_video = StreamMode::from_c(value).ok_or(ConfigError::InvalidValue {
            what: "streaming video mode",
            value,
        })?;
        Ok(())
    }

    pub(crate) fn set_video_codecs(&mut self, text: &str) -> Result<(), ConfigError> {
        let list = CodecList::parse(text);
        if list.is_empty() {
            return Err(ConfigError::NoUsableCodec(text.to_owned()));
        }
        crate::log_info!("video codecs: {list}");
        self.video_codecs = list;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_match_spice_server() {
        let c = ServerConfig::default();
        assert_eq!(c.auth, Auth::Ticket(None));
        assert_eq!(c.streaming_video, StreamMode::Filter);
        assert_eq!(c.image_compression, ImageCompression::AutoGlz);
        assert_eq!(c.default_security, 3);
        assert!(c.agent_mouse && c.playback_compression);
    }

    #[test]
    fn port_range_is_checked() {
        let mut c = ServerConfig::default();
        assert_eq!(c.set_port(-1), Err(ConfigError::PortOutOfRange(-1)));
        assert_eq!(c.set_port(65536), Err(ConfigError::PortOutOfRange(65536)));
        c.set_port(5930).unwrap();
        assert_eq!(c.port, Some(5930));
        c.set_port(0).unwrap();
        assert_eq!(c.port, None);
    }

    #[test]
    fn ticket_lifetime_and_expiry() {
        let mut c = ServerConfig::default();
        let now = Instant::now();
        c.set_ticket(Some("secret"), 0, now).unwrap();
        let Auth::Ticket(Some(t)) = &c.auth else {
            panic!("ticket not set")
        };
        assert!(t.is_valid_at(now + Duration::from_secs(1_000_000)));

        c.set_ticket(Some("secret"), 10, now).unwrap();
        let Auth::Ticket(Some(t)) = &c.auth else {
            panic!("ticket not set")
        };
        assert!(t.is_valid_at(now + Duration::from_secs(9)));
        assert!(!t.is_valid_at(now + Duration::from_secs(10)));

        c.set_ticket(None, 1, now).unwrap();
        let Auth::Ticket(Some(t)) = &c.auth else {
            panic!("ticket not set")
        };
        assert!(!t.is_valid_at(now));

        c.set_ticket(Some("secret"), -5, now).unwrap();
        let Auth::Ticket(Some(t)) = &c.auth else {
            panic!("ticket not set")
        };
        assert!(!t.is_valid_at(now), "a negative lifetime is already over");
    }

    #[test]
    fn a_password_too_long_is_refused_but_ticketing_turns_on() {
        let now = Instant::now();
        let long = "x".repeat(61);
        let mut c = ServerConfig::default();
        c.set_ticket(Some("old"), 0, now).unwrap();
        assert_eq!(
            c.set_ticket(Some(&long), 10, now),
            Err(ConfigError::PasswordTooLong)
        );
        assert!(c.auth.admits(b"old", now), "the old password stays");
        assert!(!c.auth.admits(long.as_bytes(), now));
        assert!(
            !c.auth.admits(b"old", now + Duration::from_secs(10)),
            "with the new lifetime"
        );
        c.set_noauth();
        assert!(c.set_ticket(Some(&long), 0, now).is_err());
        assert!(!c.auth.admits(b"", now), "ticketing is on: nobody gets in");
        assert!(c.set_ticket(Some(&"y".repeat(60)), 0, now).is_ok());
    }

    #[test]
    fn an_empty_password_admits_nobody() {
        let now = Instant::now();
        let mut c = ServerConfig::default();
        assert!(!c.auth.admits(b"", now), "no ticket set");
        c.set_ticket(Some(""), 0, now).unwrap();
        assert!(!c.auth.admits(b"", now));
        assert!(!c.auth.admits(b"anything", now));
        c.set_ticket(Some("pw"), 0, now).unwrap();
        assert!(c.auth.admits(b"pw", now));
        assert!(!c.auth.admits(b"", now));
        assert!(!c.auth.admits(b"pw2", now));
        c.set_ticket(Some("pw"), 5, now).unwrap();
        assert!(
            !c.auth.admits(b"pw", now + Duration::from_secs(5)),
            "expired"
        );
        c.set_noauth();
        assert!(c.auth.admits(b"", now));
    }

    #[test]
    fn enum_setters_reject_invalid_values() {
        let mut c = ServerConfig::default();
        assert!(c.set_streaming_video(0).is_err());
        assert!(c.set_streaming_video(4).is_err());
        c.set_streaming_video(1).unwrap();
        assert_eq!(c.streaming_video, StreamMode::Off);
        assert!(c.set_image_compression(0).is_err());
        assert!(c.set_image_compression(8).is_err());
        c.set_image_compression(7).unwrap();
        assert!(ServerConfig::set_wan(&mut c.jpeg, "jpeg", 0).is_err());
        ServerConfig::set_wan(&mut c.jpeg, "jpeg", 3).unwrap();
        assert_eq!(c.jpeg, WanCompression::Never);
    }

    #[test]
    fn channel_security_by_name() {
        let mut c = ServerConfig::default();
        c.set_channel_security(Some("display"), SECURITY_SSL)
            .unwrap();
        assert_eq!(c.channel_security, vec![(2, SECURITY_SSL)]);
        assert_eq!(c.default_security, 3);
        assert!(c.set_channel_security(Some("bogus"), 1).is_err());
        c.set_channel_security(None, SECURITY_NONE).unwrap();
        assert_eq!(c.default_security, SECURITY_NONE);
    }

    #[test]
    fn addr_flags() {
        let mut c = ServerConfig::default();
        c.set_addr("127.0.0.1", 1);
        assert_eq!(c.family, AddrFamily::Ipv4Only);
        assert_eq!(c.addr, "127.0.0.1");
        c.set_addr("/tmp/s.sock", 4);
        assert_eq!(c.family, AddrFamily::Unix);
        c.set_addr("", 99);
        assert_eq!(c.family, AddrFamily::Unix);
    }
}
