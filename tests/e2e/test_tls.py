"""TLS (issue 11): QEMU's `tls-port=`/`x509-dir=` with a test CA made here by the openssl
CLI, spice-gtk as the client.

- test_tls_only: `tls-port=` and no `port=`, a password-protected key
  (`x509-key-password=`): spice-gtk connects over TLS checking the CA and the host name,
  shows the guest's screen pixel for pixel, its keys reach the guest, and QMP
  `query-spice` lists every channel with "tls": true.
- test_mixed_ports_move_each_channel_to_its_port: `port=` and `tls-port=` with
  `tls-channel=main,plaintext-channel=display`: spice-gtk given both ports ends with main on
  TLS and display in clear (query-spice). On the wire: a plain link to main is answered
  NEED_SECURED (5), a TLS link to display NEED_UNSECURED (6), a TLS link to main OK.
- test_wrong_ca_or_subject_refused: a client trusting another CA, and one expecting another
  certificate subject, end in SPICE_CHANNEL_ERROR_TLS without a display.
- test_key_that_does_not_load_exits: a wrong key password: QEMU exits non-zero; with our
  library the reason is one error line (lib=ours only).

Every case also passes with SPICE_RS_E2E_LIB=c (same outcomes)."""
import socket
import ssl
import struct
import subprocess
import time

from client import SpiceClient
from rig import free_port
from test_session import HOST, keys_of, settled_compare, wait_lines

KEY_PASSWORD = "k3y-pass"
SUBJECT = "O=spice-rs,CN=127.0.0.1"
# SpiceLinkError
LINK_OK, NEED_SECURED, NEED_UNSECURED = 0, 5, 6
CHANNEL_MAIN, CHANNEL_DISPLAY = 1, 2


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def make_ca(path, name):
    path.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", "ca-key.pem", "-out", "ca-cert.pem", cwd=path)
    return path


def make_x509_dir(path, password=None):
    """QEMU's x509-dir layout: ca-cert.pem, server-cert.pem (signed by the CA, subject
    SUBJECT, SAN IP 127.0.0.1 and localhost), server-key.pem (encrypted with password)."""
    make_ca(path, "spice-rs test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=spice-rs/CN=127.0.0.1",
            "-keyout", "plain-key.pem", "-out", "server.csr", cwd=path)
    (path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server-cert.pem",
            cwd=path)
    if password:
        openssl("pkey", "-in", "plain-key.pem", "-aes256", "-passout", f"pass:{password}",
                "-out", "server-key.pem", cwd=path)
    else:
        (path / "server-key.pem").write_bytes((path / "plain-key.pem").read_bytes())
    return path


def tls_rig(make_rig, x509, plain_port=False, start=True, **opts):
    tls_port = free_port()
    spice = {"tls-port": tls_port, "x509-dir": str(x509)}
    if not plain_port:
        spice["port"] = 0  # QEMU calls set_port only for a non-zero port: TLS only
    spice.update(opts)
    rig = make_rig(start=start, display="std", workload="desktop", spice_opts=spice)
    return rig, tls_port


def channels_by_type(rig):
    info = rig.qmp.execute("query-spice")
    return info, {(c["channel-type"], c["channel-id"]): c["tls"] for c in info["channels"]}


