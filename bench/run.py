#!/usr/bin/python3
"""Side-by-side benchmark: this library against Debian's C spice-server (0.15).

The same QEMU, the same guest workload and the same client (spice-gtk, decoding for real),
once with LD_LIBRARY_PATH=<repo>/build/lib and once with Debian's libspice-server1, for
each row. `make bench` runs it; results go to BENCHMARKS.md, bench/bench.png and
bench/results.json (every number, per thread and per sample).

Rows: MJPEG (both servers' default codec) on qxl and std, then 720p qxl video and desktop
over TLS, then H.264, VP8 and VP9 (the GStreamer encoders of both servers) at 720p and 1080p
full screen on qxl: 36 runs of ~45 s, about 28 minutes on 2 cores. Every run also times the
client's connection to its first picture. bench/mjpeg-notes.md and bench/codec-notes.md (hand-written)
follow the MJPEG and the codec section; bench/codec_check.py reads off the wire which codec each server really streams.

Environment:
  BENCH_QUICK=1         a few short rows, results in build/bench/ (development, smoke test)
  BENCH_WARMUP=8        seconds after the client connected before measuring
  BENCH_SECONDS=20      seconds measured per row and server
  BENCH_FPS=30          the guest's video frame rate
  BENCH_SNAP_EVERY=1    seconds between the client snapshots used for PSNR
  BENCH_ONLY=REGEX      only the rows whose name matches (e.g. "qxl.*720", "H.264",
                        "agent|port"); BENCH_ONLY=codecs: only the H.264/VP8/VP9 rows;
                        BENCH_ONLY=devices: only the guest agent and device rows;
                        BENCH_ONLY=av: only the audio/video skew rows; BENCH_ONLY=sound:
                        only the sound rows; BENCH_ONLY=desktop: only the desktop in
                        use rows. The results are
                        merged into the existing results.json / BENCHMARKS.md by row name
                        (BENCH_MERGE=0: write only this run's rows)
  BENCH_CODEC_VIA=client  how the H.264/VP8/VP9 rows pick the codec, the same way for both
                        servers: "client" = stock QEMU, default codec list, the client sends
                        PREFERRED_VIDEO_CODEC_TYPE with that one codec (QEMU 10.0 has no
                        option for it); "server" = the patched QEMU (make qemu) with
                        -spice video-codec=gstreamer:<codec>, the client asks for nothing
  BENCH_CODEC_DISPLAYS=qxl  displays of the codec rows (qxl,std for both: +10 min)
  BENCH_KEEP_SNAPS=1    keep the client snapshots (build/bench/runs/*/snap*.raw)
  BENCH_OUT=DIR         where BENCHMARKS.md and bench.png go (default: the repo / bench/,
                        build/bench/ in quick mode)

Then the "Guest agent and devices" rows (bench/devices.py: agent file transfer, clipboard
and resize with the Debian guest and its spice-vdagent, port channel echo and slow reader),
about 6 minutes for both servers; BENCH_DEVICES=0 leaves them out. Then the "Audio and
video in step" rows (bench/av.py: A/V skew at the client with an emulated audio backend of
30 and 150 ms), about 3 minutes; BENCH_AV=0 leaves them out. Then the "Sound" rows
(bench/sound.py: playback Opus and raw, plain and behind a throttled link, and record, with
the Debian guest's aplay/arecord), about 10 minutes for both servers; BENCH_SOUND=0 leaves
them out. Then the "Desktop in use" rows (bench/desktop.py: windows, menus, a document
scrolling, an image viewer and all of them in turn on qxl and std, with auto_glz and with
the WAN settings), about 20 minutes for both servers; BENCH_DESKTOP=0 leaves them out.

Then the "A host full of VMs" rows (bench/host.py: 1, 4 and 8 idle tiny VMs, without and
with clients, then one of 8 playing video: threads, wake-ups/s, server CPU, RSS and PSS per
VM), about 15 minutes for both servers; BENCH_HOST=0 leaves them out, BENCH_ONLY=host runs
only them. Then the "Video on real links" rows (bench/links.py: qxl and std, 720p MJPEG and
H.264, behind emulated links from unlimited to 0.5 Mbit/s + 80 ms and a 4 -> 1 -> 4 Mbit/s
step: frames shown, latency, PSNR, link bytes, freezes, seconds to adapt), about 25 minutes
for both servers; BENCH_LINKS=0 leaves them out, BENCH_ONLY=links runs only them.
Sections (bench/sections.py): BENCH_LIBS=c (or ours) runs only that server; merging then
keeps the other server's numbers of the same rows.

bench/run.py --report results.json   writes BENCHMARKS.md and the chart again from a run's
                                     raw results (with the same BENCH_OUT / BENCH_QUICK)
"""
import json
import os
import platform
import re
import shlex
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
import av  # noqa: E402
import desktop  # noqa: E402
import devices  # noqa: E402
import host  # noqa: E402
import importlib.util  # noqa: E402
import links  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import sections  # noqa: E402
from client import ClientError, SpiceClient  # noqa: E402
import rig as rig_module  # noqa: E402
from rig import GUEST_DIR, QEMU, free_port, lib_dir  # noqa: E402
from test_tls import SUBJECT as TLS_SUBJECT, make_x509_dir  # noqa: E402

