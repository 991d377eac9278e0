"""Issue 2 acceptance: QEMU runs with our libspice-server.so.1 for std, qxl and virtio
displays: the library is the one loaded, SPICE listens, QMP sees it, the guest boots
and powers off, QEMU exits 0. Plus a raw link message does not hurt QEMU.

Run against Debian's C server to check the harness: SPICE_RS_E2E_LIB=c."""
import os
import socket
import struct
import time

import pytest

from rig import lib_dir
from spice_raw import link_message


def assert_right_lib(rig):
    assert rig.mapped_lib, "QEMU has no libspice-server mapped"
    ours = str(lib_dir()) + os.sep
    if rig.lib == "ours":
        assert rig.mapped_lib.startswith(ours), f"mapped {rig.mapped_lib}, expected one in {ours}"
    else:
        assert not rig.mapped_lib.startswith(ours), f"mapped {rig.mapped_lib}"
    print(f"mapped {rig.mapped_lib}")


def assert_listens(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


@pytest.mark.parametrize("display", ["std", "qxl", "virtio"])
def test_boot_and_poweroff(make_rig, display):
    rig = make_rig(display=display, workload="desktop", poweroff_after=3)
    assert_right_lib(rig)
    assert_listens(rig.port)
    info = rig.qmp.execute("query-spice")
    assert info["enabled"] is True and info["port"] == rig.port, info

    rig.wait_serial(r"SPICE-RS-GUEST: booted", timeout=60)
    booted = time.monotonic() - rig.started_at
    m = rig.wait_serial(r"SPICE-RS-GUEST: fb0 (\d+)x(\d+) bpp=(\d+) stride", timeout=30)
    rig.wait_serial(r"SPICE-RS-GUEST: workload desktop running", timeout=30)
    running = time.monotonic() - rig.started_at
    rig.wait_serial(r"SPICE-RS-GUEST: poweroff", timeout=30)
    rc = rig.wait_exit(timeout=30)
    total = time.monotonic() - rig.started_at
    print(f"{display}: lib={rig.lib} accel={rig.accel} fb={m.group(1)}x{m.group(2)}x{m.group(3)} "
          f"booted {booted:.1f}s, workload {running:.1f}s, exit {rc} after {total:.1f}s")
    assert rc is not None, "QEMU did not exit after the guest powered off"
    assert not rig.guest_panicked()
    assert rc == 0, f"QEMU exit status {rc}"
    assert (m.group(1), m.group(2)) == ("1024", "768")


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def link_once(port, payload):
    """Sends payload, returns ('reply', error, size) or ('closed', nbytes) ."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        hdr = read_exact(s, 16)
        if len(hdr) < 16:
            return ("closed", len(hdr))
        magic, major, minor, size = struct.unpack("<4sIII", hdr)
        assert magic == b"REDQ" and major == 2, f"bad link reply header {hdr!r}"
        assert 4 <= size <= 4096, size
        body = read_exact(s, size)
        assert len(body) == size, f"short link reply {len(body)}/{size}"
        (error,) = struct.unpack_from("<I", body)
        return ("reply", error, size)


def test_raw_link(make_rig):
    rig = make_rig(display="std", workload="console")
    assert_right_lib(rig)
    good = link_once(rig.port, link_message())
    print(f"main-channel link: {good}")
    if good[0] == "reply":
        assert good[1] == 0, f"link error {good[1]}"
        assert good[2] >= 178, "SpiceLinkReply is 178 bytes plus caps"
    bad = link_once(rig.port, link_message(magic=b"XXXX"))
    print(f"bad magic: {bad}")
    if bad[0] == "reply":
        assert bad[1] != 0, "bad magic accepted"
    time.sleep(0.5)
    assert rig.alive(), f"QEMU died: exit {rig.proc.returncode}"
    assert rig.qmp.execute("query-status")["status"] == "running"
    rig.wait_serial(r"SPICE-RS-GUEST: workload console running", timeout=60)
    assert rig.stop() == 0
