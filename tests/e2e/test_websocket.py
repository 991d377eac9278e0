"""WebSocket on the SPICE port (issue 11): spice-html5 (Debian's spice-html5 package) in
headless chromium driven by Selenium, against QEMU's -spice port as is (the server
detects the HTTP upgrade on the SPICE port, as spice-server does).

- test_html5_plain_websocket: ws:// to `port=`: the page shows the guest's screen (the
  primary canvas equals QMP's screendump pixel for pixel) and keys typed into the page
  reach the guest (its serial line prints the input events).
- test_html5_tls_websocket: wss:// to `tls-port=` (TLS only, a test CA made here): the same,
  and QMP query-spice lists the channels with "tls": true. chromium trusts the server's
  certificate through --ignore-certificate-errors-spki-list (its key's hash), not by
  ignoring certificate errors.

Every case also passes with SPICE_RS_E2E_LIB=c (same outcomes), except that about one
link in 128 fails there: spice-html5 sends a ticket that lost its leading zero byte
(src/net/auth.rs reads it right-aligned; C's server refuses it, and the page's inputs
channel never gets ready)."""
import time

import pytest

import browser
from spice_raw import link_message, recv_exact
from rig import compare_images, screendump
from test_session import keys_of, wait_lines
from test_tls import make_x509_dir, tls_rig

pytestmark = pytest.mark.skipif(browser.available() is not None,
                                reason=f"missing: {browser.available()}")


def settled_canvas_compare(rig, page, tmp_path, tries=6):
    """Canvas vs QMP screendump, judged in a round where the canvas did not change around
    the dump (the guest's clock ticks once a second). Returns (differing pixels, w, h)."""
    n, a = None, None
    for i in range(tries):
        a = page.wait_quiet(0.4)
        d = screendump(rig, tmp_path / f"dump{i}.png")
        b = page.screenshot()
        n = compare_images(a, d, tmp_path / f"diff{i}.png")
        if a.tobytes() == b.tobytes() and n == 0:
            break
    if n:
        a.save(tmp_path / "canvas.png")
    return n, a.size[0], a.size[1]


def typed_keys_reach_guest(rig, page):
    deadline = time.monotonic() + 30
    while not page.inputs_ready():
        assert time.monotonic() < deadline, "spice-html5's inputs channel never got ready"
        time.sleep(0.2)
    start = len(rig.serial())
    page.type_keys("a")
    got = keys_of(wait_lines(rig, start, lambda g: len(keys_of(g)) >= 2, timeout=20))
    return got


def run_html5(rig, page, port, tmp_path):
    t = time.monotonic()
    page.open(port)
    w, h = page.wait_primary((1024, 768), timeout=60)
    t_primary = time.monotonic() - t
    n, w, h = settled_canvas_compare(rig, page, tmp_path)
    keys = typed_keys_reach_guest(rig, page)
    errors = [m for m in page.console() if "SEVERE" in m or "rror" in m]
    return t_primary, n, w, h, keys, errors


WANT_KEYS = ["key code=30 value=1", "key code=30 value=0"]


