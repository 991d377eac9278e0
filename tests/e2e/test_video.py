"""Video streaming end to end through a real client (spice-gtk).

The guest's video workload plays a clip (tests/guest/build.sh video.img) into a 640x360
region at 25 fps and stamps each frame's number into the picture. Between the client and
the server sits a relay (WireTap) that reads the display channel's messages, so the tests
see what went over the wire (STREAM_CREATE and its codec, STREAM_DATA frames and their
sizes) next to what spice-gtk did with them (its SPICE_DEBUG lines) and what it shows.
The relay can also throttle the server-to-client direction, as a slow network would.

    -spice streaming-video=all     on qxl and std the video becomes an MJPEG stream; the
                                   picture the client shows, and each frame as sent (its
                                   JPEG decoded here), is the source frame its stamp names
                                   within a PSNR bound; once the video pauses (key P), the
                                   stream ends and the area is sent again without loss
    -spice streaming-video=off     no stream, and the client shows exactly the guest's
    -spice streaming-video=filter  text rewritten at video rates (desktop text_fps=25) is
                                   not streamed; with "all" it is (the control)
    slow client                    QEMU's memory stays bounded, fewer or smaller frames
                                   reach the client, and the rate recovers afterwards

Debian's C server (SPICE_RS_E2E_LIB=c) passes the qxl, off and filter tests; it fails
the std stream test (it streams only a 32-pixel column there, after 20 s) and the slow
client's recovery (still at 40% of the frame rate 30 s after the link is fast again).
"""
import re
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from client import SpiceClient, decode_stamp
from rig import GUEST_DIR, compare_images, screendump

FPS = 25
REGION = (640, 360, 192, 204)  # w, h, x, y: the clip's own size, centred on 1024x768
VIDEO_ARGS = f"fps={FPS} video_rect={REGION[0]}x{REGION[1]}+{REGION[2]}+{REGION[3]}"
STAMP_ROWS = 32  # the frame stamp's rows at the region's top
# s: a link that got fast again is found by probes, which wait up to 20 s past a budget
# that failed (video/rate.rs) and then double their step; machine load slows the rest.
RECOVERY_S = 45
PSNR_BOUND = 30.0  # dB; a MJPEG frame of this clip at a sane quality is well above it
CODEC_MJPEG = 1  # SPICE_VIDEO_CODEC_TYPE_MJPEG
STREAM_FLAG_TOP_DOWN = 1  # SPICE_STREAM_FLAGS_TOP_DOWN
KEY_P = 0x19  # set-1 scancode: pauses and resumes the guest's video

CHANNEL_DISPLAY = 2
CAP_MINI_HEADER = 1 << 3  # SPICE_COMMON_CAP_MINI_HEADER
MSG_STREAM_CREATE, MSG_STREAM_DATA, MSG_STREAM_CLIP = 122, 123, 124
MSG_STREAM_DESTROY, MSG_STREAM_DESTROY_ALL, MSG_STREAM_DATA_SIZED = 125, 126, 316
STREAM_MSGS = {MSG_STREAM_CREATE: "create", MSG_STREAM_DATA: "data", MSG_STREAM_CLIP: "clip",
               MSG_STREAM_DESTROY: "destroy", MSG_STREAM_DESTROY_ALL: "destroy_all",
               MSG_STREAM_DATA_SIZED: "data"}


# ------------------------------------------------------------------ the relay
class TokenBucket:
    """rate bytes/s shared by every connection (None: no limit)."""

    def __init__(self, burst=16384):
        self.rate, self.burst = None, burst
        self.tokens, self.last = 0.0, time.monotonic()
        self.lock = threading.Lock()

    def set_rate(self, rate):
        with self.lock:
            self.rate, self.tokens, self.last = rate, 0.0, time.monotonic()

    def take(self, n):
        while True:
            with self.lock:
                if self.rate is None:
                    return
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(min(wait, 0.05))


