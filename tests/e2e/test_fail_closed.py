"""Configurations that would be silently unsafe must fail closed (issues 10, 11).

- test_tls_port_never_speaks_in_clear: `-spice tls-port=...,x509-dir=...` and no plain
  port: a client speaking plain SPICE to the TLS port gets no SPICE answer (the TLS
  handshake fails and the connection closes), while a TLS client completes a handshake
  of TLS 1.2 or newer. (The rest of TLS is in test_tls.py.)
- test_empty_password_refuses_everyone: after QMP `set_password` with "" every client is
  refused (as spice-server's reds.c does: ticketing on and an empty ticket), both one
  sending an empty password and one sending the old one. Same for both libraries."""
import socket
import ssl
import struct

from client import SpiceClient
from test_session import HOST, expect_auth_refused
from test_tls import make_x509_dir, tls_rig


def test_tls_port_never_speaks_in_clear(make_rig, tmp_path):
    x509 = make_x509_dir(tmp_path / "x509")
    rig, tls_port = tls_rig(make_rig, x509)
    body = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)
    link = b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body
    with socket.create_connection((HOST, tls_port), timeout=15) as s:
        s.sendall(link)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    print(f"lib={rig.lib}: a plain link to the TLS port got {answer[:16]!r}")
    assert not answer.startswith(b"REDQ"), "the TLS port answered SPICE in clear"

    ctx = ssl.create_default_context(cafile=str(x509 / "ca-cert.pem"))
    with socket.create_connection((HOST, tls_port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            version = tls.version()
    print(f"lib={rig.lib}: TLS port {tls_port} speaks {version}")
    assert version in ("TLSv1.2", "TLSv1.3")
    assert rig.alive()


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
