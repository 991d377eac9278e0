#!/usr/bin/python3
"""Does a real SPICE client show what the server rendered? For every RUN scenario of the QXL
stand-in (tests/qxl/standin.c) this starts the stand-in in SERVE mode, connects spice-gtk
(tests/e2e/client.py, one worker reused across scenarios), lets the scenario draw while the
client watches, and compares the client's primary surface with the stand-in's dump (the
server's own rendering, read back from guest memory after update_area) pixel for pixel.

    client_compare.py [--lib DIR] [--out DIR] [--only "name name ..."] [--pace 0,2]
        --lib   the libspice-server.so.1 to serve with (default: build/lib, ours;
                /lib/x86_64-linux-gnu is Debian's C server, used to check this test)
        --out   keeps dumps, client screenshots, logs and diff images (default: a temp dir)
        --only  runs only these scenarios (QXL_ONLY does the same)
        --pace  every scenario runs once per value: 0 queues its commands at once as RUN does
                (the server may merge drawings into images), 2 wakes the server and waits
                2 ms after each command (each drawing goes out as its own message)

A random scenario (rnd_*) runs QXL_CLIENT_SEED_RUNS times (default 4, from run
QXL_SEED_FIRST_RUN, default 1), 16 seeds a run (tests/qxl/random/seeded.c).

The stand-in serves with the library's default image compression (auto_glz, as QEMU's);
QXL_IMAGE_COMPRESSION=auto_glz|auto_lz|quic|glz|lz|lz4|off sets another, as QEMU's
image-compression= does. QXL_JPEG_WAN and QXL_ZLIB_GLZ_WAN=auto|always|never set
jpeg-wan-compression= and zlib-glz-wan-compression= (always: as on a slow link). A
scenario whose drawings reached the client with lossy (JPEG) images passes when the
client's picture is within PSNR_MIN dB of the dump (it must then also differ: nothing
lossless may be missing, the PSNR covers the whole surface); every other one must match
exactly.

Each row also shows which display messages the server sent (counted by a relay between
client and server), so a row says how the drawings reached the client.

A scenario passes when the stand-in serves it without crashing (and releases every resource
exactly once, as RUN checks), the client's pixels equal the dump's, and the dump equals the
one RUN writes without a client (a client must not change what the guest sees). When they differ, a
diff image (dump | client | differing pixels in white) is saved and the bounding box and the
count of differing pixels are printed. Scenarios named in client-known-differences.txt (with
the reason) are reported, not fatal; for another library than ours, so are its "c:" lines
and the C server faults of known-differences.txt. A client that dies on what the server sent
is reported for that scenario and a new one takes over.

What pixels do not show is compared with Debian's C server serving the same scenario to
the same client: for cursor_* scenarios the cursor spice-gtk decoded (it must also be
visible), for monitors_* ones the last monitor layout the display channel was sent.
"""
import argparse
import collections
import os
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from client import ClientError, SpiceClient  # noqa: E402

from PIL import Image, ImageChops  # noqa: E402

PSNR_MIN = 30.0      # dB, client vs dump, for scenarios sent JPEG images
SETTLE_QUIET = 0.3   # s without a display update before a screenshot is taken
SETTLE_MAX = 5.0     # s after SERVE-DONE that a differing picture may still take to change
SETTLE_STABLE = 2.0  # s after SERVE-DONE from which an unchanged differing picture is final
CONFIRM_QUIET = 0.5  # s without an update before a matching picture is taken again


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Display channel messages (spice/enums.h), as the per-scenario summary names them
DISPLAY_MSGS = {101: "mode", 102: "mark", 103: "reset", 104: "copy_bits", 105: "inval_list",
                106: "inval_pixmaps", 107: "inval_palette", 108: "inval_palettes",
                122: "stream_create", 123: "stream_data", 124: "stream_clip",
                125: "stream_destroy", 126: "stream_destroy_all", 302: "fill", 303: "opaque",
                304: "copy", 305: "blend", 306: "blackness", 307: "whiteness", 308: "invers",
                309: "rop3", 310: "stroke", 311: "text", 312: "transparent", 313: "alpha_blend",
                314: "surface_create", 315: "surface_destroy", 316: "stream_data_sized",
                317: "monitors_config", 318: "composite"}
