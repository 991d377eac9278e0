//! One type for TCP, UNIX and TLS client sockets, and WebSocket over any of them.

use super::tls::TlsStream;
use super::websocket::WebSocket;
use crate::channel::delivery::SendQueue;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TLS over TCP; the handshake runs on first read or write.
    Tls(Box<TlsStream>),
    /// WebSocket framing over one of the others; the upgrade runs on first read.
    WebSocket(Box<WebSocket>),
}

/// Where a connection comes from and goes to (UNIX sockets have no IP addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// Arrived over TLS (`SPICE_CHANNEL_EVENT_FLAG_TLS`, QMP's "tls": true).
    pub tls: bool,
}

impl Stream {
    pub(crate) fn endpoints(&self) -> Endpoints {
        match self {
            Stream::Tcp(s) => Endpoints {
                local: s.local_addr().ok(),
                peer: s.peer_addr().ok(),
                tls: false,
            },
            Stream::Unix(_) => Endpoints {
                local: None,
                peer: None,
                tls: false,
            },
            Stream::Tls(s) => Endpoints {
                local: s.socket().local_addr().ok(),
                peer: s.socket().peer_addr().ok(),
                tls: true,
            },
            Stream::WebSocket(s) => s.inner().endpoints(),
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Stream::Tls(_) => true,
            Stream::WebSocket(s) => s.inner().is_tls(),
            _ => false,
        }
    }

    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self, Stream::WebSocket(_))
    }

    /// Bytes the transport itself still has to send (`Write::flush` sends them): the
    /// reactor must watch for writability even with nothing of its own to write.
    pub(crate) fn buffered_output(&self) -> bool {
        match self {
            Stream::WebSocket(s) => s.buffered_output(),
            _ => false,
        }
    }

    /// TLS: the cipher's secret bits (SASL's external SSF).
    pub(crate) fn tls_bits(&self) -> Option<u32> {
        match self {
            Stream::Tls(s) => Some(s.cipher_bits()),
            _ => None,
        }
    }

    /// Caps the kernel's send queue: on a slow link a display channel should drop
    /// video frames in its own slot, not queue seconds of them in the kernel.
    pub(crate) fn limit_send_queue(&self, bytes: usize) {
        let set = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_send_buffer_size(bytes),
            Stream::Unix(s) => socket2::SockRef::from(s).set_send_buffer_size(bytes),
            Stream::Tls(s) => socket2::SockRef::from(s.socket()).set_send_buffer_size(bytes),
            Stream::WebSocket(s) => return s.inner().limit_send_queue(bytes),
        };
        if let Err(e) = set {
            crate::log_debug!("cannot limit a socket's send queue: {e}");
        }
    }
}

impl Stream {
    /// The TCP socket under TLS or WebSocket framing; none for UNIX sockets (a local
    /// client: nothing waits on a link, and there is no `TCP_NOTSENT_LOWAT` or
    /// `TCP_INFO`).
    fn tcp_fd(&self) -> Option<RawFd> {
        match self {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Tls(s) => Some(s.socket().as_raw_fd()),
            Stream::Unix(_) => None,
            Stream::WebSocket(s) => s.inner().tcp_fd(),
        }
    }

    /// Caps the bytes the kernel holds unsent (`TCP_NOTSENT_LOWAT`): what a slow link
    /// cannot take yet waits in the outbox, where the display channel sees it.
    pub(crate) fn limit_unsent(&self, bytes: u32) {
        let Some(fd) = self.tcp_fd() else {
            return;
        };
        if let Err(e) = crate::ffi::socket::set_notsent_lowat(fd, bytes) {
            crate::log_debug!("cannot limit a socket's unsent bytes: {e}");
        }
    }

    /// The TCP socket's own queue and round trip.
    pub(crate) fn send_queue(&self) -> Option<SendQueue> {
        crate::ffi::socket::send_queue(self.tcp_fd()?).ok()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::WebSocket(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::WebSocket(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::WebSocket(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
            Stream::Tls(s) => s.socket_mut().register(r, t, i),
            Stream::WebSocket(s) => s.inner_mut().register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Tls(s) => s.socket_mut().reregister(r, t, i),
            Stream::WebSocket(s) => s.inner_mut().reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            Stream::Tls(s) => s.socket_mut().deregister(r),
            Stream::WebSocket(s) => s.inner_mut().deregister(r),
        }
    }
}
