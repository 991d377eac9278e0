//! A misbehaving SPICE client for the end-to-end tests: it links (optionally into an
//! existing session) and then breaks the protocol in one chosen way, and reports how
//! the server reacted.
//!
//! usage: hostile_client HOST:PORT SCENARIO [CONNECTION_ID] [PASSWORD]
//! scenarios: bad-magic, truncated-link, huge-link, link-only, huge-message,
//!            unknown-type, random-bytes, cycle:N (link and hang up N times)

use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn link_message(connection_id: u32, channel_type: u8, channel_id: u8) -> Vec<u8> {
    // SpiceLinkMess with one common caps word: AUTH_SELECTION | AUTH_SPICE | MINI_HEADER.
    let mut body = connection_id.to_le_bytes().to_vec();
    body.extend_from_slice(&[channel_type, channel_id]);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&18u32.to_le_bytes());
    body.extend_from_slice(&0b1011u32.to_le_bytes());
    let mut out = b"REDQ".to_vec();
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

fn read_exact(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Performs a full link; returns the link result code.
fn link(
    s: &mut TcpStream,
    connection_id: u32,
    channel_type: u8,
    password: &str,
) -> std::io::Result<u32> {
    s.write_all(&link_message(connection_id, channel_type, 0))?;
    let header = read_exact(s, 16)?;
    let size = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
    let reply = read_exact(s, size)?;
    let error = u32::from_le_bytes([reply[0], reply[1], reply[2], reply[3]]);
    if error != 0 {
        return Ok(error);
    }
    let key: PKey<Public> =
        PKey::public_key_from_der(&reply[4..4 + 162]).map_err(std::io::Error::other)?;
    let rsa = key.rsa().map_err(std::io::Error::other)?;
    let mut ticket = vec![0u8; 128];
    let mut plain = password.as_bytes().to_vec();
    plain.push(0);
    rsa.public_encrypt(&plain, &mut ticket, Padding::PKCS1_OAEP)
        .map_err(std::io::Error::other)?;
    s.write_all(&1u32.to_le_bytes())?;
    s.write_all(&ticket)?;
    let result = read_exact(s, 4)?;
    Ok(u32::from_le_bytes([
        result[0], result[1], result[2], result[3],
    ]))
}

/// Waits until the server closes the connection (reading and discarding its output).
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    let mut buf = [0u8; 65536];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

fn mini_message(msg_type: u16, size: u32, body: &[u8]) -> Vec<u8> {
    let mut out = msg_type.to_le_bytes().to_vec();
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    let (addr, scenario) = match (args.get(1), args.get(2)) {
        (Some(a), Some(s)) => (a.clone(), s.clone()),
        _ => {
            return Err(
                "usage: hostile_client HOST:PORT SCENARIO [CONNECTION_ID] [PASSWORD]".into(),
            )
        }
    };
    let connection_id: u32 = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(0);
    let password = args.get(4).cloned().unwrap_or_default();
    let connect = || TcpStream::connect(&addr).map_err(|e| format!("connect: {e}"));
    let closed = |s: &mut TcpStream| match wait_closed(s, Duration::from_secs(10)) {
        Some(t) => format!("closed by server after {} ms", t.as_millis()),
        None => "NOT closed by server".to_string(),
    };
    // The session to join: an existing one (display channel) or our own main channel.
    let (channel_type, id) = if connection_id != 0 {
        (2u8, connection_id)
    } else {
        (1u8, 0)
    };
    match scenario.as_str() {
        "bad-magic" => {
            let mut s = connect()?;
            let mut m = link_message(0, 1, 0);
            m[0] = b'X';
            s.write_all(&m).map_err(|e| e.to_string())?;
            let reply = read_exact(&mut s, 20).map_err(|e| e.to_string())?;
            let error = u32::from_le_bytes([reply[16], reply[17], reply[18], reply[19]]);
            Ok(format!("link error {error}; {}", closed(&mut s)))
        }
        "truncated-link" => {
            let mut s = connect()?;
            let m = link_message(0, 1, 0);
            s.write_all(&m[..m.len() - 5]).map_err(|e| e.to_string())?;
            s.shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            Ok(closed(&mut s))
        }
        "huge-link" => {
            let mut s = connect()?;
            let mut m = link_message(0, 1, 0);
            m[12..16].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
            s.write_all(&m[..16]).map_err(|e| e.to_string())?;
            let reply = read_exact(&mut s, 20).map_err(|e| e.to_string())?;
            let error = u32::from_le_bytes([reply[16], reply[17], reply[18], reply[19]]);
            Ok(format!("link error {error}; {}", closed(&mut s)))
        }
        "link-only" => {
            let mut s = connect()?;
            let r = link(&mut s, id, channel_type, &password).map_err(|e| e.to_string())?;
            Ok(format!("link result {r}"))
        }
        "huge-message" | "unknown-type" | "random-bytes" => {
            let mut s = connect()?;
            let r = link(&mut s, id, channel_type, &password).map_err(|e| e.to_string())?;
            if r != 0 {
                return Err(format!("link refused with {r}"));
            }
            let payload = match scenario.as_str() {
                "huge-message" => mini_message(101, 0xffff_fff0, &[0; 64]),
                "unknown-type" => mini_message(9999, 4, &[1, 2, 3, 4]),
                _ => {
                    let mut junk = vec![0u8; 4096];
                    openssl::rand::rand_bytes(&mut junk).map_err(|e| e.to_string())?;
                    junk
                }
            };
            let _ = s.write_all(&payload);
            Ok(format!("linked; {}", closed(&mut s)))
        }
        cycle if cycle.starts_with("cycle:") => {
            let n: usize = cycle[6..].parse().map_err(|_| "cycle:N".to_string())?;
            for i in 0..n {
                let mut s = connect()?;
                let r = link(&mut s, id, channel_type, &password)
                    .map_err(|e| format!("cycle {i}: {e}"))?;
                if r != 0 {
                    return Err(format!("cycle {i}: link result {r}"));
                }
            }
            Ok(format!("{n} link cycles"))
        }
        other => Err(format!("unknown scenario {other}")),
    }
}

fn main() {
    match run() {
        Ok(outcome) => println!("{outcome}"),
        Err(e) => {
            eprintln!("hostile_client: {e}");
            std::process::exit(1);
        }
    }
}
