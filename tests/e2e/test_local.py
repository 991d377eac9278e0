"""Local clients and tickets, as spice-server does them (issue 11).

- test_add_client_skipauth: virt-manager's local console. The client's channels each come
  through a socketpair whose other end goes to QEMU over QMP (getfd + add_client, the fd
  passed with SCM_RIGHTS). With a password set: skipauth=true connects without it and
  shows the guest's screen; skipauth=false is refused without it and accepted with it.
- test_unix_socket: `-spice unix=on,addr=<path>` (no TCP port): spice-gtk connects through
  the UNIX socket ("unix-path") and shows the guest's screen.
- test_abstract_unix_socket: `addr=@name` is a Linux abstract socket: no file appears and
  a link request through it gets a SPICE link reply.
- test_set_password_while_connected: QMP set_password with connected=fail fails while a
  client is connected (and the client stays), connected=keep keeps it, connected=disconnect
  drops it; the new password then connects.
- test_expire_password: expire_password "+N" lets clients in until then and refuses them
  after; an absolute time in the past refuses at once.
- test_wrong_password_closes_only_that_link: a client with a wrong password is refused
  while a connected client keeps its display updating and its channels.

Every case passes the same way against Debian's C server (SPICE_RS_E2E_LIB=c)."""
import socket
import struct
import time

from client import ClientError, SpiceClient
from test_session import HOST, expect_auth_refused, settled_compare

PASSWORD = "s3cret"


def fd_monitor(tmp_path):
    """A second QMP monitor for the client worker's add_client calls (the test keeps the
    first); returns (its socket path, QEMU arguments)."""
    path = tmp_path / "qmp-fd.sock"
    return path, ["-chardev", f"socket,id=qmpfd,path={path},server=on,wait=off",
                  "-mon", "chardev=qmpfd,mode=control"]


def connect_fd(qmp_path, skipauth, password, log, wait_primary=True):
    c = SpiceClient(log)
    c.connect(HOST, 0, password=password, fd_qmp=qmp_path, skipauth=skipauth,
              wait_primary=wait_primary)
    return c


def test_add_client_skipauth(make_rig, tmp_path):
    qmp_fd, args = fd_monitor(tmp_path)
    rig = make_rig(display="std", workload="desktop", password=PASSWORD, extra_args=args)
    rig.wait_serial(r"workload desktop running", timeout=60)

    with connect_fd(qmp_fd, True, None, tmp_path / "c-skip.log") as c:
        n, w, h = settled_compare(rig, c, tmp_path, "skip")
        st = c.state()
        print(f"skipauth=true, no password: {w}x{h}, {n} px differ from screendump; "
              f"channels through add_client {st['fd_clients']}")
        assert not st["fd_errors"], st["fd_errors"]
        assert {"main:0", "display:0", "inputs:0"} <= set(st["fd_clients"]), st["fd_clients"]
        assert n == 0
        assert not [e for e in c.events() if "ERROR" in e[1]], c.events()
        c.disconnect()

    with connect_fd(qmp_fd, False, None, tmp_path / "c-noskip.log", wait_primary=False) as c:
        ev = c.wait_event("SPICE_CHANNEL_ERROR_AUTH", timeout=15)
        st = c.state()
        print(f"skipauth=false, no password: events {ev}; primary {st['primary']}")
        assert ("main:0", "SPICE_CHANNEL_ERROR_AUTH") in ev
        assert st["primary"] is None
        assert st["fd_clients"] == ["main:0"], st["fd_clients"]

    with connect_fd(qmp_fd, False, PASSWORD, tmp_path / "c-pw.log") as c:
        n, w, h = settled_compare(rig, c, tmp_path, "pw")
        print(f"skipauth=false, right password: {w}x{h}, {n} px differ; "
              f"channels {c.state()['fd_clients']}")
        assert n == 0
    assert rig.alive()


def test_unix_socket(make_rig, tmp_path):
    path = tmp_path / "spice.sock"
    rig = make_rig(display="std", workload="desktop",
                   spice_opts={"unix": "on", "addr": str(path), "port": None})
    rig.wait_serial(r"workload desktop running", timeout=60)
    assert path.is_socket(), f"no socket at {path}"
    assert "port=" not in (rig.dir / "cmdline.txt").read_text().split("-spice", 1)[1].split()[0]
    with SpiceClient(tmp_path / "c-unix.log") as c:
        t = time.monotonic()
        c.connect(HOST, 0, unix_path=path, timeout=30)
        n, w, h = settled_compare(rig, c, tmp_path, "unix")
        print(f"unix socket {path}: {w}x{h} after {time.monotonic() - t:.1f}s, "
              f"{n} px differ from screendump; events {c.events()[:4]}")
        assert n == 0
    assert rig.alive()


def link_reply(sock):
    """Sends a main channel link request; returns (magic, link error) of the reply."""
    caps = (1 << 0) | (1 << 1) | (1 << 3)  # AUTH_SELECTION, AUTH_SPICE, MINI_HEADER
    body = struct.pack("<IBBIII", 0, 1, 0, 1, 0, 18) + struct.pack("<I", caps)
    sock.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body)
    head = b""
    while len(head) < 20:
        chunk = sock.recv(20 - len(head))
        if not chunk:
            break
        head += chunk
    assert len(head) == 20, f"short reply {head!r}"
    return head[:4], struct.unpack("<I", head[16:20])[0]


