"""Display and input through a real client (spice-gtk): what the client shows equals
QEMU's own screendump pixel for pixel, and keys/mouse reach the guest.

Validated against Debian's C server (SPICE_RS_E2E_LIB=c); the target for our library."""
import re
import time

import pytest

from client import SpiceClient
from rig import compare_images, screendump


def settled_compare(rig, client, tmp_path, tries=5):
    """Client screenshot vs QMP screendump. The desktop clock changes once a second, so
    take shot, dump, shot and only judge a round where both client shots agree."""
    n = None
    for i in range(tries):
        client.wait_quiet(0.3)
        a = client.screenshot()
        d = screendump(rig, tmp_path / f"dump{i}.png")
        b = client.screenshot()
        n = compare_images(a, d, tmp_path / f"diff{i}.png")
        if a == b:
            if n:
                client.screenshot_image().save(tmp_path / f"client{i}.png")
            return n, a[0], a[1]
    return n, a[0], a[1]


@pytest.mark.parametrize("display", ["std", "qxl", "virtio", "bochs"])
def test_screenshot_matches_screendump(make_rig, display, tmp_path):
    rig = make_rig(display=display, workload="desktop")
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        t = time.monotonic()
        c.connect("127.0.0.1", rig.port, timeout=30)
        n, w, h = settled_compare(rig, c, tmp_path)
        print(f"{display}: lib={rig.lib} primary {w}x{h} after {time.monotonic() - t:.1f}s, "
              f"{n} differing pixels")
        assert (w, h) == (1024, 768)
        assert n == 0, f"{n} pixels differ, see {tmp_path}"


@pytest.mark.parametrize("display", ["qxl", "std"])
def test_console_matches_screendump(make_rig, display, tmp_path):
    """The text console (fbcon through the guest's qxl or bochs DRM driver): on qxl this is
    the guest-driver path, where fbcon's drawing arrives as QXL commands."""
    rig = make_rig(display=display, workload="console")
    rig.wait_serial(r"workload console running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        n, w, h = settled_compare(rig, c, tmp_path)
        print(f"{display} console: lib={rig.lib} primary {w}x{h}, {n} differing pixels")
        assert (w, h) == (1024, 768)
        assert n == 0, f"{n} pixels differ, see {tmp_path}"


def test_two_qxl_devices_are_two_display_channels(make_rig, tmp_path):
    """Multi-head: each QXL device gets its own worker and its own display and cursor
    channel; the client links both and head 0 still equals the screendump."""
    rig = make_rig(display="qxl2", workload="desktop")
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        n, w, h = settled_compare(rig, c, tmp_path)
        chans = rig.qmp.execute("query-spice")["channels"]
        kinds = sorted((ch["channel-type"], ch["channel-id"]) for ch in chans)
        print(f"two heads: lib={rig.lib} channels {kinds}, head 0 {w}x{h}, {n} differing pixels")
        assert (2, 0) in kinds and (2, 1) in kinds, kinds
        assert (4, 0) in kinds and (4, 1) in kinds, kinds
        assert n == 0, f"{n} pixels differ, see {tmp_path}"


@pytest.mark.parametrize("display", ["qxl", "virtio"])
def test_client_resize_reaches_the_guest_driver(make_rig, display, tmp_path):
    """A client asking for 800x600 (what remote-viewer does when its window changes size)
    reaches the guest's display driver: the connector's preferred mode becomes 800x600.
    (Switching to it is the job of the guest's display server; this guest has only fbcon.)"""
    rig = make_rig(display=display, workload="desktop")
    rig.wait_serial(r"workload desktop running", timeout=60)
    rig.wait_serial(r"preferred mode \d+x\d+", timeout=15)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        c.wait(lambda s: s["primary"] is not None, 15, "a primary surface")
        deadline = time.monotonic() + 5
        while True:
            try:
                c.resize(800, 600)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        t = time.monotonic()
        rig.wait_serial(r"preferred mode 800x600", timeout=20)
        print(f"{display}: lib={rig.lib} guest preferred mode 800x600 "
              f"{time.monotonic() - t:.1f}s after the client's request")


def input_lines(rig, start):
    return rig.input_lines(start)


def wait_input(rig, start, want, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = input_lines(rig, start)
        if all(w in got for w in want):
            return got
        time.sleep(0.1)
    raise AssertionError(f"wanted {want}, guest saw {input_lines(rig, start)}")


def test_keys_reach_guest(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop")
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port)
        c.wait_inputs()
        start = len(rig.serial())
        t = time.monotonic()
        # 'a' (0x1e -> KEY_A 30), up arrow (E0 48 -> KEY_UP 103), right ctrl (E0 1D -> 97)
        for code in (0x1E, 0xE048, 0x11D):
            c.key_press_release(code)
        got = wait_input(rig, start, [f"key code={k} value={v}" for k in (30, 103, 97) for v in (1, 0)])
        print(f"keys seen in {time.monotonic() - t:.2f}s: {got}")


def test_mouse_reaches_guest(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop", usb_tablet=True)
    rig.wait_serial(r"input event\d+ name=QEMU QEMU USB Tablet", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port)
        c.wait_inputs()
        # With a tablet QEMU offers client mouse mode (absolute positions); spice-gtk asks for it.
        c.wait(lambda s: s["mouse_mode"] == 2, 10, "client mouse mode")
        start = len(rig.serial())
        c.mouse_position(512, 384)
        c.mouse_button(1, True)
        c.mouse_button(1, False)
        got = wait_input(rig, start, ["btn code=272 value=1", "btn code=272 value=0"])
        absl = [g for g in got if g.startswith("abs ")]
        print(f"mouse: {got}")
        assert absl, "no absolute position reached the guest"
        x, y = map(int, re.findall(r"-?\d+", absl[-1]))
        # usb-tablet scales to 0..32767
        assert abs(x - 16384) < 400 and abs(y - 16384) < 400, (x, y)


def test_password(make_rig, tmp_path):
    rig = make_rig(display="std", workload="console", password="s3cret")
    with SpiceClient(tmp_path / "bad.log") as c:
        c.connect("127.0.0.1", rig.port, password="wrong", wait_primary=False)
        ev = c.wait_event("SPICE_CHANNEL_ERROR_AUTH")
        print(f"wrong password: {ev}")
    with SpiceClient(tmp_path / "good.log") as c:
        c.connect("127.0.0.1", rig.port, password="s3cret", timeout=60)
    assert rig.alive()


@pytest.mark.parametrize("compression", ["auto_glz", "glz", "lz", "quic", "off"])  # QEMU 10 takes no lz4
def test_scrolled_document_matches_screendump(make_rig, compression, tmp_path):
    """A document scrolling in a window (each step an image much like the one before: GLZ
    copies most of it from earlier images in the client's window) with each
    image-compression QEMU may pass: after 60 lines the client shows what the guest does."""
    rig = make_rig(display="qxl", workload="desktop", append="scroll_fps=5 scroll_lines=60",
                   spice_opts={"image-compression": compression})
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        rig.wait_serial(r"scrolled 60 lines", timeout=60)
        n, w, h = settled_compare(rig, c, tmp_path)
        print(f"{compression}: lib={rig.lib} primary {w}x{h}, {n} differing pixels")
        assert n == 0, f"{n} pixels differ, see {tmp_path}"
