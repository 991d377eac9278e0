"""SASL (issue 11): QEMU's `-spice sasl=on` with libsasl2 reading `qemu.conf` from a
config dir made here (SASL_CONF_PATH, never /etc) over a sasldb made by saslpasswd2;
spice-gtk logs in with SpiceSession username/password.

- test_sasl_over_tls_and_plain: one QEMU with a plain port and a TLS port, mechanisms
  scram-sha-256 and digest-md5. On the wire, the mechanism list a link gets: over TLS
  both, on the plain port only DIGEST-MD5 (a plain link needs a security layer of 56 bits
  and SCRAM has none). spice-gtk with the right password shows the guest pixel for pixel
  over TLS and over the plain port (there every byte goes through DIGEST-MD5's layer);
  a wrong password or an unknown user ends in SPICE_CHANNEL_ERROR_AUTH without a display.
- test_sasl_without_a_layer_is_refused_in_clear: mechanisms scram-sha-256 only, plain
  port only: the list offered in clear is empty (",,"), the client is refused.

Every case also passes with SPICE_RS_E2E_LIB=c (same outcomes)."""
import shutil
import socket
import ssl
import struct
import subprocess

import pytest

from client import ClientError, SpiceClient
from rig import free_port
from test_session import HOST, settled_compare
from test_tls import make_x509_dir

USER, PASSWORD = "spiceuser", "s3cret-pw"
AUTH_SELECTION, AUTH_SPICE, AUTH_SASL, MINI_HEADER = 0, 1, 2, 3


def sasl_conf(path, mechs):
    """A SASL config dir for QEMU's app name "qemu" with one user in a sasldb."""
    if not shutil.which("saslpasswd2"):
        pytest.skip("saslpasswd2 missing (sasl2-bin)")
    path.mkdir(parents=True, exist_ok=True)
    db = path / "sasldb2"
    subprocess.run(["saslpasswd2", "-f", str(db), "-a", "qemu", "-c", "-p", USER],
                   input=PASSWORD.encode(), check=True, timeout=30)
    (path / "qemu.conf").write_text(f"mech_list: {mechs}\nsasldb_path: {db}\n")
    return path


def sasl_rig(make_rig, conf, x509=None, plain=True):
    spice = {"sasl": "on", "disable-ticketing": None}
    tls_port = None
    if x509 is not None:
        tls_port = free_port()
        spice.update({"tls-port": tls_port, "x509-dir": str(x509)})
    if not plain:
        spice["port"] = 0
    rig = make_rig(display="std", workload="desktop", spice_opts=spice,
                   env_extra={"SASL_CONF_PATH": str(conf)})
    return rig, tls_port


def mechanisms_offered(port, ca=None):
    """Links main selecting SASL; returns the server's common caps and mechanism list."""
    caps = (1 << AUTH_SELECTION) | (1 << AUTH_SPICE) | (1 << AUTH_SASL) | (1 << MINI_HEADER)
    body = struct.pack("<IBBIII", 0, 1, 0, 1, 0, 18) + struct.pack("<I", caps)
    with socket.create_connection((HOST, port), timeout=15) as raw:
        sock = raw
        if ca:
            sock = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname=HOST)

        def read(n):
            out = b""
            while len(out) < n:
                chunk = sock.recv(n - len(out))
                if not chunk:
                    raise EOFError(f"closed after {out!r}")
                out += chunk
            return out

        sock.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body)
        header = read(16)
        reply = read(struct.unpack_from("<I", header, 12)[0])
        error, = struct.unpack_from("<I", reply, 0)
        n_common, _, offset = struct.unpack_from("<III", reply, 4 + 162)
        common = struct.unpack_from("<I", reply, offset)[0] if n_common else 0
        sock.sendall(struct.pack("<I", AUTH_SASL))
        try:
            length, = struct.unpack("<I", read(4))
            mechs = read(length).decode()
        except EOFError:
            mechs = None  # the server hung up without a list
        return error, common, mechs


