//! The HTTP upgrade request and our answer (RFC 6455 section 4.2).
//!
//! spice-server checks little (a `GET`, a key, and "binary" when a subprotocol is
//! asked for); we also require what every browser sends (`Upgrade: websocket`,
//! `Connection: Upgrade`, version 13, a 16-byte key) and refuse anything else with an
//! HTTP error, so a stray HTTP client gets an answer instead of SPICE bytes.

use openssl::base64;
use openssl::sha::sha1;

/// The longest request we read: browsers send about 500 bytes, cookies add some.
pub(crate) const MAX_REQUEST: usize = 8192;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the request bytes read so far call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// The request is not complete yet.
    Incomplete,
    /// Send `reply` and speak WebSocket; the request took `consumed` bytes (what follows
    /// are frames).
    Accept { reply: Vec<u8>, consumed: usize },
    /// Send `reply` (an HTTP error) and close.
    Refuse { reply: Vec<u8>, why: String },
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &str) -> String {
    base64::encode_block(&sha1(format!("{key}{GUID}").as_bytes()))
}

/// Judges the request bytes received so far (all of them, from the first).
pub(crate) fn parse(request: &[u8]) -> Upgrade {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        if request.len() >= MAX_REQUEST {
            return refuse(400, "", format!("request longer than {MAX_REQUEST} bytes"));
        }
        return Upgrade::Incomplete;
    };
    let consumed = end + 4;
    let Ok(head) = std::str::from_utf8(&request[..end]) else {
        return refuse(400, "", "request is not text".into());
    };
    match answer(head) {
        Ok(reply) => Upgrade::Accept {
            reply: reply.into_bytes(),
            consumed,
        },
        Err(refusal) => refusal,
    }
}

fn answer(head: &str) -> Result<String, Upgrade> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, version) = (parts.next(), parts.nth(1));
    if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        let line: String = request_line.chars().take(64).collect();
        return Err(refuse(400, "", format!("not a GET request: {line:?}")));
    }
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let has_token = |value: Option<&str>, token: &str| {
        value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token(header("Upgrade"), "websocket") || !has_token(header("Connection"), "upgrade") {
        return Err(refuse(
            400,
            "",
            "an HTTP request without a WebSocket upgrade".into(),
        ));
    }
    if header("Sec-WebSocket-Version") != Some("13") {
        return Err(refuse(
            426,
            "Sec-WebSocket-Version: 13\r\n",
            format!(
                "WebSocket version {:?} (only 13 is spoken)",
                header("Sec-WebSocket-Version").unwrap_or("none")
            ),
        ));
    }
    let key = header("Sec-WebSocket-Key").unwrap_or_default();
    if base64::decode_block(key).ok().map(|k| k.len()) != Some(16) {
        return Err(refuse(
            400,
            "",
            "WebSocket key is not 16 bytes in base64".into(),
        ));
    }
    // spice-html5 asks for "binary"; spice-server refuses any other subprotocol.
    let protocol = match header("Sec-WebSocket-Protocol") {
        None => "",
        Some(p) if has_token(Some(p), "binary") => "Sec-WebSocket-Protocol: binary\r\n",
        Some(p) => {
            let p: String = p.chars().take(64).collect();
            return Err(refuse(
                400,
                "",
                format!("WebSocket subprotocol {p:?} is not binary"),
            ));
        }
    };
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{protocol}\r\n",
        accept_key(key)
    ))
}

fn refuse(status: u16, extra_headers: &str, why: String) -> Upgrade {
    let reason = match status {
        426 => "Upgrade Required",
        _ => "Bad Request",
    };
    Upgrade::Refuse {
        reply: format!(
            "HTTP/1.1 {status} {reason}\r\n{extra_headers}Connection: close\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 section 1.3's example.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request(extra: &str) -> String {
        format!(
            "GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:5900\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn reply_text(u: &Upgrade) -> String {
        match u {
            Upgrade::Accept { reply, .. } | Upgrade::Refuse { reply, .. } => {
                String::from_utf8(reply.clone()).unwrap()
            }
            Upgrade::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        assert_eq!(accept_key(KEY), ACCEPT);
    }

    #[test]
    fn a_browser_request_is_answered_101_with_binary_when_asked() {
        let plain = request("");
        let u = parse(plain.as_bytes());
        let text = reply_text(&u);
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!("\r\nSec-WebSocket-Accept: {ACCEPT}\r\n")));
        assert!(!text.contains("Sec-WebSocket-Protocol"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(
            u,
            Upgrade::Accept {
                reply: text.clone().into_bytes(),
                consumed: plain.len()
            }
        );

        let binary = request("Sec-WebSocket-Protocol: binary\r\n");
        let text = reply_text(&parse(binary.as_bytes()));
        assert!(
            text.contains("\r\nSec-WebSocket-Protocol: binary\r\n"),
            "{text}"
        );
        let listed = request("sec-websocket-protocol: base64, binary\r\n");
        assert!(reply_text(&parse(listed.as_bytes())).contains("Protocol: binary"));
    }

    #[test]
    fn bytes_after_the_request_are_left_for_the_frames() {
        let mut bytes = request("").into_bytes();
        let len = bytes.len();
        bytes.extend([0x82, 0x80]);
        assert!(matches!(parse(&bytes), Upgrade::Accept { consumed, .. } if consumed == len));
    }

    #[test]
    fn a_partial_request_waits_and_an_endless_one_is_refused() {
        let r = request("");
        for cut in [1, 4, r.len() / 2, r.len() - 1] {
            assert_eq!(parse(&r.as_bytes()[..cut]), Upgrade::Incomplete, "{cut}");
        }
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_REQUEST));
        assert!(
            matches!(parse(endless.as_bytes()), Upgrade::Refuse { why, .. }
                if why.contains("longer"))
        );
    }

    #[test]
    fn requests_that_are_not_upgrades_get_an_http_error() {
        let cases = [
            (request("").replace("GET", "POST"), 400, "not a GET"),
            (
                request("").replace("Upgrade: websocket", "Upgrade: h2c"),
                400,
                "without",
            ),
            (
                request("").replace("Version: 13", "Version: 8"),
                426,
                "version",
            ),
            (request("").replace(KEY, "c2hvcnQ="), 400, "16 bytes"),
            (
                request("Sec-WebSocket-Protocol: base64\r\n"),
                400,
                "subprotocol",
            ),
            ("GET / HTTP/1.1\r\n\r\n".to_owned(), 400, "without"),
        ];
        for (req, status, why_has) in cases {
            match parse(req.as_bytes()) {
                Upgrade::Refuse { reply, why } => {
                    let text = String::from_utf8(reply).unwrap();
                    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
                    assert!(why.contains(why_has), "{why}");
                }
                other => panic!("{req:?} gave {other:?}"),
            }
        }
    }
}
