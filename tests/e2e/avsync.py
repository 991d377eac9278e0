"""Audio/video skew at the client, as a user would notice it (test_av_sync.py, bench).

The Debian guest runs avplay (tests/guest-debian/avplay.c): a beep at the start of every
second and a 30 fps video in an X window whose frame k is drawn when the guest's audio
clock reaches k/30 s, so frame 30*s (the flash) and beep s leave the guest together.
The client (tests/e2e/client.py) emulates an audio backend of latency D: it calls
spice_playback_channel_set_delay(D) every second, so spice-gtk's multimedia clock follows
the audio, and a beep counts as heard D after its samples arrived.

    vm = AvVM(lib, work)                     # boots the guest (streaming-video=all, HDA),
                                             # builds and installs avplay, connects spice-gtk
    r = measure(vm.rig.serial_path, vm.guest, vm.client, seconds, delay_ms, work)
    r["skew_ms"]      # per second: (time the client showed the flash) - (beep heard)
    summary(r)        # p50/p95 of skew, video and audio latency, fps, late drops

Times are the host's time.monotonic(); the guest's serial line "AVPLAY: second=S" (printed
as it draws flash S) gives the guest-side time of each flash, for the latencies.
"""
import base64
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

import guest as guest_module
from client import SpiceClient
from rig import REPO, Rig

HOST = "127.0.0.1"
AUDIO = ["-audiodev", "spice,id=snd0", "-device", "ich9-intel-hda",
         "-device", "hda-duplex,audiodev=snd0"]

RATE = 48000
FPS = 30
PLAYER_SRC = REPO / "tests" / "guest-debian" / "avplay.c"
# avplay's beep is 0.5 of full scale on top of a 0.03 tone: a sample above this is the beep.
BEEP_THRESHOLD = 0.2 * 32767
# avplay's beep lasts 50 ms: a loud run this long (ms) is one (a cut one still counts).
BEEP_MS_MIN, BEEP_MS_MAX = 30, 70
# A second with a restart of the guest's sound from this long before its beep or flash to
# the later of the two is not judged: between QEMU's stop and start the client's clock is
# set otherwise (a start sets it from the audio again at once) (s).
RESTART_SETTLE_S = 0.3
# A beep is matched to the flash the guest drew nearest its arrival, if within this (s).
MATCH_S = 0.45
# A flash that did not reach the client: the first frame after it in this many is used
# (its expected time moved by the frames between).
FLASH_SLACK_FRAMES = 6
WINDOW_XY = (0, 0)
# avplay's device buffer (ms): short, as players go; shorter underruns QEMU's HDA codec.
BUFFER_MS = 100


class PlayerError(Exception):
    pass


def build_player(out_dir):
    """Compiles avplay on the host (same Debian release as the guest: same libraries)."""
    out = Path(out_dir) / "avplay"
    r = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(PLAYER_SRC),
                        "-lasound", "-lX11", "-lm"], capture_output=True, text=True)
    if r.returncode != 0:
        raise PlayerError(f"avplay did not build (libasound2-dev and libx11-dev, "
                          f"scripts/install-deps.sh):\n{r.stderr[-2000:]}")
    return out


def install_player(guest, path):
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    guest.run(f"echo {b64} | base64 -d > /tmp/avplay && chmod 755 /tmp/avplay", user=False,
              timeout=60)


class AvVM:
    """The Debian guest with QEMU's HDA card on `-audiodev spice` and
    streaming-video=all (the clip is sent as a video stream, which the client schedules by
    its multimedia clock; QEMU's default, off, draws everything at once), avplay installed,
    spice-gtk connected with its playback channel open. extra_audio: more QEMU arguments
    (tests add QEMU's audio trace points)."""

    def __init__(self, lib, work, extra_audio=()):
        self.lib, self.work = lib, Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.rig, self.guest, self.client = None, None, None
        guest_module.ensure_built()
        player = build_player(self.work)
        kw, cmd_sock = guest_module.rig_args(self.work, agent=False,
                                             extra=AUDIO + list(extra_audio))
        self.rig = Rig(workdir=self.work / "rig", lib=lib,
                       spice_opts={"streaming-video": "all"}, **kw)
        t0 = time.monotonic()
        self.rig.start()
        try:
            self.guest = guest_module.Guest(cmd_sock)
            guest_module.wait_booted(self.rig, self.guest)
            self.boot_s = time.monotonic() - t0
            for ctl in ("Master", "PCM"):
                self.guest.run(f"amixer -c 0 sset {ctl} 100% unmute", user=False, check=False)
            install_player(self.guest, player)
            self.client = SpiceClient(str(self.work / "client.log"), debug=True)
            self.client.connect(HOST, self.rig.port, timeout=60)
            self.client.wait(lambda st: any(n.startswith("playback") for n in st["open"]), 30,
                             "the playback channel")
        except Exception:
            print(self.logs())
            self.close()
            raise

    def logs(self):
        out = [self.rig.tail()]
        try:
            out.append("--- guest avplay.log ---\n" + self.guest.log("/tmp/avplay.log")[-2000:])
        except Exception as e:  # noqa: BLE001 (the guest may be the thing that broke)
            out.append(f"--- guest: {e}")
        return "\n".join(out)

    def measure(self, seconds, delay_ms, tag="av"):
        return measure(self.rig.serial_path, self.guest, self.client, seconds, delay_ms,
                       self.work, tag)

    def close(self):
        if self.client:
            self.client.close()
        if self.guest:
            self.guest.close()
        if self.rig:
            self.rig.stop()