C_LIB_DIR = "/lib/x86_64-linux-gnu"
# bench/sound.py, by its path: tests/e2e/sound.py (which it uses) holds the name "sound".
_spec = importlib.util.spec_from_file_location("bench_sound", HERE / "sound.py")
sound_rows = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sound_rows)
SPICE_OPTS = {"streaming-video": "all"}  # QEMU's default is off; video codec: the default
PATCHED_QEMU = REPO / "build" / "qemu" / "bin" / "qemu-system-x86_64"
CODECS = {"h264": "H.264", "vp8": "VP8", "vp9": "VP9"}  # the rows beyond the default MJPEG
CLIPS = ("street", "screen", "anim")  # the guest's clips beyond Megamind (clip=)


@dataclass
class Row:
    display: str    # rig display: qxl | std
    mode: str       # guest screen WxH (kernel video=)
    workload: str   # video | desktop
    rect: str = "full"  # video_rect
    codec: str = None   # None: the servers' default (MJPEG); else a CODECS key
    tls: bool = False   # TLS only (tls-port=, no port=), the client checking a test CA
    clip: str = None    # None: Megamind; else the guest's clip= (street, screen, anim)

    @property
    def name(self):
        what = "static desktop" if self.workload == "desktop" else (
            "video full screen" if self.rect == "full" else f"video window {self.rect.split('+')[0]}")
        return (f"{self.display} {self.mode} {what}" + (f" {self.clip}" if self.clip else "")
                + (f" {CODECS[self.codec]}" if self.codec else "")
                + (" over TLS" if self.tls else ""))


def rows(quick, codec_displays=("qxl",)):
    if quick:
        return [Row("qxl", "1280x720", "video"), Row("std", "1280x720", "video", "640x360+320+180"),
                Row("qxl", "1280x720", "desktop"), Row("qxl", "1280x720", "video", codec="h264"),
                Row("qxl", "1280x720", "video", tls=True)]
    out = []
    for display in ("qxl", "std"):
        out += [Row(display, "1280x720", "video"),
                Row(display, "1280x720", "video", "640x360+320+180"),
                Row(display, "1920x1080", "video"),
                Row(display, "1920x1080", "video", "960x540+480+270"),
                Row(display, "1920x1080", "desktop")]
    out += [Row("qxl", "1280x720", "video", tls=True), Row("qxl", "1280x720", "desktop", tls=True)]
    # Other content than Megamind (tests/guest/build.sh): MJPEG, full screen.
    for display in ("qxl", "std"):
        out += [Row(display, "1280x720", "video", clip=c) for c in CLIPS]
    for display in codec_displays:
        for mode in ("1280x720", "1920x1080"):
            out += [Row(display, mode, "video", codec=c) for c in CODECS]
    return out