def login(rig, tmp_path, tag, password=PASSWORD, user=USER, tls=None):
    """Logs in with spice-gtk: ("ok", pixels differing) or ("refused", events)."""
    with SpiceClient(tmp_path / f"client-{tag}.log") as c:
        port = None if tls else rig.port
        c.connect(HOST, port, username=user, password=password, wait_primary=False, tls=tls)
        try:
            c.wait(lambda s: s["primary"] is not None, 60, "a display")
        except ClientError:
            return "refused", [e for e in c.events() if "main" in e[0]]
        n, w, h = settled_compare(rig, c, tmp_path, tag=tag)
        assert (w, h) == (1024, 768)
        return "ok", n


def test_sasl_over_tls_and_plain(make_rig, tmp_path):
    conf = sasl_conf(tmp_path / "sasl", "scram-sha-256 digest-md5")
    x509 = make_x509_dir(tmp_path / "x509")
    ca = str(x509 / "ca-cert.pem")
    rig, tls_port = sasl_rig(make_rig, conf, x509)
    rig.wait_serial(r"workload desktop running", timeout=90)

    plain_error, plain_caps, plain_mechs = mechanisms_offered(rig.port)
    tls_error, tls_caps, tls_mechs = mechanisms_offered(tls_port, ca)
    print(f"lib={rig.lib} offered: plain {plain_mechs!r} (caps {plain_caps:#x}), "
          f"TLS {tls_mechs!r} (caps {tls_caps:#x})")
    assert plain_error == tls_error == 0
    for caps in (plain_caps, tls_caps):
        assert caps & (1 << AUTH_SASL) and not caps & (1 << AUTH_SPICE), hex(caps)
    assert plain_mechs == ",DIGEST-MD5,", plain_mechs
    assert set(tls_mechs.strip(",").split(",")) == {"SCRAM-SHA-256", "DIGEST-MD5"}, tls_mechs

    tls = {"port": tls_port, "ca_file": ca}
    outcomes = {
        "tls right": login(rig, tmp_path, "tls-ok", tls=tls),
        "tls wrong password": login(rig, tmp_path, "tls-bad", password="wrong", tls=tls),
        "plain right": login(rig, tmp_path, "plain-ok"),
        "plain wrong password": login(rig, tmp_path, "plain-bad", password="wrong"),
        "plain unknown user": login(rig, tmp_path, "plain-nobody", user="nobody"),
    }
    for case, (outcome, detail) in outcomes.items():
        print(f"lib={rig.lib} {case}: {outcome} "
              f"{'(%d pixels differ)' % detail if outcome == 'ok' else detail}")
    assert {k: v[0] for k, v in outcomes.items()} == {
        "tls right": "ok", "tls wrong password": "refused", "plain right": "ok",
        "plain wrong password": "refused", "plain unknown user": "refused"}
    for case in ("tls right", "plain right"):
        assert outcomes[case][1] == 0, f"{case}: pixels differ, see {tmp_path}"
    for case in ("tls wrong password", "plain wrong password", "plain unknown user"):
        ev = outcomes[case][1]
        assert ("main:0", "SPICE_CHANNEL_ERROR_AUTH") in ev, (case, ev)
        assert not any(e[1] == "SPICE_CHANNEL_OPENED" for e in ev), (case, ev)
    assert rig.alive()


def test_sasl_without_a_layer_is_refused_in_clear(make_rig, tmp_path):
    conf = sasl_conf(tmp_path / "sasl", "scram-sha-256")
    rig, _ = sasl_rig(make_rig, conf)
    rig.wait_serial(r"workload desktop running", timeout=90)
    error, _, mechs = mechanisms_offered(rig.port)
    outcome, ev = login(rig, tmp_path, "scram-plain")
    print(f"lib={rig.lib} SCRAM only, plain port: link {error}, offered {mechs!r}, "
          f"login {outcome} {ev}")
    assert error == 0 and not (mechs or "").strip(","), "nothing may be offered in clear"
    assert outcome == "refused"
    assert not any(e[1] == "SPICE_CHANNEL_OPENED" for e in ev), ev
    assert rig.alive()
