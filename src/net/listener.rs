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

/// A UNIX listener at `path` (`-spice unix=on,addr=...`), as reds.c: a leading '@' names
/// a Linux abstract socket (no file). Otherwise a stale socket file from a previous run is
/// replaced; unlike reds.c, which unlinks whatever the path names, any other kind of file
/// is left alone and the bind fails. The file stays after shutdown, as in C.
fn open_unix(path: &str) -> io::Result<UnixListener> {
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        return UnixListener::bind_addr(&addr);
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// The plain (non-TLS) listener the configuration asks for, if any.
pub(crate) fn open_plain(config: &ServerConfig) -> io::Result<Option<Listener>> {
    if config.family == AddrFamily::Unix {
        let listener = open_unix(&config.addr)?;
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
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(
            open_plain(&c).is_err(),
            "another kind of file is left alone"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixStream};
        let name = format!("spice-rs-test-{}", std::process::id());
        let mut c = ServerConfig::default();
        c.set_addr(&format!("@{name}"), 4);
        let Some(Listener::Unix(l)) = open_plain(&c).unwrap() else {
            panic!("no UNIX listener")
        };
        assert!(
            !std::path::Path::new(&format!("@{name}")).exists(),
            "no file"
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        UnixStream::connect_addr(&addr).unwrap();
        l.set_nonblocking(false).unwrap();
        assert!(l.accept().is_ok(), "a client reaches it by name");
        assert!(
            open_plain(&c).is_err(),
            "the name is taken while it listens"
        );
        drop(l);
        assert!(open_plain(&c).is_ok(), "and free again once closed");
    }
}
