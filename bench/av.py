"""The "Audio and video in step" rows of `make bench` (issue 13), for spice-rs and for
Debian's C server in the same conditions.

The Debian guest (tests/guest-debian) plays avplay (tests/guest-debian/avplay.c): a beep
and a flash frame at the start of every second, the video drawn on the guest's ALSA clock
as a real player does. spice-gtk (tests/e2e/client.py) stands in for an audio backend of
latency D (spice_playback_channel_set_delay(D) every second, as its GStreamer backend
does). Per second: skew = (client shows the flash) - (beep's samples arrive + D); p50/p95,
the video latency (the guest's serial line as it draws the flash -> the client shows it),
the frames the client showed per second and the ones it dropped as late
(tests/e2e/avsync.py measures; test_av_sync.py asserts on the same numbers).

bench/run.py runs these rows (BENCH_ONLY=av: only them); `bench/av.py [--lib ours|c]`
runs them alone and prints the results. Knob: BENCH_AV_SECONDS (20).
"""
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import avsync  # noqa: E402
import sections  # noqa: E402

SECTION = "av"


@dataclass
class AvRow:
    name: str
    delay_ms: int
    kind: str = "av"


def rows():
    return [AvRow(f"A/V skew, audio backend {d} ms", d) for d in (30, 150)]


def selected(row, only):
    return not only or only == "av" or re.search(only, row.name) is not None


def seconds():
    return int(os.environ.get("BENCH_AV_SECONDS", 20))


def result(r):
    """What results.json keeps of one measurement: the summary, per-second skews."""
    out = {k: (round(v, 1) if isinstance(v, float) else v)
           for k, v in avsync.summary(r).items()}
    out["skew_ms"] = {str(k): round(v, 1) for k, v in r["skew_ms"].items()}
    out["playback_starts"] = r["playback_starts"]
    out["player"] = r["player"]
    return out


def boot(lib, work):
    vm = avsync.AvVM(lib, work / f"av-{lib}")
    print(f"  [{lib}] Debian guest with avplay up in {vm.boot_s:.0f} s "
          f"({vm.rig.mapped_lib})", flush=True)
    return vm


def measure(vm, row):
    res = result(vm.measure(seconds(), row.delay_ms, tag=f"av-{row.delay_ms}"))
    if not vm.rig.alive():
        raise RuntimeError(f"QEMU exited ({vm.rig.proc.returncode})")
    return res


def run(only=None, libs=("ours", "c"), work=None):
    """Runs the selected rows for each server; results.json rows
    ({"row", "section": "av", "kind", "delay_ms", "ours": {...}, "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / "av")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n== Audio and video in step: {', '.join(r.name for r in todo)}", flush=True)
    got = sections.run_boots({"av": todo}, libs, lambda lib, _: boot(lib, work), measure,
                             summary, label=lambda _: "A/V rows")
    return [{"row": r.name, "section": SECTION, "kind": r.kind, "delay_ms": r.delay_ms,
             "run": 0, **{lib: got[(lib, r.name)] for lib in libs}} for r in todo]


def summary(r):
    if "error" in r:
        return f"FAILED {r['error']}"

    def ms(v):
        return "-" if v is None else f"{v:.0f}"
    return (f"skew p50 {ms(r['skew_p50_ms'])} ms, p95 {ms(r['skew_p95_ms'])} ms, "
            f"|skew| p95 {ms(r['abs_skew_p95_ms'])} ms over {r['seconds_judged']} s "
            f"({r['seconds_near_restart']} s near an audio restart left out; with them "
            f"{ms(r['abs_skew_p95_all_ms'])} ms); video "
            f"latency p50 {ms(r['video_latency_p50_ms'])} ms; {r['shown_fps_while_audio']} "
            f"frames/s shown, {r['late_dropped']} dropped late; audio (re)starts "
            f"{r['playback_starts']}")


def main():
    return sections.script_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