def selected(row, only):
    if not only:
        return True
    if only == "codecs":
        return row.codec is not None
    if only in SECTION_KEYS:
        return False
    return re.search(only, row.name) is not None


# The sections after the video rows, in the order they run (bench/sections.py): the
# knobs each one gets in a smoke run (BENCH_QUICK=1) unless they are set.
SECTIONS = [
    sections.Section("devices", devices, {"BENCH_XFER_MIB": "16", "BENCH_CLIPBOARD_ROUNDS": "5",
                                          "BENCH_PORT_MIB": "4", "BENCH_SLOW_SECONDS": "8"}),
    sections.Section("av", av, {"BENCH_AV_SECONDS": "8"}),
    sections.Section("sound", sound_rows, {"BENCH_SOUND_SECONDS": "8", "BENCH_SOUND_IDLE": "5",
                                           "BENCH_RECORD_SECONDS": "4"}),
    sections.Section("desktop", desktop, {"BENCH_DESKTOP_SCENES": "mixed",
                                          "BENCH_DESKTOP_SECONDS": "10",
                                          "BENCH_DESKTOP_WARMUP": "2.25"}),
    sections.Section("host", host, {"BENCH_HOST_VMS": "1,2", "BENCH_HOST_SECONDS": "5"}),
    sections.Section("links", links, {"BENCH_LINKS_DISPLAYS": "qxl", "BENCH_LINKS_CODECS": "mjpeg",
                                      "BENCH_LINKS_SECONDS": "8", "BENCH_LINKS_STEP_SECONDS": "4",
                                      "BENCH_LINKS": "^(1 Mbit|step)"}),
]
SECTION_KEYS = [sec.key for sec in SECTIONS]


def envf(name, default):
    return float(os.environ.get(name, default))


class Config:
    def __init__(self):
        self.quick = os.environ.get("BENCH_QUICK") == "1"
        self.warmup = envf("BENCH_WARMUP", 4 if self.quick else 8)
        self.seconds = envf("BENCH_SECONDS", 6 if self.quick else 20)
        self.fps = envf("BENCH_FPS", 30)
        self.snap_every = envf("BENCH_SNAP_EVERY", 1)
        self.only = os.environ.get("BENCH_ONLY")
        self.merge = os.environ.get("BENCH_MERGE", "1") == "1"
        self.codec_via = os.environ.get("BENCH_CODEC_VIA", "client")
        if self.codec_via not in ("client", "server"):
            raise SystemExit(f"BENCH_CODEC_VIA={self.codec_via}: client or server")
        self.codec_displays = tuple(
            d for d in os.environ.get("BENCH_CODEC_DISPLAYS", "qxl").split(",") if d)
        default_out = REPO / "build" / "bench" if self.quick else None
        self.out = Path(os.environ["BENCH_OUT"]) if os.environ.get("BENCH_OUT") else default_out
        self.work = REPO / "build" / "bench" / "runs"

    def markdown_path(self):
        return (self.out / "BENCHMARKS.md") if self.out else REPO / "BENCHMARKS.md"

    def results_path(self):
        return (self.out / "results.json") if self.out else HERE / "results.json"

    def chart_path(self):
        return (self.out / "bench.png") if self.out else HERE / "bench.png"


