"""The "Guest agent and devices" rows of `make bench` (issue 12), each for spice-rs and for
Debian's C server in the same conditions:

  file transfer   a 64 MiB random file to the guest with spice-gtk's file_copy_async, MB/s
                  (sha256 checked in the guest), plain and with 20 ms added round trip (a
                  delaying relay between client and server, tests/e2e/relay.py: this machine's
                  kernel has no sch_netem for `tc netem`)
  clipboard       client grab -> the guest's X clipboard has the text, ms p50/p95
  resize          client monitor config -> a primary surface of that size on the client, ms
  port echo       spice-gtk's port channel -> guest echo -> client, MB/s
  port slow       QEMU's RSS while the client stops reading a flooding guest port

The agent rows share one boot of the Debian guest (tests/guest-debian: Xorg on qxl with the
real spice-vdagent) per server; the port rows boot the small guest (tests/guest) with its
port=NAME,echo|flood service. bench/run.py runs them (BENCH_ONLY picks rows by name);
`bench/devices.py [--lib ours|c] [--only REGEX]` runs them alone (printing the results),
e.g. for the agent token-window measurement (bench/agent_window.sh).

Knobs: BENCH_XFER_MIB (64), BENCH_CLIPBOARD_ROUNDS (20), BENCH_PORT_MIB (16),
BENCH_SLOW_SECONDS (20).
"""
import hashlib
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import guest as guest_module  # noqa: E402
import measure  # noqa: E402
from client import SpiceClient  # noqa: E402
from relay import DelayRelay  # noqa: E402
from rig import Rig, lib_dir, poll  # noqa: E402
from test_port import NAME as PORT_NAME, PortClient, port_args, rss_kib  # noqa: E402

HOST = "127.0.0.1"
C_LIB_DIR = "/lib/x86_64-linux-gnu"
SECTION = "devices"
PORT_WRITE = 64 << 10
ADDED_RTT = 0.020  # the "+20 ms round trip" rows: 10 ms each way
# Our server's line when a client sends agent data beyond its tokens (src/agent/mod.rs):
# the client did not honour the window.
BEYOND_TOKENS = re.compile(r"agent data beyond its \d+ tokens")


def envi(name, default):
    return int(os.environ.get(name, default))


@dataclass
class DeviceRow:
    name: str
    kind: str  # xfer | clipboard | resize | port_echo | port_slow
    delay: float = 0.0  # added round trip (xfer)

    @property
    def agent(self):
        return self.kind in ("xfer", "clipboard", "resize")


def rows():
    mib = envi("BENCH_XFER_MIB", 64)
    return [
        DeviceRow(f"agent file transfer {mib} MiB", "xfer"),
        DeviceRow(f"agent file transfer {mib} MiB +20 ms RTT", "xfer", ADDED_RTT),
        DeviceRow("agent clipboard round trip", "clipboard"),
        DeviceRow("agent resize", "resize"),
        DeviceRow("port channel echo", "port_echo"),
        DeviceRow("port channel slow reader", "port_slow"),
    ]


def selected(row, only):
    return not only or re.search(only, row.name) is not None


def percentile(values, pct):
    return measure.percentile(values, pct) if values else None


def expect_lib(rig, lib):
    want = os.path.realpath(lib_dir() if lib == "ours" else C_LIB_DIR)
    if os.path.dirname(rig.mapped_lib or "") != want:
        raise RuntimeError(f"QEMU mapped {rig.mapped_lib}, expected a library in {want}")


