#!/usr/bin/python3
"""The "A host full of VMs" rows of `make bench` (issue 15): what each VM costs the host
while it does nothing, for spice-rs and for Debian's C server in the same conditions.

1, then 4, then 8 tiny VMs (the test guest, TCG, 128 MiB, qxl, the console workload: a
screen of text that never changes) run side by side, first with no client, then each with
its own spice-gtk client connected; then one of the 8 is replaced by a VM playing the
video clip (streaming-video=all, MJPEG, a 640x360 window at 30 frames/s) with its client,
and the other 7 are measured again: their cost must not change. Per VM, over a window of
BENCH_HOST_SECONDS (10):

  threads      of the QEMU process at the window's end, and those the SPICE library
               started (by name: ours spice-*, the C server's "SPICE Worker"; GStreamer's
               would show in the name list)
  wake-ups/s   voluntary context switches of QEMU's threads other than the vCPU's
               (/proc/PID/task/*/status): each is a thread going to sleep after running,
               so one per poll timeout, timer or message; the guest's own ticks (its
               vCPU thread) are left out, they are the same with either server
  server CPU   QEMU's CPU minus the vCPU thread's, as a share of one core
  RSS, PSS     of the QEMU process (/proc/PID/smaps_rollup)

bench/run.py runs these rows (BENCH_ONLY=host, or a regex on the row names);
`bench/host.py [--lib ours|c]` runs them alone and prints the results.
Knobs: BENCH_HOST_SECONDS (10), BENCH_HOST_VMS (1,4,8), BENCH_HOST_SETTLE (5: seconds
after the VMs booted or the clients connected before measuring).
"""
import os
import re
import shutil
import sys
import time
from collections import Counter
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

SECTION = "host"
IDLE_MEM, VIDEO_MEM = 128, 512  # MiB; the video VM keeps the clip in its page cache
VIDEO_MODE, VIDEO_RECT, VIDEO_FPS = "1280x720", "640x360+320+180", 30


@dataclass
class HostRow:
    vms: int
    client: bool
    video: bool = False   # one of the VMs plays the video clip
    which: str = "idle"   # idle | video: which VMs the row reports

    @property
    def name(self):
        if self.video:
            return (f"host {self.vms} VMs, one playing video: "
                    + ("the idle ones" if self.which == "idle" else "the one playing"))
        s = "s" if self.vms > 1 else ""
        return (f"host {self.vms} idle VM{s}, "
                + (f"client{s} connected" if self.client else "no client"))


def counts():
    return [int(n) for n in os.environ.get("BENCH_HOST_VMS", "1,4,8").split(",") if n]


def rows():
    out = [HostRow(n, c) for n in counts() for c in (False, True)]
    top = max(counts())
    return out + [HostRow(top, True, True, "idle"), HostRow(top, True, True, "video")]


def selected(row, only):
    return not only or only == SECTION or re.search(only, row.name) is not None


def envf(name, default):
    return float(os.environ.get(name, default))


def library_thread(comm):
    """Threads the SPICE library started, or GStreamer for it: a pad's streaming task
    ("appsrc3:src") and GLib's thread pool ("pool-qemu-syste", "pool-spawner"); QEMU's
    own pool threads are named "worker"."""
    return measure.is_server_thread(comm) or ":" in comm or comm.startswith(("gst", "pool-"))


class VM:
    """One QEMU with the tiny guest, and its spice-gtk client when connected."""

    def __init__(self, lib, workdir, video=False):
        append = f"fps={VIDEO_FPS} video_rect={VIDEO_RECT}" if video else ""
        self.video = video
        self.rig = measure.BenchRig(
            display="qxl", workload="video" if video else "console", lib=lib,
            workdir=workdir, mem=VIDEO_MEM if video else IDLE_MEM,
            video=VIDEO_MODE if video else None, append=append,
            spice_opts={"streaming-video": "all"},
            extra_args=["-name", "host,debug-threads=on"])  # thread names
        self.client = None
        self.rig.start()
        expect_lib(self.rig, lib)

    def wait_booted(self):
        self.rig.wait_serial(r"workload \w+ running", timeout=300)

    def connect(self):
        if self.client is None:
            self.client = SpiceClient(log_path=self.rig.dir / "client.log")
        self.client.connect("127.0.0.1", self.rig.port, timeout=120)
        self.client.wait(lambda s: s["first_frame_s"] is not None, 60, "first drawing")

    def disconnect(self):
        if self.client:
            self.client.close()
            self.client = None

    def snapshot(self):
        pid = self.rig.proc.pid
        return {"cpu": measure.cpu_ticks(pid), "switches": measure.thread_switches(pid)}

    def result(self, a, b, seconds):
        pid = self.rig.proc.pid
        cpu = measure.cpu_delta(a["cpu"], b["cpu"], pid)
        names = Counter(comm for comm, _, _ in b["switches"].values())
        wake, forced, per = 0, 0, {}
        for tid, (comm, vol, invol) in b["switches"].items():
            if measure.is_vcpu_thread(comm):
                continue
            _, vol0, invol0 = a["switches"].get(tid, (comm, 0, 0))
            wake += vol - vol0
            forced += invol - invol0
            if vol > vol0:
                per[f"{comm}#{tid}"] = round((vol - vol0) / seconds, 2)
        lib_threads = sorted(c for c in names.elements() if library_thread(c))
        lib_wake = sum(v for k, v in per.items() if library_thread(k.rsplit("#", 1)[0]))
        mem = measure.memory_kib(pid)
        return {"threads": sum(names.values()), "thread_names": dict(names),
                "library_threads": lib_threads,
                "wakeups_per_s": round(wake / seconds, 2),
                "library_wakeups_per_s": round(lib_wake, 2),
                "preemptions_per_s": round(forced / seconds, 2),
                "wakeups_by_thread": dict(sorted(per.items(), key=lambda kv: -kv[1])),
                "cpu_server_side_pct": round(100 * cpu["server_side"] / seconds, 3),
                "cpu_library_pct": round(100 * sum(
                    v for k, v in cpu["threads"].items()
                    if library_thread(k.rsplit("#", 1)[0])) / seconds, 3),
                "rss_kib": mem.get("rss"), "pss_kib": mem.get("pss"),
                "client": self.client is not None, "video": self.video}

    def close(self):
        self.disconnect()
        self.rig.stop()