def test_html5_plain_websocket(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop")
    rig.wait_serial(r"workload desktop running", timeout=90)
    with browser.Html5Client(tmp_path / "browser") as page:
        t, n, w, h, keys, errors = run_html5(rig, page, rig.port, tmp_path)
        print(f"lib={rig.lib} ws:// primary canvas after {t:.2f}s, {w}x{h}, {n} pixels differ "
              f"from screendump; keys {keys}; console errors {errors}")
        assert (w, h) == (1024, 768) and n == 0, f"{n} pixels differ, see {tmp_path}"
        assert keys == WANT_KEYS
    assert rig.alive()


def test_html5_tls_websocket(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509")
    rig, tls_port = tls_rig(make_rig, x509)
    rig.wait_serial(r"workload desktop running", timeout=90)
    cert = (x509 / "server-cert.pem", x509 / "server-key.pem")
    with browser.Html5Client(tmp_path / "browser", cert=cert) as page:
        t, n, w, h, keys, errors = run_html5(rig, page, tls_port, tmp_path)
        info = rig.qmp.execute("query-spice")
        tls = {(c["channel-type"], c["channel-id"]): c["tls"] for c in info["channels"]}
        print(f"lib={rig.lib} wss:// primary canvas after {t:.2f}s, {w}x{h}, {n} pixels differ "
              f"from screendump; keys {keys}; channels {tls}; console errors {errors}")
        assert (w, h) == (1024, 768) and n == 0, f"{n} pixels differ, see {tmp_path}"
        assert keys == WANT_KEYS
        assert tls and all(tls.values()), tls
        assert {1, 2, 3} <= {t for t, _ in tls}, tls
    assert rig.alive()


# ------------------------------------------------------------ the wire, by hand
import base64  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_connect(port, protocol="binary", extra=""):
    """Opens a WebSocket to the SPICE port; returns (socket, HTTP answer, expected accept)."""
    key = base64.b64encode(os.urandom(16)).decode()
    proto = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else ""
    req = (f"GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"{proto}{extra}\r\n")
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(req.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(1)
        if not chunk:
            break
        answer += chunk
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    return s, answer.decode(errors="replace"), accept


def frame(opcode, payload, fin=True):
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(s):
    """(fin, opcode, payload, masked) of one server frame."""
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", recv_exact(s, 8))[0]
    mask = recv_exact(s, 4) if b1 & 0x80 else None
    return bool(b0 & 0x80), b0 & 0x0F, recv_exact(s, n), mask is not None


def test_websocket_wire(make_rig, tmp_path):
    """By hand: the 101 answer (accept key, "binary"), a link message split over a binary
    frame and a continuation with a ping between them, the link reply in unmasked binary
    frames, the pong, and a close answered by a close. Then what is refused."""
    rig = make_rig(display="std", workload="desktop")
    s, answer, accept = ws_connect(rig.port)
    head = answer.split("\r\n")
    msg = link_message()
    s.sendall(frame(0x2, msg[:10], fin=False) + frame(0x9, b"ping!") + frame(0x0, msg[10:]))
    data, pongs, frames = b"", [], []
    while len(data) < 16 or len(data) < 16 + struct.unpack_from("<I", data, 12)[0]:
        fin, op, payload, masked = read_frame(s)
        frames.append((fin, op, len(payload), masked))
        if op == 0xA:
            pongs.append(payload)
        else:
            data += payload
    error = struct.unpack_from("<I", data, 16)[0]
    s.sendall(frame(0x8, struct.pack(">H", 1000)))
    closing = read_frame(s)
    s.close()
    print(f"lib={rig.lib} answer {head[0]!r}, headers {head[1:-2]}; server frames "
          f"(fin, opcode, length, masked) {frames}; link error {error}; pongs {pongs}; "
          f"close answer {closing}")
    assert head[0] == "HTTP/1.1 101 Switching Protocols"
    assert f"Sec-WebSocket-Accept: {accept}" in head
    assert "Sec-WebSocket-Protocol: binary" in head
    assert data[:4] == b"REDQ" and error == 0
    assert all(op in (0x2, 0xA) and fin and not masked for fin, op, _, masked in frames)
    assert pongs == [b"ping!"]
    # A close is answered by a close: we echo the status code (RFC 6455 5.5.1's usual
    # answer), spice-server sends an empty one (also allowed).
    assert closing[1] == 0x8
    echoed = struct.pack(">H", 1000)
    assert closing[2] in ((echoed,) if rig.lib == "ours" else (b"", echoed))

    # Refused: another subprotocol (both servers refuse: we answer HTTP 400, spice-server
    # a SPICE link error), and after a good upgrade, an unmasked frame (we close with
    # 1002; spice-server reads it as data: its link then waits for more).
    s, answer, _ = ws_connect(rig.port, protocol="base64")
    s.close()
    refused_protocol = answer.split("\r\n")[0] if answer.startswith("HTTP") else answer[:4]
    s, answer, _ = ws_connect(rig.port)
    s.sendall(b"\x82\x04" + b"REDQ")
    try:
        s.settimeout(5)
        unmasked = read_frame(s)
    except (socket.timeout, EOFError, ConnectionError) as e:
        unmasked = repr(e)
    s.close()
    print(f"lib={rig.lib} subprotocol base64: {refused_protocol!r}; unmasked frame: {unmasked}")
    assert "101" not in refused_protocol
    if rig.lib == "ours":
        assert refused_protocol == "HTTP/1.1 400 Bad Request"
        assert unmasked[1] == 0x8 and unmasked[2] == struct.pack(">H", 1002), unmasked
    # The server is fine after all that: spice-html5-like clients still link.
    s, answer, _ = ws_connect(rig.port)
    s.sendall(frame(0x2, link_message()))
    fin, op, payload, _ = read_frame(s)
    s.close()
    assert answer.startswith("HTTP/1.1 101") and op == 0x2 and payload[:4] == b"REDQ"
    assert rig.alive()
