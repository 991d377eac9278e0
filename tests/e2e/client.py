"""Headless SPICE client for the e2e tests, built on spice-gtk (SpiceClientGLib 2.0).

spice-gtk needs a GLib main loop and is not thread safe, so the client runs in a
worker subprocess (this file with --worker, always Debian's /usr/bin/python3,
which sees python3-gi) and the test talks to it with JSON lines over stdin/stdout.
A crash in spice-gtk therefore shows up as a dead worker, not a dead pytest.

    c = SpiceClient()
    c.connect("127.0.0.1", port, password=None, timeout=30)   # waits for the primary surface
    w, h, rgb = c.screenshot()
    c.key_press_release(0x1e)          # 'a' (set-1 scancode); extended: 0xE048 or 0x148
    c.mouse_position(100, 200); c.mouse_button(1, True)
    c.events()                         # [(channel, event name), ...], e.g. SPICE_CHANNEL_ERROR_AUTH
    c.state()["primaries"]             # every primary surface seen: [[width, height], ...]
    c.state()["cursor"]                # the cursor channel's: {"visible", "position", "sets",
                                       #   "shape": {width, height, hot_x, hot_y, rgba_sha1}}
    c.disconnect(); c.connect(...)     # a new session in the same worker
    c.close()

Frame stamps (benchmarks): c.track_stamps(x0, y0) makes the worker read the video stamp
at (x0, y0) each time the client has drawn into it and gone idle; c.stamps() returns
(and forgets) [[monotonic time, stamp], ...] for every change seen, plus the snapshots
asked for with c.snap(path): the raw primary surface written at such a moment.

Video codec: c.connect(..., video_codecs=["h264", "vp8"]) sends the display channel's
PREFERRED_VIDEO_CODEC_TYPE with that order once it is open (spice-gtk's
change_preferred_video_codec_types); c.state()["codec_pref"] says what was sent or why not.

Video streams: SpiceClient(log_path, debug=True) runs the worker with SPICE_DEBUG=1, so
spice-gtk writes its channel debug lines to log_path; c.stream_events() counts the
stream messages the display channel handled (created, destroyed, frames received).

Sound (spice-gtk's playback and record channels; the worker never calls spice_audio_get, so
no audio backend plays anything and the test sees the channel's own signals):
c.sound() -> {"playback": {"starts": [[t, format, channels, rate]], "stops": [t], "bytes",
"chunks", "volume": [..], "mute", "changes": [[t, "volume"|"mute", value]]}, "record": {...}};
c.playback_take(path) writes the PCM received so far (S16 interleaved, as playback-data gave
it) to path and returns [[t, byte offset], ...] for each chunk (forgetting them);
c.record_source(path) loops that S16 stereo 48 kHz PCM into the record channel (20 ms chunks,
paced by the clock) from each record-start until record-stop.
c.playback_delay(ms) stands in for an audio backend's clock (spice-gstaudio.c): while the
playback channel plays, spice_playback_channel_set_delay(ms) at its start and every second
after, so the session's multimedia clock follows the audio stamps (last stamp - ms), as
spice-gtk's GStreamer backend does with its pipeline's latency; None stops doing it.

Scancodes: spice-gtk takes PC XT set-1 codes and writes an 0xE0-prefixed key as
0x100 | code (up arrow 0x148, right ctrl 0x11d); 0xE0xx given here is converted.
"""
import json
import os
import re
import subprocess
import sys
import time

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# SPICE mouse buttons (spice/enums.h) and their button-state masks
BUTTON_LEFT, BUTTON_MIDDLE, BUTTON_RIGHT, BUTTON_UP, BUTTON_DOWN = 1, 2, 3, 4, 5
_BUTTON_MASK = {1: 1, 2: 2, 3: 4}
# SpiceVideoCodecType (spice/enums.h)
VIDEO_CODECS = {"mjpeg": 1, "vp8": 2, "h264": 3, "vp9": 4, "h265": 5}


def decode_stamp(shot, x0=0, y0=0):
    """Reads the video workload's frame stamp (tests/guest/workload.c) from a screenshot
    (width, height, RGB bytes) at the video region's top-left; None if absent."""
    w, h, rgb = shot

    def level(b):  # mean luma of the block's centre 8x16 pixels
        tot = 0
        for y in range(y0 + 8, y0 + 24):
            for x in range(x0 + b * 16 + 4, x0 + b * 16 + 12):
                i = (y * w + x) * 3
                tot += rgb[i] + rgb[i + 1] + rgb[i + 2]
        return tot / (16 * 8 * 3)

    if x0 + 18 * 16 > w or y0 + 32 > h:
        return None
    white, black = level(0), level(1)
    if white - black < 128:  # lossy codecs blur it, but the reference blocks stay apart
        return None
    mid = (white + black) / 2
    n = 0
    for b in range(2, 18):
        n = (n << 1) | (level(b) > mid)
    return n


class ClientError(Exception):
    pass


def spice_scancode(code):
    """0xE0xx (set-1 with prefix) -> spice-gtk's 0x1xx; plain codes unchanged."""
    if code & 0xFF00 == 0xE000:
        return 0x100 | (code & 0xFF)
    return code