# ------------------------------------------------------------------ one run
def run_one(row, lib, cfg, clips):
    """Boots the guest with `lib` ("ours" | "c"), connects the client, measures; returns
    a dict of results (see report.py for the fields)."""
    tag = re.sub(r"[^A-Za-z0-9]+", "-", f"{row.name}-{lib}").strip("-")
    workdir = cfg.work / tag
    shutil.rmtree(workdir, ignore_errors=True)
    append = f"fps={cfg.fps:g} video_rect={row.rect} frame_log=1" if row.workload == "video" else ""
    if row.clip:
        append += f" clip={row.clip}"
    clip = clips.get(row.clip or "megamind")
    spice_opts, qemu = dict(SPICE_OPTS), rig_module.QEMU
    if row.codec and cfg.codec_via == "server":
        spice_opts["video-codec"] = f"gstreamer:{row.codec}"
        qemu = str(PATCHED_QEMU)
    tls = None
    if row.tls:
        x509 = cfg.work / "x509"
        if not (x509 / "server-key.pem").exists():
            make_x509_dir(x509)
        tls = {"port": free_port(), "ca_file": str(x509 / "ca-cert.pem"), "subject": TLS_SUBJECT}
        spice_opts.update({"port": 0, "tls-port": tls["port"], "x509-dir": str(x509)})
    rig = measure.BenchRig(display=row.display, workload=row.workload, lib=lib, workdir=workdir,
                           mem=512, video=row.mode, append=append, spice_opts=spice_opts,
                           extra_args=["-name", "bench,debug-threads=on"])  # thread names
    client = None
    res = {"row": row.name, "lib": lib}
    if row.codec:
        res["codec_via"] = cfg.codec_via
    try:
        if row.codec and cfg.codec_via == "server" and not PATCHED_QEMU.exists():
            raise RuntimeError(f"BENCH_CODEC_VIA=server needs {PATCHED_QEMU} (make qemu)")
        rig_module.QEMU = qemu  # Rig reads the module's QEMU as it starts
        try:
            rig.start()
        finally:
            rig_module.QEMU = QEMU
        res["qemu"] = qemu
        res["mapped_lib"] = rig.mapped_lib
        expect = os.path.realpath(lib_dir() if lib == "ours" else C_LIB_DIR)
        if os.path.dirname(rig.mapped_lib or "") != expect:
            raise RuntimeError(f"QEMU mapped {rig.mapped_lib}, expected a library in {expect}")
        rig.wait_serial(rf"workload {row.workload} running", timeout=180)
        region = None
        if row.workload == "video":
            m = rig.wait_serial(r"SPICE-RS-GUEST: video \d+x\d+ frames=(\d+) -> (\d+)x(\d+)\+(\d+)\+(\d+)")
            if int(m.group(1)) == 0:
                raise RuntimeError("the guest found no video clip (tests/guest/build.sh)")
            region = tuple(int(m.group(i)) for i in range(2, 6))  # w, h, x, y
        res["region"] = region
        # Codec rows: spice-gtk's debug lines tell which decoders it built (the codec
        # that was really streamed); a few lines a frame, so no cost worth counting.
        client = SpiceClient(log_path=workdir / "client.log", debug=bool(row.codec))
        asked = [row.codec] if row.codec and cfg.codec_via == "client" else None
        try:
            client.connect("127.0.0.1", None if tls else rig.port, timeout=90,
                           video_codecs=asked, tls=tls)
        except ClientError as e:
            if "does not have capability" in str(e):
                raise RuntimeError(
                    "the server's display channel does not offer SPICE_DISPLAY_CAP_PREF_VIDEO_"
                    "CODEC_TYPE, so the client cannot ask for a codec (BENCH_CODEC_VIA=server "
                    "chooses it on the server instead)") from e
            raise
        # From the client opening its first socket to its first drawing: links (main,
        # then display, cursor, inputs...), TLS handshakes, the first image.
        first = client.wait(lambda s: s["first_frame_s"] is not None, 30, "first drawing")
        res["first_frame_ms"] = round(first["first_frame_s"] * 1000, 1)
        port = tls["port"] if tls else rig.port
        if region:
            client.track_stamps(region[2], region[3])
        time.sleep(cfg.warmup)

        # ---- the measured window
        client.stamps()  # forget the warm-up's readings
        w0, c0, k0 = measure.wire_bytes(port), measure.cpu_ticks(rig.proc.pid), \
            measure.cpu_ticks(client.proc.pid)
        h0 = measure.host_busy()
        t0 = time.monotonic()
        snaps_asked = 0
        while True:
            left = t0 + cfg.seconds - time.monotonic()
            if left <= 0:
                break
            if region and snaps_asked * cfg.snap_every <= cfg.seconds - left:
                client.snap(workdir / f"snap{snaps_asked}.raw")
                snaps_asked += 1
            time.sleep(min(left, 0.25))
        t1 = time.monotonic()
        h1 = measure.host_busy()
        c1, k1, w1 = measure.cpu_ticks(rig.proc.pid), measure.cpu_ticks(client.proc.pid), \
            measure.wire_bytes(port)
        got = client.stamps() if region else {"stamps": [], "snaps": []}
        # ----

        dur = t1 - t0
        cpu = measure.cpu_delta(c0, c1, rig.proc.pid)
        down, up = measure.wire_delta(w0, w1)
        res.update(seconds=dur, cpu_qemu=cpu["total"], cpu_server=cpu["server"],
                   cpu_server_side=cpu["server_side"],
                   cpu_qemu_main=cpu["main"], cpu_threads=cpu["threads"],
                   cpu_client=(k1["total"] - k0["total"]) / measure.CLK_TCK,
                   wire_down=down, wire_up=up)
        # What else kept the host's cores busy meanwhile (other builds, tests): the numbers
        # of a row with much of it are less comparable.
        res["cpu_others"] = max(0.0, h1 - h0 - res["cpu_qemu"] - res["cpu_client"])
        if region:
            readings = [(t, n) for t, n in got["stamps"] if t0 <= t <= t1]
            shown = measure.delivered(readings)
            guest = [(t, n) for t, n in rig.frames if t0 <= t <= t1]
            lat = measure.latencies(shown, rig.frames)
            psnrs = [measure.psnr(s, clip, region) for s in got["snaps"]]
            res.update(frames=len(shown), readings=len(readings), guest_frames=len(guest),
                       latency_ms=[round(x * 1000, 1) for x in lat],
                       psnr=[round(p, 2) for p in psnrs], snap_stamps=[s["n"] for s in got["snaps"]])
        if row.codec:
            ev = client.stream_events()
            res.update(streams_created=len(ev["created"]), decode_errors=len(ev["decode_errors"]),
                       stream_codecs=measure.stream_codecs(workdir / "client.log", ev["created"]))
            if res["stream_codecs"] != [row.codec]:
                res["wrong_codec"] = True
                print(f"  {row.name} [{lib}]: asked for {row.codec}, the client decoded "
                      f"{res['stream_codecs'] or 'no stream'}", flush=True)
        if not rig.alive():
            raise RuntimeError(f"QEMU exited during the run ({rig.proc.returncode})")
    except Exception as e:  # a failed run is a result too; the table shows it
        res["error"] = f"{type(e).__name__}: {e}"
        print(f"  {row.name} [{lib}] FAILED: {res['error']}\n{rig.tail(15)}", flush=True)
    finally:
        if client:
            client.close()
        rig.stop()
        if os.environ.get("BENCH_KEEP_SNAPS") != "1":
            for p in workdir.glob("snap*.raw"):
                p.unlink()
    return res


