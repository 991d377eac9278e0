"""The Debian test guest (tests/guest-debian/build.sh) for the agent tests.

It boots into Xorg on the qxl device with spice-vdagentd + spice-vdagent (the agent users
run) and answers commands on a second virtio port, org.spice-rs.cmd (spice-rs-cmd in the
guest): a shell script, run as the X session's user or as root, and its output.

    ensure_built()                              # GuestError with the reason if it cannot be
    kw, sock = rig_args(workdir)                # Rig(**kw): kernel, root disk, virtio ports
    rig = Rig(workdir=..., **kw).start(); rig.wait_serial("SPICE-RS-GUEST: ready")
    g = Guest(sock); g.wait_ready()
    g.run("xrandr")                             # its output; raises on exit != 0
    g.clipboard_set("text"); g.clipboard_get()  # the X clipboard through xclip
    g.latest_download()                         # (name, size, sha256) in ~/Downloads
    g.mode(); g.pointer()                       # xrandr's current size, xdotool's pointer
    g.play_signal(script, seconds, tag)         # aplay the sound tests' signal (sound.py)
    g.record(seconds)                           # arecord: raw S16LE stereo 48 kHz bytes
    g.mixer("Master", volume="50%", mute=True)  # amixer on the HDA card
"""
import base64
import os
import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

from rig import REPO

GUEST_DEBIAN_DIR = Path(os.environ.get("SPICE_RS_GUEST_DEBIAN_DIR",
                                       REPO / "build" / "guest-debian"))
BUILD = REPO / "tests" / "guest-debian" / "build.sh"
AGENT_PORT = "com.redhat.spice.0"
CMD_PORT = "org.spice-rs.cmd"


class GuestError(Exception):
    pass


def ensure_built():
    """Builds the guest (cached: instant on a warm machine). Raises GuestError with the
    build's last lines when it cannot be built, so a test fails with the reason."""
    r = subprocess.run(["bash", str(BUILD), str(GUEST_DEBIAN_DIR)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-30:])
        raise GuestError(f"the Debian test guest could not be built ({BUILD}, exit "
                         f"{r.returncode}):\n{tail}")
    return GUEST_DEBIAN_DIR


def rig_args(workdir, agent=True, extra=()):
    """Rig(...) keyword arguments that boot the Debian guest: its kernel and initramfs, the
    root disk (snapshot=on: the cached image is never written), a virtio-serial bus with the
    agent's spicevmc port (unless agent=False) and the command port on a UNIX socket."""
    cmd_sock = Path(workdir) / "guest-cmd.sock"
    args = ["-drive", f"file={GUEST_DEBIAN_DIR / 'root.img'},if=virtio,format=raw,snapshot=on",
            "-device", "virtio-serial-pci,id=vser0"]
    if agent:
        args += ["-chardev", "spicevmc,id=vdagent,name=vdagent",
                 "-device", f"virtserialport,bus=vser0.0,chardev=vdagent,name={AGENT_PORT}"]
    args += ["-chardev", f"socket,id=gcmd,path={cmd_sock},server=on,wait=off",
             "-device", f"virtserialport,bus=vser0.0,chardev=gcmd,name={CMD_PORT}"]
    return {"guest_dir": GUEST_DEBIAN_DIR, "display": "qxl", "workload": "agent",
            "video": None, "mem": 1024, "extra_args": args + list(extra)}, cmd_sock


def wait_booted(rig, guest, timeout=300):
    """Until the Debian guest says it is ready on its serial line and answers on its
    command port; GuestError with what it said instead (a failed mount, X, a panic)."""
    m = rig.wait_serial(r"SPICE-RS-GUEST: (ready|cannot mount.*|X failed)|Kernel panic",
                        timeout=timeout)
    if "ready" not in m.group(0):
        raise GuestError(f"the Debian guest did not start: {m.group(0)}")
    guest.wait_ready(timeout=60)