# spice-gtk's debug lines (channel-display.c) for the stream messages it handles
_STREAM_LINES = {
    "created": re.compile(r"display_handle_stream_create: id (\d+)"),
    "destroyed": re.compile(r"display_handle_stream_destroy: id (\d+)"),
    # one per STREAM_DATA: display_stream_stats_save logs either line
    "frames": re.compile(r"(?:video margin: -?\d+$|stream data too late by \d+)"),
    "late": re.compile(r"stream data too late by (\d+)"),
    # the MJPEG decoder dropping a frame it got too late to show
    "dropped": re.compile(r"(?:dropping a late MJPEG frame|rendering too late by)"),
    "stats": re.compile(r"display_stream_stats_debug: id=(\d+) #in-frames=(\d+)"),
}
# The stream's playback statistics spice-gtk logs as it ends the stream
_STREAM_END = re.compile(r"display_stream_stats_debug: id=(\d+) #in-frames=(\d+) out/in=([\d.]+) "
                         r"#drops-on-receive=(\d+) avg-late-time\(ms\)=[\d.]+ "
                         r"#drops-on-playback=(\d+)")
# Failures of spice-gtk's video decoders (channel-display-gst.c, channel-display-mjpeg.c:
# warnings and criticals, not debug lines)
_DECODE_ERROR = re.compile(r"GStreamer error|An error occurred, stopping the video stream|"
                           r"Disabling GStreamer video support|got an unexpected decoded buffer|"
                           r"got a frame without a sample|Playbin has not yet initialized|"
                           r"need more input data")
_PIPELINE_DROPPED = re.compile(r"the GStreamer pipeline dropped (\d+) frames")


