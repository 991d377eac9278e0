//! TLS for the tls-port and `spice_server_add_ssl_client`, over the system OpenSSL.
//!
//! The context follows spice-server's `reds_init_ssl` (certificate chain, password
//! protected key, CA file, optional DH parameters, QEMU's cipher string, session id
//! context "SPICE") and is stricter: TLS 1.2 at least, no renegotiation, no compression.
//! The handshake runs inside the stream on the reactor thread: reads and writes return
//! `WouldBlock` until it is done, so the link timeout also bounds it.

use crate::server::config::TlsConfig;
use mio::net::TcpStream;
use openssl::dh::Dh;
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions,
    SslSessionCacheMode, SslStream, SslVersion,
};
use std::io::{self, ErrorKind, Read, Write};

/// The server's TLS settings, loaded once at `spice_server_init`.
#[derive(Clone)]
pub(crate) struct TlsAcceptor {
    context: SslContext,
}

/// Why the TLS settings cannot be used; one line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSetupError(pub String);

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// OpenSSL's error queue as one short line: each distinct reason once.
fn describe(e: &openssl::error::ErrorStack) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for error in e.errors() {
        let reason = error
            .reason()
            .map_or_else(|| format!("error {:#x}", error.code()), str::to_owned);
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        return "unknown OpenSSL error".into();
    }
    reasons.join(", ")
}

impl TlsAcceptor {
    pub(crate) fn new(config: &TlsConfig) -> Result<TlsAcceptor, TlsSetupError> {
        let fail = |what: String| {
            move |e: openssl::error::ErrorStack| TlsSetupError(format!("{what}: {}", describe(&e)))
        };
        let mut b = SslContextBuilder::new(SslMethod::tls_server())
            .map_err(fail("cannot create a TLS context".into()))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(fail("cannot require TLS 1.2".into()))?;
        b.set_options(
            SslOptions::NO_COMPRESSION
                | SslOptions::NO_RENEGOTIATION
                | SslOptions::CIPHER_SERVER_PREFERENCE,
        );
        // Non-blocking writes resume with the outbox's (possibly longer) unwritten bytes.
        b.set_mode(SslMode::ENABLE_PARTIAL_WRITE | SslMode::ACCEPT_MOVING_WRITE_BUFFER);
        b.set_certificate_chain_file(&config.certs_file)
            .map_err(fail(format!(
                "cannot load the TLS certificates from {}",
                config.certs_file
            )))?;
        let key = load_private_key(config)?;
        b.set_private_key(&key).map_err(fail(format!(
            "cannot use the TLS private key {}",
            config.private_key_file
        )))?;
        b.check_private_key().map_err(fail(format!(
            "the TLS private key {} does not match the certificate {}",
            config.private_key_file, config.certs_file
        )))?;
        b.set_ca_file(&config.ca_cert_file).map_err(fail(format!(
            "cannot load the TLS CA file {}",
            config.ca_cert_file
        )))?;
        if let Some(file) = config.dh_key_file.as_deref().filter(|f| !f.is_empty()) {
            let pem = std::fs::read(file).map_err(|e| {
                TlsSetupError(format!("cannot read the TLS DH parameters {file}: {e}"))
            })?;
            let dh = Dh::params_from_pem(&pem)
                .map_err(fail(format!("cannot read the TLS DH parameters {file}")))?;
            b.set_tmp_dh(&dh)
                .map_err(fail(format!("cannot use the TLS DH parameters {file}")))?;
        }
        // Resumption: the 4-8 links of one session skip the full handshake (TLS 1.2
        // session cache and tickets, TLS 1.3 tickets).
        b.set_session_id_context(b"SPICE")
            .map_err(fail("cannot set the TLS session id context".into()))?;
        b.set_session_cache_mode(SslSessionCacheMode::SERVER);
        if let Some(ciphers) = config.ciphersuite.as_deref().filter(|c| !c.is_empty()) {
            b.set_cipher_list(ciphers)
                .map_err(fail(format!("no usable TLS cipher in '{ciphers}'")))?;
        }
        Ok(TlsAcceptor { context: b.build() })
    }