class Guest:
    """The command port: one request at a time, each answered by its id."""

    def __init__(self, sock_path, timeout=30):
        self.path = Path(sock_path)
        self.sock = None
        self.buf = b""
        self.next_id = 1
        self.timeout = timeout

    def _connect(self):
        deadline = time.monotonic() + self.timeout
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(self.path))
                self.sock = s
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def run(self, script, user=True, check=True, timeout=None):
        """Runs a sh script in the guest (as the X session's user, or root); returns its
        output (stdout and stderr). Raises GuestError on exit != 0 when check."""
        rc, out = self.run_rc(script, user, timeout)
        if check and rc != 0:
            raise GuestError(f"guest command failed ({rc}): {script!r}\n{out}")
        return out

    def run_rc(self, script, user=True, timeout=None):
        if self.sock is None:
            self._connect()
        rid = self.next_id
        self.next_id += 1
        b64 = base64.b64encode(script.encode()).decode()
        self.sock.sendall(f"{rid} {'user' if user else 'root'} {b64}\n".encode())
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                parts = line.decode().split(" ", 2)
                if len(parts) >= 2 and parts[0] == str(rid):
                    out = base64.b64decode(parts[2]) if len(parts) == 3 else b""
                    return int(parts[1]), out.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(f"no answer from the guest within {timeout or self.timeout}s "
                                 f"to {script!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise GuestError("the guest's command port closed")
            self.buf += chunk

    def wait_ready(self, timeout=60):
        """Waits until the command runner answers (it starts last in the guest's init)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.run("echo ok", timeout=5).strip() == "ok"
            except (GuestError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # ------------------------------------------------------------- what tests ask
    def clipboard_get(self, target="UTF8_STRING", selection="clipboard"):
        """The guest X selection's content as bytes (base64 on the wire), or None when no
        one owns it or the owner gave nothing."""
        rc, out = self.run_rc(f"xclip -selection {selection} -t {shlex.quote(target)} -o "
                              f"| base64 -w0", timeout=20)
        out = out.strip()
        if rc != 0 or not out or "Error" in out:
            return None
        try:
            return base64.b64decode(out)
        except ValueError:
            return None

    def clipboard_targets(self, selection="clipboard"):
        rc, out = self.run_rc(f"xclip -selection {selection} -t TARGETS -o", timeout=20)
        return out.split() if rc == 0 else []

    def clipboard_set(self, data, target="UTF8_STRING", selection="clipboard"):
        """Makes xclip own the guest's selection with data (it stays in the background
        serving it, as a copying application would)."""
        if isinstance(data, str):
            data = data.encode()
        b64 = base64.b64encode(data).decode()
        self.run(f"pkill -x xclip; echo {b64} | base64 -d > /tmp/clip.in; "
                 f"xclip -selection {selection} -t {shlex.quote(target)} -i /tmp/clip.in")

    def latest_download(self, folder="/home/user/Downloads"):
        """(name, size, sha256 hex) of the newest complete file in the agent's download
        folder, or None."""
        out = self.run(f"cd {folder} && f=$(ls -t | head -n1) && [ -n \"$f\" ] && "
                       f"printf '%s\\n%s\\n' \"$f\" $(stat -c %s \"$f\") && "
                       f"sha256sum \"$f\" | cut -d' ' -f1", check=False)
        lines = out.strip().splitlines()
        if len(lines) != 3:
            return None
        return lines[0], int(lines[1]), lines[2]

    def mode(self):
        """The X screen's current size from xrandr."""
        out = self.run("xrandr --current")
        m = re.search(r"current (\d+) x (\d+)", out)
        if not m:
            raise GuestError(f"no current mode in xrandr output:\n{out}")
        return int(m.group(1)), int(m.group(2))

    def pointer(self):
        """The X pointer's position (xdotool)."""
        out = self.run("xdotool getmouselocation --shell")
        v = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return int(v["X"]), int(v["Y"])

    # ------------------------------------------------------------- sound (HDA, alsa-utils)
    def sound_cards(self):
        return self.run("cat /proc/asound/cards", user=False, check=False, timeout=5)

    def mixer(self, control, volume=None, mute=None):
        """amixer sset on card 0: volume ("50%", "100%"), mute True/False (playback controls
        mute/unmute, capture controls cap/nocap). Returns amixer's report."""
        args = []
        if volume is not None:
            args.append(str(volume))
        if mute is not None:
            capture = control.lower().startswith("capture")
            args.append(("nocap" if mute else "cap") if capture else ("mute" if mute else "unmute"))
        return self.run(f"amixer -c 0 sset {shlex.quote(control)} {' '.join(args)}", user=False)

    def mixer_controls(self):
        return self.run("amixer -c 0 scontrols", user=False).strip().splitlines()

    def play_signal(self, perl_script, seconds, tag):
        """Plays `seconds` repeats of the one-second signal perl_script writes to
        /tmp/sig1.raw (raw S16LE stereo 48 kHz) on the HDA card (plughw:0). aplay is started
        first and waits on a FIFO with the device open; "SPICE-RS-GUEST: play <tag> start"
        goes to the serial line as the samples are handed to it (the device starts at once:
        its buffer fills from the FIFO). Returns as soon as that happened."""
        b64 = base64.b64encode(perl_script.encode()).decode()
        self.run(f"""set -e
[ -s /tmp/sig1.raw ] || {{ echo {b64} | base64 -d > /tmp/sig1.pl; perl /tmp/sig1.pl; }}
rm -f /tmp/sig.raw /tmp/play.fifo
for i in $(seq {int(seconds)}); do cat /tmp/sig1.raw; done > /tmp/sig.raw
mkfifo /tmp/play.fifo
exec 4<>/tmp/play.fifo
aplay -q -D plughw:0 -t raw -f S16_LE -r 48000 -c 2 -d {int(seconds)} <&4 >/tmp/aplay.log 2>&1 &
sleep 1
echo "SPICE-RS-GUEST: play {tag} start uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
cat /tmp/sig.raw >&4 &
""", user=False, timeout=60)

    def record(self, seconds):
        """arecord on the HDA card for `seconds`: its raw S16LE stereo 48 kHz bytes."""
        out = self.run(f"arecord -q -D plughw:0 -t raw -f S16_LE -r 48000 -c 2 -d {int(seconds)} "
                       f"/tmp/rec.raw && base64 -w0 /tmp/rec.raw", user=False,
                       timeout=seconds + 60)
        return base64.b64decode(out.strip())

    def log(self, name):
        """A guest log file (/tmp/vdagent.log, /tmp/vdagentd.log, /tmp/Xorg.0.log)."""
        return self.run(f"cat {shlex.quote(name)}", user=False, check=False, timeout=5)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
