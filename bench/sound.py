"""The "Sound" rows of `make bench` (issue 13), each for spice-rs and for Debian's C server
in the same conditions: the Debian guest (tests/guest-debian) plays the sound tests' signal
(tests/e2e/sound.py: tones with a 3 kHz marker each second) with aplay on QEMU's HDA card
(`-audiodev spice`), spice-gtk's playback channel receives it (tests/e2e/client.py), and
sound.py judges what arrived. The client reaches the server through tests/e2e/relay.py, which
counts each channel's bytes and, for the throttled rows, limits the link to the client.

  playback Opus / raw      playback channel bytes per second of audio (TCP payload, SPICE
                           headers included, counted in the relay), QEMU's CPU per second of
                           audio (its utime+stime while playing, minus the same guest idle
                           for as long), marker latency p50/p95 (the guest's serial line
                           -> the client's playback-data), gaps and glitches per minute
  ... client link N        the same with the relay carrying at most N to the client (real
                           TCP backpressure: it reads from the server only what the link
                           took), what a listener gets: gaps, glitches, latency; the client
                           connects anew through it, the tones start once the link is quiet
  record                   the client loops the signal into its record channel while the
                           guest's arecord captures; the first non-silent sample's delay
                           after arecord started, gaps and glitches

One boot of the guest per playback mode (Opus, the default, and raw:
`-spice playback-compression=off`) and server; record runs in the Opus boot. bench/run.py
runs them (BENCH_ONLY=sound, or a regex on the row names); `bench/sound.py [--lib ours|c]
[--only REGEX]` runs them alone.

Knobs: BENCH_SOUND_SECONDS (20 s of tone per playback row), BENCH_SOUND_IDLE (15 s idle
baseline), BENCH_RECORD_SECONDS (10).
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
import guest as guest_module  # noqa: E402
import measure  # noqa: E402
import sound as sound_module  # noqa: E402
from client import SpiceClient  # noqa: E402
from devices import expect_lib  # noqa: E402
from relay import DelayRelay  # noqa: E402
from rig import Rig  # noqa: E402
from test_sound import AUDIO  # noqa: E402

HOST = "127.0.0.1"
SECTION = "sound"
PLAYBACK, RECORD = 5, 6  # SPICE channel types


def envf(name, default):
    return float(os.environ.get(name, default))


@dataclass
class SoundRow:
    name: str
    kind: str        # playback | record
    mode: str        # opus | raw (the boot's playback-compression)
    rate: int = 0    # bytes/s of the link to the client; 0: unlimited

    @property
    def link(self):
        return f"{self.rate * 8 / 1000:g} kbit/s" if self.rate else None


def rows():
    return [
        SoundRow("sound playback Opus", "playback", "opus"),
        SoundRow("sound playback raw", "playback", "raw"),
        SoundRow("sound playback Opus, client link 64 kbit/s", "playback", "opus", 8000),
        SoundRow("sound playback raw, client link 1 Mbit/s", "playback", "raw", 125000),
        SoundRow("sound record", "record", "opus"),
    ]


def selected(row, only):
    return not only or re.search(only, row.name) is not None


def percentile(values, pct):
    return round(measure.percentile(values, pct), 1) if values else None


class SoundVM:
    """The Debian guest on QEMU's HDA card, a spice-gtk client through a relay."""

    def __init__(self, lib, mode, workdir):
        guest_module.ensure_built()
        self.workdir = Path(workdir)
        kw, cmd_sock = guest_module.rig_args(self.workdir, agent=False, extra=AUDIO)
        opts = {"playback-compression": "off"} if mode == "raw" else {}
        self.rig = Rig(workdir=self.workdir / "rig", lib=lib, spice_opts=opts, **kw)
        self.guest = guest_module.Guest(cmd_sock)
        self.client = self.relay = None
        t0 = time.monotonic()
        self.rig.start()
        try:
            expect_lib(self.rig, lib)
            guest_module.wait_booted(self.rig, self.guest)
            for ctl in ("Master", "PCM"):  # as test_sound: full volume, unmuted
                self.guest.run(f"amixer -c 0 sset {ctl} 100% unmute", user=False, check=False)
            self.guest.run("amixer -c 0 sset Capture 100% cap", user=False, check=False)
            self.connect()
            self.boot_s = time.monotonic() - t0
        except Exception:
            self.close()
            raise

    def connect(self, rate=0):
        """(Re)connects the client through a new relay (rate: its link to the client)."""
        if self.client is None:
            self.client = SpiceClient(str(self.workdir / "client.log"))
        else:
            self.client.disconnect()
        if self.relay:
            self.relay.close()
        self.relay = DelayRelay(HOST, self.rig.port, delay=0.0, rate=rate or None)
        self.rate = rate
        self.client.connect(HOST, self.relay.port, timeout=90)
        self.client.wait(lambda s: any(n.startswith("playback") for n in s["open"]) and
                         any(n.startswith("record") for n in s["open"]), 30,
                         "the playback and record channels")
        # The display channel's first picture (a few hundred kB) takes long on a slow
        # link: the link is quiet before the audio starts.
        self.wait_quiet(2.0, 120)

    def wait_quiet(self, quiet_s, timeout):
        """Until the channels got less than 512 bytes in quiet_s (the client's link is idle
        but for the odd ping)."""
        def total():
            return sum(down for down, _ in self.relay.bytes_by_channel().values())
        deadline = time.monotonic() + timeout
        last = total()
        while True:
            time.sleep(quiet_s)
            now = total()
            if now - last < 512:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the client's link was still busy after {timeout} s")
            last = now

    def cpu_s(self):
        return measure.cpu_ticks(self.rig.proc.pid)["total"] / measure.CLK_TCK

    def client_cpu_s(self):
        return measure.cpu_ticks(self.client.proc.pid)["total"] / measure.CLK_TCK

    def wire(self, channel):
        return self.relay.bytes_by_channel().get(channel, [0, 0])

    def close(self):
        if self.client:
            self.client.close()
        if self.relay:
            self.relay.close()
        self.guest.close()
        self.rig.stop()


