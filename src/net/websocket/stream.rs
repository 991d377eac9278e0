//! A `Stream` speaking WebSocket: reads give the SPICE bytes inside the client's frames,
//! each write goes out as one binary frame.
//!
//! Like TLS, the upgrade runs inside the stream: reads return `WouldBlock` until the
//! request is in and answered, so the reactor's link timeout bounds it. Each write call
//! is one frame (as spice-server's `websocket_write`); the reactor ends writes at SPICE
//! message boundaries, so one message is one frame. A write the socket takes only in
//! part continues its frame on the next call. Bytes we must send on our own (the 101
//! answer, a frame header with the first part of its payload, a pong, the close answer)
//! wait in `out`, which never holds more than `STAGED` plus a few headers; `Write::flush`
//! sends them and `buffered_output` tells the reactor to watch for writability.

use super::frames::{close_frame, data_header, Decoder};
use super::handshake::{self, Upgrade, MAX_REQUEST};
use crate::net::stream::Stream;
use std::io::{self, ErrorKind, Read, Write};

/// Client bytes read per socket read (frames are decoded from here).
const RAW_BUFFER: usize = 16 << 10;
/// Payload copied behind a new frame's header so both leave in one socket write (one
/// TLS record for a small message); the rest of a frame is written straight through.
const STAGED: usize = 16 << 10;
/// The longest frame we send; a longer write becomes several frames.
const MAX_SERVER_FRAME: usize = 4 << 20;

enum State {
    /// Reading the HTTP request (the bytes so far).
    Upgrading(Vec<u8>),
    Open,
    /// Refused or broken: nothing more is read or written.
    Failed,
}

pub(crate) struct WebSocket {
    inner: Stream,
    state: State,
    decoder: Decoder,
    raw: Vec<u8>,
    /// `raw[raw_at..]` is read but not yet decoded.
    raw_at: usize,
    out: Vec<u8>,
    /// Payload bytes of our current data frame not yet taken from the caller.
    frame_left: usize,
}

impl WebSocket {
    /// Upgrades `inner`, whose first bytes (`request_start`) were already read.
    pub(crate) fn new(inner: Stream, request_start: &[u8]) -> WebSocket {
        WebSocket {
            inner,
            state: State::Upgrading(request_start.to_vec()),
            decoder: Decoder::default(),
            raw: Vec::new(),
            raw_at: 0,
            out: Vec::new(),
            frame_left: 0,
        }
    }

    pub(crate) fn inner(&self) -> &Stream {
        &self.inner
    }

    pub(crate) fn inner_mut(&mut self) -> &mut Stream {
        &mut self.inner
    }

    /// Bytes wait to be sent that the caller does not know of.
    pub(crate) fn buffered_output(&self) -> bool {
        !self.out.is_empty() || self.decoder.has_replies()
    }

    /// Writes `out`; Ok(true) once it is empty.
    fn send_out(&mut self) -> io::Result<bool> {
        while !self.out.is_empty() {
            match self.inner.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues the control frames the client is owed, between two data frames.
    fn queue_replies(&mut self) {
        if self.out.is_empty() && self.frame_left == 0 {
            self.out = self.decoder.replies();
        }
    }

    /// Best effort: pongs and close answers go out while we read.
    fn send_replies(&mut self) {
        self.queue_replies();
        let _ = self.send_out();
    }

    /// Reads the upgrade request; Ok once answered (`WouldBlock` while incomplete).
    fn upgrade(&mut self) -> io::Result<()> {
        let State::Upgrading(request) = &mut self.state else {
            return Ok(());
        };
        loop {
            match handshake::parse(request) {
                Upgrade::Incomplete => {}
                Upgrade::Accept { reply, consumed } => {
                    self.raw = request.split_off(consumed);
                    self.raw_at = 0;
                    self.out = reply;
                    self.state = State::Open;
                    crate::log_debug!("WebSocket upgrade accepted");
                    let _ = self.send_out();
                    return Ok(());
                }
                Upgrade::Refuse { reply, why } => {
                    self.out = reply;
                    self.state = State::Failed;
                    let _ = self.send_out();
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("WebSocket upgrade refused: {why}"),
                    ));
                }
            }
            let start = request.len();
            request.resize(MAX_REQUEST, 0);
            let read = self.inner.read(&mut request[start..]);
            request.truncate(start + *read.as_ref().unwrap_or(&0));
            match read? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                _ => continue,
            }
        }
    }
}

