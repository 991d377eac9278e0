//! Spice ticket authentication: a fresh RSA-1024 key per link; the client encrypts its
//! password (NUL-terminated) with RSA-OAEP (SHA-1) and sends the 128-byte ciphertext.

use crate::proto::link::PUBKEY_BYTES;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes of the encrypted ticket (the RSA-1024 modulus size).
pub(crate) const TICKET_BYTES: usize = 128;

/// Leading zero bytes a spice-html5 ticket may have lost (two happen once in 65536 links).
const MAX_DROPPED_LEADING_ZEROS: usize = 2;

pub(crate) struct TicketKey {
    key: PKey<Private>,
    public_der: [u8; PUBKEY_BYTES],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthError {
    Crypto(String),
    BadCiphertext,
}

impl TicketKey {
    pub(crate) fn generate() -> Result<TicketKey, AuthError> {
        let err = |e: openssl::error::ErrorStack| AuthError::Crypto(e.to_string());
        let rsa = Rsa::generate(1024).map_err(err)?;
        let key = PKey::from_rsa(rsa).map_err(err)?;
        let der = key.public_key_to_der().map_err(err)?;
        let public_der: [u8; PUBKEY_BYTES] = der
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::Crypto(format!("public key is {} bytes", der.len())))?;
        Ok(TicketKey { key, public_der })
    }

    /// DER SubjectPublicKeyInfo, as `SpiceLinkReply.pub_key` carries it.
    pub(crate) fn public_der(&self) -> &[u8; PUBKEY_BYTES] {
        &self.public_der
    }

    /// The password the client sent (bytes before the first NUL).
    ///
    /// spice-html5 writes a ciphertext whose leading bytes are zero without them (its
    /// big integer's hex drops them) and fills the tail with zeros instead, so about one
    /// link in 128 fails on C's server. When the plain reading fails and the tail is
    /// zero, the same bytes read right-aligned are tried too: still one ciphertext, and
    /// the password must match as before.
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, AuthError> {
        let rsa = self
            .key
            .rsa()
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        let mut out = vec![0u8; rsa.size() as usize];
        let decrypt = |ct: &[u8], out: &mut [u8]| rsa.private_decrypt(ct, out, Padding::PKCS1_OAEP);
        let n = match decrypt(ciphertext, &mut out) {
            Ok(n) => n,
            Err(_) => {
                let zero_tail = ciphertext.iter().rev().take_while(|&&b| b == 0).count();
                (1..=zero_tail.min(MAX_DROPPED_LEADING_ZEROS))
                    .find_map(|shift| {
                        let mut aligned = vec![0u8; ciphertext.len()];
                        aligned[shift..].copy_from_slice(&ciphertext[..ciphertext.len() - shift]);
                        decrypt(&aligned, &mut out).ok()
                    })
                    .ok_or(AuthError::BadCiphertext)?
            }
        };
        out.truncate(n);
        if let Some(nul) = out.iter().position(|&b| b == 0) {
            out.truncate(nul);
        }
        Ok(out)
    }
}

/// Fresh ticket keys made ahead on a helper thread: RSA-1024 generation takes milliseconds,
/// which the reactor must not spend per link. Every link still gets its own key, as with
/// spice-server; the pool only moves the work off the reactor thread. The pool fills
/// after the first link took its key (made then, as spice-server makes every one), on a
/// thread that lives only while it refills: a server nobody connects to spends no key,
/// no thread and no libcrypto pages on it.
#[derive(Clone)]
pub(crate) struct KeyPool(Arc<Pool>);

struct Pool {
    keys: Mutex<Vec<TicketKey>>,
    /// The refilling thread, if one was started (joined before the next one starts).
    refiller: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
    prepare_thread: fn(),
}

/// Keys kept ready: enough for the links of a few sessions opening at once.
const POOL_KEYS: usize = 8;

impl KeyPool {
    /// An empty pool; `prepare_thread` runs first on its refilling threads.
    pub(crate) fn new(prepare_thread: fn()) -> KeyPool {
        KeyPool(Arc::new(Pool {
            keys: Mutex::new(Vec::new()),
            refiller: Mutex::new(None),
            stopped: AtomicBool::new(false),
            prepare_thread,
        }))
    }

    /// A key never handed out before; made here when the pool is empty (the first link,
    /// or a burst of links), which starts its refill.
    pub(crate) fn take(&self) -> Result<TicketKey, AuthError> {
        let key = lock(&self.0.keys).pop();
        self.refill();
        key.map_or_else(TicketKey::generate, Ok)
    }

    /// Starts a refilling thread unless one runs or the pool is full.
    fn refill(&self) {
        let mut refiller = lock(&self.0.refiller);
        if self.0.stopped.load(Ordering::Acquire)
            || refiller.as_ref().is_some_and(|t| !t.is_finished())
            || lock(&self.0.keys).len() >= POOL_KEYS
        {
            return;
        }
        if let Some(done) = refiller.take() {
            let _ = done.join();
        }
        let pool = Arc::downgrade(&self.0);
        let prepare_thread = self.0.prepare_thread;
        let spawned = std::thread::Builder::new()
            .name("spice-keygen".into())
            .spawn(move || {
                prepare_thread();
                loop {
                    match pool.upgrade() {
                        Some(p) if !p.stopped.load(Ordering::Acquire) => {
                            if lock(&p.keys).len() >= POOL_KEYS {
                                return;
                            }
                        }
                        _ => return,
                    }
                    let key = match TicketKey::generate() {
                        Ok(key) => key,
                        Err(e) => {
                            crate::log_error!("cannot make a ticket key: {e:?}");
                            return;
                        }
                    };
                    let Some(p) = pool.upgrade() else { return };
                    lock(&p.keys).push(key);
                }
            });
        match spawned {
            Ok(thread) => *refiller = Some(thread),
            // Links then make their keys on the reactor thread.
            Err(e) => crate::log_warn!("cannot start the ticket key thread: {e}"),
        }
    }

