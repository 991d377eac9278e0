//! Thread setup for threads we create inside QEMU's process.

/// Blocks asynchronous signals on the calling thread, so QEMU's SIGTERM handling and the
/// signals it aims at its vCPU threads never land on ours (spice-server does the same).
pub(crate) fn block_async_signals() {
    // SAFETY: sigset_t is plain data; sigfillset/sigdelset/pthread_sigmask only touch the
    // set we own and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for keep in [libc::SIGILL, libc::SIGFPE, libc::SIGSEGV, libc::SIGBUS] {
            libc::sigdelset(&mut set, keep);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
