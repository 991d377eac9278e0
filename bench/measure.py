"""What one benchmark run measures, and how (see BENCHMARKS.md, "How measured").

    BenchRig      the e2e Rig with the guest's serial console on a socket, every line
                  time-stamped on arrival (frame N shown: "SPICE-RS-FRAME: N")
    cpu_ticks     per-thread CPU of a process from /proc/PID/task/*/stat
    thread_switches  per-thread context switches (wake-ups) from /proc/PID/task/*/status
    memory_kib    RSS and PSS of a process (/proc/PID/smaps_rollup)
    server_side   QEMU's CPU minus its vCPU threads ("CPU n/TCG", "CPU n/KVM")
    wire_bytes    bytes on the server's TCP connections (kernel tcp_info via `ss`)
    delivered     the frames the client showed, from its stamp readings
    psnr          a client snapshot against the source frame its stamp names
    stream_codecs the codecs spice-gtk built decoders for (its debug log)
"""
import bisect
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from rig import Rig  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
STAMP_ROWS = 32  # the stamp's height in the video region (tests/guest/workload.c)


class BenchRig(Rig):
    """A Rig whose serial console is read live: lines still go to serial.log (so
    wait_serial works), and each "SPICE-RS-FRAME: N" line is kept as (arrival time, N)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.serial_sock = self.dir / "serial.sock"
        self.frames = []  # [(time.monotonic() at arrival, stamp N)]
        self._reader = None
        self._stop = threading.Event()

    def argv(self):
        a = super().argv()
        i = a.index("-serial")
        a[i + 1] = f"unix:{self.serial_sock},server=on,wait=off"
        return a

    def start(self, qmp_timeout=30):
        if self.serial_sock.exists():
            self.serial_sock.unlink()
        super().start(qmp_timeout)
        self._reader = threading.Thread(target=self._read_serial, daemon=True)
        self._reader.start()
        return self

    def _read_serial(self):
        deadline = time.monotonic() + 30
        s = socket.socket(socket.AF_UNIX)
        while True:
            try:
                s.connect(str(self.serial_sock))
                break
            except OSError:
                if time.monotonic() > deadline or self._stop.is_set():
                    return
                time.sleep(0.01)
        rx = re.compile(rb"SPICE-RS-FRAME: (\d+)")
        buf = b""
        with s, open(self.serial_path, "ab", buffering=0) as log:
            while not self._stop.is_set():
                try:
                    chunk = s.recv(65536)
                except OSError:
                    return
                t = time.monotonic()
                if not chunk:
                    return
                log.write(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    m = rx.search(line)
                    if m:
                        self.frames.append((t, int(m.group(1))))

    def stop(self, timeout=15):
        rc = super().stop(timeout)
        self._stop.set()
        if self._reader:
            self._reader.join(2)
        return rc


# ------------------------------------------------------------------------ CPU
def _stat_ticks(path):
    """(comm, utime + stime in ticks) from a /proc stat file (comm may hold spaces)."""
    data = Path(path).read_text()
    comm = data[data.index("(") + 1:data.rindex(")")]
    f = data[data.rindex(")") + 2:].split()
    return comm, int(f[11]) + int(f[12])


def cpu_ticks(pid):
    """{"total": ticks of the whole process (exited threads included),
        "threads": {tid: (comm, ticks)}}"""
    _, total = _stat_ticks(f"/proc/{pid}/stat")
    threads = {}
    for d in Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[int(d.name)] = _stat_ticks(d / "stat")
        except (OSError, ValueError):
            pass  # the thread ended meanwhile
    return {"total": total, "threads": threads}


def thread_switches(pid):
    """{tid: (comm, voluntary, involuntary context switches)} of a process's live threads.
    A voluntary switch is the thread going to sleep: one per wake-up (poll timeouts,
    timers, messages); involuntary ones are preemptions, which the host's load makes."""
    out = {}
    for d in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (d / "comm").read_text().rstrip("\n")
            f = dict(line.split(":\t", 1) for line in (d / "status").read_text().splitlines()
                     if ":\t" in line)
            out[int(d.name)] = (comm, int(f["voluntary_ctxt_switches"]),
                                int(f["nonvoluntary_ctxt_switches"]))
        except (OSError, ValueError, KeyError):
            pass  # the thread ended meanwhile
    return out