def idle_cpu(vm, seconds):
    """QEMU's CPU per wall second with the guest idle and the client connected."""
    c0, t0 = vm.cpu_s(), time.monotonic()
    time.sleep(seconds)
    return (vm.cpu_s() - c0) / (time.monotonic() - t0)


def playback(vm, row, seconds, idle, tag):
    idle_rate, idle_s = idle
    if vm.rate != row.rate:
        vm.connect(row.rate)
    w0, c0, t0 = vm.wire(PLAYBACK), vm.cpu_s(), time.monotonic()
    k0, h0 = vm.client_cpu_s(), measure.host_busy()
    res, summ, snd = sound_module.measure_playback(
        vm.rig.serial_path, vm.guest, vm.client, seconds, tag, vm.workdir / f"{tag}.pcm",
        qemu_log=vm.rig.stderr_path)
    wall, cpu, w1 = time.monotonic() - t0, vm.cpu_s() - c0, vm.wire(PLAYBACK)
    # What else kept the host busy meanwhile (other builds, tests): CPU numbers of a row
    # with much of it are less comparable.
    others = max(0.0, measure.host_busy() - h0 - cpu - (vm.client_cpu_s() - k0))
    (vm.workdir / f"{tag}.pcm").unlink(missing_ok=True)
    # Unthrottled: the markers until the first dropped sample (analyse()): QEMU's HDA codec
    # drops buffers when its timer runs late (HDA overruns), and the guest's stream then
    # runs that far ahead of its clock. Throttled: every marker, counted on by spacing
    # (the server's drops do not move the guest's clock; an overrun errs by 43 ms there).
    lat = (res.get("marker_latency_ms") if row.rate else res.get("latency_ms")) or []
    out = {"audio_s": seconds, "link_bytes_s": row.rate or None,
           "wire_bytes": w1[0] - w0[0], "wire_bytes_s": round((w1[0] - w0[0]) / seconds),
           "pcm_bytes_s": summ["bytes_per_s"],
           "cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "idle_cpu_rate": round(idle_rate, 4),
           "idle_s": idle_s, "seconds": round(wall, 2), "cpu_others": round(others, 2),
           # QEMU's CPU beyond what the idle guest takes in the same wall time, per second
           # of audio.
           "cpu_ms_per_audio_s": round(1000 * (cpu - idle_rate * wall) / seconds, 1),
           "latency_p50_ms": percentile(lat, 50), "latency_p95_ms": percentile(lat, 95),
           "latency_ms": lat, "latency_markers": len(lat),
           "latency_all_ms": res.get("marker_latency_ms"), "markers": res.get("markers"),
           "gaps": res.get("gaps"), "gaps_per_min": round(res.get("gaps_per_min", 0), 2),
           "sample_drops": res.get("sample_drops"), "silent_spans": res.get("silent_spans"),
           "glitches": res.get("glitches"), "glitches_per_min": res.get("glitches_per_min"),
           "seconds_judged": res.get("seconds_judged"), "snr_db": res.get("snr_db"),
           "received_s": round(res.get("seconds", 0), 2),
           "qemu_hda_overruns": res.get("qemu_hda_overruns"),
           "qemu_timer_delayed": res.get("qemu_timer_delayed"),
           "client_starts": len(snd["playback"]["starts"]) if snd["playback"] else 0}
    if not res.get("markers"):
        raise RuntimeError(f"no marker reached the client: {res}")
    return out


