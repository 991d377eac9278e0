"""A spiceport chardev (port channel 10) with a real guest and spice-gtk's port channel.

The guest (tests/guest/init, port=NAME,MODE,BYTES) opens its virtio-serial port in
rounds: "echo" sends BYTES bytes back and closes, "flood" writes zeros as fast as they
are taken. spice-gtk (tests/e2e/port_client.py) plays the client.
"""
import json
import os
import select
import subprocess
import time

from client import PY

NAME = "org.example.test"
HERE = os.path.dirname(__file__)


def port_args(name=NAME):
    return ["-device", "virtio-serial",
            "-chardev", f"spiceport,id=p0,name={name}",
            "-device", f"virtserialport,chardev=p0,name={name}"]


class PortClient:
    """port_client.py in a subprocess; its JSON lines as dicts."""

    def __init__(self, rig, mode, arg, name=NAME, extra=()):
        self.proc = subprocess.Popen(
            [PY, os.path.join(HERE, "port_client.py"), "127.0.0.1", str(rig.port), name,
             mode, str(arg), *map(str, extra)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(rig.dir / "port-client.log", "ab"))
        self.buf = b""

    def next(self, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError("port client said nothing")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"port client exited ({self.proc.wait()})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, key, timeout=60):
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next(max(0.1, deadline - time.monotonic()))
            seen.append(msg)
            if key in msg:
                return msg, seen

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_port_echo_and_open_close_events(make_rig):
    n = 256 << 10
    rig = make_rig(display="std", workload="console", append=f"port={NAME},echo,{n}",
                   extra_args=port_args())
    rig.wait_serial(r"SPICE-RS-GUEST: port open round=1", timeout=120)
    client = PortClient(rig, "echo", n)
    try:
        init, _ = client.until("port_init")
        assert init["port_init"] == NAME
        result, seen = client.until("received", timeout=120)
        assert result["written"].get("n") == n, result
        assert result["received"] == n and result["same"], "the guest's echo comes back unchanged"
        print(f"port echo: {n} bytes there and back in {result['seconds']:.2f} s")
        # The guest closes the port after its round and reopens it: both events reach
        # spice-gtk, in that order.
        done, _ = client.until("done", timeout=30)
        events = done["events"]
        assert events[-2:] == [1, 0], f"port events seen by the client: {events}"
        assert not done["errors"], done
        # The guest's new round waits for data while the client is there...
        start = len(rig.serial())
        m = rig.wait_serial(r"SPICE-RS-GUEST: port open round=(\d+)", timeout=10,
                            start=max(0, start - 200))
        time.sleep(2)
        last = int(rig.serial().split("port open round=")[-1].split()[0])
        assert f"port closed round={last}" not in rig.serial(), "the guest's read did not wait"
        # ...and ends when the client leaves (the guest reads end-of-file).
        client.go()
        rig.wait_serial(rf"SPICE-RS-GUEST: port closed round={last}\b", timeout=15)
        assert m is not None
    finally:
        client.close()


def test_port_slow_reader_keeps_qemu_memory_bounded(make_rig):
    rig = make_rig(display="std", workload="console", append=f"port={NAME},flood,0",
                   extra_args=port_args())
    rig.wait_serial(r"SPICE-RS-GUEST: port open round=1", timeout=120)
    pause = 8
    client = PortClient(rig, "slow", pause)
    try:
        client.until("port_init")
        msg, _ = client.until("reading", timeout=120)
        client.until("paused")
        base = rss_kib(rig.proc.pid)
        peak = base
        end = time.monotonic() + pause - 1
        while time.monotonic() < end:
            peak = max(peak, rss_kib(rig.proc.pid))
            time.sleep(0.2)
        growth = (peak - base) / 1024
        print(f"port slow reader: QEMU RSS {base / 1024:.0f} MiB, +{growth:.1f} MiB "
              f"over {pause} s without reading")
        assert growth < 32, f"QEMU grew {growth:.1f} MiB while the client did not read"
        done, _ = client.until("done", timeout=90)
        assert done["after_pause"] > 16 << 20, "data flows again once the client reads"
        assert not done["errors"], done
    finally:
        client.close()