def memory_kib(pid):
    """{"rss": KiB, "pss": KiB} of a process (/proc/PID/smaps_rollup: one read, no walk of
    every mapping)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("Rss", "Pss", "Pss_Anon", "Private_Dirty"):
            out[k.lower()] = int(v.split()[0])
    return out


def host_busy():
    """Busy seconds of all the host's cores so far (/proc/stat: everything but idle/iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK_TCK


def is_server_thread(comm):
    """Threads the SPICE server library starts: ours are spice-reactor, spice-qxl-N (and any
    later spice-*); the C server's is "SPICE Worker". QEMU names none of its own so."""
    return comm.lower().startswith("spice")


VCPU_THREAD = re.compile(r"^CPU \d+/(TCG|KVM)$")  # QEMU's names with debug-threads=on


def is_vcpu_thread(comm):
    """QEMU's vCPU threads (-name debug-threads=on): the guest's own work, the same with
    either server."""
    return bool(VCPU_THREAD.match(comm))


def server_side(cpu_qemu, threads):
    """QEMU's CPU seconds minus its vCPU threads': what displaying the guest cost (the
    server library with its encoders, QEMU's display code and main loop)."""
    return cpu_qemu - sum(v for k, v in threads.items() if is_vcpu_thread(k.rsplit("#", 1)[0]))


def cpu_delta(a, b, pid):
    """CPU seconds between two cpu_ticks snapshots: total, the server library's threads,
    QEMU's main thread (where the C server runs its main/inputs channels), everything but
    the vCPU threads, per thread."""
    per = {}
    for tid, (comm, t1) in b["threads"].items():
        t0 = a["threads"].get(tid, (comm, 0))[1]
        key = f"{comm}#{tid}"
        per[key] = (t1 - t0) / CLK_TCK
    server = sum(v for k, v in per.items() if is_server_thread(k.rsplit("#", 1)[0]))
    main = sum(v for k, v in per.items() if k.endswith(f"#{pid}"))
    total = (b["total"] - a["total"]) / CLK_TCK
    return {"total": total, "server": server, "main": main,
            "server_side": server_side(total, per), "threads": per}


# ----------------------------------------------------------------------- wire
_SOCK = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+)\s+(\S+)", re.M)


def wire_bytes(port):
    """{(local, peer): (bytes the server sent and the client acked, bytes received)} for
    the established TCP connections on the server's port, from the kernel's tcp_info."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    conns = {}
    blocks = re.split(r"\n(?=\S)", out.strip())
    for blk in blocks:
        if not blk.strip():
            continue
        head = blk.split()
        # state is filtered, so the columns are: Recv-Q Send-Q Local Peer
        local, peer = head[2], head[3]
        sent = re.search(r"bytes_acked:(\d+)", blk)
        recv = re.search(r"bytes_received:(\d+)", blk)
        conns[(local, peer)] = (int(sent.group(1)) if sent else 0,
                                int(recv.group(1)) if recv else 0)
    return conns


def wire_delta(a, b):
    """(server->client bytes, client->server bytes) between two wire_bytes snapshots."""
    down = up = 0
    for k, (s1, r1) in b.items():
        s0, r0 = a.get(k, (0, 0))
        down += s1 - s0
        up += r1 - r0
    return down, up


# ------------------------------------------------------------------- frames
def delivered(readings):
    """The client's stamp readings [(t, n)] in order -> the ones that are real frames.

    A reading taken while an update was half drawn can mix two frames' stamp bits into
    a number out of order; the frames really shown form the longest strictly increasing
    run of numbers, which is what this keeps (O(n log n) longest increasing subsequence)."""
    tails, tails_idx, prev = [], [], [-1] * len(readings)
    for i, (_, n) in enumerate(readings):
        j = bisect.bisect_left(tails, n)
        if j == len(tails):
            tails.append(n)
            tails_idx.append(i)
        else:
            tails[j] = n
            tails_idx[j] = i
        prev[i] = tails_idx[j - 1] if j else -1
    out, i = [], tails_idx[-1] if tails_idx else -1
    while i >= 0:
        out.append(readings[i])
        i = prev[i]
    return out[::-1]


def latencies(shown, guest_frames):
    """Glass-to-glass seconds for each delivered frame: client saw stamp N at t, the guest
    reported frame N in its framebuffer at t_g (the last such report before t)."""
    last = {}
    for t, n in guest_frames:
        last.setdefault(n, []).append(t)
    out = []
    for t, n in shown:
        ts = [g for g in last.get(n, ()) if g <= t]
        if ts:
            out.append(t - ts[-1])
    return out


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --------------------------------------------------------------------- PSNR
class Clip:
    """The guest's video source (video.img: "SPRSVID1 w h frames BGR" + raw BGR frames)."""

    def __init__(self, path):
        import numpy as np
        with open(path, "rb") as f:
            hdr = f.read(4096).split(b"\n", 1)[0].decode()
        _, w, h, n, _ = hdr.split()
        self.w, self.h, self.n = int(w), int(h), int(n)
        self.data = np.memmap(path, dtype=np.uint8, mode="r", offset=4096,
                              shape=(self.n, self.h, self.w, 3))

    def scaled(self, index, rw, rh):
        """Frame `index` as the guest draws it into a rw x rh region (nearest neighbour,
        the guest's integer mapping), BGR."""
        import numpy as np
        ys = (np.arange(rh, dtype=np.int64) * self.h) // rh
        xs = (np.arange(rw, dtype=np.int64) * self.w) // rw
        return self.data[index % self.n][ys[:, None], xs[None, :]]


