//! Opens the listening sockets `spice_server_init` must provide.

use super::tls::TlsAcceptor;
use crate::server::config::{AddrFamily, ServerConfig};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;

pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
    /// The tls-port: accepted sockets start with a TLS handshake.
    Tls(TcpListener, TlsAcceptor),
}

/// Resolves `addr` (empty = every address) for `family` and `port`.
fn resolve(addr: &str, family: AddrFamily, port: u16) -> io::Result<SocketAddr> {
    let wanted = |a: &SocketAddr| match family {
        AddrFamily::Ipv4Only => a.is_ipv4(),
        AddrFamily::Ipv6Only => a.is_ipv6(),
        _ => true,
    };
    if addr.is_empty() {
        return Ok(match family {
            AddrFamily::Ipv4Only => SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            // Linux's default (bindv6only=0) makes [::] accept IPv4 too.
            _ => SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        });
    }
    let host = addr.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()?
        .find(wanted)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for '{addr}'")))
}

/// The plain (non-TLS) listener the configuration asks for, if any.
pub(crate) fn open_plain(config: &ServerConfig) -> io::Result<Option<Listener>> {
    if config.family == AddrFamily::Unix {
        let path = &config.addr;
        // A stale socket file from a previous run would make bind fail.
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        return Ok(Some(Listener::Unix(listener)));
    }
    let Some(port) = config.port else {
        return Ok(None);
    };
    let addr = resolve(&config.addr, config.family, port)?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(Some(Listener::Tcp(listener)))
}

/// The TLS listener (`tls-port=`), if configured. It binds the same address as the plain
/// port (a UNIX socket address has no TLS port).
pub(crate) fn open_tls(
    config: &ServerConfig,
    acceptor: Option<TlsAcceptor>,
) -> io::Result<Option<Listener>> {
    let (Some(tls), Some(acceptor)) = (&config.tls, acceptor) else {
        return Ok(None);
    };
    if config.family == AddrFamily::Unix {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a UNIX socket address has no TLS port",
        ));
    }
    let addr = resolve(&config.addr, config.family, tls.port)?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(Some(Listener::Tls(listener, acceptor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_addr_means_every_address() {
        let any = resolve("", AddrFamily::Any, 5900).unwrap();
        assert!(any.ip().is_unspecified() && any.is_ipv6());
        let v4 = resolve("", AddrFamily::Ipv4Only, 5900).unwrap();
        assert!(v4.is_ipv4());
    }

    #[test]
    fn literal_and_bracketed_addresses() {
        assert_eq!(
            resolve("127.0.0.1", AddrFamily::Any, 1).unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]", AddrFamily::Ipv6Only, 2).unwrap(),
            "[::1]:2".parse().unwrap()
        );
        assert!(resolve("127.0.0.1", AddrFamily::Ipv6Only, 1).is_err());
    }

    #[test]
    fn opens_a_tcp_listener_on_loopback() {
        let mut c = ServerConfig::default();
        c.set_addr("127.0.0.1", 1);
        c.set_port(0).unwrap();
        assert!(
            open_plain(&c).unwrap().is_none(),
            "port 0 means no plain port"
        );
    }

    #[test]
    fn opens_a_unix_listener() {
        let dir = std::env::temp_dir().join(format!("spice-rs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let mut c = ServerConfig::default();
        c.set_addr(path.to_str().unwrap(), 4);
        for _ in 0..2 {
            // The second bind replaces the stale socket file.
            let l = open_plain(&c).unwrap();
            assert!(matches!(l, Some(Listener::Unix(_))));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