class WireTap:
    """A TCP relay between the client and the server. It learns each connection's channel
    from the link messages and records the stream messages the server's display channels
    sent, at the moment they were passed on to the client: (time, kind, size, info), info
    being {"codec", "dest", "id"} for create and {"id", "bytes"} for data."""

    CHUNK = 16384

    def __init__(self, target_port, keep_frames=False):
        """keep_frames: data records also hold the frame itself (info["frame"])."""
        self.target = target_port
        self.keep_frames = keep_frames
        self.bucket = TokenBucket()
        self.lock = threading.Lock()
        self.records = []
        self.down_bytes = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def set_rate(self, bits_per_s):
        """Throttles server -> client to bits_per_s (None lifts the limit)."""
        self.bucket.set_rate(None if bits_per_s is None else bits_per_s / 8)

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def stream(self, kinds=None, since=0.0, until=None):
        with self.lock:
            return [r for r in self.records if r[0] >= since and (until is None or r[0] <= until)
                    and (kinds is None or r[1] in kinds)]

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.socket()
            # A small receive buffer: the server feels a slow client's back-pressure
            # instead of filling megabytes of loopback buffer.
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            try:
                server.connect(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            link = {"ready": threading.Event()}
            threading.Thread(target=self._up, args=(client, server, link), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, link), daemon=True).start()

    @staticmethod
    def _shut(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _up(self, client, server, link):
        """client -> server, unthrottled: the SpiceLinkMess names the channel and caps."""
        buf = b""
        while True:
            try:
                data = client.recv(65536)
                if data:
                    server.sendall(data)
            except OSError:
                data = b""
            if not data:
                link["ready"].set()
                return self._shut(client, server)
            if not link["ready"].is_set():
                buf += data
                if len(buf) >= 16 and len(buf) >= 16 + struct.unpack_from("<I", buf, 12)[0]:
                    ncommon, _nchan, off = struct.unpack_from("<III", buf, 22)
                    link["channel"] = buf[20]
                    link["caps"] = struct.unpack_from("<I", buf, 16 + off)[0] if ncommon else 0
                    link["ready"].set()

    def _down(self, server, client, link):
        """server -> client through the token bucket; display messages are parsed as they
        are passed on: SpiceLinkHeader + SpiceLinkReply, the link result, then messages."""
        buf, need, phase, mini, parse = b"", 16, "header", False, True
        while True:
            try:
                data = server.recv(self.CHUNK)
                if data:
                    self.bucket.take(len(data))
                    client.sendall(data)
            except OSError:
                data = b""
            if not data:
                return self._shut(server, client)
            now = time.monotonic()
            with self.lock:
                self.down_bytes += len(data)
            if not parse:
                continue
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
                        parse, buf = False, b""
                        break
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
                if mtype in STREAM_MSGS:
                    self._record(now, mtype, buf[hdr:hdr + size])
                buf, need = buf[hdr + size:], hdr

    def _record(self, now, mtype, body):
        info = {"id": struct.unpack_from("<I", body, 4 if mtype == MSG_STREAM_CREATE else 0)[0]}
        if mtype == MSG_STREAM_CREATE:
            info["flags"], info["codec"] = body[8], body[9]
            top, left, bottom, right = struct.unpack_from("<4i", body, 34)
            info["dest"] = (right - left, bottom - top, left, top)  # w, h, x, y
            info["size"] = struct.unpack_from("<II", body, 18)  # stream width, height
        elif mtype == MSG_STREAM_DATA:
            info["bytes"] = struct.unpack_from("<I", body, 8)[0]
            if self.keep_frames:
                info["frame"] = bytes(body[12:12 + info["bytes"]])
        elif mtype == MSG_STREAM_DATA_SIZED:
            info["bytes"] = struct.unpack_from("<I", body, 8 + 8 + 16)[0]
        with self.lock:
            self.records.append((now, STREAM_MSGS[mtype], len(body), info))


# ------------------------------------------------------------------ the source
class Clip:
    """The guest's video source (video.img: "SPRSVID1 w h frames BGR" + raw BGR frames)."""

    def __init__(self, path):
        import numpy as np
        with open(path, "rb") as f:
            _, w, h, n, _ = f.read(4096).split(b"\n", 1)[0].decode().split()
        self.w, self.h, self.n = int(w), int(h), int(n)
        self.frames = np.memmap(path, dtype=np.uint8, mode="r", offset=4096,
                                shape=(self.n, self.h, self.w, 3))

    def rgb(self, n, rw, rh):
        """Frame n as the guest draws it into a rw x rh region (its nearest-neighbour
        mapping), RGB, without the stamp."""
        import numpy as np
        ys = (np.arange(rh, dtype=np.int64) * self.h) // rh
        xs = (np.arange(rw, dtype=np.int64) * self.w) // rw
        return self.frames[n % self.n][ys[:, None], xs[None, :], ::-1]


def region_psnr(shot, clip, n, region):
    """PSNR (dB) of the screenshot's video region below the stamp rows against source
    frame n. The guest tears (the server can copy its framebuffer while frame n is being
    written over n-1 from the top), so the reference is frame n above the row that fits
    best and frame n-1 below it: what the server could have seen. 99 = identical."""
    import numpy as np
    w, h, rgb = shot
    rw, rh, rx, ry = region
    img = np.frombuffer(rgb, dtype=np.uint8).reshape(h, w, 3)
    got = img[ry + STAMP_ROWS:ry + rh, rx:rx + rw].astype(np.int32)
    err = []
    for k in (n, n - 1):
        want = clip.rgb(max(k, 0), rw, rh)[STAMP_ROWS:].astype(np.int32)
        err.append(((got - want) ** 2).sum(axis=(1, 2), dtype=np.int64))
    above = np.concatenate([[0], np.cumsum(err[0])])
    below = np.concatenate([np.cumsum(err[1][::-1])[::-1], [0]])
    mse = float((above + below).min()) / got.size
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0 ** 2 / mse))


