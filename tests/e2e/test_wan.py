"""The WAN image modes as a user meets them: QEMU's defaults (jpeg-wan-compression=auto,
zlib-glz-wan-compression=auto), the guest's image viewer showing photo-like pictures
(tests/guest/workload.c desktop_scene=viewer), spice-gtk connected twice to the same guest:

  LAN  straight to the server: the network test finds a fast link; no JPEG reaches the
       client and its picture equals QEMU's screendump exactly.
  WAN  behind tests/e2e/relay.py at 8 Mbit/s and 20 ms round trip: the server's network
       test finds a slow link, photographs go JPEG (lossy) and GLZ images deflated; the
       bytes per second drop well below the LAN run's for the same scene steps.

What a user expects on the slow link: the photos close to the guest's (PSNR bound over the
whole screen, generous) with nothing else damaged, and once the viewer closes, the desktop
it covered (text, frames) exactly as the guest shows it: lossy pixels must not outlive the
photo they belonged to. The C server leaves JPEG areas lossy until they are drawn again,
as we do, but also sends some text-like areas (title bars) JPEG: the "exact once the viewer
closed" assertion is ours only, C's count is printed.

The image types the server sent are counted by tests/qxl/client_compare.py's Spy, a relay
that reads the display channel's messages (placed in front of the slow link)."""
import sys
import time
from pathlib import Path

import pytest

from client import SpiceClient
from relay import DelayRelay
from rig import compare_images, screendump

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "qxl"))
import measure  # noqa: E402
from client_compare import Spy, psnr  # noqa: E402

KEY_VIEWER, KEY_NONE, KEY_P = 0x05, 0x0b, 0x19  # workload.c: keys 4, 0 and P
WARMUP_S = 2.25  # the measured window starts between two pictures (one every 1.5 s)
MEASURE_S = 9
SLOW_LINK = {"delay": 0.010, "rate": 1_000_000}  # 8 Mbit/s, 20 ms round trip
PSNR_MIN = 30.0  # dB over the whole screen with photos as JPEG (quality 85)
WAN_BYTES_MAX = 0.6  # the slow link's bytes per second against the LAN run's


def key(rig, client, code, answer):
    start = len(rig.serial())
    client.key_press_release(code)
    rig.wait_serial(answer, timeout=20, start=start)


def viewer_run(rig, client, tmp_path, tag):
    """The viewer scene from its first step: (bytes/s to the client, PSNR and differing
    pixels of the client's picture against the screendump with the guest frozen)."""
    key(rig, client, KEY_VIEWER, r"desktop scene viewer\b")
    time.sleep(WARMUP_S)
    w0 = measure.wire_bytes(rig.port)
    time.sleep(MEASURE_S)
    down, _ = measure.wire_delta(w0, measure.wire_bytes(rig.port))
    key(rig, client, KEY_P, r"desktop paused")
    try:
        client.wait_quiet(0.7, timeout=20)
        shot = client.screenshot_image()
        dump = screendump(rig, tmp_path / f"dump-{tag}.png")
        n = compare_images(shot, dump, tmp_path / f"diff-{tag}.png")
        if n:
            shot.save(tmp_path / f"client-{tag}.png")
        quality = psnr(shot, dump) if shot.size == dump.size else 0.0
    finally:
        key(rig, client, KEY_P, r"desktop resumed")
    return down / MEASURE_S, quality, n


def closed_viewer(rig, client, tmp_path, tag, tries=10):
    """Closes the viewer (scene none: what it covered is put back); differing pixels of
    the client's picture against the screendump once both have caught up. Either may
    lag: the client behind the slow link (the uncovered area takes a while; a quiet
    moment is no proof it is complete), QEMU's screendump behind the guest (seen with the
    C server on both displays: the dump still showed the viewer the client no longer
    did; such a dump is taken again)."""
    from PIL import Image
    key(rig, client, KEY_NONE, r"desktop scene none\b")
    viewer_dump = Image.open(tmp_path / f"dump-{tag}.png").convert("RGB")
    n = None
    for i in range(tries):
        client.wait_quiet(0.4, timeout=20)  # the desktop clock ticks each second
        dump = screendump(rig, tmp_path / tag / f"dump{i}.png")
        if compare_images(dump, viewer_dump) == 0:
            time.sleep(1)
            continue
        shot = client.screenshot_image()
        n = compare_images(shot, dump, tmp_path / tag / f"diff{i}.png")
        if n == 0:
            return 0
        shot.save(tmp_path / tag / f"client{i}.png")
        time.sleep(1)
    return n


def client_run(rig, tmp_path, tag):
    """One client, straight to the server ("lan") or behind the slow link ("wan"), through
    the viewer scene and its closing: viewer_run's figures, closed_viewer's count and the
    image types the Spy saw."""
    relay = DelayRelay("127.0.0.1", rig.port, **SLOW_LINK) if tag == "wan" else None
    spy = Spy(relay.port if relay else rig.port)
    try:
        with SpiceClient(tmp_path / f"client-{tag}.log") as c:
            c.connect("127.0.0.1", spy.port, timeout=90 if relay else 60)
            c.wait_inputs()
            rate, quality, n = viewer_run(rig, c, tmp_path, tag)
            closed = closed_viewer(rig, c, tmp_path, tag)
            images = dict(spy.images)
            c.disconnect()
    finally:
        spy.close()
        if relay:
            relay.close()
    return rate, quality, n, closed, images


@pytest.mark.parametrize("display", ["qxl", "std"])
def test_wan_modes_on_a_slow_link_and_not_on_a_fast_one(make_rig, display, tmp_path):
    rig = make_rig(display=display, workload="desktop", mem=512, append="desktop_scene=none")
    rig.wait_serial(r"workload desktop running", timeout=90)
    for tag in ("lan", "wan"):
        (tmp_path / tag).mkdir()

    lan_rate, lan_psnr, lan_n, lan_closed, lan_images = client_run(rig, tmp_path, "lan")
    wan_rate, wan_psnr, wan_n, wan_closed, wan_images = client_run(rig, tmp_path, "wan")

    print(f"{display} lib={rig.lib}\n"
          f"  LAN: {lan_rate / 1e3:.1f} kB/s, viewer picture {lan_n} px differ "
          f"(PSNR {lan_psnr:.1f} dB), closed {lan_closed} px differ, images {lan_images}\n"
          f"  WAN: {wan_rate / 1e3:.1f} kB/s ({wan_rate / lan_rate:.2f}x LAN), viewer picture "
          f"{wan_n} px differ (PSNR {wan_psnr:.1f} dB), closed {wan_closed} px differ, "
          f"images {wan_images}")
    lossy = ("jpeg", "jpeg-alpha")
    assert not any(lan_images.get(k) for k in lossy), "JPEG on a fast link"
    assert lan_n == 0 and lan_closed == 0, f"LAN picture differs, see {tmp_path}"
    assert wan_psnr >= PSNR_MIN, f"WAN picture far from the guest's, see {tmp_path}"
    if rig.lib == "ours":
        # Ours only: the C server sends some text-like areas JPEG too (seen: the title bars
        # and the top bar on qxl, 50582 px; 34 px on std) and leaves them lossy.
        assert wan_closed == 0, f"lossy pixels outlived the viewer, see {tmp_path}"
    assert wan_rate < WAN_BYTES_MAX * lan_rate, "the slow link got LAN-sized images"
    if display == "qxl":
        # qxl's photos travel as drawings' images the Spy sees (std's too, as our own
        # images; C's std path as well): JPEG must be among them.
        assert any(wan_images.get(k) for k in lossy), "no JPEG on the slow link"