class SerialLines:
    """Every new line of the serial log starting with `prefix`, with the host time it
    showed up (the file polled every millisecond, in a thread)."""

    def __init__(self, path, prefix="AVPLAY:"):
        self.path, self.prefix = Path(path), prefix
        self.lines = []
        self.pos = self.path.stat().st_size if self.path.exists() else 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        buf = b""
        while not self._stop.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.pos)
                    chunk = f.read()
            except OSError:
                chunk = b""
            if chunk:
                now = time.monotonic()
                self.pos += len(chunk)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode(errors="replace").strip()
                    if self.prefix in text:
                        self.lines.append((now, text[text.index(self.prefix):]))
            time.sleep(0.001)

    def wait(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if rx.search(line):
                    return t, line
            time.sleep(0.05)
        return None

    def stop(self):
        self._stop.set()
        self._t.join(2)


def beep_onsets(raw):
    """Frame indices (in the received PCM) where a beep starts: the first loud sample of a
    run of loud milliseconds as long as avplay's beep (BEEP_S). Shorter runs (a click as
    the stream restarts) and longer ones are not beeps."""
    x = np.frombuffer(raw[:len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2)[:, 0]
    ms = RATE // 1000
    n = len(x) // ms
    if not n:
        return []
    loud = np.abs(x[:n * ms].astype(np.int32)).reshape(n, ms).max(axis=1) > BEEP_THRESHOLD
    # Runs of loud milliseconds: [start, end) pairs.
    edges = np.diff(np.concatenate(([0], loud.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = []
    for a, b in zip(starts, ends):
        if BEEP_MS_MIN <= b - a <= BEEP_MS_MAX:
            block = np.abs(x[a * ms:(a + 1) * ms].astype(np.int32))
            out.append(int(a * ms + np.argmax(block > BEEP_THRESHOLD)))
    return out


def beep_arrivals(raw, index, drawn):
    """{second: (arrival time of the beep's first sample, onset frame)}. drawn: {second:
    host time the guest said it drew flash s}; beep s leaves the guest with it, so a beep
    is that of the flash drawn nearest its arrival (an underrun in the guest or a restart
    of the stream shifts the received samples, so their count cannot say which it is).
    unmatched: onsets more than MATCH_S from every flash."""
    if not index or not drawn:
        return {}, []
    offs = np.array([off // 4 for _, off in index])
    times = np.array([t for t, _ in index])
    out, unmatched = {}, []
    for f in beep_onsets(raw):
        j = int(np.searchsorted(offs, f, side="right")) - 1
        # The chunk arrived whole at times[j]; a backend plays its samples in order.
        t = float(times[j]) + (f - offs[j]) / RATE
        s = min(drawn, key=lambda k: abs(drawn[k] - t))
        if abs(drawn[s] - t) > MATCH_S:
            unmatched.append(f)
        elif s not in out or abs(drawn[s] - t) < abs(drawn[s] - out[s][0]):
            out[s] = (t, f)
    return out, unmatched


def flash_times(stamps, seconds):
    """{second: (time shown, frame n)} for the first frame >= 30*s the client showed
    (within FLASH_SLACK_FRAMES)."""
    out = {}
    for s in range(seconds):
        k = FPS * s
        hits = [(n, t) for t, n in stamps if k <= n < k + FLASH_SLACK_FRAMES]
        if hits:
            n, t = min(hits)
            out[s] = (t, n)
    return out


def pct(values, q):
    return None if not values else float(np.percentile(np.array(values), q))


def measure(serial_path, guest, client, seconds, delay_ms, work, tag="av"):
    """Runs avplay for `seconds` with the client's backend delay `delay_ms`; returns what
    was measured (see summary())."""
    work = Path(work)
    pcm_path = work / f"{tag}.pcm"
    x0, y0 = WINDOW_XY
    client.playback_delay(delay_ms)
    client.track_stamps(x0, y0)
    client.stamps()
    client.playback_take(pcm_path)
    ev0 = client.stream_events()
    starts0 = len((client.sound()["playback"] or {}).get("starts", []))
    serial = SerialLines(serial_path)
    try:
        guest.run(f"pkill -x avplay; DISPLAY=:0 /tmp/avplay {int(seconds)} plughw:0 {x0} {y0} "
                  f"{BUFFER_MS} 2>&1 | tee /tmp/avplay.log >/dev/ttyS0 &", user=False)
        if not serial.wait(r"AVPLAY: (start|error)", 30):
            raise PlayerError("avplay did not start: " + guest.log("/tmp/avplay.log"))
        err = serial.wait(r"AVPLAY: error", 0.1)
        if err:
            raise PlayerError(err[1])
        done = serial.wait(r"AVPLAY: done", seconds + 60)
        time.sleep(1.0)  # the last frames and samples on their way
    finally:
        serial.stop()
    stamps = client.stamps()["stamps"]
    index = client.playback_take(pcm_path)
    ev1 = client.stream_events()
    snd = client.sound()["playback"] or {}
    raw = pcm_path.read_bytes()
    with open(work / f"{tag}.json", "w") as f:  # everything, for a look afterwards
        json.dump({"index": index, "stamps": stamps, "serial": serial.lines,
                   "starts": snd.get("starts"), "stops": snd.get("stops"),
                   "delays": snd.get("delays")}, f)

    drawn = {0: next((t for t, line in serial.lines if "AVPLAY: start" in line), None)}
    for t, line in serial.lines:
        m = re.search(r"second=(\d+)", line)
        if m:
            drawn[int(m.group(1))] = t
    drawn = {s: t for s, t in drawn.items() if t is not None}
    beeps, unmatched = beep_arrivals(raw, index, drawn)
    flashes = flash_times(stamps, seconds)
    skew, video_lat, audio_lat = {}, {}, {}
    # The guest's sound stopping and starting again (an underrun in a starved guest: QEMU
    # turns its voice off) resets the client's clock: seconds near one are kept apart.
    restarts = [st[0] for st in snd.get("starts", [])[starts0:]] + \
        [t for t in snd.get("stops", []) if index and t >= index[0][0]]
    near_restart = set()
    # Second 0 is the start-up (the stream and the clock settle): not judged.
    for s in range(1, seconds):
        if s in beeps and s in flashes:
            heard = beeps[s][0] + delay_ms / 1000
            t_shown, n = flashes[s]
            skew[s] = (t_shown - (heard + (n - FPS * s) / FPS)) * 1000
            lo, hi = min(beeps[s][0], t_shown), max(beeps[s][0], t_shown)
            if any(lo - RESTART_SETTLE_S <= t <= hi for t in restarts):
                near_restart.add(s)
        if s in drawn and s in flashes:
            t_shown, n = flashes[s]
            video_lat[s] = (t_shown - (drawn[s] + (n - FPS * s) / FPS)) * 1000
        if s in drawn and s in beeps:
            audio_lat[s] = (beeps[s][0] - drawn[s]) * 1000
    t_audio = [t for t, _ in index]
    shown_while_audio = [t for t, _ in stamps if t_audio and t_audio[0] <= t <= t_audio[-1]]
    audio_span = (t_audio[-1] - t_audio[0]) if len(t_audio) > 1 else 0
    late = {k: ev1[k] - ev0[k] for k in ("frames", "late", "dropped")}
    return {
        "delay_ms": delay_ms, "seconds": seconds,
        "skew_ms": skew, "near_restart": sorted(near_restart), "video_latency_ms": video_lat, "audio_latency_ms": audio_lat,
        "beeps": len(beeps), "beeps_unmatched": len(unmatched),
        "playback_starts": len(snd.get("starts", [])) - starts0, "flashes": len(flashes),
        "frames_shown": len(stamps), "shown_fps_while_audio":
            len(shown_while_audio) / audio_span if audio_span else 0.0,
        "stream_frames": late["frames"], "late_frames": late["late"],
        "late_dropped": late["dropped"], "streams_created": len(ev1["created"]) - len(ev0["created"]),
        "audio_bytes": len(raw), "set_delay_calls": len(snd.get("delays", [])),
        "player": done[1] if done else "no 'AVPLAY: done' line",
        "player_seconds": [line for _, line in serial.lines if "second=" in line][-1:],
    }


def summary(r):
    """The numbers to print and assert on."""
    sk = [v for s, v in r["skew_ms"].items() if s not in r["near_restart"]]
    every = list(r["skew_ms"].values())
    return {
        "D_ms": r["delay_ms"], "seconds_judged": len(sk),
        "seconds_near_restart": len(r["near_restart"]),
        "abs_skew_p95_all_ms": pct([abs(v) for v in every], 95),
        "skew_p50_ms": pct(sk, 50), "skew_p95_ms": pct(sk, 95),
        "abs_skew_p95_ms": pct([abs(v) for v in sk], 95),
        "skew_min_ms": min(sk) if sk else None, "skew_max_ms": max(sk) if sk else None,
        "video_latency_p50_ms": pct(list(r["video_latency_ms"].values()), 50),
        "video_latency_p95_ms": pct(list(r["video_latency_ms"].values()), 95),
        "audio_latency_p50_ms": pct(list(r["audio_latency_ms"].values()), 50),
        "shown_fps_while_audio": round(r["shown_fps_while_audio"], 1),
        "stream_frames": r["stream_frames"], "late_frames": r["late_frames"],
        "late_dropped": r["late_dropped"],
    }
