"""A document scrolling on the framebuffer path (-vga std: QEMU sends changed rectangles,
no drawing commands). Our server recognises the scroll and sends one COPY_BITS plus the
new rows (src/display/scroll.rs); the C server resends the scrolled area.

What a user sees: after the scrolling the client shows exactly what the guest does (QMP
screendump). What it costs: the bytes sent per scrolled line, measured on the wire while
the document scrolls; ours must stay far below the scrolled area's size (spice-gtk logs
no message types, so the bytes are the evidence that copies went out).

Validated against Debian's C server (SPICE_RS_E2E_LIB=c): the picture must match there
too; its bytes are printed, not judged."""
import sys
import time
from pathlib import Path

from client import SpiceClient
from test_display import settled_compare

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import measure  # noqa: E402

FPS = 5
LINES = 60
# The guest's window body at 1024x768: 508 pixels wide, 356 rows (workload.c). Resent
# whole, a step is that area (GLZ makes it a few tens of KB); as a copy plus the new
# 14-pixel line, a few KB at most.
MAX_BYTES_PER_LINE = 6000


def test_scrolled_document_on_std_is_copied_and_matches_screendump(make_rig, tmp_path):
    rig = make_rig(display="std", workload="desktop",
                   append=f"scroll_fps={FPS} scroll_lines={LINES}")
    rig.wait_serial(r"workload desktop running", timeout=60)
    with SpiceClient(tmp_path / "client.log") as c:
        c.connect("127.0.0.1", rig.port, timeout=30)
        c.wait_quiet(0.3)
        w0, t0 = measure.wire_bytes(rig.port), time.monotonic()
        rig.wait_serial(rf"scrolled {LINES} lines", timeout=60)
        w1, t1 = measure.wire_bytes(rig.port), time.monotonic()
        down, _ = measure.wire_delta(w0, w1)
        lines = max(1.0, (t1 - t0) * FPS)
        per_line = down / lines
        n, w, h = settled_compare(rig, c, tmp_path)
        print(f"std: lib={rig.lib} {down} bytes over {lines:.0f} scrolled lines: "
              f"{per_line:.0f} bytes per line; primary {w}x{h}, {n} differing pixels")
        assert n == 0, f"{n} pixels differ, see {tmp_path}"
        assert lines >= 10, "measured too few lines"
        if rig.lib == "ours":
            assert per_line < MAX_BYTES_PER_LINE, "the scroll was resent, not copied"