def test_abstract_unix_socket(make_rig, tmp_path):
    name = f"spice-rs-e2e-{tmp_path.name}-{time.monotonic_ns()}"
    rig = make_rig(display="std", workload="console",
                   spice_opts={"unix": "on", "addr": "@" + name, "port": None})
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect("\0" + name)
        magic, err = link_reply(s)
    print(f"abstract socket @{name}: reply magic {magic!r}, link error {err}; "
          f"files named like it: {list(tmp_path.glob('@*'))}")
    assert (magic, err) == (b"REDQ", 0)
    assert not list(tmp_path.glob("@*")) and not list(rig.dir.glob("@*"))
    assert rig.alive()


def chans_of(rig, cid):
    return sorted(ch["channel-type"] for ch in rig.qmp.execute("query-spice")["channels"]
                  if ch["connection-id"] & 0xFFFFFFFF == cid)


def session_id(rig):
    chans = rig.qmp.execute("query-spice")["channels"]
    return next(ch["connection-id"] & 0xFFFFFFFF for ch in chans if ch["channel-type"] == 1)


def still_updating(c, within=5):
    """The client's display took an update within `within` s (the guest clock ticks 1/s),
    and none of its channels ended; returns the updates seen."""
    u0 = c.state()["updates"]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        st = c.state()
        bad = [e for e in st["events"] if "ERROR" in e[1] or "CLOSED" in e[1]]
        assert not bad, bad
        if st["updates"] > u0:
            return st["updates"] - u0
        time.sleep(0.1)
    raise AssertionError(f"no display update within {within}s")


def test_set_password_while_connected(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop", password=PASSWORD)
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "c-a.log") as a:
        a.connect(HOST, rig.port, password=PASSWORD, timeout=30)
        a.wait_inputs()
        cid = session_id(rig)
        try:
            rig.qmp.execute("set_password", protocol="spice", password="n3w", connected="fail")
            failed = None
        except Exception as e:  # noqa: BLE001
            failed = str(e)
        print(f"set_password connected=fail with a client: {failed}")
        assert failed is not None, "set_password connected=fail succeeded with a client"
        n = still_updating(a)
        assert chans_of(rig, cid) == [1, 2, 3, 4]
        print(f"  the client stays: {n} updates, channels {chans_of(rig, cid)}")

        rig.qmp.execute("set_password", protocol="spice", password="k33p", connected="keep")
        n = still_updating(a)
        print(f"set_password connected=keep: the client stays ({n} updates)")

        t = time.monotonic()
        rig.qmp.execute("set_password", protocol="spice", password="n3w", connected="disconnect")
        st = a.wait(lambda s: s["channels"] == 0, 15, "the client to be dropped")
        print(f"set_password connected=disconnect: dropped after {time.monotonic() - t:.2f}s, "
              f"events {[e for e in st['events'] if 'OPENED' not in e[1]]}")
        left = [ch for ch in rig.qmp.execute("query-spice")["channels"]]
        assert left == [], left
    expect_auth_refused(rig.port, "k33p", tmp_path / "c-old.log")
    with SpiceClient(tmp_path / "c-new.log") as c:
        c.connect(HOST, rig.port, password="n3w", timeout=30)
    print("after disconnect: the old password is refused, the new one connects")


def test_expire_password(make_rig, tmp_path):
    rig = make_rig(display="std", workload="console", password=PASSWORD)
    rig.wait_serial(r"workload console running", timeout=60)
    lifetime = 6
    rig.qmp.execute("expire_password", protocol="spice", time=f"+{lifetime}")
    t0 = time.monotonic()
    with SpiceClient(tmp_path / "c-before.log") as c:
        c.connect(HOST, rig.port, password=PASSWORD, timeout=30)
        took = time.monotonic() - t0
        c.disconnect()
    print(f"expire_password +{lifetime}: connected {took:.1f}s after it")
    assert took < lifetime
    time.sleep(max(0.0, t0 + lifetime + 2 - time.monotonic()))
    ev = expect_auth_refused(rig.port, PASSWORD, tmp_path / "c-after.log")
    print(f"  {time.monotonic() - t0:.1f}s after it: refused, events {ev}")

    # QEMU keeps the expiry across set_password: lift it first.
    rig.qmp.execute("expire_password", protocol="spice", time="never")
    rig.qmp.execute("set_password", protocol="spice", password="n3w")
    with SpiceClient(tmp_path / "c-new.log") as c:
        c.connect(HOST, rig.port, password="n3w", timeout=30)
    past = int(time.time()) - 3600
    rig.qmp.execute("expire_password", protocol="spice", time=str(past))
    ev = expect_auth_refused(rig.port, "n3w", tmp_path / "c-past.log")
    print(f"set_password n3w connects; expire_password at {past} (an hour ago): refused, {ev}")


def test_wrong_password_closes_only_that_link(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop", password=PASSWORD)
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "c-good.log") as good:
        good.connect(HOST, rig.port, password=PASSWORD, timeout=30)
        good.wait_inputs()
        cid = session_id(rig)
        before = still_updating(good)
        for i, pw in enumerate(("wrong", None, PASSWORD + "x")):
            ev = expect_auth_refused(rig.port, pw, tmp_path / f"c-bad{i}.log")
            n = still_updating(good)
            print(f"password {pw!r} refused ({ev}); the connected client took {n} updates "
                  f"since, channels {chans_of(rig, cid)}")
            assert chans_of(rig, cid) == [1, 2, 3, 4]
        n, w, h = settled_compare(rig, good, tmp_path, "good")
        print(f"connected client before: {before} update(s); after: {w}x{h}, "
              f"{n} px differ from screendump")
        assert n == 0
    try:
        good.state()
    except ClientError:
        pass
    assert rig.alive()