class SpiceClient:
    def __init__(self, log_path=None, debug=False):
        """debug: spice-gtk's debug output (SPICE_DEBUG=1) goes to log_path (a temporary
        file if none), for stream_events()."""
        if debug and not log_path:
            import tempfile
            fd, log_path = tempfile.mkstemp(prefix="spice-client-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        env = dict(os.environ)
        if debug:
            env["SPICE_DEBUG"] = "1"
        self.proc = subprocess.Popen([PY, os.path.abspath(__file__), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, bufsize=0, env=env)
        self.buttons = 0
        self.debug = debug

    def _call(self, cmd, **args):
        if self.proc.poll() is not None:
            raise ClientError(f"client worker died (exit {self.proc.returncode})")
        args["cmd"] = cmd
        self.proc.stdin.write(json.dumps(args).encode() + b"\n")
        line = self.proc.stdout.readline()
        if not line:
            raise ClientError(f"client worker died during {cmd} (exit {self.proc.wait()})")
        r = json.loads(line)
        if not r.get("ok"):
            raise ClientError(f"{cmd}: {r.get('error')}")
        return r

    # ------------------------------------------------------------ connection
    def connect(self, host, port, password=None, timeout=30, wait_primary=True, video_codecs=None,
                unix_path=None, fd_qmp=None, skipauth=False, tls=None, username=None):
        """Connects; with wait_primary, waits for the display's primary surface.
        port None: no plain port (TLS only). tls: {"port", "ca_file", "subject" (checks the
        certificate's subject instead of the host name), "secure_channels": [names]}.
        unix_path: through that UNIX socket instead of host:port (SpiceSession "unix-path").
        fd_qmp: as virt-manager's local console, every channel through a socketpair whose
        other end the worker hands to QEMU over the QMP socket at fd_qmp (getfd +
        add_client with skipauth); host and port are then unused.
        video_codecs: codec names in the client's order of preference (VIDEO_CODECS), sent
        as soon as the display channel is open; with wait_primary, also waits until it was.
        username: SpiceSession "username" (SASL, with password).
        Raises ClientError on a channel error (e.g. SPICE_CHANNEL_ERROR_AUTH) or timeout."""
        codecs = None
        if video_codecs:
            unknown = [c for c in video_codecs if c not in VIDEO_CODECS]
            if unknown:
                raise ClientError(f"unknown video codecs {unknown}; known: {sorted(VIDEO_CODECS)}")
            codecs = [VIDEO_CODECS[c] for c in video_codecs]
        self._call("connect", host=host, port=None if port is None else int(port),
                   password=password, video_codecs=codecs, tls=tls,
                   unix_path=unix_path and str(unix_path), fd_qmp=fd_qmp and str(fd_qmp),
                   skipauth=skipauth, username=username)
        if wait_primary:
            self.wait(lambda s: s["primary"] is not None, timeout, "primary surface")
            if codecs:
                s = self.wait(lambda s: s["codec_pref"] is not None, timeout, "codec preference")
                if s["codec_pref"].get("error"):
                    raise ClientError(f"preferred video codecs: {s['codec_pref']['error']}")
        return self

    def state(self):
        return self._call("state")

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            s = self.state()
            if pred(s):
                return s
            errs = [e for e in s["events"] if "ERROR" in e[1]]
            if errs:
                raise ClientError(f"channel error while waiting for {what}: {errs}")
            if time.monotonic() > deadline:
                raise ClientError(f"timeout waiting for {what}; state {s}")
            time.sleep(0.05)

    def wait_event(self, name, timeout=15):
        """Waits for a channel event by name (e.g. 'SPICE_CHANNEL_ERROR_AUTH'), no raise on errors."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self.events()
            if any(e[1] == name for e in ev):
                return ev
            time.sleep(0.05)
        raise ClientError(f"no {name} event; events {self.events()}")

    def events(self):
        return [tuple(e) for e in self.state()["events"]]

    def wait_inputs(self, timeout=15):
        return self.wait(lambda s: s["inputs"], timeout, "inputs channel")

    def wait_quiet(self, quiet=0.5, timeout=15):
        """Waits until no display update arrived for `quiet` seconds."""
        return self.wait(lambda s: s["primary"] is not None and s["since_update"] >= quiet,
                         timeout, "display to settle")

    # ------------------------------------------------------------ display
    def screenshot(self):
        """The client's primary surface as (width, height, RGB bytes)."""
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".rgb") as f:
            r = self._call("screenshot", path=f.name)
            with open(f.name, "rb") as g:
                data = g.read()
        return r["width"], r["height"], data

    def screenshot_image(self):
        from PIL import Image
        w, h, data = self.screenshot()
        return Image.frombytes("RGB", (w, h), data)

    # ------------------------------------------------------------ input
    def key_press(self, code):
        self._call("key", code=spice_scancode(code), action="press")

    def key_release(self, code):
        self._call("key", code=spice_scancode(code), action="release")

    def key_press_release(self, code):
        self._call("key", code=spice_scancode(code), action="press_release")

    def mouse_motion(self, dx, dy):
        self._call("motion", dx=dx, dy=dy, buttons=self.buttons)

    def mouse_position(self, x, y, display=0):
        self._call("position", x=x, y=y, display=display, buttons=self.buttons)

    def mouse_button(self, button, pressed):
        mask = _BUTTON_MASK.get(button, 0)
        self.buttons = (self.buttons | mask) if pressed else (self.buttons & ~mask)
        self._call("button", button=button, pressed=pressed, buttons=self.buttons)

    def track_stamps(self, x0, y0):
        """Starts recording the video stamp at (x0, y0) whenever the client shows a change."""
        self._call("track_stamps", x0=int(x0), y0=int(y0))

    def stamps(self):
        """{"stamps": [[t, n], ...], "snaps": [{"t", "n", "path", "width", "height",
        "stride", "format"}, ...]} since the last call (t: time.monotonic(), same clock
        as the caller's)."""
        r = self._call("stamps")
        return {"stamps": r["stamps"], "snaps": r["snaps"]}

    def snap(self, path):
        """Asks for the primary surface (raw bytes, as the client holds it) to be written
        to path at the next stamp reading; it shows up in stamps()["snaps"]."""
        self._call("snap", path=str(path))

    def stream_events(self):
        """What spice-gtk's display channels did with video streams so far (needs
        debug=True): {"created": [ids], "destroyed": [ids], "frames": STREAM_DATA messages
        handled, "late": those that arrived after their display time, "dropped": frames the
        MJPEG decoder dropped, "stats": [(id, frames in), ...] logged as streams ended,
        "ended": [{"id", "in", "out_ratio", "late", "playback_drops"}, ...] the same lines
        in full, "decode_errors": [decoder warning lines], "pipeline_dropped": frames the
        GStreamer decoder pipeline reported dropped}."""
        if not self.debug:
            raise ClientError("stream_events needs SpiceClient(debug=True)")
        if self.log is not subprocess.DEVNULL:
            self.log.flush()
        out = {"created": [], "destroyed": [], "frames": 0, "late": 0, "dropped": 0, "stats": [],
               "ended": [], "decode_errors": [], "pipeline_dropped": 0}
        with open(self.log_path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if _DECODE_ERROR.search(line):
                    out["decode_errors"].append(line)
                if "GSpice-DEBUG" not in line:
                    continue
                m = _STREAM_END.search(line)
                if m:
                    out["ended"].append({"id": int(m.group(1)), "in": int(m.group(2)),
                                         "out_ratio": float(m.group(3)),
                                         "late": int(m.group(4)),
                                         "playback_drops": int(m.group(5))})
                m = _PIPELINE_DROPPED.search(line)
                if m:
                    out["pipeline_dropped"] += int(m.group(1))
                for key, rx in _STREAM_LINES.items():
                    m = rx.search(line)
                    if not m:
                        continue
                    if key in ("created", "destroyed"):
                        out[key].append(int(m.group(1)))
                    elif key == "stats":
                        out[key].append((int(m.group(1)), int(m.group(2))))
                    else:
                        out[key] += 1
        return out

    def resize(self, width, height):
        """Asks the guest for a width x height display, as a resized client window does."""
        self._call("resize", width=width, height=height)

    # ------------------------------------------------------------ agent
    def agent(self):
        """What the main channel saw of the guest agent: {"connected", "connected_at"
        (monotonic time of the last agent-connected change to True), "grabs": [{"t",
        "selection", "types"}], "data": [{"t", "selection", "type", "data" (base64)}],
        "served": [{"t", "selection", "type", "size"}] (guest requests answered from the
        offer), "unserved": [...] (requests with no matching offer), "files": {id: {"done",
        "error", "t0", "t1"}}}."""
        return self._call("agent")

    def wait_agent(self, timeout=60):
        return self.wait(lambda s: s["agent_connected"], timeout, "agent-connected")

    def clipboard_offer(self, data, vd_type=1, selection=0):
        """Grabs the client's clipboard with one type (VD_AGENT_CLIPBOARD_*: 1 UTF8 text,
        2 PNG) and answers the guest's requests for it with data (bytes or str)."""
        if isinstance(data, str):
            data = data.encode()
        import base64
        self._call("clipboard_offer", selection=selection, type=vd_type,
                   data=base64.b64encode(data).decode())

    def clipboard_request(self, vd_type=1, selection=0):
        """Asks the guest for its clipboard in that type; the answer arrives in
        agent()["data"]."""
        self._call("clipboard_request", selection=selection, type=vd_type)

    def file_copy(self, paths, fid="f"):
        """spice_main_channel_file_copy_async with these local files; its end
        show up in agent()["files"][fid]."""
        self._call("file_copy", paths=[str(p) for p in paths], id=fid)

    # ------------------------------------------------------------ sound
    def sound(self):
        """What the playback and record channels saw (see the module docstring)."""
        return self._call("sound")

    def playback_take(self, path):
        """Writes the PCM received since the last call to path; returns its chunk index
        [[monotonic arrival time, byte offset in path], ...]."""
        return self._call("playback_take", path=str(path))["index"]

    def record_source(self, path):
        """Sends that S16 stereo PCM (looped) on the record channel whenever it records."""
        self._call("record_source", path=str(path))

    def playback_delay(self, ms):
        """Emulates an audio backend of `ms` latency (see the module docstring); the
        set_delay calls show up in sound()["playback"]["delays"] as [t, ms]."""
        self._call("playback_delay", ms=None if ms is None else int(ms))

    def disconnect(self, wait=True, timeout=10):
        """Disconnects the session (the worker stays, connect() again for a new one);
        with wait, waits until spice-gtk reports every channel closed."""
        self._call("disconnect")
        if wait:
            self.wait(lambda s: s["channels"] == 0, timeout, "channels to close")

    def close(self):
        if self.proc.poll() is None:
            try:
                self._call("quit")
            except ClientError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ======================================================================= worker
def worker():
    import ctypes

    # Replies go to the original stdout; fd 1 becomes stderr, because GLib writes debug
    # messages (SPICE_DEBUG=1) to stdout and they must not mix with the replies.
    reply_fd = os.dup(1)
    os.dup2(2, 1)

    import gi
    gi.require_version("SpiceClientGLib", "2.0")
    from gi.repository import GLib, GObject
    from gi.repository import SpiceClientGLib as Spice

    st = {"session": None, "display": None, "inputs": None, "main": None,
          "primary": None, "events": [], "last_update": None, "updates": 0,
          "primaries": [], "channels": set(), "gen": 0, "track": None,
          "video_codecs": None, "codec_pref": None,
          "connect_at": None, "first_update_at": None,
          "agent": None, "playback": None, "record": None, "record_src": None,
          "playback_delay": None, "cursor": None}

    class _Primary(ctypes.Structure):  # SpiceDisplayPrimary (channel-display.h)
        _fields_ = [("format", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                    ("stride", ctypes.c_int), ("shmid", ctypes.c_int),
                    ("data", ctypes.c_void_p), ("marked", ctypes.c_int)]

    _lib = ctypes.CDLL("libspice-client-glib-2.0.so.8")
    _get_primary = _lib.spice_display_channel_get_primary
    _get_primary.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(_Primary)]
    _get_primary.restype = ctypes.c_int
    ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
    ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

    def _gptr(obj):  # the C GObject* behind a PyGObject wrapper
        return ctypes.pythonapi.PyCapsule_GetPointer(obj.__gpointer__, None)

    def chan_name(ch):
        return f"{Spice.Channel.type_to_string(ch.get_property('channel-type'))}:{ch.get_property('channel-id')}"

    def on_event(ch, event, gen):
        # "channels": open channels of every session (disconnect waits for 0);
        # "events": only the current session's (a disconnected one still reports its end)
        if event.value_name == "SPICE_CHANNEL_OPENED":
            st["channels"].add((gen, chan_name(ch)))
        elif event.value_name == "SPICE_CHANNEL_CLOSED" or "ERROR" in event.value_name:
            st["channels"].discard((gen, chan_name(ch)))
        if gen == st["gen"]:
            st["events"].append((chan_name(ch), event.value_name))
            if (event.value_name == "SPICE_CHANNEL_OPENED" and st["video_codecs"]
                    and current(ch)):
                send_codec_preference(ch, st["video_codecs"])

    def send_codec_preference(ch, codecs):
        # Once open: spice-gtk checks the server's PREF_VIDEO_CODEC_TYPE cap, known then.
        # The GIR names differ between spice-gtk versions (0.42: display_channel_...);
        # without the list call (before 0.38) only the first choice can be sent.
        many = [getattr(ch, n, None) for n in ("change_preferred_video_codec_types",
                                               "display_channel_change_preferred_video_codec_types")]
        one = [getattr(ch, n, None) for n in ("change_preferred_video_codec_type",
                                              "display_channel_change_preferred_video_codec_type",
                                              "display_change_preferred_video_codec_type")]
        try:
            many, one = [f for f in many if f], [f for f in one if f]
            if many:
                many[0](codecs)
                st["codec_pref"] = {"sent": codecs}
            elif one:
                one[0](codecs[0])
                st["codec_pref"] = {"sent": codecs[:1]}
            else:
                st["codec_pref"] = {"error": "this spice-gtk cannot send a codec preference"}
        except Exception as e:  # GLib.Error: the server lacks the capability
            st["codec_pref"] = {"error": f"{type(e).__name__}: {e}"}

    def current(ch):  # a signal from this session's display channel (not a closed one's)
        return st["display"] is not None and _gptr(ch) == _gptr(st["display"])

    def on_primary_create(ch, fmt, width, height, stride, shmid, imgdata):
        if not current(ch):
            return
        st["primary"] = {"format": int(fmt), "width": width, "height": height, "stride": stride}
        st["primaries"].append([width, height])
        st["last_update"] = time.monotonic()

    def on_primary_destroy(ch):
        if not current(ch):
            return
        st["primary"] = None

    def on_invalidate(ch, x, y, w, h):
        if not current(ch):
            return
        st["last_update"] = time.monotonic()
        if st["first_update_at"] is None:
            st["first_update_at"] = st["last_update"]
        st["updates"] += 1
        tr = st["track"]
        if (tr is not None and not tr["pending"] and x < tr["x0"] + 288 and x + w > tr["x0"]
                and y < tr["y0"] + 32 and y + h > tr["y0"]):
            # Read once the client has drawn everything it had (idle): one server update
            # can come as many draws, and a half-drawn stamp would read as another number.
            tr["pending"] = True
            GLib.idle_add(read_stamp, priority=GLib.PRIORITY_LOW)

    def read_stamp():
        tr = st["track"]
        tr["pending"] = False
        prim = _Primary()
        if (st["display"] is None or not _get_primary(_gptr(st["display"]), 0, ctypes.byref(prim))
                or not prim.data or int(prim.format) not in (32, 96)):
            return False
        x0, y0 = tr["x0"], tr["y0"]
        if x0 + 288 > prim.width or y0 + 32 > prim.height:
            return False
        # Mean luma of 3x3 samples in the middle of each 16x32 block (BGRX pixels).
        lv = [0] * 18
        for dy in (10, 16, 22):
            row = ctypes.string_at(prim.data + (y0 + dy) * prim.stride + x0 * 4, 288 * 4)
            for b in range(18):
                for dx in (4, 8, 12):
                    i = (b * 16 + dx) * 4
                    lv[b] += row[i] + row[i + 1] + row[i + 2]
        white, black = lv[0], lv[1]
        if white - black < 128 * 27:
            return False
        mid = (white + black) / 2
        n = 0
        for b in range(2, 18):
            n = (n << 1) | (lv[b] > mid)
        t = time.monotonic()
        if n != tr["last"]:
            tr["last"] = n
            tr["stamps"].append([t, n])
        if tr["snap"]:
            path = tr["snap"]
            tr["snap"] = None
            with open(path, "wb") as f:
                f.write(ctypes.string_at(prim.data, prim.stride * prim.height))
            tr["snaps"].append({"t": t, "n": n, "path": path, "width": prim.width,
                                "height": prim.height, "stride": prim.stride,
                                "format": int(prim.format)})
        return False

    def on_open_fd(ch, with_tls):
        # spice-gtk asks for a socket per channel; QEMU gets the other end (add_client).
        import socket
        ours, theirs = socket.socketpair()
        try:
            st["fd_qmp"].add_spice_client(theirs.fileno(), skipauth=st["skipauth"],
                                          name=f"spice-{chan_name(ch)}")
            st["fd_clients"].append(chan_name(ch))
        except Exception as e:  # noqa: BLE001 (reported through state())
            st["fd_errors"].append(f"{chan_name(ch)}: {e}")
            ours.close()
            return
        finally:
            theirs.close()
        ch.open_fd(ours.detach())  # the channel's GSocket owns it now

    def _bytes(ptr, size):
        # A gpointer signal argument: PyGObject hands it over as a GPointer wrapper whose
        # hash is the address (pygpointer.c), or as an int.
        if not size or ptr is None:
            return b""
        if isinstance(ptr, (bytes, bytearray)):
            return bytes(ptr[:size])
        if isinstance(ptr, (list, tuple)):
            return bytes(ptr[:size])
        addr = ptr if isinstance(ptr, int) else hash(ptr)
        return ctypes.string_at(addr & ((1 << 64) - 1), size)

    def watch_agent(ch):
        # Clipboard as spice-gtk's SpiceGtkSession does it, without GTK: the guest's grab
        # is recorded, its data kept; the guest's requests are answered from the offer.
        import base64
        ag = st["agent"] = {"connected_at": None, "grabs": [], "data": [], "served": [],
                            "unserved": [], "files": {}, "offer": None}

        def on_agent(c, _pspec):
            if c.get_property("agent-connected"):
                ag["connected_at"] = time.monotonic()

        def on_grab(c, selection, types, ntypes):
            if isinstance(types, (list, tuple)):
                tl = [int(t) for t in types[:ntypes]]
            else:
                tl = list(memoryview(_bytes(types, 4 * ntypes)).cast("I"))
            ag["grabs"].append({"t": time.monotonic(), "selection": selection, "types": tl})
            return True

        def on_data(c, selection, vtype, data, size):
            ag["data"].append({"t": time.monotonic(), "selection": selection, "type": vtype,
                               "data": base64.b64encode(_bytes(data, size)).decode()})

        def on_request(c, selection, vtype):
            off = ag["offer"]
            rec = {"t": time.monotonic(), "selection": selection, "type": vtype}
            if off is None or off["selection"] != selection or off["type"] != vtype:
                ag["unserved"].append(rec)
                return False
            c.clipboard_selection_notify(selection, vtype, off["data"])
            rec["size"] = len(off["data"])
            ag["served"].append(rec)
            return True

        GObject.Object.connect(ch, "notify::agent-connected", on_agent)
        GObject.Object.connect(ch, "main-clipboard-selection-grab", on_grab)
        GObject.Object.connect(ch, "main-clipboard-selection", on_data)
        GObject.Object.connect(ch, "main-clipboard-selection-request", on_request)

    def file_copy(req):
        from gi.repository import Gio
        ag, fid = st["agent"], req["id"]
        rec = ag["files"][fid] = {"done": False, "error": None, "t0": time.monotonic(),
                                  "t1": None}

        def done(c, result, *_):
            try:
                c.file_copy_finish(result)
            except Exception as e:  # GLib.Error: the agent refused or the copy failed
                rec["error"] = f"{type(e).__name__}: {e}"
            rec["done"], rec["t1"] = True, time.monotonic()

        files = [Gio.File.new_for_path(p) for p in req["paths"]]
        # No progress callback: spice-gtk annotates it (scope call), so PyGObject frees it
        # when file_copy_async returns, and the next progress report would crash.
        st["main"].file_copy_async(files, Gio.FileCopyFlags.NONE, None, None, None, done, None)

    _gobj = ctypes.CDLL("libgobject-2.0.so.0")
    _gobj.g_object_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                   ctypes.c_void_p]
    _send_data = _lib.spice_record_channel_send_data
    _send_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]

    def volume_of(ch):
        # "volume" is a pointer property (guint16[nchannels]): PyGObject cannot read it.
        ptr = ctypes.c_void_p()
        _gobj.g_object_get(_gptr(ch), b"volume", ctypes.byref(ptr), None)
        n = ch.get_property("nchannels")
        if not ptr.value or not n:
            return []
        return list((ctypes.c_uint16 * n).from_address(ptr.value))

    def watch_audio_props(ch, rec):
        def on_volume(c, _pspec):
            rec["volume"] = volume_of(c)
            rec["changes"].append([time.monotonic(), "volume", rec["volume"]])

        def on_mute(c, _pspec):
            rec["mute"] = bool(c.get_property("mute"))
            rec["changes"].append([time.monotonic(), "mute", rec["mute"]])

        GObject.Object.connect(ch, "notify::volume", on_volume)
        GObject.Object.connect(ch, "notify::mute", on_mute)

    def watch_playback(ch):
        pb = st["playback"] = {"starts": [], "stops": [], "bytes": 0, "chunks": 0,
                               "volume": [], "mute": None, "changes": [],
                               "pcm": bytearray(), "index": [], "delays": [],
                               "delay_timer": None}

        def set_delay():
            # What spice-gstaudio's update_mmtime_timeout_cb does with its pipeline latency.
            ms = st["playback_delay"]
            if ms is None or st["playback"] is not pb:
                pb["delay_timer"] = None
                return False
            ch.set_delay(ms)
            pb["delays"].append([time.monotonic(), ms])
            return True

        def on_start(c, fmt, channels, rate):
            pb["starts"].append([time.monotonic(), fmt, channels, rate])
            if st["playback_delay"] is not None and pb["delay_timer"] is None:
                set_delay()
                pb["delay_timer"] = GLib.timeout_add_seconds(1, set_delay)

        def on_data(c, data, size):
            pb["index"].append([time.monotonic(), len(pb["pcm"])])
            pb["pcm"] += _bytes(data, size)
            pb["bytes"] += size
            pb["chunks"] += 1

        def on_stop(c):
            pb["stops"].append(time.monotonic())
            if pb["delay_timer"] is not None:
                GLib.source_remove(pb["delay_timer"])
                pb["delay_timer"] = None

        GObject.Object.connect(ch, "playback-start", on_start)
        GObject.Object.connect(ch, "playback-data", on_data)
        GObject.Object.connect(ch, "playback-stop", on_stop)
        watch_audio_props(ch, pb)

    def watch_record(ch):
        rc = st["record"] = {"starts": [], "stops": [], "bytes": 0, "chunks": 0,
                             "volume": [], "mute": None, "changes": [], "first_sent": None,
                             "timer": None}
        chunk = 48000 * 4 // 50  # 20 ms of S16 stereo at 48 kHz

        def pump():
            src = st["record_src"]
            if src is None or rc["timer"] is None:
                return True
            # As a sound card would: what the clock says is due, in 20 ms chunks.
            due = int((time.monotonic() - rc["t0"]) * 50) + 1
            while rc["sent"] < due:
                off = (rc["sent"] * chunk) % len(src)
                piece = (src + src[:chunk])[off:off + chunk] if off + chunk > len(src) \
                    else src[off:off + chunk]
                _send_data(_gptr(ch), piece, len(piece), int(time.monotonic() * 1000) & 0xFFFFFFFF)
                if rc["first_sent"] is None:
                    rc["first_sent"] = time.monotonic()
                rc["sent"] += 1
                rc["bytes"] += len(piece)
                rc["chunks"] += 1
            return True

        def on_start(c, fmt, channels, rate):
            rc["starts"].append([time.monotonic(), fmt, channels, rate])
            rc["t0"], rc["sent"] = time.monotonic(), 0
            if rc["timer"] is None:
                rc["timer"] = GLib.timeout_add(10, pump)

        def on_stop(c):
            rc["stops"].append(time.monotonic())
            if rc["timer"] is not None:
                GLib.source_remove(rc["timer"])
                rc["timer"] = None

        GObject.Object.connect(ch, "record-start", on_start)
        GObject.Object.connect(ch, "record-stop", on_stop)
        watch_audio_props(ch, rc)

    def watch_cursor(ch, gen):
        # What spice-gtk's cursor channel decoded (channel-cursor.c set_cursor): the size,
        # the hot spot and the RGBA pixels it hands a widget (a digest: None when it shows
        # its default cursor), whether the cursor is shown, and where.
        def cur():
            if st["cursor"] is None or st["cursor"]["gen"] != gen:
                st["cursor"] = {"gen": gen, "sets": 0, "visible": False, "shape": None,
                                "position": None, "resets": 0}
            return st["cursor"]

        def on_set(c, w, h, hx, hy, rgba):
            import hashlib
            data = _bytes(rgba, w * h * 4)
            cur().update(visible=True, sets=cur()["sets"] + 1,
                         shape={"width": w, "height": h, "hot_x": hx, "hot_y": hy,
                                "rgba_sha1": hashlib.sha1(data).hexdigest() if data else None})

        def on_move(c, x, y):
            cur().update(position=[x, y])

        def on_hide(c):
            cur()["visible"] = False

        def on_reset(c):
            cur()["resets"] += 1

        GObject.Object.connect(ch, "cursor-set", on_set)
        GObject.Object.connect(ch, "cursor-move", on_move)
        GObject.Object.connect(ch, "cursor-hide", on_hide)
        GObject.Object.connect(ch, "cursor-reset", on_reset)

    def on_channel_new(session, ch):
        GObject.Object.connect(ch, "channel-event", on_event, st["gen"])
        if st.get("fd_qmp") is not None and st.get("fd_gen") == st["gen"]:
            GObject.Object.connect(ch, "open-fd", on_open_fd)
        if isinstance(ch, Spice.MainChannel):
            st["main"] = ch
            watch_agent(ch)
            return  # the session connects the main channel itself
        if isinstance(ch, Spice.DisplayChannel):
            # Head 0: servers may list the display channels in any order.
            if st["display"] is None and ch.get_property("channel-id") == 0:
                st["display"] = ch
                GObject.Object.connect(ch, "display-primary-create", on_primary_create)
                GObject.Object.connect(ch, "display-primary-destroy", on_primary_destroy)
                GObject.Object.connect(ch, "display-invalidate", on_invalidate)
        elif isinstance(ch, Spice.InputsChannel):
            st["inputs"] = ch
        elif isinstance(ch, Spice.CursorChannel) and ch.get_property("channel-id") == 0:
            watch_cursor(ch, st["gen"])
        elif isinstance(ch, Spice.PlaybackChannel):
            watch_playback(ch)
        elif isinstance(ch, Spice.RecordChannel):
            watch_record(ch)
        ch.connect()  # spice_channel_connect (shadows GObject.connect)

    def screenshot(path):
        from PIL import Image
        # spice_display_channel_get_primary fills a caller-allocated struct whose data
        # pointer PyGObject cannot expose: call it through ctypes.
        prim = _Primary()
        if not _get_primary(_gptr(st["display"]), 0, ctypes.byref(prim)) or not prim.data:
            raise RuntimeError("no primary surface")
        w, h, stride = prim.width, prim.height, prim.stride
        raw = ctypes.string_at(prim.data, stride * h)
        fmt = prim.format
        # SpiceSurfaceFmt: 32_xRGB=32, 32_ARGB=96 (BGRA in memory), 16_555=16, 16_565=80
        rawmode = {32: "BGRX", 96: "BGRX", 16: "BGR;15", 80: "BGR;16"}.get(int(fmt))
        if rawmode is None:
            raise RuntimeError(f"unsupported surface format {fmt}")
        img = Image.frombuffer("RGB", (w, h), raw, "raw", rawmode, stride, 1)
        with open(path, "wb") as f:
            f.write(img.tobytes())
        return {"width": w, "height": h, "format": int(fmt)}

    def handle(req):
        cmd = req["cmd"]
        if cmd == "connect":
            st["gen"] += 1
            s = Spice.Session()
            if req.get("unix_path"):
                s.set_property("unix-path", req["unix_path"])
            else:
                s.set_property("host", req["host"])
                if req["port"] is not None:
                    s.set_property("port", str(req["port"]))
            tls = req.get("tls")
            if tls:
                s.set_property("tls-port", str(tls["port"]))
                s.set_property("ca-file", tls["ca_file"])
                if tls.get("subject"):
                    s.set_property("cert-subject", tls["subject"])
                    s.set_property("verify", Spice.SessionVerify.SUBJECT)
                if tls.get("secure_channels"):
                    s.set_property("secure-channels", tls["secure_channels"])
            st["video_codecs"], st["codec_pref"] = req.get("video_codecs"), None
            if req.get("password") is not None:
                s.set_property("password", req["password"])
            if req.get("username") is not None:
                s.set_property("username", req["username"])
            GObject.Object.connect(s, "channel-new", on_channel_new)
            st["session"] = s
            # Taken just before the session opens its first socket (the first SYN).
            st["connect_at"], st["first_update_at"] = time.monotonic(), None
            if req.get("fd_qmp"):
                import rig  # this file's directory is on sys.path
                if st.get("fd_qmp_path") != req["fd_qmp"]:
                    st["fd_qmp"] = rig.QMP(req["fd_qmp"])
                    st["fd_qmp_path"] = req["fd_qmp"]
                st.update(fd_gen=st["gen"], skipauth=bool(req.get("skipauth")),
                          fd_clients=[], fd_errors=[])
                if not s.open_fd(-1):  # -1: the main channel asks for its fd (open-fd)
                    raise RuntimeError("spice_session_open_fd failed")
                return {}
            if not s.connect():
                raise RuntimeError("spice_session_connect failed")
            return {}
        if cmd == "state":
            lu = st["last_update"]
            return {"primary": st["primary"], "events": st["events"],
                    "inputs": st["inputs"] is not None and any(
                        e == ("inputs:0", "SPICE_CHANNEL_OPENED") for e in st["events"]),
                    "updates": st["updates"], "primaries": st["primaries"],
                    "channels": len(st["channels"]),
                    "open": sorted(n for g, n in st["channels"] if g == st["gen"]),
                    "since_update": None if lu is None else time.monotonic() - lu,
                    "codec_pref": st["codec_pref"],
                    "cursor": st["cursor"] if st["cursor"] and st["cursor"]["gen"] == st["gen"]
                    else None,
                    "first_frame_s": None if st["first_update_at"] is None
                    else st["first_update_at"] - st["connect_at"],
                    "fd_clients": st.get("fd_clients", []), "fd_errors": st.get("fd_errors", []),
                    "mouse_mode": st["main"].get_property("mouse-mode") if st["main"] else None,
                    "agent_connected": bool(st["main"] and
                                            st["main"].get_property("agent-connected"))}
        if cmd == "screenshot":
            return screenshot(req["path"])
        if cmd in ("agent", "clipboard_offer", "clipboard_request", "file_copy"):
            if st["main"] is None or st["agent"] is None:
                raise RuntimeError("no main channel")
            ag = st["agent"]
            if cmd == "agent":
                return {"connected": st["main"].get_property("agent-connected"),
                        **{k: v for k, v in ag.items() if k != "offer"}}
            if cmd == "clipboard_offer":
                import base64
                ag["offer"] = {"selection": req["selection"], "type": req["type"],
                               "data": list(base64.b64decode(req["data"]))}
                st["main"].clipboard_selection_grab(req["selection"], [req["type"]])
                return {}
            if cmd == "clipboard_request":
                st["main"].clipboard_selection_request(req["selection"], req["type"])
                return {}
            file_copy(req)
            return {}
        if cmd == "sound":
            def public(d):
                return None if d is None else {k: v for k, v in d.items()
                                               if k not in ("pcm", "index", "timer",
                                                            "delay_timer")}
            return {"playback": public(st["playback"]), "record": public(st["record"])}
        if cmd == "playback_take":
            pb = st["playback"]
            if pb is None:
                raise RuntimeError("no playback channel")
            with open(req["path"], "wb") as f:
                f.write(pb["pcm"])
            index = pb["index"]
            pb["pcm"], pb["index"] = bytearray(), []
            return {"index": index}
        if cmd == "playback_delay":
            st["playback_delay"] = req["ms"]
            return {}
        if cmd == "record_source":
            with open(req["path"], "rb") as f:
                st["record_src"] = f.read()
            return {}
        if cmd == "track_stamps":
            st["track"] = {"x0": req["x0"], "y0": req["y0"], "pending": False, "last": None,
                           "stamps": [], "snap": None, "snaps": []}
            return {}
        if cmd == "stamps":
            tr = st["track"] or {"stamps": [], "snaps": []}
            r = {"stamps": tr["stamps"], "snaps": tr["snaps"]}
            tr["stamps"], tr["snaps"] = [], []
            return r
        if cmd == "snap":
            if st["track"] is None:
                raise RuntimeError("snap needs track_stamps first")
            st["track"]["snap"] = req["path"]
            return {}
        inp = st["inputs"]
        if cmd in ("key", "motion", "position", "button") and inp is None:
            raise RuntimeError("no inputs channel")
        if cmd == "key":
            getattr(inp, {"press": "key_press", "release": "key_release",
                          "press_release": "key_press_and_release"}[req["action"]])(req["code"])
            return {}
        if cmd == "motion":
            inp.motion(req["dx"], req["dy"], req["buttons"])
            return {}
        if cmd == "position":
            inp.position(req["x"], req["y"], req["display"], req["buttons"])
            return {}
        if cmd == "button":
            (inp.button_press if req["pressed"] else inp.button_release)(req["button"], req["buttons"])
            return {}
        if cmd == "resize":
            # What remote-viewer does when its window changes size: a monitor config,
            # sent through the agent channel (spice-gtk needs a connected agent for it).
            main = st["main"]
            if main is None or not main.get_property("agent-connected"):
                raise RuntimeError("no agent connection on the main channel")
            main.update_display_enabled(0, True, False)
            main.update_display(0, 0, 0, req["width"], req["height"], False)
            if not main.send_monitor_config():
                raise RuntimeError("spice-gtk refused to send the monitor config")
            return {}
        if cmd == "disconnect":
            if st["session"]:
                st["session"].disconnect()
            if st["record"] and st["record"]["timer"] is not None:
                GLib.source_remove(st["record"]["timer"])
            st.update(playback=None, record=None)
            st.update(session=None, display=None, inputs=None, main=None, primary=None,
                      events=[], last_update=None, updates=0, primaries=[], gen=st["gen"] + 1)
            return {}
        if cmd == "quit":
            if st["session"]:
                st["session"].disconnect()
            GLib.timeout_add(100, loop.quit)
            return {}
        raise RuntimeError(f"unknown command {cmd}")

    buf = b""

    def on_stdin(fd, cond):
        nonlocal buf
        data = os.read(fd, 65536)
        if not data:
            loop.quit()
            return False
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                r = handle(json.loads(line))
                r["ok"] = True
            except Exception as e:  # report, keep serving
                r = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            os.write(reply_fd, json.dumps(r).encode() + b"\n")
        return True

    loop = GLib.MainLoop()
    GLib.io_add_watch(0, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    loop.run()


if __name__ == "__main__" and "--worker" in sys.argv:
    worker()
