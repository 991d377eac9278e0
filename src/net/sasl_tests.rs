use super::*;
use std::sync::{Arc, Mutex};

/// A two-step mechanism "FAKE": start answers a challenge, the step must say "right".
/// Its security layer frames each chunk as a length byte and the bytes xor 0x55.
pub(crate) struct Fake {
    pub ssf: u32,
    pub calls: Arc<Mutex<Vec<String>>>,
    pending: Vec<u8>,
}

impl Fake {
    pub(crate) fn new(ssf: u32) -> Fake {
        Fake {
            ssf,
            calls: Arc::default(),
            pending: Vec::new(),
        }
    }
}

impl Backend for Fake {
    fn mechanisms(&mut self) -> Result<String, String> {
        Ok(",FAKE,OTHER,".into())
    }
    fn start(&mut self, mechanism: &str, client: Option<&[u8]>) -> Result<Output, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("start {mechanism} {client:?}"));
        Ok(Output {
            data: b"challenge".to_vec(),
            done: false,
        })
    }
    fn step(&mut self, client: Option<&[u8]>) -> Result<Output, String> {
        self.calls.lock().unwrap().push(format!("step {client:?}"));
        match client {
            Some(b"right") => Ok(Output {
                data: vec![],
                done: true,
            }),
            _ => Err("bad password".into()),
        }
    }
    fn ssf(&self) -> Option<u32> {
        Some(self.ssf)
    }
    fn username(&self) -> Option<String> {
        Some("user".into())
    }
    fn max_out(&self) -> usize {
        100
    }
    fn encode(&mut self, plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![plain.len() as u8];
        out.extend(plain.iter().map(|b| b ^ 0x55));
        Ok(out)
    }
    fn decode(&mut self, wire: &[u8]) -> Result<Vec<u8>, String> {
        self.pending.extend_from_slice(wire);
        let mut out = vec![];
        while let Some(&len) = self.pending.first() {
            let len = len as usize;
            if self.pending.len() < 1 + len {
                break;
            }
            out.extend(self.pending[1..1 + len].iter().map(|b| b ^ 0x55));
            self.pending.drain(..1 + len);
        }
        Ok(out)
    }
}

pub(crate) fn message(data: Option<&[u8]>) -> Vec<u8> {
    match data {
        None => 0u32.to_le_bytes().to_vec(),
        Some(d) => {
            let mut out = (d.len() as u32 + 1).to_le_bytes().to_vec();
            out.extend_from_slice(d);
            out.push(0);
            out
        }
    }
}

pub(crate) fn mechanism(name: &str) -> Vec<u8> {
    let mut out = (name.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(name.as_bytes());
    out
}

/// Feeds `bytes` as the connection would (at most `wanted()` at a time).
fn feed_all(exchange: &mut Exchange, bytes: &[u8]) -> Vec<Progress> {
    let mut steps = vec![];
    let mut rest = bytes;
    while !rest.is_empty() && exchange.wanted() > 0 {
        let n = exchange.wanted().min(rest.len());
        let p = exchange.feed(&rest[..n]);
        rest = &rest[n..];
        if p != Progress::Continue {
            steps.push(p);
        }
    }
    steps
}

fn begin(ssf: u32, plain: bool) -> (Exchange, Arc<Mutex<Vec<String>>>) {
    let fake = Fake::new(ssf);
    let calls = fake.calls.clone();
    let (exchange, list) = Exchange::begin(Box::new(fake), plain).unwrap();
    assert_eq!(list, [&12u32.to_le_bytes()[..], b",FAKE,OTHER,"].concat());
    (exchange, calls)
}

fn server_says(data: &[u8], complete: bool) -> Vec<u8> {
    let mut out = message((!data.is_empty()).then_some(data));
    out.push(u8::from(complete));
    out
}

#[test]
fn a_full_exchange_over_tls_accepts_without_a_layer() {
    let (mut ex, calls) = begin(0, false);
    let mut hello = mechanism("FAKE");
    hello.extend(message(Some(b"hi")));
    assert_eq!(
        feed_all(&mut ex, &hello),
        vec![Progress::Send(server_says(b"challenge", false))]
    );
    let mut done = server_says(b"", true);
    done.extend(0u32.to_le_bytes());
    assert_eq!(
        feed_all(&mut ex, &message(Some(b"right"))),
        vec![Progress::Accepted(done)]
    );
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            format!("start FAKE {:?}", Some(&b"hi"[..])),
            format!("step {:?}", Some(&b"right"[..]))
        ],
        "the NUL the wire carries is not passed on"
    );
    assert!(ex.into_layer(vec![]).is_none());
}

#[test]
fn no_data_and_empty_data_stay_apart() {
    let (mut ex, calls) = begin(0, false);
    let mut hello = mechanism("FAKE");
    hello.extend(message(None));
    feed_all(&mut ex, &hello);
    feed_all(&mut ex, &message(Some(b"")));
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            "start FAKE None".to_string(),
            format!("step {:?}", Some(&b""[..]))
        ]
    );
}

#[test]
fn a_wrong_answer_closes_without_a_word() {
    let (mut ex, _) = begin(0, false);
    let mut bytes = mechanism("FAKE");
    bytes.extend(message(None));
    feed_all(&mut ex, &bytes);
    assert_eq!(
        feed_all(&mut ex, &message(Some(b"wrong"))),
        vec![Progress::Close(vec![])]
    );
    assert_eq!(ex.wanted(), 0);
}