# ------------------------------------------------------------------ agent rows
class AgentVM:
    """The Debian guest with its agent, and a spice-gtk client attached to the agent."""

    def __init__(self, lib, workdir):
        guest_module.ensure_built()
        self.workdir = Path(workdir)
        kw, cmd_sock = guest_module.rig_args(self.workdir)
        self.rig = Rig(workdir=self.workdir / "rig", lib=lib, spice_opts={"agent-mouse": "on"},
                       **kw)
        self.guest = guest_module.Guest(cmd_sock)
        self.client = None
        self.relay = None
        t0 = time.monotonic()
        self.rig.start()
        try:
            expect_lib(self.rig, lib)
            guest_module.wait_booted(self.rig, self.guest)
            self.connect()
            self.boot_s = time.monotonic() - t0
        except Exception:
            self.close()
            raise

    def connect(self, delay=0.0):
        """(Re)connects the client, through a delaying relay when delay (round trip) > 0,
        and waits for the agent."""
        if self.client is None:
            self.client = SpiceClient(str(self.workdir / "client.log"))
        else:
            self.client.disconnect()
        if self.relay:
            self.relay.close()
            self.relay = None
        port = self.rig.port
        if delay:
            self.relay = DelayRelay(HOST, port, delay / 2)
            port = self.relay.port
        n = self.agent_heard()
        self.client.connect(HOST, port, timeout=90)
        self.client.wait_agent(timeout=120)
        # spice-rs tells the client an agent is there before the guest's one attached (it
        # answers for it meanwhile): wait until the guest's agent heard from this client
        # (spice-gtk sends VD_AGENT_MAX_CLIPBOARD as the agent connects).
        poll("the guest agent to hear from the client", lambda: self.agent_heard() > n, 120, 0.5)
        time.sleep(1)
        self.delay = delay

    def agent_heard(self):
        """How many times spice-vdagentd got a client's VD_AGENT_MAX_CLIPBOARD."""
        out = self.guest.run("grep -c 'Set max clipboard' /tmp/vdagentd.log", user=False,
                             check=False, timeout=10)
        return int(out.strip() or 0)

    def qemu_log(self):
        try:
            return self.rig.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def logs(self):
        """The guest agent's logs (for a failed row)."""
        out = []
        for name in ("/tmp/vdagent.log", "/tmp/vdagentd.log"):
            try:
                out.append(f"--- guest {name} ---\n{self.guest.log(name)[-2000:]}")
            except Exception as e:  # noqa: BLE001 (the guest may be what broke)
                out.append(f"--- guest {name}: {e}")
        return "\n".join(out)

    def close(self):
        if self.client:
            self.client.close()
        if self.relay:
            self.relay.close()
        self.guest.close()
        self.rig.stop()


def file_transfer(vm, row, src, digest):
    """Copies src to the guest's Downloads; MB/s from file_copy_async to its callback."""
    if vm.delay != row.delay:
        vm.connect(row.delay)
    c, g = vm.client, vm.guest
    g.run("rm -rf /home/user/Downloads/*")
    size = src.stat().st_size
    beyond0 = len(BEYOND_TOKENS.findall(vm.qemu_log()))
    fid = f"xfer{time.monotonic()}"
    c.file_copy([src], fid)
    # At least 0.2 MB/s (the C server's window at +20 ms makes ~1 MB/s).
    rec = poll("the file copy to finish", lambda: (lambda f: f and f["done"] and f)(
        c.agent()["files"].get(fid)), 60 + size / 0.2e6, 0.2)
    if rec["error"]:
        raise RuntimeError(f"the file copy failed: {rec['error']}")
    took = rec["t1"] - rec["t0"]
    out = g.run(f"cd /home/user/Downloads && stat -c %s {src.name} && "
                f"sha256sum {src.name} | cut -d' ' -f1", timeout=120).split()
    got_size, got_digest = int(out[0]), out[1]
    res = {"bytes": size, "seconds": took, "mb_s": size / took / 1e6,
           "added_rtt_ms": row.delay * 1000, "delay_by": "relay" if row.delay else None,
           "sha256_equal": got_size == size and got_digest == digest,
           "beyond_tokens": len(BEYOND_TOKENS.findall(vm.qemu_log())) - beyond0,
           "agent_connected": c.state()["agent_connected"]}
    g.run("rm -rf /home/user/Downloads/*")
    if not res["sha256_equal"]:
        raise RuntimeError(f"the guest's file differs: {got_size} B sha256 {got_digest}, "
                           f"sent {size} B {digest}")
    return res


