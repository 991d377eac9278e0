//! Socket options the `socket2` crate does not offer.

use crate::channel::delivery::SendQueue;
use std::io;
use std::os::fd::RawFd;

/// `TCP_NOTSENT_LOWAT`: the kernel takes no more bytes while `bytes` of what it holds
/// are not sent yet, and says the socket is writable again once they are. A display
/// channel's kernel queue then holds what is in flight on the link, not seconds of
/// frames waiting behind it: the rest stays in the outbox, where a newer frame can
/// replace an unsent one.
pub(crate) fn set_notsent_lowat(fd: RawFd, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local; a bad fd or
    // a socket that is not TCP is an error return, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a TCP socket's queue from `TCP_INFO` (Linux 4.10 or later fills the fields
/// read).
pub(crate) fn send_queue(fd: RawFd) -> io::Result<SendQueue> {
    // SAFETY: tcp_info is plain integers: all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live local it is given and
    // stores the length it wrote; a bad fd or a socket that is not TCP is an error return.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let filled = std::mem::offset_of!(libc::tcp_info, tcpi_min_rtt) + 4;
    if (len as usize) < filled {
        return Err(io::Error::other(
            "TCP_INFO without the unsent bytes (kernel before 4.10)",
        ));
    }
    Ok(SendQueue {
        unsent_bytes: info.tcpi_notsent_bytes,
        rtt_us: info.tcpi_rtt,
        min_rtt_us: info.tcpi_min_rtt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_peer_that_does_not_read_leaves_bytes_unsent() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_receiver, _) = listener.accept().unwrap();
        let idle = send_queue(sender.as_raw_fd()).unwrap();
        assert_eq!(idle.unsent_bytes, 0);

        // Fill the receiver's window and the sender's buffer: the rest stays unsent.
        sender.set_nonblocking(true).unwrap();
        let chunk = [0u8; 64 << 10];
        let mut written = 0usize;
        while let Ok(n) = sender.write(&chunk) {
            written += n;
            assert!(written < 1 << 30, "the socket never filled");
        }
        let full = send_queue(sender.as_raw_fd()).unwrap();
        assert!(full.unsent_bytes > 0, "{full:?} after {written} bytes");
        assert!(full.unsent_bytes as usize <= written);
        assert!(full.min_rtt_us <= full.rtt_us.max(full.min_rtt_us));
    }

    #[test]
    fn a_socket_that_is_not_tcp_is_an_error() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(send_queue(a.as_raw_fd()).is_err());
    }
}