    /// Starts the server side of a handshake on a connected socket (nothing is read or
    /// written yet).
    pub(crate) fn accept(&self, socket: TcpStream) -> io::Result<TlsStream> {
        let mut ssl = Ssl::new(&self.context).map_err(io::Error::other)?;
        ssl.set_accept_state();
        let inner = SslStream::new(ssl, socket).map_err(io::Error::other)?;
        Ok(TlsStream {
            inner,
            established: false,
        })
    }
}

/// The key, decrypted with the password QEMU gave (`x509-key-password=`) if any.
fn load_private_key(config: &TlsConfig) -> Result<PKey<openssl::pkey::Private>, TlsSetupError> {
    let file = &config.private_key_file;
    let pem = std::fs::read(file)
        .map_err(|e| TlsSetupError(format!("cannot read the TLS private key {file}: {e}")))?;
    let key = match &config.key_password {
        Some(password) => PKey::private_key_from_pem_passphrase(&pem, password.as_bytes()),
        // Without a password an encrypted key must fail, never prompt on QEMU's tty.
        None => PKey::private_key_from_pem_callback(&pem, |_| Ok(0)),
    };
    key.map_err(|e| {
        TlsSetupError(format!(
            "cannot load the TLS private key {file} (wrong password?): {}",
            describe(&e)
        ))
    })
}

/// A server-side TLS connection over a non-blocking socket.
pub(crate) struct TlsStream {
    inner: SslStream<TcpStream>,
    established: bool,
}