def summary(res):
    if "error" in res:
        return f"{res['lib']:>4}: FAILED {res['error']}"
    d = res["seconds"]
    s = f"{res['lib']:>4}: QEMU CPU {100 * res['cpu_qemu'] / d:5.1f}%  server threads " \
        f"{100 * res['cpu_server'] / d:5.1f}%  client {100 * res['cpu_client'] / d:5.1f}%  " \
        f"wire {res['wire_down'] / d / 1e6:6.3f} MB/s"
    s += f"  others {100 * res['cpu_others'] / d:5.1f}%  first drawing {res['first_frame_ms']:.0f} ms"
    if res.get("region"):
        f = res["frames"]
        s += f"  fps {f / d:5.1f} (guest {res['guest_frames'] / d:4.1f})"
        if f:
            s += f"  CPU/frame {1000 * res['cpu_qemu'] / f:6.1f} ms (server {1000 * res['cpu_server'] / f:5.1f} ms, " \
                 f"QEMU-vCPU {1000 * res['cpu_server_side'] / f:5.1f} ms)"
        if "stream_codecs" in res:
            s += f"  codec {'+'.join(res['stream_codecs']) or 'none'}"
        p, lat = res["psnr"], res["latency_ms"]
        if p:
            s += f"  PSNR {measure.percentile(p, 50):4.1f} dB (min {min(p):4.1f})"
        if lat:
            s += f"  latency p50 {measure.percentile(lat, 50):4.0f} ms p95 {measure.percentile(lat, 95):4.0f} ms"
    return s


