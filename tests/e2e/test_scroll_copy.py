"""A document scrolling on the framebuffer path (-vga std: QEMU sends changed rectangles,
no drawing commands). Our server recognises the scroll and sends one COPY_BITS plus the
new rows (src/display/scroll.rs); the C server resends the scrolled area.

What a user sees: after the scrolling the client shows exactly what the guest does (QMP
screendump). What it costs: the bytes sent per scrolled line, measured on the wire while
the document scrolls; ours must stay far below the scrolled area's size (spice-gtk logs
no message types, so the bytes are the evidence that copies went out).

Validated against Debian's C server (SPICE_RS_E2E_LIB=c): the picture must match there
too; its bytes are printed, not judged."""
import re
import sys
import time
from pathlib import Path

from client import SpiceClient
from test_display import settled_compare

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import measure  # noqa: E402

FPS = 10
LINES = 400  # 40 s of scrolling: long enough to connect, then measure while it goes on
MEASURE_S = 8
# The guest's window body at 1024x768: 508 pixels wide, 356 rows (workload.c). Resent
# whole, a step is that area (GLZ makes it a few tens of KB); as a copy plus the new
# 14-pixel line, a few KB at most.
MAX_BYTES_PER_LINE = 6000


def test_scrolled_document_on_std_is_copied_and_matches_screendump(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop",
                   append=f"scroll_fps={FPS} scroll_lines={LINES}")
    rig.wait_serial(r"workload desktop running", timeout=60)
    done = rf"scrolled {LINES} lines"
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        time.sleep(1)
        w0 = measure.wire_bytes(rig.port)
        time.sleep(MEASURE_S)
        w1 = measure.wire_bytes(rig.port)
        assert not re.search(done, rig.serial()), "the scrolling ended while measured"
        down, _ = measure.wire_delta(w0, w1)
        per_line = down / (MEASURE_S * FPS)
        rig.wait_serial(done, timeout=90)
        n, w, h = settled_compare(rig, c, tmp_path)
        print(f"std: lib={rig.lib} {down} bytes in {MEASURE_S} s of scrolling {FPS} lines/s: "
              f"{per_line:.0f} bytes per line; then primary {w}x{h}, {n} differing pixels")
        assert n == 0, f"{n} pixels differ, see {tmp_path}"
        if rig.lib == "ours":
            assert per_line < MAX_BYTES_PER_LINE, "the scroll was resent, not copied"
