#!/usr/bin/python3
"""The "Desktop in use" rows of `make bench` (issue 14), for spice-rs and for Debian's C
server in the same conditions: the test guest's desktop being used (tests/guest/workload.c
`desktop_scene=`: windows opening and closing, menus dropping down with their items
highlighted in turn, a document scrolling, an image viewer showing photo-like pictures, and
"mixed", each of them 5 s in turn), 1280x720, spice-gtk connected, QEMU's defaults otherwise
(streaming-video off). Per display (qxl, std) and image settings:

  LAN       image-compression=auto_glz (QEMU's default)
  WAN       the same with jpeg-wan-compression=always and zlib-glz-wan-compression=always
  WAN link  QEMU's defaults (JPEG and zlib-glz "auto"), the client behind tests/e2e/relay.py
            at 8 Mbit/s and 20 ms round trip, so that the server's network test finds a
            slow link ("mixed" only)

one boot per server; the scenes are measured one after the other in it (keys 1..5 switch the
guest's scene; each one warms up first). Per row: bytes per second server -> client (kernel
tcp_info), the client's display updates per second (spice-gtk's invalidate signals: about
one per drawing message), the server side's CPU (QEMU minus its vCPU threads), and whether
the client's picture then equals QEMU's screendump (the guest frozen by key P).

bench/run.py runs these rows (BENCH_ONLY=desktop, or a regex on the row names);
`bench/desktop.py [--lib ours|c] [--only REGEX]` runs them alone and prints the results.
Knobs: BENCH_DESKTOP_SCENES (mixed,windows,menus,scroll,viewer), BENCH_DESKTOP_DISPLAYS
(qxl,std), BENCH_DESKTOP_SETTINGS (LAN,WAN,WAN link), BENCH_DESKTOP_LINK_SCENES (mixed),
BENCH_DESKTOP_SECONDS (20: the "mixed" row, one
whole cycle), BENCH_DESKTOP_SCENE_SECONDS (10: each single scene), BENCH_DESKTOP_WARMUP (7.25: the
measured window then starts between two of the viewer's pictures, not on one).
"""
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import measure  # noqa: E402
import sections  # noqa: E402
from client import SpiceClient  # noqa: E402
from devices import expect_lib  # noqa: E402
from relay import DelayRelay  # noqa: E402
from rig import compare_images, screendump  # noqa: E402

SECTION = "desktop"
MODE = "1280x720"
# the guest's scenes and the set-1 scancodes of the keys that pick them (workload.c)
SCENE_KEYS = {"windows": 0x02, "menus": 0x03, "scroll": 0x04, "viewer": 0x05, "mixed": 0x06}
KEY_P = 0x19  # freezes the guest's screen (and unfreezes it)
SETTINGS = {
    "LAN": ("auto_glz", {"image-compression": "auto_glz"}),
    "WAN": ("auto_glz, JPEG and zlib-glz always",
            {"image-compression": "auto_glz", "jpeg-wan-compression": "always",
             "zlib-glz-wan-compression": "always"}),
    # QEMU's defaults (JPEG and zlib-glz "auto": when the main channel's network test
    # finds less than 10 Mbit/s) behind tests/e2e/relay.py's slow link
    "WAN link": ("auto_glz, JPEG and zlib-glz auto, the client behind an 8 Mbit/s link "
                 "with 20 ms round trip (tests/e2e/relay.py)",
                 {"image-compression": "auto_glz"}),
}
LINK = {"WAN link": {"delay": 0.010, "rate": 1_000_000}}  # relay.DelayRelay arguments
FRAMEBUFFER_DISPLAYS = ("std",)  # QEMU hands over changed areas, no drawing commands


@dataclass
class DesktopRow:
    display: str
    scene: str
    setting: str  # a SETTINGS key

    @property
    def name(self):
        return f"desktop in use {self.display} {self.scene}, {self.setting}"


def _list(env, default):
    return [v for v in os.environ.get(env, default).split(",") if v]


def rows():
    """Every scene with the LAN and WAN settings; behind the slow link, "mixed" only."""
    scenes = _list("BENCH_DESKTOP_SCENES", "mixed,windows,menus,scroll,viewer")
    link_scenes = _list("BENCH_DESKTOP_LINK_SCENES", "mixed")
    return [DesktopRow(d, s, w) for d in _list("BENCH_DESKTOP_DISPLAYS", "qxl,std")
            for w in _list("BENCH_DESKTOP_SETTINGS", "LAN,WAN,WAN link")
            for s in (link_scenes if w in LINK else scenes)]


def selected(row, only):
    return not only or only == SECTION or re.search(only, row.name) is not None


def envf(name, default):
    return float(os.environ.get(name, default))


def seconds_of(scene):
    return envf("BENCH_DESKTOP_SECONDS", 20) if scene == "mixed" else \
        envf("BENCH_DESKTOP_SCENE_SECONDS", 10)