CHANNEL_DISPLAY = 2
MSG_MONITORS_CONFIG = 317


def monitors_of(body):
    """SpiceMsgDisplayMonitorsConfig: u16 count, u16 max_allowed, then 28-byte heads (id,
    surface_id, width, height, x, y, flags); as [max_allowed, [[id, w, h, x, y], ...]]."""
    count, max_allowed = struct.unpack_from("<HH", body, 0)
    heads = [struct.unpack_from("<7I", body, 4 + 28 * i) for i in range(count)
             if 4 + 28 * (i + 1) <= len(body)]
    return [max_allowed, [[h[0], h[2], h[3], h[4], h[5]] for h in heads]]
C_LIB = "/lib/x86_64-linux-gnu"  # Debian's spice-server: the reference for cursor_* and monitors_*
CAP_MINI_HEADER = 1 << 3  # SPICE_COMMON_CAP_MINI_HEADER


class Spy:
    """A TCP relay between the client and the server that counts the message types the
    server sends on display channels: it shows how each drawing reached the client (as an
    image, a fill, its own draw message...). It reads the link handshake to learn the
    channel type and whether both sides use the mini header, then the message headers."""

    def __init__(self, target_port):
        self.target = target_port
        self.counts = collections.Counter()
        self.monitors = None  # the last MONITORS_CONFIG sent on a display channel
        self.images = collections.Counter()  # source image types of copies and blends
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            link = {"ready": threading.Event()}
            threading.Thread(target=self._up, args=(client, server, link), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, link), daemon=True).start()

    @staticmethod
    def _relay(src, dst):
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if data:
            try:
                dst.sendall(data)
            except OSError:
                data = b""
        if not data:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return data

    def _up(self, client, server, link):
        """client -> server: the SpiceLinkMess names the channel and the client's caps."""
        buf = b""
        while True:
            data = self._relay(client, server)
            if not data:
                link["ready"].set()
                return
            if not link["ready"].is_set():
                buf += data
                if len(buf) >= 16 and len(buf) >= 16 + struct.unpack_from("<I", buf, 12)[0]:
                    ctype = buf[20]
                    ncommon, _nchan, off = struct.unpack_from("<III", buf, 22)
                    link["channel"] = ctype
                    link["caps"] = struct.unpack_from("<I", buf, 16 + off)[0] if ncommon else 0
                    link["ready"].set()

    def _down(self, server, client, link):
        """server -> client: SpiceLinkHeader + SpiceLinkReply, the link result, then messages."""
        buf, need, phase, mini = b"", 16, "header", False
        while True:
            data = self._relay(server, client)
            if not data:
                return
            buf += data
            while len(buf) >= need:
                if phase == "header":
                    need, phase = 16 + struct.unpack_from("<I", buf, 12)[0], "reply"
                    continue
                if phase == "reply":
                    reply = buf[16:need]
                    ncommon, _nchan, off = struct.unpack_from("<III", reply, 166)
                    server_caps = struct.unpack_from("<I", reply, off)[0] if ncommon else 0
                    link["ready"].wait(10)
                    if link.get("channel") != CHANNEL_DISPLAY:
                        return self._pump(server, client)
                    mini = bool(server_caps & link.get("caps", 0) & CAP_MINI_HEADER)
                    buf, need, phase = buf[need:], 4, "result"
                    continue
                if phase == "result":
                    buf, phase = buf[4:], "msg"
                    need = 6 if mini else 18
                    continue
                if mini:
                    mtype, size = struct.unpack_from("<HI", buf, 0)
                    hdr = 6
                else:
                    mtype, size = struct.unpack_from("<HI", buf, 8)
                    hdr = 18
                if len(buf) < hdr + size:
                    need = hdr + size
                    break
                with self.lock:
                    self.counts[mtype] += 1
                    if mtype == MSG_MONITORS_CONFIG:
                        self.monitors = monitors_of(buf[hdr:hdr + size])
                    if mtype in IMAGE_AT:
                        kind = image_type(buf[hdr:hdr + size], IMAGE_AT[mtype])
                        if kind is not None:
                            self.images[IMAGE_TYPES.get(kind, kind)] += 1
                buf, need = buf[hdr + size:], hdr

    def _pump(self, server, client):
        while self._relay(server, client):
            pass

    def summary(self):
        with self.lock:
            items = sorted((k, v) for k, v in self.counts.items() if k in DISPLAY_MSGS)
            images = sorted(self.images.items(), key=str)
        text = " ".join(f"{DISPLAY_MSGS[k]}:{v}" for k, v in items)
        if images:
            text += " (images " + " ".join(f"{k}:{v}" for k, v in images) + ")"
        return text

    def lossy(self):
        with self.lock:
            return self.images["jpeg"] + self.images["jpeg-alpha"] > 0


