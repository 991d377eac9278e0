//! A misbehaving SPICE client for the end-to-end tests: it links (optionally into an
//! existing session) and then breaks the protocol in one chosen way, and reports how
//! the server reacted.
//!
//! usage: hostile_client HOST:PORT SCENARIO [CONNECTION_ID] [PASSWORD]
//! scenarios: bad-magic, truncated-link, huge-link, link-only, huge-message,
//!            unknown-type, random-bytes, cycle:N (link and hang up N times),
//!            flood:SECONDS (link a main channel, then send ATTACH_CHANNELS as fast as
//!            possible for SECONDS, never reading), link-time (time from connect to the
//!            link reply), slowloris:N:SECONDS (N connections that each send half a
//!            link message, held open for SECONDS)
//! HOSTILE_SOURCE=127.0.0.2 binds the client's sockets to that source address.

use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// Connects from `HOSTILE_SOURCE` when set (tests tell clients apart by address).
fn connect_from(addr: &str) -> std::io::Result<TcpStream> {
    let Ok(source) = std::env::var("HOSTILE_SOURCE") else {
        return TcpStream::connect(addr);
    };
    let target: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let source: SocketAddr = format!("{source}:0")
        .parse()
        .map_err(std::io::Error::other)?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        None,
    )?;
    socket.bind(&source.into())?;
    socket.connect(&target.into())?;
    Ok(socket.into())
}

/// `SPICE_MSGC_MAIN_ATTACH_CHANNELS`: no body, answered with the channel list.
const ATTACH_CHANNELS: u16 = 104;

/// Sends ATTACH_CHANNELS for `seconds` without ever reading; returns requests sent.
fn flood(s: &mut TcpStream, seconds: u64) -> std::io::Result<u64> {
    let batch = mini_message(ATTACH_CHANNELS, 0, &[]).repeat(4096);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    s.set_write_timeout(Some(Duration::from_millis(100)))?;
    let mut sent = 0u64;
    while Instant::now() < deadline {
        // Continue where a partial write stopped, so the messages stay framed.
        let at = (sent % batch.len() as u64) as usize;
        match s.write(&batch[at..]) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent / 6)
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
    let connect = || connect_from(&addr).map_err(|e| format!("connect: {e}"));
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
        flooding if flooding.starts_with("flood:") => {
            let seconds: u64 = flooding[6..]
                .parse()
                .map_err(|_| "flood:SECONDS".to_string())?;
            let mut s = connect()?;
            let r = link(&mut s, 0, 1, &password).map_err(|e| e.to_string())?;
            if r != 0 {
                return Err(format!("link refused with {r}"));
            }
            let start = Instant::now();
            let sent = flood(&mut s, seconds).map_err(|e| format!("flood: {e}"))?;
            Ok(format!(
                "flooded {sent} ATTACH_CHANNELS in {:.1}s",
                start.elapsed().as_secs_f64()
            ))
        }
        "link-time" => {
            let start = Instant::now();
            let mut s = connect()?;
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            s.write_all(&link_message(0, 1, 0))
                .map_err(|e| e.to_string())?;
            let header = read_exact(&mut s, 16).map_err(|e| format!("no link reply: {e}"))?;
            let size = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
            read_exact(&mut s, size as usize).map_err(|e| e.to_string())?;
            Ok(format!(
                "link reply in {:.1} ms",
                start.elapsed().as_secs_f64() * 1000.0
            ))
        }
        slow if slow.starts_with("slowloris:") => {
            let (n, seconds) = slow[10..]
                .split_once(':')
                .and_then(|(n, s)| Some((n.parse::<usize>().ok()?, s.parse::<u64>().ok()?)))
                .ok_or("slowloris:N:SECONDS")?;
            let half = link_message(0, 1, 0);
            let mut held = Vec::new();
            for _ in 0..n {
                match connect() {
                    Ok(mut s) => {
                        let _ = s.write_all(&half[..half.len() / 2]);
                        held.push(s);
                    }
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_secs(seconds));
            let mut buf = [0u8; 64];
            let mut open = 0;
            for s in &mut held {
                let _ = s.set_nonblocking(true);
                if matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                {
                    open += 1;
                }
            }
            Ok(format!(
                "{} connections opened, {open} still open",
                held.len()
            ))
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