def wire_frame_psnr(record, create, clip):
    """(stamp, PSNR) of one STREAM_DATA frame as sent (its JPEG decoded here), against the
    source frame its stamp names; None if it holds no readable stamp."""
    import io

    from PIL import Image
    img = Image.open(io.BytesIO(record[3]["frame"])).convert("RGB")
    if not create["flags"] & STREAM_FLAG_TOP_DOWN:
        img = img.transpose(Image.FLIP_TOP_BOTTOM)
    shot = (img.width, img.height, img.tobytes())
    _, _, dx, dy = create["dest"]
    rw, rh, rx, ry = REGION
    if (img.width, img.height) != create["size"] or rx < dx or ry < dy:
        return None
    n = decode_stamp(shot, rx - dx, ry - dy)
    return None if n is None else (n, region_psnr(shot, clip, n, (rw, rh, rx - dx, ry - dy)))


# ------------------------------------------------------------------ helpers
def clip_or_skip():
    path = GUEST_DIR / "video.img"
    if not path.exists():
        pytest.skip(f"no {path}: run tests/guest/build.sh {GUEST_DIR}")
    return Clip(path)


def start_video(make_rig, display, mode, mem=512):
    rig = make_rig(display=display, workload="video", mem=mem, append=VIDEO_ARGS,
                   spice_opts={"streaming-video": mode})
    m = rig.wait_serial(r"SPICE-RS-GUEST: video \d+x\d+ frames=(\d+) -> (\d+)x(\d+)\+(\d+)\+(\d+)",
                        timeout=90)
    assert int(m.group(1)) > 0, "the guest found no video clip"
    assert tuple(int(m.group(i)) for i in range(2, 6)) == REGION
    rig.wait_serial(r"workload video running", timeout=30)
    return rig


def connect(rig, tmp_path, tap=None, name="client"):
    c = SpiceClient(tmp_path / f"{name}.log", debug=True)
    c.connect("127.0.0.1", tap.port if tap else rig.port, timeout=60)
    return c