impl Read for WebSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.upgrade()?;
        if matches!(self.state, State::Failed) {
            return Err(ErrorKind::BrokenPipe.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.decoder.peer_closed() {
                self.send_replies();
                crate::log_info!("WebSocket client closed the connection");
                return Ok(0);
            }
            if self.raw_at < self.raw.len() {
                match self.decoder.decode(&self.raw[self.raw_at..], buf) {
                    Ok(d) => {
                        self.raw_at += d.consumed;
                        if self.decoder.has_replies() {
                            self.send_replies();
                        }
                        if d.produced > 0 {
                            return Ok(d.produced);
                        }
                        continue;
                    }
                    Err(violation) => {
                        self.state = State::Failed;
                        if self.frame_left == 0 {
                            self.out.extend(close_frame(violation.close_code()));
                            let _ = self.send_out();
                        }
                        return Err(io::Error::new(
                            ErrorKind::InvalidData,
                            format!("WebSocket client sent a {violation}"),
                        ));
                    }
                }
            }
            self.raw.resize(RAW_BUFFER, 0);
            self.raw_at = 0;
            let read = self.inner.read(&mut self.raw);
            self.raw.truncate(*read.as_ref().unwrap_or(&0));
            if read? == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for WebSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.state {
            State::Upgrading(_) => return Err(ErrorKind::WouldBlock.into()),
            State::Failed => return Err(ErrorKind::BrokenPipe.into()),
            State::Open => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.send_out()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        if self.frame_left > 0 {
            // The rest of a frame the socket took in part.
            let n = self.inner.write(&buf[..self.frame_left.min(buf.len())])?;
            self.frame_left -= n;
            return Ok(n);
        }
        self.queue_replies();
        if !self.send_out()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let len = buf.len().min(MAX_SERVER_FRAME);
        let staged = len.min(STAGED);
        data_header(len, &mut self.out);
        self.out.extend_from_slice(&buf[..staged]);
        self.frame_left = len - staged;
        // What the socket does not take now stays in `out` (the caller counts it sent).
        self.send_out()?;
        Ok(staged)
    }

    fn flush(&mut self) -> io::Result<()> {
        if matches!(self.state, State::Open) {
            self.queue_replies();
        }
        if self.send_out()? {
            Ok(())
        } else {
            Err(ErrorKind::WouldBlock.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frames::client_frame;
    use super::*;
    use mio::net::TcpStream;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    const REQUEST: &[u8] = b"GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n";

    /// A server-side WebSocket over a real non-blocking socket, and its client end.
    fn pair() -> (WebSocket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let stream = Stream::Tcp(TcpStream::from_std(server));
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (WebSocket::new(stream, b"G"), client)
    }

    /// Retries a non-blocking call until it stops saying `WouldBlock`.
    fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match f() {
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                other => return other,
            }
        }
    }

    fn read_reply(client: &mut std::net::TcpStream) -> String {
        let mut reply = Vec::new();
        let mut byte = [0u8];
        while !reply.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            reply.push(byte[0]);
        }
        String::from_utf8(reply).unwrap()
    }

    #[test]
    fn upgrade_then_spice_bytes_both_ways() {
        let (mut ws, mut client) = pair();
        let mut buf = [0u8; 64];
        assert_eq!(
            ws.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "no request yet"
        );
        client.write_all(&REQUEST[1..20]).unwrap();
        client.write_all(&REQUEST[20..]).unwrap();
        client
            .write_all(&client_frame(true, 2, [1, 2, 3, 4], b"REDQ"))
            .unwrap();
        let n = retry(|| ws.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"REDQ");
        let reply = read_reply(&mut client);
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        assert!(reply.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

        // Each write is one unmasked binary frame, a large one too.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        for msg in [&b"link reply"[..], &big] {
            let mut at = 0;
            while at < msg.len() {
                at += retry(|| ws.write(&msg[at..])).unwrap();
            }
            retry(|| ws.flush()).unwrap();
            let mut want = Vec::new();
            data_header(msg.len(), &mut want);
            want.extend_from_slice(msg);
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).unwrap();
            assert!(got == want, "{} bytes", msg.len());
        }
    }

    #[test]
    fn ping_is_answered_and_close_ends_the_stream() {
        let (mut ws, mut client) = pair();
        client.write_all(&REQUEST[1..]).unwrap();
        client
            .write_all(&client_frame(true, 9, [7, 7, 7, 7], b"hi"))
            .unwrap();
        client
            .write_all(&client_frame(true, 8, [1, 1, 1, 1], &[3, 0xE8]))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(retry(|| ws.read(&mut buf)).unwrap(), 0, "closed");
        read_reply(&mut client);
        let mut got = [0u8; 8];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x8A, 2, b'h', b'i', 0x88, 2, 3, 0xE8]);
    }

    #[test]
    fn a_bad_frame_is_an_error_with_a_close_frame() {
        let (mut ws, mut client) = pair();
        client.write_all(&REQUEST[1..]).unwrap();
        client.write_all(&[0x81, 0x80, 0, 0, 0, 0]).unwrap(); // text
        let mut buf = [0u8; 16];
        let e = retry(|| ws.read(&mut buf)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert!(e.to_string().contains("text frame"), "{e}");
        read_reply(&mut client);
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x88, 2, 0x03, 0xEB], "close 1003");
    }

    #[test]
    fn a_plain_http_request_gets_an_error_and_no_spice() {
        let (mut ws, mut client) = pair();
        client
            .write_all(b"ET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 16];
        let e = retry(|| ws.read(&mut buf)).unwrap_err();
        assert!(e.to_string().contains("without a WebSocket upgrade"), "{e}");
        assert!(read_reply(&mut client).starts_with("HTTP/1.1 400 "));
        assert!(ws.write(b"x").is_err());
    }
}