def machine_facts():
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    qemu = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    cver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libspice-server1"],
                          capture_output=True, text=True).stdout or "?"
    gtk = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libspice-client-glib-2.0-8"],
                         capture_output=True, text=True).stdout or "?"
    rev = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    ours = lib_dir() / "libspice-server.so.1"
    built = time.strftime("%Y-%m-%d %H:%M %Z", time.gmtime(ours.stat().st_mtime)) \
        if ours.exists() else "missing"
    return {"cores": os.cpu_count(), "cpu": model, "qemu": qemu, "kernel": platform.release(),
            "c_server": f"libspice-server1 {cver}", "client": f"spice-gtk {gtk}", "revision": rev,
            "ours_lib": f"{ours.resolve()} (built {built})",
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def command_line(cfg):
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items())
           if k.startswith(("BENCH_", "SPICE_RS_"))]
    cmd = "make bench" if os.environ.get("MAKELEVEL") else "/usr/bin/python3 bench/run.py"
    return " ".join(env + [cmd])


def load_results(path):
    """A results.json, with its "runs" (older files had one run and no "runs")."""
    data = json.loads(Path(path).read_text())
    if "runs" not in data:
        data["runs"] = [{"facts": data["facts"], "command": data["command"],
                         "config": data["config"]}]
        for r in data["results"]:
            r["run"] = 0
    return data


def merge(old, new, order):
    """new's rows replace old's of the same name; rows in `order`'s order, then the rest.
    Runs no row refers to any more are dropped."""
    base = len(old["runs"])
    rows = {r["row"]: r for r in old["results"]}
    for r in new["results"]:
        # a server this run left out (BENCH_LIBS) keeps its numbers
        kept = {lib: rows[r["row"]][lib] for lib in sections.LIBS
                if lib not in r and lib in rows.get(r["row"], {})}
        rows[r["row"]] = dict(r, run=r["run"] + base, **kept)
    rank = {name: i for i, name in enumerate(order)}
    results = sorted(rows.values(), key=lambda r: rank.get(r["row"], len(rank)))
    runs, index = [], {}
    for r in results:
        if r["run"] not in index:
            index[r["run"]] = len(runs)
            runs.append((old["runs"] + new["runs"])[r["run"]])
        r["run"] = index[r["run"]]
    return dict(new, runs=runs, results=results)


def write_report(data, cfg):
    md, png = cfg.markdown_path(), cfg.chart_path()
    md.parent.mkdir(parents=True, exist_ok=True)
    png.parent.mkdir(parents=True, exist_ok=True)
    chart = report.chart([r for r in data["results"] if not r.get("section") and not r.get("clip")],
                         png)
    # Hand-written notes on the rows (why a target is missed), kept across runs
    def notes(name):
        path = HERE / name
        return path.read_text() if path.exists() and not cfg.out else None
    md.write_text(report.markdown(data, os.path.relpath(png, md.parent) if chart else None,
                                  notes("codec-notes.md"), notes("mjpeg-notes.md"),
                                  notes("desktop-notes.md"), notes("host-notes.md")))
    print(f"bench: wrote {md}" + (f", {png}" if chart else " (no chart: matplotlib missing)"))