def measure_vms(vms, seconds):
    """Every VM over the same window: [per-VM result]."""
    a = [vm.snapshot() for vm in vms]
    t0 = time.monotonic()
    time.sleep(seconds)
    b = [vm.snapshot() for vm in vms]
    dur = time.monotonic() - t0
    for vm in vms:
        if not vm.rig.alive():
            raise RuntimeError(f"QEMU exited ({vm.rig.proc.returncode})")
    return [vm.result(x, y, dur) for vm, x, y in zip(vms, a, b)]


MEAN_KEYS = ("threads", "wakeups_per_s", "library_wakeups_per_s", "preemptions_per_s",
             "cpu_server_side_pct", "cpu_library_pct", "rss_kib", "pss_kib")


def summarize(per_vm, seconds):
    """A row's result: the mean per VM (and the largest), every VM's numbers."""
    n = len(per_vm)
    mean = {k: round(sum(v[k] for v in per_vm) / n, 2) for k in MEAN_KEYS}
    most = {k: max(v[k] for v in per_vm) for k in MEAN_KEYS}
    return {"seconds": seconds, "vm_count": n, "mean": mean, "max": most,
            "library_threads": per_vm[0]["library_threads"], "vms": per_vm}


def run_lib(todo, lib, work):
    """Boots the VMs for one server and measures the rows in `todo` as it goes."""
    out = {}
    names = {r.name for r in todo}
    seconds, settle = envf("BENCH_HOST_SECONDS", 10), envf("BENCH_HOST_SETTLE", 5)
    vms = []

    def record(row, per_vm):
        if row.name in names:
            out[row.name] = dict(summarize(per_vm, seconds), lib=lib)
            print(f"  {row.name} [{lib}]: {summary(out[row.name])}", flush=True)

    try:
        t0 = time.monotonic()
        for n in counts():
            for vm in vms:
                vm.disconnect()
            fresh = [VM(lib, work / f"{lib}-vm{i}") for i in range(len(vms), n)]
            vms += fresh
            for vm in fresh:
                vm.wait_booted()
            if {HostRow(n, False).name, HostRow(n, True).name} & names:
                time.sleep(settle)
                record(HostRow(n, False), measure_vms(vms, seconds))
            if HostRow(n, True).name in names:
                for vm in vms:
                    vm.connect()
                time.sleep(settle)
                record(HostRow(n, True), measure_vms(vms, seconds))
        video_rows = [r for r in todo if r.video]
        if video_rows:
            vms.pop().close()
            vms.append(VM(lib, work / f"{lib}-video", video=True))
            vms[-1].wait_booted()
            for vm in vms:
                if vm.client is None:
                    vm.connect()
            time.sleep(settle)
            got = measure_vms(vms, seconds)
            for r in video_rows:
                record(r, [g for g in got if g["video"] == (r.which == "video")])
        print(f"  [{lib}] host rows took {time.monotonic() - t0:.0f} s", flush=True)
    except Exception as e:  # noqa: BLE001 (a failed row is a result)
        for row in todo:
            out.setdefault(row.name, {"lib": lib, "error": f"{type(e).__name__}: {e}"})
        print(f"  [{lib}] host rows FAILED: {e}", flush=True)
        if vms:
            print(vms[-1].rig.tail(15), flush=True)
    finally:
        for vm in vms:
            vm.close()
    return out


def run(only=None, libs=("ours", "c"), work=None):
    """Runs the selected rows for each server; results.json rows
    ({"row", "section": "host", "vms", "client", "video", "which", "ours": {...},
    "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / "host")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n== A host full of VMs: {len(todo)} rows", flush=True)
    per_lib = {lib: run_lib(todo, lib, work) for lib in libs}
    return [{"row": r.name, "section": SECTION, "vms": r.vms, "client": r.client,
             "video": r.video, "which": r.which, "run": 0,
             **{lib: per_lib[lib][r.name] for lib in libs}} for r in todo]


def summary(r):
    if "error" in r:
        return f"FAILED {r['error']}"
    m = r["mean"]
    return (f"per VM: {m['threads']:.1f} threads ({', '.join(r['library_threads'])}), "
            f"{m['wakeups_per_s']:.1f} wake-ups/s ({m['library_wakeups_per_s']:.1f} in the "
            f"library), server CPU {m['cpu_server_side_pct']:.2f}%, RSS "
            f"{m['rss_kib'] / 1024:.1f} MiB, PSS {m['pss_kib'] / 1024:.1f} MiB")


def main():
    return sections.script_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