def record(vm, seconds):
    if vm.rate:
        vm.connect(0)
    w0 = vm.wire(RECORD)
    res, snd = sound_module.measure_record(vm.guest, vm.client, seconds,
                                           vm.workdir / "record-src.pcm")
    w1 = vm.wire(RECORD)
    if res.get("first_sound_s") is None:
        raise RuntimeError("the guest recorded silence")
    return {"audio_s": seconds, "first_sample_ms": round(res["first_sound_s"] * 1000, 1),
            "wire_up_bytes_s": round((w1[1] - w0[1]) / seconds),
            "gaps": res.get("gaps"), "gaps_per_min": round(res.get("gaps_per_min", 0), 2),
            "glitches": res.get("glitches"), "glitches_per_min": res.get("glitches_per_min"),
            "glitch_at_s": res.get("glitch_at_s"), "markers": res.get("markers"),
            "snr_db": res.get("snr_db"), "silent_spans": res.get("silent_spans")}


# ------------------------------------------------------------------ running
def run_lib(todo, lib, work):
    """The rows for one server; {row name: result dict}."""
    out = {}
    seconds = int(envf("BENCH_SOUND_SECONDS", 20))
    for mode in ("opus", "raw"):
        mine = [r for r in todo if r.mode == mode]
        if not mine:
            continue
        vm = None
        try:
            vm = SoundVM(lib, mode, work / f"{mode}-{lib}")
            idle_s = envf("BENCH_SOUND_IDLE", 15)
            idle = (idle_cpu(vm, idle_s), idle_s)
            print(f"  [{lib}] Debian guest ({mode}) up in {vm.boot_s:.0f} s, idle QEMU "
                  f"{100 * idle[0]:.0f}% of a core ({vm.rig.mapped_lib})", flush=True)
            # Unthrottled rows first, the throttled ones last (one reconnect).
            for i, row in enumerate(sorted(mine, key=lambda r: r.rate)):
                t0 = time.monotonic()
                try:
                    if row.kind == "record":
                        res = record(vm, int(envf("BENCH_RECORD_SECONDS", 10)))
                    else:
                        res = playback(vm, row, seconds, idle, f"{mode}{i}")
                    if not vm.rig.alive():
                        raise RuntimeError(f"QEMU exited ({vm.rig.proc.returncode})")
                except Exception as e:  # noqa: BLE001 (a failed row is a result)
                    res = {"error": f"{type(e).__name__}: {e}"}
                    print(vm.rig.tail(15), flush=True)
                res["lib"] = lib
                out[row.name] = res
                print(f"  {row.name} [{lib}]: {summary(row, res)} "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 (the guest did not come up)
            for row in mine:
                out.setdefault(row.name, {"lib": lib, "error": f"{type(e).__name__}: {e}"})
                print(f"  {row.name} [{lib}]: FAILED {e}", flush=True)
        finally:
            if vm:
                vm.close()
    return out


def run(only=None, libs=("ours", "c"), work=None):
    """The selected rows for each server; results.json rows
    ({"row", "section": "sound", "kind", "mode", "link_bytes_s", "ours": {...}, "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / "sound")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n== Sound: {', '.join(r.name for r in todo)}", flush=True)
    per_lib = {lib: run_lib(todo, lib, work) for lib in libs}
    return [{"row": r.name, "section": SECTION, "kind": r.kind, "mode": r.mode,
             "link_bytes_s": r.rate or None, "run": 0,
             **{lib: per_lib[lib][r.name] for lib in libs}} for r in todo]


def summary(row, r):
    if "error" in r:
        return f"FAILED {r['error']}"
    if row.kind == "record":
        return (f"first sample {r['first_sample_ms']:.0f} ms, gaps {r['gaps']}, glitches "
                f"{r['glitches']} in {r['audio_s']} s, up {r['wire_up_bytes_s'] / 1000:.1f} kB/s")
    return (f"{r['wire_bytes_s'] / 1000:.1f} kB/s on the wire, CPU {r['cpu_ms_per_audio_s']:.0f} "
            f"ms per audio s, latency p50 {r['latency_p50_ms']} p95 {r['latency_p95_ms']} ms, "
            f"gaps/min {r['gaps_per_min']}, glitches/min {r['glitches_per_min']}, "
            f"received {r['received_s']} s of {r['audio_s']}, HDA overruns {r['qemu_hda_overruns']}")


def main():
    import argparse
    import json
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", action="append", choices=("ours", "c"),
                   help="server(s) to run (default both)")
    p.add_argument("--only", help="rows whose name matches this regex")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--work", help="work directory (default build/bench/runs/sound)")
    a = p.parse_args()
    libs = tuple(a.lib or ("ours", "c"))
    results = run(a.only, libs, a.work)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 1 if any("error" in r.get(lib, {}) for r in results for lib in libs) else 0


if __name__ == "__main__":
    sys.exit(main())