    /// Ends and joins the refilling thread: none outlives the server.
    pub(crate) fn stop(&self) {
        self.0.stopped.store(true, Ordering::Release);
        if let Some(thread) = lock(&self.0.refiller).take() {
            let _ = thread.join();
        }
    }

    #[cfg(test)]
    fn ready(&self) -> usize {
        lock(&self.0.keys).len()
    }

    #[cfg(test)]
    fn refilling(&self) -> bool {
        lock(&self.0.refiller)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }
}

/// The pool's locks guard plain data that no panic leaves half-changed.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Constant-time comparison, so the reply time says nothing about the password.
pub(crate) fn password_matches(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::Public;

    fn encrypt(der: &[u8], plain: &[u8]) -> Vec<u8> {
        let public: PKey<Public> = PKey::public_key_from_der(der).unwrap();
        let rsa = public.rsa().unwrap();
        let mut out = vec![0u8; rsa.size() as usize];
        let n = rsa
            .public_encrypt(plain, &mut out, Padding::PKCS1_OAEP)
            .unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn round_trip_like_spice_gtk() {
        let key = TicketKey::generate().unwrap();
        assert_eq!(key.public_der().len(), 162);
        let ct = encrypt(key.public_der(), b"s3cret\0");
        assert_eq!(ct.len(), TICKET_BYTES);
        assert_eq!(key.decrypt(&ct).unwrap(), b"s3cret");
    }

    /// spice-html5's `rsa_encrypt`: the ciphertext's big-endian digits without leading
    /// zero bytes, then zeros up to 128 bytes.
    fn left_aligned_like_spice_html5(ct: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = ct.iter().copied().skip_while(|&b| b == 0).collect();
        out.resize(ct.len(), 0);
        out
    }

    #[test]
    fn a_spice_html5_ticket_that_lost_its_leading_zero_still_decrypts() {
        let key = TicketKey::generate().unwrap();
        let ct = (0..20_000)
            .map(|_| encrypt(key.public_der(), b"pw\0"))
            .find(|ct| ct[0] == 0)
            .expect("about one ciphertext in 128 starts with a zero byte");
        let sent = left_aligned_like_spice_html5(&ct);
        assert_ne!(sent, ct);
        assert_eq!(key.decrypt(&sent).unwrap(), b"pw");
        assert_eq!(
            key.decrypt(&ct).unwrap(),
            b"pw",
            "the correct form still works"
        );
        let mut wrong = sent.clone();
        wrong[0] ^= 1;
        assert_eq!(key.decrypt(&wrong), Err(AuthError::BadCiphertext));
    }

    #[test]
    fn garbage_is_refused() {
        let key = TicketKey::generate().unwrap();
        assert_eq!(key.decrypt(&[7u8; 128]), Err(AuthError::BadCiphertext));
        assert_eq!(key.decrypt(&[7u8; 3]), Err(AuthError::BadCiphertext));
    }

    /// Waits (up to 30 s: RSA keys on a busy machine) until `done`.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timeout waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn the_pool_hands_out_distinct_keys_made_ahead_by_a_thread_that_then_ends() {
        let pool = KeyPool::new(|| {});
        assert!(
            pool.ready() == 0 && !pool.refilling(),
            "nothing before the first link"
        );
        let first = pool.take().unwrap();
        wait_for("a full pool and no thread", || {
            pool.ready() == POOL_KEYS && !pool.refilling()
        });
        let t = std::time::Instant::now();
        let keys: Vec<TicketKey> = (0..POOL_KEYS).map(|_| pool.take().unwrap()).collect();
        let taken = t.elapsed();
        let mut ders: Vec<_> = keys.iter().map(|k| *k.public_der()).collect();
        ders.push(*first.public_der());
        ders.sort();
        ders.dedup();
        assert_eq!(ders.len(), POOL_KEYS + 1, "every link gets its own key");
        let t = std::time::Instant::now();
        TicketKey::generate().unwrap();
        println!(
            "{POOL_KEYS} keys from the pool in {taken:?}; one generated in {:?}",
            t.elapsed()
        );
        // Taking keys started a refill; it fills the pool again and ends.
        wait_for("the pool refilled", || {
            pool.ready() == POOL_KEYS && !pool.refilling()
        });
        pool.stop();
    }

    #[test]
    fn a_stopped_pool_starts_no_thread_and_still_hands_out_keys() {
        let pool = KeyPool::new(|| {});
        pool.stop();
        assert!(!pool.refilling());
        let before = pool.ready();
        let key = pool.take().unwrap();
        assert_eq!(key.public_der().len(), PUBKEY_BYTES);
        assert!(!pool.refilling(), "no thread after stop");
        assert!(pool.ready() <= before);
    }

    #[test]
    fn comparison() {
        assert!(password_matches(b"abc", b"abc"));
        assert!(!password_matches(b"abc", b"abd"));
        assert!(!password_matches(b"ab", b"abc"));
    }
}
