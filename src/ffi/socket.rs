//! Socket options the `socket2` crate does not offer.

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
