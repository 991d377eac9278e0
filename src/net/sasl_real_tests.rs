//! libsasl2 itself, with a sasldb made by `saslpasswd2` in a temporary config dir (never
//! /etc), and a SCRAM-SHA-256 client written here (RFC 5802) with OpenSSL's primitives.

use super::super::*;
use super::{mechanism, message};
use openssl::base64::{decode_block, encode_block};
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const APP: &str = "spice-rs-test";

/// Makes the config dir and sasldb once per process and initialises libsasl2 over it.
pub(super) fn setup() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spice-rs-sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("sasldb2");
        let mut child = Command::new("saslpasswd2")
            .args(["-f", db.to_str().unwrap(), "-a", APP, "-c", "-p", "user"])
            .stdin(Stdio::piped())
            .spawn()
            .ok()?;
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"secret").unwrap();
        assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
        std::fs::write(
            dir.join(format!("{APP}.conf")),
            format!(
                "mech_list: scram-sha-256 digest-md5\nsasldb_path: {}\n",
                db.display()
            ),
        )
        .unwrap();
        crate::ffi::sasl::set_config_path(dir.to_str().unwrap());
        init(Some(APP)).unwrap();
        Some(dir)
    })
    .clone()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = PKey::hmac(key).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
    s.update(data).unwrap();
    s.sign_to_vec().unwrap()
}

/// Splits the server's message: its data (NUL dropped) and the complete flag.
fn server_message(bytes: &[u8]) -> (String, bool) {
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let data = &bytes[4..4 + len.saturating_sub(1)];
    (
        String::from_utf8_lossy(data).into_owned(),
        bytes[4 + len] == 1,
    )
}

fn feed(ex: &mut Exchange, bytes: &[u8]) -> Progress {
    let mut rest = bytes;
    let mut last = Progress::Continue;
    while !rest.is_empty() && ex.wanted() > 0 {
        let n = ex.wanted().min(rest.len());
        last = ex.feed(&rest[..n]);
        rest = &rest[n..];
    }
    last
}

/// A SCRAM-SHA-256 login through `Exchange` over libsasl2. Ok(layer) when accepted.
pub(super) fn exchange(
    _dir: &std::path::Path,
    external_ssf: Option<u32>,
    mech: &str,
    user: &str,
    password: &str,
) -> Result<bool, String> {
    assert_eq!(mech, "SCRAM-SHA-256");
    let backend = new_backend(None, None, external_ssf)?;
    let (mut ex, list) = Exchange::begin(backend, external_ssf.is_none())?;
    assert!(String::from_utf8_lossy(&list).contains(",SCRAM-SHA-256,"));
    let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let first_bare = format!("n={user},r={client_nonce}");
    let mut hello = mechanism(mech);
    hello.extend(message(Some(format!("n,,{first_bare}").as_bytes())));
    let Progress::Send(reply) = feed(&mut ex, &hello) else {
        return Err("no server-first message".into());
    };
    let (server_first, complete) = server_message(&reply);
    assert!(!complete);
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .to_owned()
    };
    let (nonce, salt, iterations) = (field("r="), field("s="), field("i="));
    assert!(nonce.starts_with(client_nonce));
    let mut salted = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &decode_block(&salt).unwrap(),
        iterations.parse().unwrap(),
        MessageDigest::sha256(),
        &mut salted,
    )
    .unwrap();
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = hash(MessageDigest::sha256(), &client_key).unwrap();
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let last = format!("{without_proof},p={}", encode_block(&proof));
    match feed(&mut ex, &message(Some(last.as_bytes()))) {
        Progress::Accepted(bytes) => {
            let (server_final, complete) = server_message(&bytes);
            assert!(complete && server_final.starts_with("v="), "{server_final}");
            Ok(ex.into_layer(vec![]).is_some())
        }
        other => Err(format!("refused: {other:?}")),
    }
}