def psnr(snap, clip, region):
    """PSNR (dB, over B, G, R) of the snapshot's video region against the source picture
    its stamp N names; the stamp rows are left out. 99 dB stands for identical.

    The guest tears: its framebuffer is copied out (qxl: the kernel's damage flush; std:
    QEMU's refresh) while it writes the next frame top to bottom, so the picture the server
    got can be frame N above some row and frame N-1 below it. The reference is that
    picture, with the row that fits best; a server cannot do better than what it got."""
    import numpy as np
    rw, rh, rx, ry = region
    raw = np.fromfile(snap["path"], dtype=np.uint8)
    img = raw.reshape(snap["height"], snap["stride"] // 4, 4)[:, :snap["width"], :3]
    got = img[ry + STAMP_ROWS:ry + rh, rx:rx + rw].astype(np.int32)
    rows = []
    for n in (snap["n"], snap["n"] - 1):
        want = clip.scaled(max(n, 0), rw, rh)[STAMP_ROWS:].astype(np.int32)
        rows.append(((got - want) ** 2).sum(axis=(1, 2), dtype=np.int64))
    new_above = np.concatenate([[0], np.cumsum(rows[0])])        # rows < k from frame N
    old_below = np.concatenate([np.cumsum(rows[1][::-1])[::-1], [0]])  # rows >= k from N-1
    mse = float((new_above + old_below).min()) / got.size
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0 ** 2 / mse))


# -------------------------------------------------------------------- codec
# spice-gtk's debug line for each element it puts into a stream's decoding pipeline
_ELEMENT = re.compile(r"A new element was added to Gstreamer's pipeline \(([^)]*)\)")
_DECODERS = [("h264", re.compile(r"h264", re.I)), ("h265", re.compile(r"h265|hevc", re.I)),
             ("vp8", re.compile(r"vp8", re.I)), ("vp9", re.compile(r"vp9", re.I)),
             ("mjpeg", re.compile(r"jpeg", re.I))]


def stream_codecs(client_log, streams_created):
    """The codecs the client decoded, from spice-gtk's debug log (SPICE_DEBUG=1): each
    GStreamer decoding pipeline names its parser/decoder elements (avdec_h264, vp8dec...);
    a stream without any is MJPEG, which spice-gtk decodes itself."""
    seen = []
    with open(client_log, errors="replace") as f:
        for line in f:
            m = _ELEMENT.search(line)
            if not m:
                continue
            for codec, rx in _DECODERS:
                if rx.search(m.group(1)) and codec not in seen:
                    seen.append(codec)
    if streams_created and not seen:
        seen.append("mjpeg")
    return seen