class DesktopVM:
    """The test guest's desktop in use on one display with one server, spice-gtk connected."""

    def __init__(self, lib, display, setting, first_scene, workdir):
        self.workdir = Path(workdir)
        self.rig = measure.BenchRig(
            display=display, workload="desktop", lib=lib, workdir=self.workdir, mem=512,
            video=MODE, append=f"desktop_scene={first_scene}", spice_opts=SETTINGS[setting][1],
            extra_args=["-name", "bench,debug-threads=on"])  # vCPU threads named
        self.client = self.relay = None
        self.rig.start()
        try:
            expect_lib(self.rig, lib)
            self.rig.wait_serial(r"workload desktop running", timeout=180)
            port = self.rig.port
            if setting in LINK:
                self.relay = DelayRelay("127.0.0.1", port, **LINK[setting])
                port = self.relay.port
            self.client = SpiceClient(log_path=self.workdir / "client.log")
            self.client.connect("127.0.0.1", port, timeout=90)
            self.client.wait(lambda s: s["first_frame_s"] is not None, 30, "first drawing")
            self.client.wait_inputs()
        except BaseException:  # an interrupted run leaves no QEMU behind either
            self.close()
            raise

    def key(self, code, answer):
        """Presses a key the guest answers on its serial line; waits for the answer."""
        start = len(self.rig.serial())
        self.client.key_press_release(code)
        self.rig.wait_serial(answer, timeout=20, start=start)

    def start_scene(self, scene):
        """(Re)starts the scene at its step 0: every row, and both servers, measure the
        same steps."""
        self.key(SCENE_KEYS[scene], rf"desktop scene {scene}\b")

    def measure(self, scene, seconds, warmup):
        self.start_scene(scene)
        time.sleep(warmup)
        pid = self.rig.proc.pid
        w0, c0, k0 = measure.wire_bytes(self.rig.port), measure.cpu_ticks(pid), \
            measure.cpu_ticks(self.client.proc.pid)
        u0, h0, t0 = self.client.state()["updates"], measure.host_busy(), time.monotonic()
        time.sleep(seconds)
        t1, h1, u1 = time.monotonic(), measure.host_busy(), self.client.state()["updates"]
        w1, c1, k1 = measure.wire_bytes(self.rig.port), measure.cpu_ticks(pid), \
            measure.cpu_ticks(self.client.proc.pid)
        cpu = measure.cpu_delta(c0, c1, pid)
        down, up = measure.wire_delta(w0, w1)
        client_cpu = (k1["total"] - k0["total"]) / measure.CLK_TCK
        res = {"seconds": round(t1 - t0, 3), "wire_down": down, "wire_up": up,
               "updates": u1 - u0, "cpu_qemu": cpu["total"], "cpu_server": cpu["server"],
               "cpu_server_side": round(cpu["server_side"], 3), "cpu_client": client_cpu,
               "cpu_others": round(max(0.0, h1 - h0 - cpu["total"] - client_cpu), 2),
               "busiest_threads": dict(sorted(cpu["threads"].items(),
                                              key=lambda kv: -kv[1])[:6])}
        res["warmup"] = warmup
        res.update(self.same_picture(scene))
        if not self.rig.alive():
            raise RuntimeError(f"QEMU exited ({self.rig.proc.returncode})")
        return res

    def same_picture(self, tag):
        """The guest frozen (key P): the client's picture against QEMU's screendump."""
        self.key(KEY_P, r"desktop paused")
        try:
            self.client.wait_quiet(0.7, timeout=20)
            shot = self.client.screenshot()
            dump = screendump(self.rig, self.workdir / f"dump-{tag}.png")
            diff = compare_images(shot, dump, self.workdir / f"diff-{tag}.png")
            return {"picture_size": [shot[0], shot[1]], "picture_diff_pixels": diff}
        finally:
            self.key(KEY_P, r"desktop resumed")

    def logs(self):
        return self.rig.tail(15)

    def close(self):
        if self.client:
            self.client.close()
            self.client = None
        if self.relay:
            self.relay.close()
            self.relay = None
        self.rig.stop()


def run(only=None, libs=("ours", "c"), work=None):
    """Runs the selected rows for each server; results.json rows
    ({"row", "section": "desktop", "display", "scene", "setting", "ours": {...}, "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / "desktop")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n== Desktop in use: {len(todo)} rows", flush=True)
    boots = {}
    for r in todo:
        boots.setdefault((r.display, r.setting), []).append(r)

    def boot(lib, key):
        display, setting = key
        tag = f"{display}-{setting}-{lib}".replace(" ", "-")
        return DesktopVM(lib, display, setting, boots[key][0].scene, work / tag)

    def measure_row(vm, row):
        res = vm.measure(row.scene, seconds_of(row.scene), envf("BENCH_DESKTOP_WARMUP", 7.25))
        res["mapped_lib"] = vm.rig.mapped_lib
        return res
    got = sections.run_boots(boots, libs, boot, measure_row, summary,
                             label=lambda key: " ".join(key))
    return [{"row": r.name, "section": SECTION, "display": r.display, "scene": r.scene,
             "setting": r.setting, "setting_text": SETTINGS[r.setting][0],
             "framebuffer": r.display in FRAMEBUFFER_DISPLAYS, "run": 0,
             **{lib: got[(lib, r.name)] for lib in libs}} for r in todo]


def summary(r):
    if "error" in r:
        return f"FAILED {r['error']}"
    d = r["seconds"]
    pic = "same as QEMU's" if r["picture_diff_pixels"] == 0 else \
        f"{r['picture_diff_pixels']} pixels differ from QEMU's"
    return (f"{r['wire_down'] / d / 1e6:.3f} MB/s, {r['updates'] / d:.0f} updates/s, "
            f"server side CPU {100 * r['cpu_server_side'] / d:.1f}% (others "
            f"{100 * r['cpu_others'] / d:.0f}%), picture {pic}")


def main():
    return sections.script_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