# Drawings whose source image the relay counts: bytes between the base and its offset
# (DRAW_COPY: none; DRAW_ALPHA_BLEND: u8 flags, u8 alpha).
IMAGE_AT = {304: 0, 313: 2}
IMAGE_TYPES = {0: "bitmap", 1: "quic", 101: "lz", 102: "glz", 103: "cache", 104: "surface",
               105: "jpeg", 107: "zlib-glz", 108: "jpeg-alpha", 109: "lz4"}


def image_type(body, skip):
    """The type of a drawing's source image: after the base (surface, box, clip) and `skip`
    bytes comes the u32 offset of the image, whose descriptor is a u64 id then the u8 type."""
    try:
        clip = body[20]
        at = skip + (21 if clip == 0 else 25 + 16 * struct.unpack_from("<I", body, 21)[0])
        off = struct.unpack_from("<I", body, at)[0]
        return body[off + 8] if off and off + 8 < len(body) else None
    except (IndexError, struct.error):
        return None


def psnr(a, b):
    """Peak signal to noise ratio of two RGB pictures of the same size, in dB."""
    import numpy as np
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255 * 255 / mse)


def read_list(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, reason = line.partition(" ")
                    out[name] = reason.strip()
    return out


def build_standin(lib, out):
    """Builds the stand-in against `lib`'s libspice-server.so.1 (the soname is the same for
    every library; LD_LIBRARY_PATH picks the one that serves)."""
    exe = os.path.join(out, "standin")
    inc = os.path.join(ROOT, "include", "spice-server")
    cflags = [f"-I{inc}"] if os.path.exists(os.path.join(inc, "spice.h")) else \
        subprocess.check_output(["pkg-config", "--cflags", "spice-server"], text=True).split()
    cflags += subprocess.check_output(["pkg-config", "--cflags", "spice-protocol"], text=True).split()
    subprocess.run(["cc", "-O1", "-g", "-Wall", "-Wextra", "-o", exe, os.path.join(HERE, "standin.c"),
                    *cflags, os.path.join(lib, "libspice-server.so.1"), "-lpthread"], check=True)
    return exe


class Standin:
    """One stand-in in SERVE mode; its stdout lines arrive on a queue."""

    def __init__(self, exe, lib, name, dump, port, log, pace_ms=0):
        env = dict(os.environ, LD_LIBRARY_PATH=lib)
        self.proc = subprocess.Popen([exe, "SERVE", name, dump, str(port), str(pace_ms)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout):
        """The first line starting with prefix; None if the stand-in ended or timed out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self, timeout=30):
        """Closes stdin (the stand-in stops serving); returns (status, result line)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            return "timeout", None
        result = None
        while True:
            line = self.expect("", 1)
            if line is None:
                break
            if " released=" in line:
                result = line
        status = f"signal:{-rc}" if rc < 0 else f"exit:{rc}"
        return status, result


def final_frame(dump_path, height):
    """The dump's final picture: a dump with a snapshot (twice the surface's height) holds
    the snapshot on top and the final picture below."""
    img = Image.open(dump_path).convert("RGB")
    w, h = img.size
    if h == 2 * height:
        return img.crop((0, height, w, h))
    return img


def difference(a, b):
    """(count, bbox, max channel delta) of the pixels where a and b differ."""
    d = ImageChops.difference(a, b)
    mask = d.convert("L").point(lambda v: 255 if v else 0)
    n = sum(1 for v in mask.getdata() if v)
    maxdelta = max(hi for lo, hi in d.getextrema()) if n else 0
    return n, mask.getbbox(), maxdelta, mask


def save_diff(dump, shot, mask, path):
    w, h = dump.size
    img = Image.new("RGB", (w * 3 + 8, h), (255, 0, 255))
    img.paste(dump, (0, 0))
    img.paste(shot, (w + 4, 0))
    img.paste(Image.merge("RGB", (mask, mask, mask)), (2 * w + 8, 0))
    img.save(path)


def settle_and_compare(client, dump):
    """Screenshots once the display is quiet until the picture equals the dump or stops
    changing. A match is taken again after a longer quiet time, so that an update arriving
    late (and spoiling the picture) is not missed. Returns (shot, count, bbox, maxdelta,
    mask, seconds waited)."""
    t0 = time.monotonic()
    prev, matched = None, False
    while True:
        client.wait_quiet(CONFIRM_QUIET if matched else SETTLE_QUIET, timeout=SETTLE_MAX + 10)
        shot = client.screenshot_image()
        if shot.size != dump.size:
            return shot, None, None, None, None, time.monotonic() - t0
        n, bbox, maxdelta, mask = difference(dump, shot)
        waited = time.monotonic() - t0
        if n == 0 and not matched:
            matched = True
            continue
        if n == 0 or waited > SETTLE_MAX or (prev is not None and prev.tobytes() == shot.tobytes()
                                             and waited > SETTLE_STABLE):
            return shot, n, bbox, maxdelta, mask, waited
        prev, matched = shot, False
        time.sleep(0.2)


def run_alone(exe, lib, name, out, log):
    """The scenario without a client (standin RUN): the dump a client must not change."""
    path = os.path.join(out, "run", f"{name}.ppm")
    try:
        subprocess.run([exe, "RUN", name, path], env=dict(os.environ, LD_LIBRARY_PATH=lib),
                       stdout=log, stderr=log, timeout=60)
    except subprocess.TimeoutExpired:
        pass
    return path if os.path.exists(path) else None


def dumps_differ(a_path, b_path):
    """Pixels that differ between two dumps (whole dumps, snapshot included); None if one
    is missing, -1 if their sizes differ."""
    if not a_path or not os.path.exists(a_path) or not os.path.exists(b_path):
        return None
    with open(a_path, "rb") as f, open(b_path, "rb") as g:
        if f.read() == g.read():
            return 0
    a, b = Image.open(a_path).convert("RGB"), Image.open(b_path).convert("RGB")
    return -1 if a.size != b.size else difference(a, b)[0]


def settled_cursor(client, quiet=0.5, timeout=5.0):
    """The cursor as the client shows it, once it has not changed for `quiet` seconds."""
    def shown():
        c = client.state()["cursor"] or {}
        return {k: c.get(k) for k in ("visible", "shape")}
    t_end, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < t_end:
        now = shown()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and now["shape"] is not None:
            break
        time.sleep(0.1)
    return last


def run_one(client, exe, lib, name, label, out, log, pace_ms, alone):
    """Serves one scenario to the client. Returns a dict of what was measured."""
    dump_path = os.path.join(out, f"{label}.ppm")
    if os.path.exists(dump_path):
        os.unlink(dump_path)
    r = {"name": name}
    for _attempt in range(3):  # a port taken between free_port() and the bind: try another
        port = free_port()
        st = Standin(exe, lib, name, dump_path, port, log, pace_ms)
        if st.expect("SERVE-LISTENING", 20):
            break
        r["serve"] = st.finish(5)[0]
    else:
        r["error"] = f"stand-in did not listen ({r.get('serve')})"
        return r
    t0 = time.monotonic()
    spy = Spy(port)
    try:
        client.connect("127.0.0.1", spy.port, timeout=20)
        done = st.expect("SERVE-DONE", 60)
        r["serve_s"] = time.monotonic() - t0
        if done is None:
            r["error"] = "no SERVE-DONE (" + " | ".join(st.seen[-3:]) + ")"
        else:
            prim = client.state()["primary"] or {"height": 0}
            dump = final_frame(dump_path, prim["height"])
            shot, n, bbox, maxdelta, mask, waited = settle_and_compare(client, dump)
            r.update(settle_s=waited, diff=n, bbox=bbox, maxdelta=maxdelta,
                     vs_run=dumps_differ(alone, dump_path))
            if n and spy.lossy():
                r["psnr"] = psnr(dump, shot)
            if n is None:
                r["error"] = "client surface %dx%d, dump %dx%d" % (shot.size + dump.size)
            elif n:
                shot.save(os.path.join(out, f"{label}.client.png"))
                save_diff(dump, shot, mask, os.path.join(out, "diff", f"{label}.png"))
            r["updates"] = client.state()["updates"]
            if name.startswith("cursor_"):
                r["cursor"] = settled_cursor(client)
    except ClientError as e:
        r["error"] = f"client: {e}"[:200]
    finally:
        try:
            client.disconnect(timeout=10)
        except ClientError as e:
            r.setdefault("error", f"client disconnect: {e}"[:200])
        r["status"], r["result"] = st.finish()
        r["msgs"] = spy.summary()
        if name.startswith("monitors_"):
            r["monitors"] = spy.monitors
        spy.close()
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "lib"))
    ap.add_argument("--out", default=os.environ.get("QXL_OUT"))
    ap.add_argument("--only", default=os.environ.get("QXL_ONLY", ""))
    ap.add_argument("--pace", default="0,2", metavar="MS[,MS...]",
                    help="runs every scenario once per value: 0 queues the scenario's commands "
                         "as RUN does (the server may merge them), MS>0 has the stand-in wake "
                         "the server and wait MS ms after each command, so each drawing goes "
                         "out on its own (default 0,2)")
    a = ap.parse_args()
    lib = os.path.realpath(a.lib)
    if not os.path.exists(os.path.join(lib, "libspice-server.so.1")):
        print(f"client_compare: {lib}/libspice-server.so.1 missing (run 'make lib')")
        return 2
    ours = lib == os.path.realpath(os.path.join(ROOT, "build", "lib"))
    out = a.out or tempfile.mkdtemp(prefix="qxl-client.")
    os.makedirs(os.path.join(out, "diff"), exist_ok=True)
    os.makedirs(os.path.join(out, "run"), exist_ok=True)
    exe = build_standin(lib, out)
    names = [n for n in subprocess.check_output([exe, "LIST"], text=True).split("\n")
             if n and not n.startswith("BAD ")]
    if a.only.split():
        names = [n for n in names if n in a.only.split()]
    # a random scenario runs once per seed run (16 seeds each, tests/qxl/random/seeded.c)
    first = int(os.environ.get("QXL_SEED_FIRST_RUN", "1"))
    seed_runs = int(os.environ.get("QXL_CLIENT_SEED_RUNS", "4"))
    names = [x for n in names for x in
             ([f"{n}.{r}" for r in range(first, first + seed_runs)] if n.startswith("rnd_") else [n])]
    listed = read_list(os.path.join(HERE, "client-known-differences.txt"))
    known = {n: r for n, r in listed.items() if not n.startswith("c:")}
    if not ours:  # the C server's own faults are no finding about the client
        known.update({n: "C server fault: " + r for n, r in
                      read_list(os.path.join(HERE, "known-differences.txt")).items()})
        known.update({n[2:]: r for n, r in listed.items() if n.startswith("c:")})

    paces = [int(p) for p in a.pace.split(",") if p.strip()]
    runs = [(n, p) for n in names for p in paces]
    which = "ours" if ours else lib
    print(f"client_compare: {len(names)} scenarios x pace {paces} ms, server library {which}, "
          f"output {out}")
    # diff-px/bbox/maxd: client vs dump; =RUN: the dump equals RUN's (no client) one;
    # upd: the client's display invalidations; settle: time from SERVE-DONE to the verdict
    print(f"{'scenario':<24} {'stand-in':<10} {'diff-px':>7} {'bbox':<20} {'maxd':>4} "
          f"{'=RUN':>4} {'upd':>4} {'settle':>6}  verdict")
    passed, failed, knownc = 0, 0, 0
    t_all = time.monotonic()
    client_log = os.path.join(out, "client.log")
    client = SpiceClient(log_path=client_log)
    with open(os.path.join(out, "standin.log"), "ab") as log:
        alone = {}
        for name, pace in runs:
            label = name if pace == 0 else f"{name}@{pace}ms"
            for f in (log, client.log):
                f.write(f"==== {label}\n".encode())
                f.flush()
            if name not in alone:
                alone[name] = run_alone(exe, lib, name, out, log)
            r = run_one(client, exe, lib, name, label, out, log, pace, alone[name])
            if "monitors" in r and "error" not in r:
                # The layout the client was told last must be the C server's.
                ref = run_one(client, exe, C_LIB, name, f"{label}.c", out, log, pace, None)
                r["monitors_c"] = ref.get("monitors")
                if r["monitors"] != r["monitors_c"]:
                    r["error"] = (f"monitors {r['monitors']} but with the C server "
                                  f"{r['monitors_c']}")
            if "cursor" in r and "error" not in r:
                # The cursor the client shows must be the one it shows with the C server
                # (spice-gtk decodes the shape), and a visible one.
                ref = run_one(client, exe, C_LIB, name, f"{label}.c", out, log, pace, None)
                r["cursor_c"] = ref.get("cursor")
                if not (r["cursor"] or {}).get("visible") or not (r["cursor"] or {}).get("shape"):
                    r["error"] = f"no visible cursor on the client: {r['cursor']}"
                elif r["cursor"] != r["cursor_c"]:
                    r["error"] = f"cursor {r['cursor']} but with the C server {r['cursor_c']}"
            if client.proc.poll() is not None:  # what the server sent killed spice-gtk
                r["error"] = f"the client died (exit {client.proc.returncode}, see {client_log})"
                client.close()
                client = SpiceClient(log_path=client_log)
            res = r.get("result") or ""
            released_ok = res.endswith(" OK")
            st = r.get("status", "-")
            stand = "ok" if st == "exit:0" and released_ok else (st if st != "exit:0" else "rel-FAIL")
            exact = r.get("diff") == 0 or r.get("psnr", 0) >= PSNR_MIN
            ok = "error" not in r and exact and stand == "ok" and r.get("vs_run") == 0
            seen = []
            if r.get("vs_run"):  # the client's presence changed what the server wrote
                seen.append(f"dump differs from RUN's (no client) in {r['vs_run']} px")
            elif r.get("vs_run") is None and "diff" in r:
                seen.append("RUN (no client) gave no dump")
            if r.get("diff"):
                seen.append(f"diff image {out}/diff/{label}.png")
            if "psnr" in r:
                seen.append(f"JPEG sent: PSNR {r['psnr']:.1f} dB (bound {PSNR_MIN})")
            if "error" in r:
                seen.append(r["error"])
            if stand == "rel-FAIL":
                seen.append(res)
            seen = " [" + "; ".join(seen) + "]" if seen else ""
            if ok:
                passed += 1
                verdict = "match" if r.get("diff") == 0 else "close (lossy)" + seen
            elif name.split(".")[0] in known:
                knownc += 1
                verdict = "known: " + known[name.split(".")[0]][:120] + seen
            else:
                failed += 1
                verdict = "FAIL" + seen
            bbox = r.get("bbox")
            bbox_s = "-" if not bbox else "%d,%d-%d,%d" % bbox
            diff_s = "-" if r.get("diff") is None else str(r["diff"])
            maxd = "-" if r.get("maxdelta") is None else str(r["maxdelta"])
            upd = str(r.get("updates", "-"))
            vs = {None: "-", 0: "yes"}.get(r.get("vs_run"), "NO")
            settle = "-" if "settle_s" not in r else f"{r['settle_s']:.1f}s"
            if "cursor" in r:
                verdict += f" cursor: {r['cursor']}"
            if "monitors" in r:
                verdict += f" monitors: {r['monitors']}"
            print(f"{label:<24} {stand:<10} {diff_s:>7} {bbox_s:<20} {maxd:>4} {vs:>4} {upd:>4} {settle:>6}  "
                  f"{verdict[:400]}  | sent: {r.get('msgs') or '-'}", flush=True)
    client.close()
    print(f"client_compare: {time.monotonic() - t_all:.0f} s; output in {out}")
    print(f"client_compare: {which}: {passed} of {len(runs)} scenario runs match on the client, "
          f"{knownc} known differences (client-known-differences.txt)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
