"""Configurations that would be silently unsafe must fail closed (issue 10).

- test_tls_port_refused: `-spice tls-port=...,x509-dir=...` — this build has no TLS, so
  spice_server_init fails with one error line and QEMU exits non-zero instead of serving
  the TLS port in clear. Debian's C server (SPICE_RS_E2E_LIB=c) has TLS: there QEMU runs
  and the TLS port completes a TLS handshake.
- test_empty_password_refuses_everyone: after QMP `set_password` with "" every client is
  refused (as spice-server's reds.c does: ticketing on and an empty ticket), both one
  sending an empty password and one sending the old one. Same for both libraries."""
import socket
import ssl
import subprocess
import time

from client import SpiceClient
from rig import free_port
from test_session import HOST, expect_auth_refused

TLS_REFUSED = "spice-rs: error: TLS is not available in this build: refusing tls-port="


def make_x509_dir(path):
    """A self-signed certificate as QEMU's x509-dir layout wants it (the CA is itself)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={HOST}", "-keyout", str(path / "server-key.pem"),
                    "-out", str(path / "server-cert.pem")],
                   check=True, capture_output=True, timeout=60)
    (path / "ca-cert.pem").write_bytes((path / "server-cert.pem").read_bytes())
    return path


def test_tls_port_refused(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509")
    tls_port = free_port()
    rig = make_rig(start=False, display="std", workload="console",
                   spice_opts={"tls-port": tls_port, "x509-dir": str(x509)})
    if rig.lib == "c":
        # The C server has TLS: QEMU runs and the port speaks TLS.
        rig.start()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((HOST, tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                print(f"lib=c: TLS port {tls_port} speaks {tls.version()}")
        assert rig.alive()
        return

    t = time.monotonic()
    r = subprocess.run(rig.argv(), env=rig.env(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    (rig.dir / "qemu-stderr.log").write_text(out)
    ours = [l for l in out.splitlines() if l.startswith("spice-rs:")]
    print(f"QEMU exited {r.returncode} after {time.monotonic() - t:.1f}s; our lines {ours}; "
          f"output:\n{out}")
    assert r.returncode != 0, "QEMU started with a TLS port this build cannot serve"
    assert [l for l in ours if "TLS" in l] == [f"{TLS_REFUSED}{tls_port}"], ours
    assert len([l for l in ours if l.startswith("spice-rs: error:")]) == 1, ours


def test_empty_password_refuses_everyone(make_rig, tmp_path):
    rig = make_rig(display="std", workload="console", password="s3cret")
    rig.wait_serial(r"workload console running", timeout=60)

    # Before: the password in force connects.
    with SpiceClient(tmp_path / "c-before.log") as c:
        c.connect(HOST, rig.port, password="s3cret", timeout=30)
        errs = [e for e in c.events() if "ERROR" in e[1]]
        assert not errs, errs
    print("password s3cret: connected")

    rig.qmp.execute("set_password", protocol="spice", password="")
    for name, password in (("empty", ""), ("old", "s3cret"), ("none", None)):
        ev = expect_auth_refused(rig.port, password, tmp_path / f"c-{name}.log")
        print(f"after set_password \"\": {name} password refused, events {ev}")
    assert rig.alive()

    # A real password lets clients in again.
    rig.qmp.execute("set_password", protocol="spice", password="n3w")
    with SpiceClient(tmp_path / "c-after.log") as c:
        c.connect(HOST, rig.port, password="n3w", timeout=30)
    print("after set_password n3w: connected")