def rerender(path):
    """Writes BENCHMARKS.md and the chart again from a results.json (report changes)."""
    write_report(load_results(path), Config())
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        return rerender(sys.argv[2])
    cfg = Config()
    all_rows = rows(cfg.quick, cfg.codec_displays)
    todo = [r for r in all_rows if selected(r, cfg.only)]
    clips = {name: measure.Clip(GUEST_DIR / f) for name, f in rig_module.CLIP_FILES.items()
             if (GUEST_DIR / f).exists()}
    facts = machine_facts()
    if any(r.codec for r in todo):
        qemu = PATCHED_QEMU if cfg.codec_via == "server" else QEMU
        facts["codec_qemu"] = subprocess.run([str(qemu), "--version"], capture_output=True,
                                             text=True).stdout.split("\n")[0] + f" ({qemu})"
    extra = [(sec, sections.todo(sec, cfg.only, cfg.quick, SECTION_KEYS)) for sec in SECTIONS]
    extra = [(sec, rows_) for sec, rows_ in extra if rows_]
    print(f"bench: {len(todo)} rows x 2 servers, warm-up {cfg.warmup:g} s, measured {cfg.seconds:g} s, "
          f"guest {cfg.fps:g} fps, streaming-video=all, video codec: server default (MJPEG)"
          + (f"; H.264/VP8/VP9 rows chosen by the {cfg.codec_via}" if any(r.codec for r in todo) else "")
          + "".join(f"; then {len(rows_)} {report.SECTION_NAMES[sec.key]} rows"
                    for sec, rows_ in extra)
          + f"\nbench: ours = {lib_dir()}, C = {C_LIB_DIR} ({facts['c_server']}); {facts['qemu']}",
          flush=True)
    results = []
    started = time.monotonic()
    for row in todo:
        print(f"\n== {row.name}", flush=True)
        pair = {}
        for lib in ("ours", "c"):
            r = run_one(row, lib, cfg, clips)
            pair[lib] = r
            print("  " + summary(r), flush=True)
        results.append({"row": row.name, "display": row.display, "mode": row.mode,
                        "workload": row.workload, "rect": row.rect, "codec": row.codec,
                        "tls": row.tls, **({"clip": row.clip} if row.clip else {}),
                        "run": 0, **pair})
    for sec, _ in extra:
        results += sections.run(sec, cfg.only, SECTION_KEYS)
    facts["wall_seconds"] = round(time.monotonic() - started)
    run = {"facts": facts, "command": command_line(cfg),
           "config": vars(cfg) | {"out": str(cfg.out), "work": str(cfg.work)}}
    data = dict(run, runs=[run], results=results)
    raw = cfg.results_path()
    if cfg.only and cfg.merge and raw.exists():
        data = merge(load_results(raw), data,
                     [r.name for r in all_rows]
                     + [r.name for sec in SECTIONS for r in sec.module.rows()])
        print(f"\nbench: merged {len(results)} rows into {raw} ({len(data['results'])} rows)")
    raw.parent.mkdir(parents=True, exist_ok=True)
    # Reports name files relative to the repository, never where this clone happens to be.
    data = json.loads(json.dumps(data).replace(json.dumps(str(REPO) + "/")[1:-1], ""))
    raw.write_text(json.dumps(data, indent=1))
    write_report(data, cfg)
    print(f"bench: {raw}; {facts['wall_seconds']} s in all")
    failed = [f"{r['row']} [{lib}]" for r in results for lib in ("ours", "c")
              if "error" in r.get(lib, {})]
    if failed:
        print("bench: failed runs: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