impl TlsStream {
    pub(crate) fn socket(&self) -> &TcpStream {
        self.inner.get_ref()
    }

    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        self.inner.get_mut()
    }

    /// The cipher's secret bits, SASL's external SSF (`SSL_get_cipher_bits`).
    pub(crate) fn cipher_bits(&self) -> u32 {
        let bits = self.inner.ssl().current_cipher().map(|c| c.bits().secret);
        bits.map_or(0, |b| u32::try_from(b).unwrap_or(0))
    }

    #[cfg(test)]
    pub(crate) fn session_reused(&self) -> bool {
        self.inner.ssl().session_reused()
    }

    /// Drives the handshake: Ok once it is done, `WouldBlock` while it waits for the
    /// socket (in either direction: the reactor watches both for TLS streams).
    fn handshake(&mut self) -> io::Result<()> {
        if self.established {
            return Ok(());
        }
        match self.inner.do_handshake() {
            Ok(()) => {
                self.established = true;
                crate::log_debug!(
                    "TLS handshake done: {} {}{}",
                    self.inner.ssl().version_str(),
                    self.inner.ssl().current_cipher().map_or("?", |c| c.name()),
                    if self.inner.ssl().session_reused() {
                        " (resumed)"
                    } else {
                        ""
                    }
                );
                Ok(())
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                match e.into_io_error() {
                    Ok(io) if io.kind() != ErrorKind::WouldBlock => Err(io),
                    _ => Err(ErrorKind::WouldBlock.into()),
                }
            }
            Err(e) => {
                let why = match e.ssl_error() {
                    Some(stack) => describe(stack),
                    None => e.to_string(),
                };
                Err(io::Error::new(
                    ErrorKind::ConnectionAborted,
                    format!("TLS handshake failed: {why}"),
                ))
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.handshake()?;
        self.inner.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.handshake()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::Private;
    use openssl::ssl::{SslConnector, SslVerifyMode};
    use openssl::symm::Cipher;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        match issuer {
            Some((ca, ca_key)) => {
                b.set_issuer_name(ca.subject_name()).unwrap();
                let san = SubjectAlternativeName::new()
                    .ip("127.0.0.1")
                    .build(&b.x509v3_context(Some(ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
                b.sign(ca_key, MessageDigest::sha256()).unwrap();
            }
            None => {
                b.set_issuer_name(&name).unwrap();
                b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
                b.sign(key, MessageDigest::sha256()).unwrap();
            }
        }
        b.build()
    }

    /// A test CA and a server certificate it signed, as QEMU's x509-dir holds them; the
    /// key is encrypted with `password` when given.
    pub(crate) struct X509Dir {
        pub dir: PathBuf,
        pub config: TlsConfig,
    }

    impl Drop for X509Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) fn x509_dir(tag: &str, password: Option<&str>) -> X509Dir {
        let dir = std::env::temp_dir().join(format!("spice-rs-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_key, server_key) = (key(), key());
        let ca = cert("spice-rs test CA", &ca_key, None);
        let server = cert("127.0.0.1", &server_key, Some((&ca, &ca_key)));
        let write = |name: &str, pem: Vec<u8>| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let key_pem = match password {
            Some(p) => server_key
                .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), p.as_bytes())
                .unwrap(),
            None => server_key.private_key_to_pem_pkcs8().unwrap(),
        };
        let config = TlsConfig {
            port: 1,
            ca_cert_file: write("ca-cert.pem", ca.to_pem().unwrap()),
            certs_file: write("server-cert.pem", server.to_pem().unwrap()),
            private_key_file: write("server-key.pem", key_pem),
            key_password: password.map(str::to_owned),
            ..TlsConfig::default()
        };
        X509Dir { dir, config }
    }

    fn error(config: &TlsConfig) -> String {
        match TlsAcceptor::new(config) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn settings_that_do_not_load_say_which_file() {
        let x = x509_dir("errors", Some("s3cret"));
        assert!(TlsAcceptor::new(&x.config).is_ok(), "the right password");

        let wrong = TlsConfig {
            key_password: Some("wrong".into()),
            ..x.config.clone()
        };
        let e = error(&wrong);
        assert!(e.starts_with("cannot load the TLS private key"), "{e}");
        let none = TlsConfig {
            key_password: None,
            ..x.config.clone()
        };
        assert!(error(&none).contains("wrong password?"));

        let missing = TlsConfig {
            certs_file: "/nonexistent.pem".into(),
            ..x.config.clone()
        };
        assert!(
            error(&missing).starts_with("cannot load the TLS certificates from /nonexistent.pem")
        );
        let no_ca = TlsConfig {
            ca_cert_file: "/nonexistent.pem".into(),
            ..x.config.clone()
        };
        assert!(error(&no_ca).starts_with("cannot load the TLS CA file"));

        let other = x509_dir("other", None);
        let mismatched = TlsConfig {
            private_key_file: other.config.private_key_file.clone(),
            key_password: None,
            ..x.config.clone()
        };
        assert!(
            error(&mismatched).contains("mismatch"),
            "{}",
            error(&mismatched)
        );

        let ciphers = TlsConfig {
            ciphersuite: Some("NO-SUCH-CIPHER".into()),
            ..x.config.clone()
        };
        assert!(error(&ciphers).starts_with("no usable TLS cipher in 'NO-SUCH-CIPHER'"));
        let dh = TlsConfig {
            dh_key_file: Some(x.config.ca_cert_file.clone()),
            ..x.config.clone()
        };
        assert!(error(&dh).starts_with("cannot read the TLS DH parameters"));
        for e in [error(&wrong), error(&missing), error(&dh)] {
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn dh_parameters_from_a_file() {
        let x = x509_dir("dh", None);
        let dh = Dh::get_2048_256().unwrap();
        let path = x.dir.join("dh.pem");
        std::fs::write(&path, dh.params_to_pem().unwrap()).unwrap();
        let config = TlsConfig {
            dh_key_file: Some(path.to_str().unwrap().into()),
            ..x.config.clone()
        };
        assert!(TlsAcceptor::new(&config).is_ok());
    }

    /// The server side of one connection: our non-blocking stream polled on this thread
    /// (WouldBlock = try again, as the reactor would), reads "ping", answers "pong".
    /// Returns whether the session was resumed.
    fn serve(acceptor: &TlsAcceptor, listener: &std::net::TcpListener) -> Result<bool, String> {
        let (socket, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut server = acceptor.accept(TcpStream::from_std(socket)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        while got.len() < 4 {
            assert!(Instant::now() < deadline, "timed out");
            let mut buf = [0u8; 16];
            match server.read(&mut buf) {
                Ok(0) => return Err("client hung up".into()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        assert_eq!(&got[..4], b"ping");
        let mut left: &[u8] = b"pong";
        while !left.is_empty() {
            assert!(Instant::now() < deadline, "timed out");
            match server.write(left) {
                Ok(n) => left = &left[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(server.session_reused())
    }

    /// A blocking client with this crate's openssl; Err when its handshake fails.
    fn rust_client(
        addr: std::net::SocketAddr,
        ca: PathBuf,
        setup: impl FnOnce(&mut openssl::ssl::SslConnectorBuilder) + Send + 'static,
    ) -> std::thread::JoinHandle<Result<(), String>> {
        std::thread::spawn(move || {
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.set_ca_file(&ca).unwrap();
            b.set_verify(SslVerifyMode::PEER);
            setup(&mut b);
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let mut tls = b
                .build()
                .connect("127.0.0.1", tcp)
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").map_err(|e| e.to_string())?;
            let mut reply = [0u8; 4];
            tls.read_exact(&mut reply).map_err(|e| e.to_string())?;
            assert_eq!(&reply, b"pong");
            Ok(())
        })
    }

    /// `openssl s_client` saving its session to / resuming it from `session`; returns
    /// whether it reports a reused session.
    fn s_client(
        addr: std::net::SocketAddr,
        ca: &str,
        session: &Path,
        resume: bool,
        tls_version: &str,
    ) -> std::thread::JoinHandle<bool> {
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile", ca])
            .args(["-verify_return_error", "-ign_eof", tls_version])
            .arg(if resume { "-sess_in" } else { "-sess_out" })
            .arg(session)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        std::thread::spawn(move || {
            let mut child = cmd.spawn().expect("openssl s_client");
            child.stdin.take().unwrap().write_all(b"ping").unwrap();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("pong"), "{text}");
            text.contains("Reused, TLS")
        })
    }

    #[test]
    fn non_blocking_handshake_and_resumption() {
        let x = x509_dir("resume", None);
        let acceptor = TlsAcceptor::new(&x.config).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ca = x.config.ca_cert_file.clone();
        for version in ["-tls1_3", "-tls1_2"] {
            let session = x.dir.join(format!("session{version}"));
            let first = s_client(addr, &ca, &session, false, version);
            // The connection closes (drops) after "pong": s_client then exits.
            assert_eq!(
                serve(&acceptor, &listener),
                Ok(false),
                "{version}: full handshake"
            );
            assert!(!first.join().unwrap());
            let second = s_client(addr, &ca, &session, true, version);
            assert_eq!(serve(&acceptor, &listener), Ok(true), "{version}: resumed");
            assert!(second.join().unwrap(), "{version}: the client resumed too");
        }
    }

    #[test]
    fn tls_1_1_and_older_are_refused() {
        let x = x509_dir("old", None);
        let acceptor = TlsAcceptor::new(&x.config).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for version in [SslVersion::TLS1_1, SslVersion::TLS1] {
            // The client is willing (security level 0), so a refusal is the server's.
            let client = rust_client(addr, x.config.ca_cert_file.clone().into(), move |b| {
                b.set_security_level(0);
                b.set_cipher_list("ALL:@SECLEVEL=0").unwrap();
                b.set_min_proto_version(Some(version)).unwrap();
                b.set_max_proto_version(Some(version)).unwrap();
            });
            let e = serve(&acceptor, &listener).expect_err("an old protocol was accepted");
            assert!(e.contains("TLS handshake failed"), "{e}");
            assert!(client.join().unwrap().is_err());
        }
        // And TLS 1.2 works with the same client.
        let client = rust_client(addr, x.config.ca_cert_file.clone().into(), |b| {
            b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        });
        assert_eq!(serve(&acceptor, &listener), Ok(false));
        assert_eq!(client.join().unwrap(), Ok(()));
    }

    #[test]
    fn a_client_that_does_not_trust_the_ca_fails_the_handshake() {
        let x = x509_dir("ca", None);
        let other = x509_dir("ca-other", None);
        let acceptor = TlsAcceptor::new(&x.config).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = rust_client(addr, other.config.ca_cert_file.clone().into(), |_| {});
        assert!(serve(&acceptor, &listener).is_err());
        let e = client.join().unwrap().unwrap_err();
        assert!(e.contains("certificate verify failed"), "{e}");
    }
}