def clipboard(vm, rounds):
    """Client grabs its clipboard with a new text; the guest pastes it (xclip in a loop in
    the guest, started before the grab: each xclip asks the agent, which asks the client).
    Time from the grab to the guest command's answer."""
    c, g = vm.client, vm.guest
    if vm.delay:
        vm.connect(0.0)
    times = []
    for i in range(rounds):
        text = f"spice-rs bench clipboard {i} {time.time():.3f}"
        answer = {}

        def paste(text=text, answer=answer):
            try:
                answer["out"] = g.run(
                    f"until [ \"$(xclip -selection clipboard -t UTF8_STRING -o 2>/dev/null)\" "
                    f"= '{text}' ]; do sleep 0.005; done; echo pasted", timeout=30)
            except Exception as e:  # noqa: BLE001 (reported below)
                answer["error"] = e
        th = threading.Thread(target=paste, daemon=True)
        th.start()
        time.sleep(0.3)  # the loop runs (pasting the previous round's text) before the grab
        t0 = time.monotonic()
        c.clipboard_offer(text)
        th.join(40)
        t1 = time.monotonic()
        if "out" not in answer:
            raise RuntimeError(f"round {i}: the guest did not paste the text: "
                               f"{answer.get('error', 'no answer')}")
        times.append((t1 - t0) * 1000)
    return {"rounds": rounds, "ms": [round(t, 1) for t in times],
            "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def resize(vm, sizes=((1280, 800), (800, 600)) * 2, settle=2.0):
    """Client monitor config (as a resized remote-viewer window) -> the client gets a
    primary surface of that size (the guest changed its mode). The guest settles for
    `settle` seconds between changes (quicker changes made it flip back to an older
    config, and once oopsed its qxl driver)."""
    c = vm.client
    if vm.delay:
        vm.connect(0.0)
    times = []
    current = c.state()["primary"]
    for w, h in sizes:
        if current and [current.get("width"), current.get("height")] == [w, h]:
            continue
        n = len(c.state()["primaries"])
        t0 = time.monotonic()
        c.resize(w, h)
        poll(f"a {w}x{h} primary surface on the client",
             lambda: [w, h] in c.state()["primaries"][n:], 30, 0.01)
        times.append((time.monotonic() - t0) * 1000)
        current = {"width": w, "height": h}
        time.sleep(settle)
    return {"samples": len(times), "ms": [round(t, 1) for t in times],
            "p50_ms": percentile(times, 50), "max_ms": max(times)}


# ------------------------------------------------------------------ port rows
def port_rig(lib, workdir, mode, nbytes=0):
    rig = Rig(display="std", workload="console", lib=lib, workdir=workdir,
              append=f"port={PORT_NAME},{mode},{nbytes}", extra_args=port_args())
    rig.start()
    try:
        expect_lib(rig, lib)
        rig.wait_serial(r"SPICE-RS-GUEST: port open round=1", timeout=120)
    except Exception:
        rig.stop()
        raise
    return rig


def port_echo(lib, workdir):
    n = envi("BENCH_PORT_MIB", 16) << 20
    rig = port_rig(lib, workdir, "echo", n)
    # In writes of PORT_WRITE bytes: spice-gtk sends each write as one SPICEVMC_DATA message.
    client = PortClient(rig, "echo", n, extra=[PORT_WRITE])
    try:
        client.until("port_init")
        r, _ = client.until("received", timeout=300)
        if not (r["received"] == n and r["same"]):
            raise RuntimeError(f"the echo came back different: {r}")
        return {"bytes": n, "write_size": PORT_WRITE, "seconds": r["seconds"],
                "mb_s": n / r["seconds"] / 1e6}
    finally:
        client.close()
        rig.stop()


def port_slow(lib, workdir):
    """The guest floods its port; the client reads, then stops reading for `pause`
    seconds: QEMU's RSS (VmRSS) from the pause's start to its peak."""
    pause = envi("BENCH_SLOW_SECONDS", 20)
    rig = port_rig(lib, workdir, "flood")
    client = PortClient(rig, "slow", pause)
    try:
        client.until("port_init")
        first, _ = client.until("reading", timeout=120)
        client.until("paused")
        t0 = time.monotonic()
        base = peak = rss_kib(rig.proc.pid)
        samples = []
        while time.monotonic() < t0 + pause - 0.5:
            v = rss_kib(rig.proc.pid)
            peak = max(peak, v)
            samples.append(v)
            time.sleep(0.25)
        done, _ = client.until("done", timeout=120)
        return {"pause_s": pause, "rss_base_kib": base, "rss_peak_kib": peak,
                "rss_growth_mib": (peak - base) / 1024, "rss_end_kib": samples[-1],
                "after_pause_bytes": done["after_pause"], "client_errors": done["errors"]}
    finally:
        client.close()
        rig.stop()


# ------------------------------------------------------------------ running
def run_lib(todo, lib, work):
    """Runs the rows for one server; {row name: result dict}."""
    out = {}
    agent_rows = [r for r in todo if r.agent]
    if agent_rows:
        vm, src, digest = None, None, None
        try:
            t0 = time.monotonic()
            vm = AgentVM(lib, work / f"agent-{lib}")
            print(f"  [{lib}] Debian guest with its agent up in {vm.boot_s:.0f} s "
                  f"({vm.rig.mapped_lib})", flush=True)
            for row in agent_rows:
                try:
                    if row.kind == "xfer":
                        if src is None:
                            src = work / "spice-rs-bench.bin"
                            data = os.urandom(envi("BENCH_XFER_MIB", 64) << 20)
                            src.write_bytes(data)
                            digest = hashlib.sha256(data).hexdigest()
                            del data
                        res = file_transfer(vm, row, src, digest)
                    elif row.kind == "clipboard":
                        res = clipboard(vm, envi("BENCH_CLIPBOARD_ROUNDS", 20))
                    else:
                        res = resize(vm)
                    if not vm.rig.alive():
                        raise RuntimeError(f"QEMU exited ({vm.rig.proc.returncode})")
                except Exception as e:  # noqa: BLE001 (a failed row is a result)
                    res = {"error": f"{type(e).__name__}: {e}"}
                    print(vm.rig.tail(15) + "\n" + vm.logs(), flush=True)
                res["lib"] = lib
                out[row.name] = res
                print(f"  {row.name} [{lib}]: {summary(row, res)}", flush=True)
            print(f"  [{lib}] agent rows took {time.monotonic() - t0:.0f} s", flush=True)
        except Exception as e:  # noqa: BLE001 (the guest did not come up)
            for row in agent_rows:
                out.setdefault(row.name, {"lib": lib, "error": f"{type(e).__name__}: {e}"})
                print(f"  {row.name} [{lib}]: FAILED {e}", flush=True)
        finally:
            if vm:
                vm.close()
            if src is not None:
                src.unlink(missing_ok=True)
    for row in todo:
        if row.agent:
            continue
        t0 = time.monotonic()
        try:
            fn = port_echo if row.kind == "port_echo" else port_slow
            res = fn(lib, work / f"{row.kind}-{lib}")
        except Exception as e:  # noqa: BLE001
            res = {"error": f"{type(e).__name__}: {e}"}
        res["lib"] = lib
        out[row.name] = res
        print(f"  {row.name} [{lib}]: {summary(row, res)} ({time.monotonic() - t0:.0f} s)",
              flush=True)
    return out


def run(only=None, libs=("ours", "c"), work=None):
    """Runs the selected rows for each server; results.json rows
    ({"row", "section": "devices", "kind", "ours": {...}, "c": {...}})."""
    todo = [r for r in rows() if selected(r, only)]
    if not todo:
        return []
    work = Path(work or REPO / "build" / "bench" / "runs" / "devices")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n== Guest agent and devices: {', '.join(r.name for r in todo)}", flush=True)
    per_lib = {lib: run_lib(todo, lib, work) for lib in libs}
    return [{"row": r.name, "section": SECTION, "kind": r.kind, "run": 0,
             **{lib: per_lib[lib][r.name] for lib in libs}} for r in todo]


def summary(row, r):
    if "error" in r:
        return f"FAILED {r['error']}"
    if row.kind == "xfer":
        extra = "" if r["beyond_tokens"] == 0 else f", {r['beyond_tokens']} beyond-token drops"
        return (f"{r['mb_s']:.2f} MB/s ({r['bytes'] >> 20} MiB in {r['seconds']:.1f} s, "
                f"sha256 equal {r['sha256_equal']}{extra})")
    if row.kind == "clipboard":
        return f"p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms over {r['rounds']} rounds"
    if row.kind == "resize":
        return f"p50 {r['p50_ms']:.0f} ms, max {r['max_ms']:.0f} ms over {r['samples']} changes"
    if row.kind == "port_echo":
        return f"{r['mb_s']:.2f} MB/s ({r['bytes'] >> 20} MiB there and back in {r['seconds']:.1f} s)"
    return (f"QEMU RSS {r['rss_base_kib'] / 1024:.0f} MiB, +{r['rss_growth_mib']:.1f} MiB over "
            f"{r['pause_s']} s without reading; {r['after_pause_bytes'] >> 20} MiB after")


def main():
    import argparse
    import json
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", action="append", choices=("ours", "c"),
                   help="server(s) to run (default both)")
    p.add_argument("--only", help="rows whose name matches this regex")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--work", help="work directory (default build/bench/runs/devices)")
    a = p.parse_args()
    results = run(a.only, tuple(a.lib or ("ours", "c")), a.work)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    failed = [r["row"] for r in results for lib in ("ours", "c") if "error" in r.get(lib, {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