#[test]
fn mechanisms_not_offered_or_malformed_are_refused() {
    for name in ["NOPE", "FAKE,OTHER", "FAK", ",FAKE"] {
        let (mut ex, calls) = begin(0, false);
        assert_eq!(
            feed_all(&mut ex, &mechanism(name)),
            vec![Progress::Close(encode_link_error(LinkError::InvalidData))],
            "{name}"
        );
        assert!(calls.lock().unwrap().is_empty());
    }
    for len in [0u32, 101, u32::MAX] {
        let (mut ex, _) = begin(0, false);
        assert_eq!(
            feed_all(&mut ex, &len.to_le_bytes()),
            vec![Progress::Close(vec![])],
            "mechanism name length {len}"
        );
    }
}

#[test]
fn client_data_is_bounded() {
    let (mut ex, calls) = begin(0, false);
    let mut bytes = mechanism("FAKE");
    bytes.extend((MAX_DATA_LEN as u32 + 1).to_le_bytes());
    assert_eq!(
        feed_all(&mut ex, &bytes),
        vec![Progress::Close(encode_link_error(LinkError::InvalidData))]
    );
    assert!(calls.lock().unwrap().is_empty(), "nothing reached SASL");
    assert_eq!(ex.wanted(), 0);

    let (mut ex, _) = begin(0, false);
    let mut bytes = mechanism("FAKE");
    bytes.extend(message(None));
    feed_all(&mut ex, &bytes);
    assert_eq!(
        feed_all(&mut ex, &(MAX_DATA_LEN as u32 + 1).to_le_bytes()),
        vec![Progress::Close(vec![])],
        "after start, too much data just hangs up"
    );
}

fn run_plain(ssf: u32) -> (Exchange, Vec<Progress>) {
    let (mut ex, _) = begin(ssf, true);
    let mut bytes = mechanism("FAKE");
    bytes.extend(message(None));
    feed_all(&mut ex, &bytes);
    let steps = feed_all(&mut ex, &message(Some(b"right")));
    (ex, steps)
}

#[test]
fn a_plain_link_needs_a_layer_of_56_bits() {
    let (_, steps) = run_plain(0);
    let mut refused = server_says(b"", true);
    refused.extend(1u32.to_le_bytes());
    refused.extend(22u32.to_le_bytes());
    refused.extend(b"Authentication failed\0");
    assert_eq!(steps, vec![Progress::Close(refused)]);
    let (_, steps) = run_plain(55);
    assert!(matches!(steps[..], [Progress::Close(_)]));

    let (ex, steps) = run_plain(56);
    assert!(matches!(steps[..], [Progress::Accepted(_)]));
    assert!(ex.into_layer(vec![]).is_some());
}

/// A socket that takes at most `room` bytes per write and reads from `input`.
#[derive(Default)]
struct Socket {
    written: Vec<u8>,
    room: usize,
    input: Vec<u8>,
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len()).min(3);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

#[test]
fn the_layer_sends_queued_bytes_first_and_reports_plaintext_once_sent() {
    let (ex, _) = run_plain(128);
    let mut layer = ex.into_layer(b"RAW".to_vec()).unwrap();
    let mut socket = Socket {
        room: 2,
        ..Socket::default()
    };
    let plain = vec![7u8; 150];
    let mut sent = 0;
    let mut turns = 0;
    while sent < plain.len() {
        match layer.write(&mut socket, &plain[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => socket.room = 5,
            Err(e) => panic!("{e}"),
        }
        turns += 1;
        assert!(turns < 1000);
    }
    assert!(layer.flush(&mut socket).unwrap());
    assert_eq!(layer.pending(), 0);
    assert_eq!(
        &socket.written[..3],
        b"RAW",
        "queued bytes go out unencoded"
    );
    let mut decoder = Fake::new(0);
    let decoded = decoder.decode(&socket.written[3..]).unwrap();
    assert_eq!(decoded, plain, "max_out splits, nothing lost or repeated");

    // and back
    let mut encoder = Fake::new(0);
    let mut socket = Socket {
        input: [
            encoder.encode(b"hello ").unwrap(),
            encoder.encode(b"world").unwrap(),
        ]
        .concat(),
        ..Socket::default()
    };
    let mut got = vec![];
    let mut buf = [0u8; 4];
    loop {
        match layer.read(&mut socket, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, b"hello world");
}

/// The real libsasl2 with a temporary sasldb: SCRAM-SHA-256 over "TLS" (an external
/// SSF), right and wrong passwords, and the mechanisms a plain link is offered.
#[test]
fn real_libsasl2_with_a_sasldb() {
    let Some(dir) = real::setup() else {
        eprintln!("saslpasswd2 is missing (sasl2-bin): skipped");
        return;
    };
    let over_tls = real::exchange(&dir, Some(256), "SCRAM-SHA-256", "user", "secret");
    assert_eq!(
        over_tls,
        Ok(false),
        "right password over TLS: accepted, no layer"
    );
    let wrong = real::exchange(&dir, Some(256), "SCRAM-SHA-256", "user", "nope");
    assert!(wrong.is_err(), "wrong password refused: {wrong:?}");
    let unknown = real::exchange(&dir, Some(256), "SCRAM-SHA-256", "nobody", "secret");
    assert!(unknown.is_err(), "unknown user refused: {unknown:?}");

    let mut plain = new_backend(None, None, None).unwrap();
    let list = plain.mechanisms().unwrap();
    assert!(
        !list.contains("SCRAM") && list.contains(",DIGEST-MD5,"),
        "without TLS only mechanisms with a layer are offered: {list}"
    );
    let mut tls = new_backend(None, None, Some(256)).unwrap();
    let list = tls.mechanisms().unwrap();
    assert!(list.contains(",SCRAM-SHA-256,"), "over TLS: {list}");
}

#[path = "sasl_real_tests.rs"]
mod real;