def wait_for(pred, timeout, what, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout ({timeout}s) waiting for {what}")
        time.sleep(step)


def save_rgb(shot, path):
    from PIL import Image
    w, h, rgb = shot
    Image.frombytes("RGB", (w, h), rgb).save(path)


def overlap(a, b):
    """Pixels two (w, h, x, y) rectangles share."""
    (aw, ah, ax, ay), (bw, bh, bx, by) = a, b
    return (max(0, min(ax + aw, bx + bw) - max(ax, bx)) *
            max(0, min(ay + ah, by + bh) - max(ay, by)))


def guest_fps(rig):
    got = re.findall(r"SPICE-RS-VIDEO: frame=\d+ fps=([\d.]+)", rig.serial())
    return float(got[-1]) if got else 0.0


def frames_in(tap, t0, t1):
    """(frames per second, mean frame bytes) of the stream data passed on in [t0, t1]."""
    data = tap.stream({"data"}, t0, t1)
    n = len(data)
    return n / (t1 - t0), (sum(r[3]["bytes"] for r in data) / n if n else 0.0)


def shown_fps(client, t0, t1):
    """Different stamps the client showed per second in [t0, t1] (needs track_stamps)."""
    got = client.stamps()["stamps"]
    return len([1 for t, _ in got if t0 <= t <= t1]) / (t1 - t0)


def lag_frames(rig, client, tmp_path):
    """How many frames the client's picture is behind the guest's (client screenshot
    stamp vs the screendump's taken right after); None if a stamp is unreadable."""
    x, y = REGION[2], REGION[3]
    shown = decode_stamp(client.screenshot(), x, y)
    img = screendump(rig, tmp_path / "lag.png")
    now = decode_stamp((img.width, img.height, img.tobytes()), x, y)
    return None if shown is None or now is None else (now - shown) % 65536


def with_stream(tap, t0, t1):
    """(STREAM_DATA record, its stream's STREAM_CREATE info) for the frames passed on in
    [t0, t1]: ids are reused, so each frame goes with the last create of its id before it."""
    creates, out = {}, []
    for r in tap.stream({"create", "data"}, 0.0, t1):
        if r[1] == "create":
            creates[r[3]["id"]] = r[3]
        elif r[0] >= t0 and r[3]["id"] in creates:
            out.append((r, creates[r[3]["id"]]))
    return out


def timeline(tap, t0, t1, step=2.0):
    """'frames/KiB' per step seconds of stream data passed on in [t0, t1]."""
    out, t = [], t0
    while t + step <= t1 + 1e-6:
        fps, size = frames_in(tap, t, t + step)
        out.append(f"{fps * step:.0f}/{size / 1024:.0f}")
        t += step
    return " ".join(out)


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pause_video(rig, client):
    """Key P pauses the guest's video (workload.c); returns the stamp of the frame it
    stopped on."""
    start = len(rig.serial())
    client.wait_inputs()
    client.key_press_release(KEY_P)
    return int(rig.wait_serial(r"SPICE-RS-VIDEO: paused frame=(\d+)", timeout=10,
                               start=start).group(1))


def screen_exact(rig, client, tmp_path, tag):
    """Client screenshot vs QMP screendump, once the client got nothing for a second."""
    client.wait_quiet(1.0, timeout=20)
    shot = client.screenshot()
    dump = screendump(rig, tmp_path / f"{tag}-dump.png")
    n = compare_images(shot, dump, tmp_path / f"{tag}-diff.png")
    if n:
        client.screenshot_image().save(tmp_path / f"{tag}-client.png")
    return n, shot


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("display", ["qxl", "std"])
def test_video_streams_as_mjpeg_close_to_the_source(make_rig, display, tmp_path):
    """streaming-video=all: the video region reaches spice-gtk as an MJPEG stream, which it
    decodes into a picture within PSNR_BOUND of the source frame its stamp names; when the
    guest stops, the stream ends and the area is sent again without loss."""
    clip = clip_or_skip()
    rig = start_video(make_rig, display, "all")
    tap = WireTap(rig.port, keep_frames=True)
    try:
        c = connect(rig, tmp_path, tap)
        t_conn = time.monotonic()
        wait_for(lambda: tap.stream({"create"}), 30, "STREAM_CREATE")
        rw, rh, rx, ry = REGION

        # A busy host's guest may flush its framebuffer in bands at first, and the first
        # stream then covers a band; the stream must come to cover the whole video.
        def covering():
            return [cr for cr in tap.stream({"create"})
                    if overlap(cr[3]["dest"], REGION) >= 0.9 * rw * rh]
        try:
            create = wait_for(covering, 20, "a STREAM_CREATE over the video region")[0]
        except AssertionError:
            raise AssertionError(f"no stream covers the video region {REGION}: "
                                 f"{[cr[3]['dest'] for cr in tap.stream({'create'})]}")
        info = create[3]
        print(f"{display}: lib={rig.lib} STREAM_CREATE {time.monotonic() - t_conn:.1f}s after "
              f"connecting: codec {info['codec']}, dest {info['dest']}, stream size "
              f"{info['size']}; streams before it: "
              f"{[cr[3]['dest'] for cr in tap.stream({'create'}) if cr[0] < create[0]]}")
        assert info["codec"] == CODEC_MJPEG, info

        # Screenshots while the stream plays: each one's stamp names the source frame.
        time.sleep(2)
        psnrs, stamps = [], []
        t0 = time.monotonic()
        for i in range(8):
            time.sleep(0.4)
            shot = c.screenshot()
            n = decode_stamp(shot, rx, ry)
            if n is None:
                continue
            stamps.append(n)
            psnrs.append(region_psnr(shot, clip, n, REGION))
            if psnrs[-1] < PSNR_BOUND:  # keep it for a look: client picture and the source
                save_rgb(shot, tmp_path / f"low-{i}-client.png")
                save_rgb((rw, rh, clip.rgb(n, rw, rh).tobytes()), tmp_path / f"low-{i}-source.png")
        t1 = time.monotonic()
        fps, size = frames_in(tap, t0, t1)
        ev = c.stream_events()
        print(f"{display}: wire {fps:.1f} frames/s, {size / 1024:.1f} KiB/frame; guest "
              f"{guest_fps(rig):.1f} fps; client: created {ev['created']}, {ev['frames']} frames "
              f"received, {ev['late']} late, {ev['dropped']} dropped by the decoder")
        print(f"{display}: client stamps {stamps}, PSNR dB {[round(p, 1) for p in psnrs]}")
        # The frames as sent, decoded here: is the server's picture right (whatever the
        # client does with it)?
        # Each frame against its own stream's STREAM_CREATE: a busy host's first stream
        # may cover a band, and its successor (another id, another dest) the whole video.
        scored = [(m[1], r) for r, m in ((r, wire_frame_psnr(r, cr, clip))
                                         for r, cr in with_stream(tap, t0, t1)) if m]
        wire = sorted(p for p, _ in scored)
        worst = min(scored, key=lambda x: x[0], default=None)
        if worst and worst[0] < PSNR_BOUND:
            (tmp_path / "worst-wire-frame.jpg").write_bytes(worst[1][3]["frame"])
        low = [round(p, 1) for p in wire if p < PSNR_BOUND]
        if wire:
            print(f"{display}: {len(wire)} frames on the wire: PSNR dB min {wire[0]:.1f}, "
                  f"median {wire[len(wire) // 2]:.1f}, max {wire[-1]:.1f}; below {PSNR_BOUND}: "
                  f"{low}")
        assert ev["created"], "spice-gtk handled no STREAM_CREATE"
        assert ev["frames"] >= 20, f"spice-gtk handled only {ev['frames']} STREAM_DATA"
        assert len(set(stamps)) >= 4, f"the client's picture hardly changed: stamps {stamps}"
        psnrs.sort()
        median = psnrs[len(psnrs) // 2]
        assert median >= PSNR_BOUND, f"the client's picture: median PSNR {median:.1f} dB"
        assert len(wire) >= 10, f"only {len(wire)} frames with a readable stamp on the wire"
        assert wire[len(wire) // 2] >= PSNR_BOUND, "frames as sent: median PSNR below the bound"
        assert psnrs[0] < 99, "every picture was lossless: were these really stream frames?"

        # The video pauses: the area goes still, the stream ends, lossless pixels follow.
        t_stop = time.monotonic()
        last = pause_video(rig, c)
        destroy = wait_for(lambda: tap.stream({"destroy", "destroy_all"}, t_stop), 10,
                           "STREAM_DESTROY after the video paused")[0]
        n, shot = screen_exact(rig, c, tmp_path, "still")
        print(f"{display}: video paused on frame {last}, STREAM_DESTROY after "
              f"{destroy[0] - t_stop:.2f}s; client destroyed {c.stream_events()['destroyed']}; "
              f"screenshot (stamp {decode_stamp(shot, rx, ry)}) vs screendump: {n} differing pixels")
        assert decode_stamp(shot, rx, ry) == last
        assert n == 0, f"{n} pixels differ after the stream ended, see {tmp_path}"
        c.close()
    finally:
        tap.close()


@pytest.mark.parametrize("display", ["qxl", "std"])
def test_a_client_that_comes_back_gets_the_stream_again(make_rig, display, tmp_path):
    """A user closes remote-viewer during a video and opens it again: the video keeps
    playing in the guest, and the new session streams it too (it once got the area as
    lossless pixels until the video paused: the server remembered the old stream)."""
    clip_or_skip()
    rig = start_video(make_rig, display, "all")
    tap = WireTap(rig.port)
    try:
        first = connect(rig, tmp_path, tap, "first")
        wait_for(lambda: tap.stream({"create"}), 30, "STREAM_CREATE for the first client")
        time.sleep(2)
        first.close()
        # Long enough for the server to see the client gone and end its stream.
        time.sleep(3)
        t_back = time.monotonic()
        again = connect(rig, tmp_path, tap, "again")
        create = wait_for(lambda: tap.stream({"create"}, t_back), 20,
                          "STREAM_CREATE for the client that came back")[0]
        time.sleep(3)
        t0, t1 = time.monotonic() - 2.5, time.monotonic()
        fps, size = frames_in(tap, t0, t1)
        ev = again.stream_events()
        print(f"{display}: lib={rig.lib} stream again {create[0] - t_back:.1f}s after "
              f"reconnecting, dest {create[3]['dest']}; wire {fps:.1f} frames/s x "
              f"{size / 1024:.1f} KiB; client created {ev['created']}, {ev['frames']} frames")
        assert overlap(create[3]["dest"], REGION) >= 0.5 * REGION[0] * REGION[1], create[3]
        assert ev["created"] and ev["frames"] >= 10, ev
        again.close()
    finally:
        tap.close()


@pytest.mark.parametrize("display", ["std", "qxl"])
def test_streaming_off_sends_exact_pixels(make_rig, display, tmp_path):
    """streaming-video=off: the same video reaches the client as ordinary (lossless)
    drawing, no stream message at all, and the client's screen equals the guest's."""
    rig = start_video(make_rig, display, "off")
    tap = WireTap(rig.port)
    try:
        c = connect(rig, tmp_path, tap)
        c.track_stamps(REGION[2], REGION[3])
        time.sleep(1)
        t0 = time.monotonic()
        time.sleep(6)
        t1 = time.monotonic()
        shown = shown_fps(c, t0, t1)
        ev = c.stream_events()
        msgs = tap.stream()
        print(f"{display}: lib={rig.lib} off: guest {guest_fps(rig):.1f} fps, client showed "
              f"{shown:.1f} frames/s; stream messages on the wire {len(msgs)}, client created "
              f"{ev['created']}")
        assert shown >= 3, "the video did not play on the client"
        assert not msgs, f"stream messages with streaming-video=off: {msgs[:3]}"
        assert not ev["created"]
        last = pause_video(rig, c)
        n, shot = screen_exact(rig, c, tmp_path, "off")
        print(f"{display}: video paused on frame {last}, client shows "
              f"{decode_stamp(shot, REGION[2], REGION[3])}; screenshot vs screendump: "
              f"{n} differing pixels")
        assert decode_stamp(shot, REGION[2], REGION[3]) == last
        assert n == 0, f"{n} pixels differ, see {tmp_path}"
        c.close()
    finally:
        tap.close()


@pytest.mark.parametrize("mode", ["filter", "all"])
def test_filter_leaves_fast_text_alone(make_rig, mode, tmp_path):
    """The desktop workload with its front window's text rewritten 25 times a second (a
    fast scrolling terminal): streaming-video=filter sends it as drawing, no stream;
    streaming-video=all streams it, which shows the text does change at video rates."""
    rig = make_rig(display="qxl", workload="desktop", append="text_fps=25",
                   spice_opts={"streaming-video": mode})
    rig.wait_serial(r"workload desktop running", timeout=60)
    tap = WireTap(rig.port)
    try:
        c = connect(rig, tmp_path, tap)
        u0 = c.state()["updates"]
        time.sleep(6)
        updates = c.state()["updates"] - u0
        ev = c.stream_events()
        creates = tap.stream({"create"})
        frames = tap.stream({"data"})
        print(f"{mode} fast text: lib={rig.lib} client updates {updates} in 6 s; "
              f"STREAM_CREATE {[r[3] for r in creates]}, {len(frames)} STREAM_DATA; "
              f"client created {ev['created']}")
        if mode == "filter":
            assert not creates and not ev["created"], creates[:3]
            assert updates >= 30, "the text did not change on the client"
        else:
            assert creates and ev["created"], "with streaming-video=all the text never streamed"
        c.close()
    finally:
        tap.close()


def test_slow_client(make_rig, tmp_path):
    """A client behind a slow link (a token bucket at a third of what the stream used
    unthrottled, at most 2 Mbit/s): the client still shows a moving picture, few frames
    arrive too late to show and the picture stays close behind the guest; QEMU's memory
    stays bounded, the frames reaching the client become fewer or smaller, and the rate
    comes back once the link is fast again. Debian's C server is measured only on what a
    user sees (it shows next to nothing at a third of the rate, issue 15)."""
    clip_or_skip()
    rig = start_video(make_rig, "qxl", "all")
    tap = WireTap(rig.port)

    def client_drops(before):
        ev = c.stream_events()
        return ev, f"{ev['late'] - before['late']} late, {ev['dropped'] - before['dropped']} dropped"

    try:
        c = connect(rig, tmp_path, tap)
        c.track_stamps(REGION[2], REGION[3])
        wait_for(lambda: tap.stream({"create"}), 30, "STREAM_CREATE")
        time.sleep(1)
        ev = c.stream_events()
        t0 = time.monotonic()
        time.sleep(8)
        t1 = time.monotonic()
        base_fps, base_size = frames_in(tap, t0, t1)
        base_shown = shown_fps(c, t0, t1)
        base_lag = lag_frames(rig, c, tmp_path)
        ev, drops = client_drops(ev)
        print(f"unthrottled: wire {base_fps:.1f} frames/s x {base_size / 1024:.1f} KiB "
              f"= {base_fps * base_size * 8 / 1e6:.2f} Mbit/s; client showed {base_shown:.1f} "
              f"frames/s ({drops}), {base_lag} frames behind the guest; guest "
              f"{guest_fps(rig):.1f} fps")

        # The clip plays once from disk into the guest's page cache, which RSS includes:
        # memory is watched from the second loop on.
        wait_for(lambda: re.search(r"SPICE-RS-VIDEO: frame=(2[5-9]\d|[3-9]\d\d|\d{4,}) ",
                                   rig.serial()), 30, "the clip's second loop")
        throttle = min(2_000_000, base_fps * base_size * 8 / 3)
        tap.set_rate(throttle)
        ts = time.monotonic()
        rss = []
        settled = None
        while time.monotonic() < ts + 20:
            rss.append((time.monotonic() - ts, rss_kib(rig.proc.pid)))
            if settled is None and time.monotonic() >= ts + 10:
                settled = c.stream_events()
            time.sleep(1)
        t2 = time.monotonic()
        slow_fps, slow_size = frames_in(tap, t2 - 10, t2)
        slow_shown = shown_fps(c, t2 - 10, t2)
        slow_lag = lag_frames(rig, c, tmp_path)
        _, late_settled = client_drops(settled)
        late_in_settled = c.stream_events()["late"] - settled["late"]
        ev, drops = client_drops(ev)
        print(f"throttled to {throttle / 1e6:.2f} Mbit/s (last 10 of 20 s): wire {slow_fps:.1f} "
              f"frames/s x {slow_size / 1024:.1f} KiB = {slow_fps * slow_size * 8 / 1e6:.2f} "
              f"Mbit/s; client showed {slow_shown:.1f} frames/s ({drops} in 20 s, "
              f"{late_settled} in the last 10 s), {slow_lag} frames behind")
        print(f"throttled, frames/KiB per 2 s: {timeline(tap, ts, t2)}")
        print("QEMU RSS (MiB) while throttled: " +
              " ".join(f"{t:.0f}s:{k / 1024:.0f}" for t, k in rss))

        # Lifted: how long until the wire carries 70% of the unthrottled frame rate over a
        # whole 4 s window. The first seconds flush what the relay held back, a burst that
        # says nothing of the rate, so a shorter window could count it as recovery.
        tap.set_rate(None)
        t3 = time.monotonic()
        window = 4.0
        recovered = None
        while recovered is None and time.monotonic() < t3 + RECOVERY_S:
            time.sleep(0.5)
            now = time.monotonic()
            if now - t3 >= window + 2 and frames_in(tap, now - window, now)[0] >= 0.7 * base_fps:
                recovered = now - t3
        t5 = time.monotonic()
        t4 = t5 - window
        rec_fps, rec_size = frames_in(tap, t4, t5)
        rec_shown = shown_fps(c, t4, t5)
        rec_lag = lag_frames(rig, c, tmp_path)
        _, drops = client_drops(ev)
        print(f"throttle lifted: frames/KiB per 2 s {timeline(tap, t3, t5)}; 70% held for "
              f"{window:.0f} s after {recovered if recovered is None else round(recovered, 1)} s; "
              f"then wire {rec_fps:.1f} frames/s x {rec_size / 1024:.1f} KiB, client showed "
              f"{rec_shown:.1f} frames/s ({drops} since lifting), {rec_lag} frames behind; "
              f"RSS {rss_kib(rig.proc.pid) / 1024:.0f} MiB")

        assert rig.alive()
        print(f"lib={rig.lib}: shown while throttled {slow_shown:.1f} frames/s, "
              f"{late_in_settled} late in its last 10 s, {slow_lag} frames behind")
        growth = (max(k for _, k in rss) - rss[0][1]) / 1024
        late_growth = (max(k for t, k in rss if t >= 10) - min(k for t, k in rss if t < 10)) / 1024
        print(f"RSS growth while throttled: {growth:.1f} MiB (second half over first "
              f"{late_growth:.1f} MiB)")
        assert growth < 48 and late_growth < 16, "QEMU's memory grows under a slow client"
        assert slow_fps * slow_size * 8 < throttle * 1.3, "the relay's throttle did not hold"
        assert slow_fps < 0.8 * base_fps or slow_size < 0.8 * base_size, \
            "neither frame rate nor frame size fell for the slow client"
        if rig.lib == "c":
            print("lib=c: measured only (C keeps the link full and the client drops what "
                  "arrives late; its recovery is slow, see the module doc)")
            c.close()
            return
        # What the user sees while throttled: a moving picture (a third of the rate
        # leaves room for well over 3 frames a second at a lower quality), frames that
        # arrive in time to be shown, and a picture close behind the guest. The rate
        # control decides these; load only slows the guest and the client, so the
        # bounds are generous on rates and strict on lateness.
        assert slow_shown >= 3, f"the picture nearly froze: {slow_shown:.1f} frames/s shown"
        assert late_in_settled <= max(8, 0.15 * slow_shown * 10), \
            f"{late_in_settled} frames came too late to show in 10 s"
        assert slow_lag is None or slow_lag <= 2 * FPS, \
            f"the picture is {slow_lag} frames behind the guest"
        assert recovered is not None, \
            f"the frame rate did not recover within {RECOVERY_S} s: {rec_fps:.1f} vs {base_fps:.1f}"
        c.close()
    finally:
        tap.close()


LINKS = {  # name: (bytes/s server -> client, one-way delay s, least frames/s shown)
    "1mbit_40ms": (125_000, 0.040, 6.0),
    "20mbit_40ms": (2_500_000, 0.040, 10.0),
}


@pytest.mark.parametrize("link", sorted(LINKS))
def test_video_over_a_real_link(make_rig, tmp_path, link):
    """The clip over an emulated access link (relay.py: the rate limit with real TCP
    backpressure, 40 ms each way): the stream starts within seconds, the client shows a
    moving picture with few frames too late to show, and it stays close behind the
    guest. Debian's C server passes too (here: 6.4 frames/s shown at 1 Mbit/s; ours 12.4,
    its frames encoded at half size for the client to scale, the first stream frame 3.7 s
    after connecting; 13 at 20 Mbit/s but 14 frames behind the guest, ours 12.8 and 4)."""
    from relay import DelayRelay
    clip_or_skip()
    rate, delay, least_fps = LINKS[link]
    rig = start_video(make_rig, "qxl", "all")
    relay = DelayRelay("127.0.0.1", rig.port, delay=delay, rate=rate)
    tap = WireTap(relay.port)
    try:
        t0 = time.monotonic()
        c = connect(rig, tmp_path, tap)
        c.track_stamps(REGION[2], REGION[3])
        wait_for(lambda: tap.stream({"data"}), 60, "the first stream frame")
        first = tap.stream({"data"})[0][0] - t0
        time.sleep(6)
        ev = c.stream_events()
        c.stamps()
        t1 = time.monotonic()
        time.sleep(12)
        t2 = time.monotonic()
        fps, size = frames_in(tap, t1, t2)
        shown = shown_fps(c, t1, t2)
        lag = lag_frames(rig, c, tmp_path)
        now = c.stream_events()
        late = now["late"] - ev["late"]
        print(f"\nlib={rig.lib} {link}: first stream frame {first:.1f} s after connecting; "
              f"wire {fps:.1f} frames/s x {size / 1024:.1f} KiB = {fps * size * 8 / 1e6:.2f} "
              f"Mbit/s; client showed {shown:.1f} frames/s, {late} late in {t2 - t1:.0f} s, "
              f"{lag} frames behind the guest (guest {guest_fps(rig):.1f} fps)")
        assert rig.alive()
        assert first < 30, f"no stream for {first:.0f} s"
        assert shown >= least_fps, f"the client showed {shown:.1f} frames/s"
        assert late <= max(8, 0.15 * shown * (t2 - t1)), f"{late} frames came too late to show"
        assert lag is None or lag <= 2 * FPS, f"the picture is {lag} frames behind the guest"
        c.close()
    finally:
        tap.close()
        relay.close()
