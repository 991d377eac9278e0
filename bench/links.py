#!/usr/bin/python3
"""The "Video on real links" rows of `make bench` (issue 15), for spice-rs and for Debian's C
server over the same emulated link: the test guest plays its clip full screen at 1280x720
(tests/guest/workload.c, as the video rows of bench/run.py: `streaming-video=all`), on qxl
and on std (`-vga std`), with MJPEG (both servers' default) and H.264 (the client asks for
it: PREFERRED_VIDEO_CODEC_TYPE, as bench/run.py's codec rows), and spice-gtk reaches the
server through tests/e2e/relay.py: a server -> client link of a rate with real TCP
backpressure, and a one-way delay in each direction. Links:

  unlimited; 20 Mbit/s + 40 ms; 2 Mbit/s + 20 ms; 1 Mbit/s + 40 ms; 0.5 Mbit/s + 80 ms;
  step 4 -> 1 -> 4 Mbit/s + 20 ms (the rate drops a third into the window, returns at two)

One boot per display, codec and server; each link gets a new client through a new relay.
The window starts when the client has its stream (spice-gtk's debug log; at most
BENCH_LINKS_STREAM_WAIT s after connecting) and lasts BENCH_LINKS_SECONDS (25; the step row
3 x BENCH_LINKS_STEP_SECONDS, 10). Per row: frames per second the client shows, latency
p50/p95 glass to glass, PSNR of what it shows, bytes per second over the link, the longest
freeze, and for the step row the seconds to adapt each way (see adapt_seconds()).

bench/run.py runs these rows (BENCH_ONLY=links, or a regex on the row names);
`bench/links.py [--lib ours|c] [--only REGEX]` runs them alone and prints the results.
Knobs: BENCH_LINKS_DISPLAYS (qxl,std), BENCH_LINKS_CODECS (mjpeg,h264), BENCH_LINKS
(link names' regex), BENCH_FPS (30).
"""
import os
import re
import shutil
import subprocess
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
from rig import GUEST_DIR  # noqa: E402

SECTION = "links"
HOST = "127.0.0.1"
MODE = "1280x720"
CODEC_NAMES = {"mjpeg": "MJPEG", "h264": "H.264"}
MBIT = 125_000  # bytes/s
FREEZE_MAX_S = 0.5      # the issue's targets
SLOW_FPS_MIN = 10.0     # at 1 Mbit/s + 40 ms
VPN_P95_MAX_MS = 150.0  # at 20 Mbit/s + 40 ms
RECONNECT_PAUSE_S = 2.0  # between one link's client and the next one's
LET_GO_S = 30.0  # at most this long for the server to close the last client's connections
LAN_SHARE = 0.9         # "the LAN frame rate": at least this share of the unlimited row's


def envf(name, default):
    return float(os.environ.get(name, default))


def step_seconds():
    return envf("BENCH_LINKS_STEP_SECONDS", 10)


@dataclass(frozen=True)
class Link:
    name: str
    rate: int = 0         # bytes/s server -> client; 0: unlimited
    delay: float = 0.0    # one-way seconds, each direction
    step: tuple = ()      # the step row's rates: one per step_seconds() of the window

    def relay(self, port):
        if self.step:
            s = step_seconds()
            return DelayRelay(HOST, port, delay=self.delay,
                              schedule=[(i * s, r) for i, r in enumerate(self.step)])
        return DelayRelay(HOST, port, delay=self.delay, rate=self.rate or None)


