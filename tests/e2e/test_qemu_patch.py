"""The patched QEMU (make qemu, qemu-patches/): `-spice video-codec=<list>` is accepted, is
handed to spice_server_set_video_codecs unchanged, and a list with nothing usable stops
QEMU with an error naming the option. The guest boots on the patched binary with this
library and query-spice answers.

Skipped when build/qemu/bin/qemu-system-x86_64 is missing (run `make qemu`)."""
import os
import re
import subprocess
import time

import pytest

import rig as rig_module
from rig import PATCHED_QEMU


pytestmark = pytest.mark.skipif(
    not PATCHED_QEMU.exists(), reason=f"no patched QEMU at {PATCHED_QEMU}: run `make qemu`")


def stderr_of(rig):
    return rig.stderr_path.read_text(errors="replace")


def test_help_documents_video_codec(patched):
    out = subprocess.run([str(patched), "-help"], capture_output=True, text=True, timeout=30)
    line = next((ln for ln in out.stdout.splitlines() if "video-codec=" in ln), None)
    print(f"-help: {line!r}")
    assert line is not None and "<encoder>:<codec>" in line, out.stdout[-2000:]


def test_video_codec_accepted_and_guest_boots(patched, make_rig):
    rig = make_rig(display="std", workload="console", poweroff_after=2,
                   spice_opts={"video-codec": "spice:mjpeg"})
    if rig.lib == "ours":
        ours = str(rig_module.lib_dir()) + os.sep
        assert rig.mapped_lib and rig.mapped_lib.startswith(ours), rig.mapped_lib
    info = rig.qmp.execute("query-spice")
    print(f"query-spice: enabled={info['enabled']} port={info['port']} "
          f"compiled-version={info.get('compiled-version')} mapped {rig.mapped_lib}")
    assert info["enabled"] is True and info["port"] == rig.port, info
    rig.wait_serial(r"SPICE-RS-GUEST: booted", timeout=90)
    booted = time.monotonic() - rig.started_at
    rig.wait_serial(r"SPICE-RS-GUEST: poweroff", timeout=60)
    rc = rig.wait_exit(timeout=30)
    print(f"patched QEMU, accel={rig.accel}: booted in {booted:.1f}s, exit {rc}")
    assert rc == 0, f"QEMU exit status {rc}\n{rig.tail()}"
    assert "video-codec" not in stderr_of(rig), stderr_of(rig)


def test_video_codec_reaches_the_server(patched, make_rig):
    """One unknown entry next to a good one: QEMU runs, and the library's warning about
    the unknown encoder proves the list got to spice_server_set_video_codecs."""
    rig = make_rig(display="std", workload="console",
                   spice_opts={"video-codec": "spice:mjpeg;bogus:codec"})
    assert rig.qmp.execute("query-spice")["enabled"] is True
    assert rig.alive()
    err = stderr_of(rig)
    warning = re.search(r".*unknown video encoder '?bogus.*", err)
    print(f"library said: {warning.group(0) if warning else None!r}")
    assert warning, f"no warning about the unknown encoder in QEMU's stderr:\n{err}"


def test_unusable_video_codec_is_a_clear_error(patched, make_rig):
    rig = make_rig(start=False, display="std", workload="console",
                   spice_opts={"video-codec": "bogus:codec"})
    t0 = time.monotonic()
    out = subprocess.run(rig.argv(), env=rig.env(), capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    lines = [ln for ln in out.stderr.splitlines() if "video-codec" in ln]
    print(f"exit {out.returncode} after {took:.1f}s: {lines}")
    assert out.returncode == 1, out.stderr
    assert any(ln.startswith("qemu-system-x86_64: spice: video-codec=bogus:codec:")
               and "accepted none" in ln for ln in lines), out.stderr
