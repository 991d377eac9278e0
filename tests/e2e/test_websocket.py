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

Every case also passes with SPICE_RS_E2E_LIB=c (same outcomes)."""
import time

import pytest

import browser
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