LINKS = [
    Link("unlimited"),
    Link("20 Mbit/s + 40 ms", 20 * MBIT, 0.040),
    Link("2 Mbit/s + 20 ms", 2 * MBIT, 0.020),
    Link("1 Mbit/s + 40 ms", MBIT, 0.040),
    Link("0.5 Mbit/s + 80 ms", MBIT // 2, 0.080),
    Link("step 4 -> 1 -> 4 Mbit/s + 20 ms", 4 * MBIT, 0.020, (4 * MBIT, MBIT, 4 * MBIT)),
]


@dataclass
class LinkRow:
    display: str
    codec: str   # a CODEC_NAMES key
    link: Link

    @property
    def name(self):
        return f"video on a link, {self.display} 720p {CODEC_NAMES[self.codec]}, {self.link.name}"


def _list(env, default):
    return [v for v in os.environ.get(env, default).split(",") if v]


def rows():
    only_links = os.environ.get("BENCH_LINKS")
    return [LinkRow(d, c, link) for d in _list("BENCH_LINKS_DISPLAYS", "qxl,std")
            for c in _list("BENCH_LINKS_CODECS", "mjpeg,h264") for link in LINKS
            if not only_links or re.search(only_links, link.name)]


def selected(row, only):
    return not only or only == SECTION or re.search(only, row.name) is not None


# ------------------------------------------------------------------ what is measured
def timed_latencies(shown, guest_frames):
    """[(t, seconds)] for each shown frame (t, n): t minus the guest's last report of
    frame n before t (measure.latencies, with the time of each)."""
    reports = {}
    for t, n in guest_frames:
        reports.setdefault(n, []).append(t)
    out = []
    for t, n in shown:
        ts = [g for g in reports.get(n, ()) if g <= t]
        if ts:
            out.append((t, t - ts[-1]))
    return out


def longest_freeze(shown, t0, t1):
    """The longest time in [t0, t1] the client showed no new frame (the window's edges
    count: a picture frozen at the start or the end is a freeze too)."""
    times = [t0] + [t for t, _ in shown if t0 <= t <= t1] + [t1]
    return max(b - a for a, b in zip(times, times[1:]))


def _fps(shown, a, b):
    return sum(1 for t, _ in shown if a <= t < b) / (b - a) if b > a else 0.0


def _median(xs):
    return measure.percentile(xs, 50) if xs else None


def adapt_seconds(shown, lats, change, end, tail=4.0, grid=0.25):
    """Seconds from a rate change at `change` until the client's picture settled on the
    new link (None: not within [change, end)).

    The new steady values are those of the last `tail` seconds before `end`: the shown frame
    rate F and the median latency L. Settled from time s on means: every 1-s window from s
    to `end` shows F +- max(25%, 2 frames/s), and every frame shown from s on has a latency
    of at most L + max(L / 2, 100 ms). The answer is the earliest such s (on a 0.25-s grid)
    minus `change`."""
    steady_fps = _fps(shown, end - tail, end)
    steady_lat = _median([x for t, x in lats if end - tail <= t < end])
    if steady_lat is None:
        return None
    fps_band = max(0.25 * steady_fps, 2.0)
    lat_max = steady_lat + max(steady_lat / 2, 0.100)
    k = 0
    while change + k * grid + 1.0 <= end:
        s = change + k * grid
        windows_ok = all(abs(_fps(shown, u, u + 1.0) - steady_fps) <= fps_band
                         for u in _frange(s, end - 1.0, grid))
        if windows_ok and all(x <= lat_max for t, x in lats if s <= t < end):
            return round(s - change, 2)
        k += 1
    return None


def _frange(a, b, step):
    n = int((b - a) / step + 1e-9)
    return [a + i * step for i in range(n + 1)]


def window_numbers(shown, lats, t0, t1):
    """Shown fps, latency p50/p95 (ms) of the frames shown in [t0, t1)."""
    ls = [x * 1000 for t, x in lats if t0 <= t < t1]
    return {"fps": round(_fps(shown, t0, t1), 2),
            "latency_p50_ms": _round(measure.percentile(ls, 50)),
            "latency_p95_ms": _round(measure.percentile(ls, 95))}


def _round(v, nd=1):
    return None if v is None else round(v, nd)


# ------------------------------------------------------------------ one boot
class VideoVM:
    """The test guest playing its clip full screen at 720p with one server."""

    def __init__(self, lib, display, codec, workdir):
        self.lib, self.codec, self.workdir = lib, codec, Path(workdir)
        fps = envf("BENCH_FPS", 30)
        self.rig = measure.BenchRig(
            display=display, workload="video", lib=lib, workdir=self.workdir, mem=512,
            video=MODE, append=f"fps={fps:g} video_rect=full frame_log=1",
            spice_opts={"streaming-video": "all"},
            extra_args=["-name", "bench,debug-threads=on"])  # vCPU threads named
        self.client = self.relay = None
        self.clients = 0
        self.rig.start()
        try:
            expect_lib(self.rig, lib)
            self.rig.wait_serial(r"workload video running", timeout=180)
            m = self.rig.wait_serial(
                r"SPICE-RS-GUEST: video \d+x\d+ frames=(\d+) -> (\d+)x(\d+)\+(\d+)\+(\d+)")
            if int(m.group(1)) == 0:
                raise RuntimeError("the guest found no video clip (tests/guest/build.sh)")
            self.region = tuple(int(m.group(i)) for i in range(2, 6))  # w, h, x, y
        except BaseException:
            self.close()
            raise

    def logs(self):
        return self.rig.tail(15)

    def measure(self, row, clip):
        link = row.link
        tag = re.sub(r"[^A-Za-z0-9]+", "-", link.name).strip("-")
        if self.clients:  # the server has let the last client go before the next one comes
            _wait_let_go(self.rig.port, LET_GO_S)
            time.sleep(RECONNECT_PAUSE_S)
        self.clients += 1
        self.relay = link.relay(self.rig.port)
        self.client = SpiceClient(log_path=self.workdir / f"client-{tag}.log", debug=True)
        try:
            return self._measure(row, clip, tag)
        finally:
            self.client.close()
            self.client = None
            self.relay.close()
            self.relay = None

    def _measure(self, row, clip, tag):
        link, client, relay = row.link, self.client, self.relay
        t_conn = time.monotonic()
        client.connect(HOST, relay.port, timeout=45,
                       video_codecs=[row.codec] if row.codec != "mjpeg" else None)
        first = client.wait(lambda s: s["first_frame_s"] is not None, 60, "first drawing")
        w, h, x, y = self.region
        client.track_stamps(x, y)
        wait = envf("BENCH_LINKS_STREAM_WAIT", 30)
        stream_s = None
        while time.monotonic() - t_conn < wait:
            if client.stream_events()["created"]:
                stream_s = time.monotonic() - t_conn
                break
            time.sleep(0.25)
        seconds = len(link.step) * step_seconds() if link.step else envf("BENCH_LINKS_SECONDS", 25)
        if link.step:
            relay.restart_schedule()
        client.stamps()  # forget what was shown before the window
        pid = self.rig.proc.pid
        k0, h0 = measure.cpu_ticks(client.proc.pid), measure.host_busy()
        b0, c0, t0 = _link_bytes(relay), measure.cpu_ticks(pid), time.monotonic()
        snaps = 0
        while True:
            left = t0 + seconds - time.monotonic()
            if left <= 0:
                break
            if snaps <= seconds - left:  # one snapshot a second, for PSNR
                client.snap(self.workdir / f"snap-{tag}-{snaps}.raw")
                snaps += 1
            time.sleep(min(left, 0.25))
        t1 = time.monotonic()
        b1, c1 = _link_bytes(relay), measure.cpu_ticks(pid)
        h1, k1 = measure.host_busy(), measure.cpu_ticks(client.proc.pid)
        got = client.stamps()
        ev = client.stream_events()
        if not self.rig.alive():
            raise RuntimeError(f"QEMU exited ({self.rig.proc.returncode})")

        readings = [(t, n) for t, n in got["stamps"] if t0 <= t <= t1]
        shown = measure.delivered(readings)
        lats = timed_latencies(shown, self.rig.frames)
        guest = [f for f in self.rig.frames if t0 <= f[0] <= t1]
        psnrs = [measure.psnr(s, clip, self.region) for s in got["snaps"]] if clip else []
        for p in self.workdir.glob(f"snap-{tag}-*.raw"):
            if os.environ.get("BENCH_KEEP_SNAPS") != "1":
                p.unlink()
        dur = t1 - t0
        cpu = measure.cpu_delta(c0, c1, pid)
        res = {"seconds": round(dur, 3),
               "first_drawing_ms": round(first["first_frame_s"] * 1000, 1),
               "stream_after_s": _round(stream_s, 2), "frames": len(shown),
               "guest_frames": len(guest), **window_numbers(shown, lats, t0, t1 + 1e-9),
               "longest_freeze_ms": round(longest_freeze(shown, t0, t1) * 1000),
               "psnr": [round(p, 2) for p in psnrs],
               "psnr_median": _round(measure.percentile(psnrs, 50), 2),
               "link_bytes_s": round((b1 - b0) / dur), "cpu_server_side": round(
                   cpu["server_side"], 3),
               # what other processes kept the host's cores busy with meanwhile (seconds)
               "cpu_others": round(max(0.0, h1 - h0 - cpu["total"] - (k1["total"] - k0["total"])
                                       / measure.CLK_TCK), 2),
               "streams_created": len(ev["created"]), "late": ev["late"],
               "stream_codecs": measure.stream_codecs(client.log_path, ev["created"]),
               "latency_ms": [round(x * 1000, 1) for _, x in lats],
               # when each new frame was shown (s into the window): where freezes are
               "shown_s": [round(t - t0, 3) for t, _ in shown],
               "shown_at": [round(t - t0, 3) for t, _ in shown],
               "revision": _revision(), "mapped_lib": self.rig.mapped_lib}
        if link.step:
            s = step_seconds()
            res["steps"] = [dict(window_numbers(shown, lats, t0 + i * s, t0 + (i + 1) * s),
                                 rate=r) for i, r in enumerate(link.step)]
            res["adapt_down_s"] = adapt_seconds(shown, lats, t0 + s, t0 + 2 * s)
            res["adapt_up_s"] = adapt_seconds(shown, lats, t0 + 2 * s, t0 + 3 * s)
        return res

    def close(self):
        for part in (self.client, self.relay):
            if part:
                part.close()
        self.client = self.relay = None
        self.rig.stop()


def _wait_let_go(port, timeout):
    """Until the server has closed every connection of the last client (the C server
    refused a new client's channels while it still tore the old one down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-tnH", "state", "established", "state", "close-wait",
                              "state", "last-ack", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.25)


def _link_bytes(relay):
    """Bytes the relay's link carried to the client so far (TCP payload, all channels)."""
    return sum(down for down, _ in relay.bytes_by_channel().values())


def _revision():
    return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip() or "?"


# ------------------------------------------------------------------ the rows
def run(only=None, libs=sections.LIBS, work=None):
    """Runs the selected rows for each server; results.json rows
    ({"row", "section": "links", "display", "codec", "link", "ours": {...}, "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / SECTION)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    clip_path = GUEST_DIR / "video.img"
    clip = measure.Clip(clip_path) if clip_path.exists() else None
    print(f"\n== Video on real links: {len(todo)} rows", flush=True)
    groups = {}
    for r in todo:
        groups.setdefault((r.display, r.codec), []).append(r)
    got = sections.run_boots(
        groups, libs,
        boot=lambda lib, key: VideoVM(lib, key[0], key[1], work / f"{key[0]}-{key[1]}-{lib}"),
        measure=lambda vm, row: vm.measure(row, clip), summary=summary,
        label=lambda key: f"{key[0]} {CODEC_NAMES[key[1]]}")
    return [{"row": r.name, "section": SECTION, "display": r.display, "codec": r.codec,
             "link": r.link.name, "rate": r.link.rate, "delay_ms": round(r.link.delay * 1000),
             "step": list(r.link.step), "run": 0,
             **{lib: got[(lib, r.name)] for lib in libs}} for r in todo]


def summary(r):
    if "error" in r:
        return f"FAILED {r['error']}"

    def v(x, fmt):
        return "-" if x is None else format(x, fmt)
    s = (f"{r['fps']:.1f} fps shown (guest {r['guest_frames'] / r['seconds']:.1f}), latency "
         f"p50 {v(r['latency_p50_ms'], '.0f')} p95 {v(r['latency_p95_ms'], '.0f')} ms, PSNR "
         f"{v(r['psnr_median'], '.1f')} dB, {r['link_bytes_s'] * 8 / 1e6:.2f} Mbit/s, freeze "
         f"{r['longest_freeze_ms']} ms, stream after {v(r['stream_after_s'], '.1f')} s "
         f"({'+'.join(r['stream_codecs']) or 'no stream'})")
    if "steps" in r:
        s += "; steps " + " / ".join(f"{st['fps']:.1f} fps p95 {v(st['latency_p95_ms'], '.0f')}"
                                     for st in r["steps"])
        s += f"; adapt down {v(r['adapt_down_s'], '.2f')} s, up {v(r['adapt_up_s'], '.2f')} s"
    return s


# ------------------------------------------------------------------ BENCHMARKS.md
def _ok(r):
    return bool(r) and "error" not in r


def _num(r, key, fmt):
    if not r:
        return "—"
    if "error" in r:
        return "failed"
    v = r.get(key)
    return "—" if v is None else format(v, fmt)


def _pair(res, key, fmt):
    return f"{_num(res.get('ours'), key, fmt)} / {_num(res.get('c'), key, fmt)}"


def _mbits(r):
    return None if not _ok(r) else r["link_bytes_s"] * 8 / 1e6


def _lan_fps(rows, res):
    """Our shown frame rate on the unlimited link, same display and codec."""
    for r in rows:
        if (r["display"], r["codec"], r["link"]) == (res["display"], res["codec"], "unlimited"):
            return r["ours"]["fps"] if _ok(r.get("ours")) else None
    return None


def target_cells(rows, res):
    """The issue's targets for one row: [(target, cell)]."""
    ours, c = res.get("ours"), res.get("c")

    def mark(met, text):
        return f"{'**met**' if met else '**missed**'}: {text}"
    both = _ok(ours) and _ok(c)
    out = []
    out.append(("fps >= C's", mark(ours["fps"] >= c["fps"], f"{ours['fps']:.1f} vs {c['fps']:.1f}")
                if both else "not measured"))
    a, b = (ours.get("latency_p95_ms"), c.get("latency_p95_ms")) if both else (None, None)
    if a is None or b is None:
        out.append(("p95 <= C's / 2", "no frames shown" if both else "not measured"))
    else:
        out.append(("p95 <= C's / 2", mark(a <= b / 2, f"{a:.0f} vs bound {b / 2:.0f} ms")))
    if _ok(ours):
        f = ours["longest_freeze_ms"]
        out.append(("no freeze > 500 ms", mark(f <= FREEZE_MAX_S * 1000, f"longest {f} ms "
                                                 f"(C: {_num(c, 'longest_freeze_ms', 'd')})")))
    else:
        out.append(("no freeze > 500 ms", "not measured"))
    if res["link"] == "1 Mbit/s + 40 ms":
        out.append(("own bound", mark(ours["fps"] >= SLOW_FPS_MIN, f"{ours['fps']:.1f} fps shown, "
                                      f"at least {SLOW_FPS_MIN:g}") if _ok(ours) else "not measured"))
    elif res["link"] == "20 Mbit/s + 40 ms":
        lan = _lan_fps(rows, res)
        if _ok(ours) and lan is not None and ours.get("latency_p95_ms") is not None:
            met = ours["fps"] >= LAN_SHARE * lan and ours["latency_p95_ms"] < VPN_P95_MAX_MS
            out.append(("own bound", mark(met, f"{ours['fps']:.1f} fps vs LAN {lan:.1f} (at least "
                                          f"{100 * LAN_SHARE:.0f}%), p95 {ours['latency_p95_ms']:.0f} "
                                          f"ms (under {VPN_P95_MAX_MS:.0f})")))
        else:
            out.append(("own bound", "not measured"))
    else:
        out.append(("own bound", "—"))
    return out


def _codec_note(res):
    """A server that streamed another codec than the row's (or none) says so."""
    got = {lib: res[lib].get("stream_codecs") for lib in sections.LIBS if _ok(res.get(lib))}
    odd = {lib: c for lib, c in got.items() if c != [res["codec"]]}
    if not odd:
        return ""
    names = {"ours": "spice-rs", "c": "C"}
    return " (" + ", ".join(f"{names[lib]} streamed {'+'.join(c) or 'nothing'}"
                            for lib, c in odd.items()) + ")"


def _step_cell(r, i):
    if not _ok(r):
        return "—" if not r else "failed"
    st = r["steps"][i]
    p95 = "—" if st["latency_p95_ms"] is None else f"{st['latency_p95_ms']:.0f}"
    return f"{st['fps']:.1f} fps, p95 {p95} ms"


def _adapt(r, key):
    if not _ok(r):
        return "—" if not r else "failed"
    v = r.get(key)
    return "not settled" if v is None else f"{v:.2f} s"


def markdown(rows):
    """The "Video on real links" section of BENCHMARKS.md from its results.json rows."""
    step = next((r for r in rows if r.get("step")), None)
    step_s = None
    if step:
        for lib in sections.LIBS:
            if _ok(step.get(lib)):
                step_s = step[lib]["seconds"] / len(step["step"])
    revs = sorted({r["ours"].get("revision", "?") for r in rows if _ok(r.get("ours"))})
    out = [
        "## Video on real links", "",
        "bench/links.py (issue 15), the same way for both servers: the test guest plays its clip "
        "full screen at 1280x720 (`streaming-video=all`), on qxl and on std (`-vga std`), as "
        "MJPEG (both servers' default) and as H.264 (the client asks for it with "
        "PREFERRED_VIDEO_CODEC_TYPE, on the stock QEMU); spice-gtk reaches the server through "
        "an emulated link (tests/e2e/relay.py). Each cell: spice-rs / C. "
        f"spice-rs measured at {', '.join(f'`{v}`' for v in revs) or '—'}.", "",
        "| row | fps shown | guest fps | latency p50 ms | p95 ms | PSNR dB | Mbit/s on the link "
        "| longest freeze ms | stream after s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in rows:
        ours, c = res.get("ours"), res.get("c")
        mb = " / ".join("—" if v is None else f"{v:.2f}" for v in (_mbits(ours), _mbits(c)))
        guest = " / ".join("—" if not _ok(r) else f"{r['guest_frames'] / r['seconds']:.1f}"
                           for r in (ours, c))
        out.append(f"| {res['row']}{_codec_note(res)} | {_pair(res, 'fps', '.1f')} | {guest} "
                   f"| {_pair(res, 'latency_p50_ms', '.0f')} | {_pair(res, 'latency_p95_ms', '.0f')} "
                   f"| {_pair(res, 'psnr_median', '.1f')} | {mb} "
                   f"| {_pair(res, 'longest_freeze_ms', 'd')} | {_pair(res, 'stream_after_s', '.1f')} |")
    steps = [r for r in rows if r.get("step")]
    if steps:
        out += [
            "", "### The step: 4 -> 1 -> 4 Mbit/s (+20 ms)", "",
            f"The link carries 4 Mbit/s for {step_s or 10:.0f} s of the window, then 1 Mbit/s, "
            "then 4 again. Per step: shown frame rate and latency p95; then the seconds to "
            "adapt after each change (spice-rs / C).", "",
            "| row | 4 Mbit/s | 1 Mbit/s | 4 Mbit/s again | adapt down | adapt up |",
            "|---|---|---|---|---|---|",
        ]
        for res in steps:
            ours, c = res.get("ours"), res.get("c")
            cells = [f"{_step_cell(ours, i)} / {_step_cell(c, i)}" for i in range(3)]
            cells += [f"{_adapt(ours, k)} / {_adapt(c, k)}" for k in ("adapt_down_s", "adapt_up_s")]
            out.append(f"| {res['row']} | " + " | ".join(cells) + " |")
    names = [n for n, _ in target_cells(rows, rows[0])]
    out += [
        "", "### Targets (video on real links, same run)", "",
        "Issue 15, against C on the same link: at least its shown frame rate, at most half its "
        "latency p95, no freeze longer than 500 ms; own bounds: at 1 Mbit/s + 40 ms at least "
        f"{SLOW_FPS_MIN:g} frames/s shown, at 20 Mbit/s + 40 ms the LAN frame rate (at least "
        f"{100 * LAN_SHARE:.0f}% of spice-rs's shown frame rate on the unlimited link, same "
        f"display and codec) with p95 under {VPN_P95_MAX_MS:.0f} ms.", "",
        "| row | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
    ]
    tally = {n: [0, 0] for n in names}
    for res in rows:
        cells = target_cells(rows, res)
        out.append(f"| {res['row']} | " + " | ".join(c for _, c in cells) + " |")
        for n, c in cells:
            tally[n][0] += c.startswith("**met**")
            tally[n][1] += c.startswith(("**met**", "**missed**"))
    out += ["", "Met, of the rows measured: " + "; ".join(
        f"{n}: {met} of {of}" for n, (met, of) in tally.items()) + "."]
    out += [
        "", "### How measured (video on real links)", "",
        "- **Link.** tests/e2e/relay.py between spice-gtk and the server (`tc netem` needs "
        "CAP_NET_ADMIN, which this machine does not give): every server -> client byte of "
        "all channels crosses one shared link of the row's rate in slices of 10 ms of it; "
        "the relay holds at most ~50 ms of the link and gives its sockets small buffers, so "
        "the server's socket backs up as behind a real slow link (TCP backpressure, nothing "
        "piles up in the relay). \"+ 40 ms\" is a one-way delay added in each direction "
        "(80 ms round trip). The step row's rate follows a schedule from the window's start.",
        "- **Rows.** One boot per display, codec and server; each link gets a new client "
        "through a new relay. The window starts when spice-gtk has created its stream (its "
        "debug log; \"stream after\" = seconds from connecting; a row whose server starts "
        "no stream within 30 s is measured from then) and lasts "
        f"{_window_s(rows)} s.",
        "- **fps shown, latency, PSNR** as in the rows above: the client reads the guest's "
        "frame stamp whenever it has drawn into it; each new number is a frame shown; latency "
        "= the moment the client first shows frame N minus the moment the guest reported it "
        "on its serial line (p50/p95 over the frames shown); PSNR of a client snapshot each "
        "second against the source frame its stamp names (median).",
        "- **guest fps**: the frames the guest itself drew per second in the window (its "
        "serial reports): on a loaded machine the emulated guest falls behind its 30 fps, "
        "and a server sees fewer frames to stream.",
        "- **Mbit/s on the link**: bytes the relay carried to the client (TCP payload, all "
        "channels) over the window.",
        "- **Longest freeze**: the longest time in the window without a new frame shown "
        "(from the window's start to the first frame and from the last to the end count "
        "too); the guest plays throughout.",
        "- **Adapt (step row)**: after a rate change at time T, the new steady values are "
        "those of the step's last 4 s: shown frame rate F and median latency L. The picture "
        "has settled at the first time S (0.25-s grid) from which every 1-s window up to the "
        "step's end shows F +- max(25%, 2 frames/s) and every frame shown has a latency of at "
        "most L + max(L/2, 100 ms); adapt = S - T (\"not settled\": no such S before the "
        "last second). A server that stays frozen at the new rate settles at once by this "
        "measure: read it with the step's frame rate.",
        f"- **Load.** {_load_line(rows)}",
        "- C's rows and spice-rs's rows may come from separate runs (BENCH_LIBS): the C "
        "server does not change between them; the revisions above are spice-rs's.",
        "",
    ]
    notes = HERE / "links-notes.md"  # hand-written, kept across runs
    if notes.exists():
        out += [notes.read_text().rstrip(), ""]
    return out


def _load_line(rows):
    """Other processes' share of the host's cores during the windows, per server."""
    parts = []
    for lib, name in (("ours", "spice-rs"), ("c", "C")):
        got = [(r[lib]["cpu_others"], r[lib]["seconds"]) for r in rows
               if _ok(r.get(lib)) and "cpu_others" in r[lib]]
        if got:
            parts.append(f"{name}'s rows {sum(a for a, _ in got) / sum(b for _, b in got):.1f}")
    return ("Other processes (builds, tests, other benches) kept this many of the host's "
            "cores busy on average during the windows: " + ", ".join(parts) + "."
            if parts else "Other processes' load was not recorded for these rows.")


def _window_s(rows):
    vals = sorted({round(r[lib]["seconds"]) for r in rows for lib in sections.LIBS
                   if _ok(r.get(lib)) and not r.get("step")})
    return "/".join(str(v) for v in vals) or "?"


def main():
    return sections.script_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