def test_tls_only(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509", password=KEY_PASSWORD)
    rig, tls_port = tls_rig(make_rig, x509, **{"x509-key-password": KEY_PASSWORD})
    rig.wait_serial(r"workload desktop running", timeout=90)
    # Nothing listens in clear.
    with socket.socket() as s:
        assert s.connect_ex((HOST, rig.port)) != 0, "a plain port is open"

    with SpiceClient(tmp_path / "client.log") as c:
        t = time.monotonic()
        c.connect(HOST, None, timeout=60,
                  tls={"port": tls_port, "ca_file": str(x509 / "ca-cert.pem")})
        t_connect = time.monotonic() - t
        n, w, h = settled_compare(rig, c, tmp_path)
        c.wait_inputs()
        start = len(rig.serial())
        c.key_press_release(0x1E)
        want = ["key code=30 value=1", "key code=30 value=0"]
        got = keys_of(wait_lines(rig, start, lambda g: len(keys_of(g)) >= 2, timeout=20))
        info, tls = channels_by_type(rig)
        errs = [e for e in c.events() if "ERROR" in e[1]]
        print(f"lib={rig.lib} TLS only: primary after {t_connect:.2f}s, {w}x{h}, {n} pixels "
              f"differ; keys {got}; query-spice tls-port={info.get('tls-port')} "
              f"port={info.get('port')} channels {tls}; errors {errs}")
        assert (w, h) == (1024, 768) and n == 0, f"{n} pixels differ, see {tmp_path}"
        assert got == want
        assert not errs
        assert info.get("tls-port") == tls_port
        assert tls and all(tls.values()), tls
        assert {1, 2, 3, 4} <= {t for t, _ in tls}, tls


def raw_link(port, channel_type, use_tls, ca):
    """Sends a link request for channel_type (session 0, mini header caps) and returns the
    link reply's error code."""
    body = struct.pack("<IBBIII", 0, channel_type, 0, 1, 0, 18) + struct.pack("<I", 0b1011)
    msg = b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body
    with socket.create_connection((HOST, port), timeout=15) as raw:
        sock = raw
        if use_tls:
            ctx = ssl.create_default_context(cafile=ca)
            sock = ctx.wrap_socket(raw, server_hostname=HOST)
        sock.sendall(msg)
        reply = b""
        while len(reply) < 20:
            chunk = sock.recv(20 - len(reply))
            if not chunk:
                break
            reply += chunk
        assert reply[:4] == b"REDQ", reply
        return struct.unpack_from("<I", reply, 16)[0]


def test_mixed_ports_move_each_channel_to_its_port(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509")
    ca = str(x509 / "ca-cert.pem")
    rig, tls_port = tls_rig(make_rig, x509, plain_port=True,
                            **{"tls-channel": "main", "plaintext-channel": "display"})
    rig.wait_serial(r"workload desktop running", timeout=90)

    answers = {
        "plain main": raw_link(rig.port, CHANNEL_MAIN, False, ca),
        "tls main": raw_link(tls_port, CHANNEL_MAIN, True, ca),
        "tls display": raw_link(tls_port, CHANNEL_DISPLAY, True, ca),
    }
    print(f"lib={rig.lib} link answers {answers}")
    assert answers == {"plain main": NEED_SECURED, "tls main": LINK_OK,
                       "tls display": NEED_UNSECURED}

    with SpiceClient(tmp_path / "client.log") as c:
        c.connect(HOST, rig.port, timeout=60, tls={"port": tls_port, "ca_file": ca})
        n, w, h = settled_compare(rig, c, tmp_path)
        info, tls = channels_by_type(rig)
        errs = [e for e in c.events() if "ERROR" in e[1]]
        print(f"lib={rig.lib} mixed: {w}x{h}, {n} pixels differ, channels {tls}, errors {errs}")
        assert n == 0
        assert tls.get((CHANNEL_MAIN, 0)) is True, tls
        assert tls.get((CHANNEL_DISPLAY, 0)) is False, tls
        assert not errs


def expect_tls_refused(tls_port, ca_file, log, subject=None):
    with SpiceClient(log) as c:
        c.connect(HOST, None, wait_primary=False,
                  tls={"port": tls_port, "ca_file": str(ca_file), "subject": subject})
        ev = c.wait_event("SPICE_CHANNEL_ERROR_TLS", timeout=30)
        st = c.state()
        assert ("main:0", "SPICE_CHANNEL_ERROR_TLS") in ev, ev
        assert st["primary"] is None
        assert not any(e[1] == "SPICE_CHANNEL_OPENED" for e in ev), ev
        return ev


def test_wrong_ca_or_subject_refused(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509")
    other_ca = make_ca(tmp_path / "other-ca", "another CA") / "ca-cert.pem"
    rig, tls_port = tls_rig(make_rig, x509)
    ev = expect_tls_refused(tls_port, other_ca, tmp_path / "c-ca.log")
    print(f"lib={rig.lib} another CA: {ev}")
    ev = expect_tls_refused(tls_port, x509 / "ca-cert.pem", tmp_path / "c-subj.log",
                            subject="O=spice-rs,CN=somebody-else")
    print(f"lib={rig.lib} wrong subject: {ev}")
    # The right subject connects (so the refusals above are about the subject and the CA).
    with SpiceClient(tmp_path / "c-ok.log") as c:
        c.connect(HOST, None, timeout=60, tls={"port": tls_port, "ca_file":
                                               str(x509 / "ca-cert.pem"), "subject": SUBJECT})
    assert rig.alive()


def test_key_that_does_not_load_exits(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509", password=KEY_PASSWORD)
    rig, tls_port = tls_rig(make_rig, x509, start=False, **{"x509-key-password": "wrong"})
    t = time.monotonic()
    r = subprocess.run(rig.argv(), env=rig.env(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    (rig.dir / "qemu-stderr.log").write_text(out)
    ours = [l for l in out.splitlines() if l.startswith("spice-rs:")]
    print(f"lib={rig.lib} QEMU exited {r.returncode} after {time.monotonic() - t:.1f}s; "
          f"our lines {ours}; output:\n{out}")
    assert r.returncode != 0, "QEMU started with a key it cannot load"
    if rig.lib == "ours":
        errors = [l for l in ours if l.startswith("spice-rs: error:")]
        assert len(errors) == 1, ours
        assert errors[0].startswith(
            f"spice-rs: error: cannot load the TLS private key {x509 / 'server-key.pem'} "
            "(wrong password?)"), errors
