"""QEMU test rig for spice-rs end-to-end tests.

Starts Debian's qemu-system-x86_64 with the test guest (tests/guest/build.sh),
a SPICE server on a free localhost port and a QMP socket, with either our
libspice-server.so.1 (lib="ours": SPICE_RS_LIB_DIR, default <repo>/build/lib,
put in LD_LIBRARY_PATH) or Debian's C library (lib="c").

    with Rig(display="qxl", workload="desktop") as rig:
        rig.wait_serial(r"workload desktop running")
        rig.qmp.execute("query-spice")

The process's mapped libspice-server is checked after start (rig.mapped_lib).
Logs (qemu stdout/stderr, serial, command line) go to rig.dir.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("SPICE_RS_GUEST_DIR", REPO / "build" / "guest"))
# The guest's video clips (tests/guest/build.sh) by the name the kernel's clip= takes.
CLIP_FILES = {"megamind": "video.img", "street": "video-street.img",
              "screen": "video-screen.img", "anim": "video-anim.img"}
CACHE = Path(os.environ.get("SPICE_RS_CACHE", Path.home() / ".cache" / "spice-rs"))
QEMU = os.environ.get("SPICE_RS_QEMU", "qemu-system-x86_64")
# The QEMU `make qemu` builds (Debian's 10.0.2 with qemu-patches/), for the tests that need it.
PATCHED_QEMU = REPO / "build" / "qemu" / "bin" / "qemu-system-x86_64"


def lib_dir():
    return Path(os.environ.get("SPICE_RS_LIB_DIR", REPO / "build" / "lib")).resolve()


def default_lib():
    """Which library the tests use by default: SPICE_RS_E2E_LIB=c|ours (default ours)."""
    return os.environ.get("SPICE_RS_E2E_LIB", "ours")


def poll(what, fn, timeout, interval=0.1):
    """fn() until it returns a true value; its value. Raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout ({timeout}s) waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_works():
    """KVM cannot boot Linux on some hosts (nested/limited): probe once, cache the answer.
    SPICE_RS_ACCEL=tcg|kvm overrides."""
    forced = os.environ.get("SPICE_RS_ACCEL")
    if forced:
        return forced == "kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    ver = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    key = re.sub(r"[^A-Za-z0-9.]+", "_", f"{os.uname().release}-{ver}")
    stamp = CACHE / f"kvm-probe-{key}"
    if stamp.exists():
        return stamp.read_text().strip() == "yes"
    ok = False
    kernel, initrd = GUEST_DIR / "vmlinuz", GUEST_DIR / "initrd.img"
    if kernel.exists():
        log = CACHE / "kvm-probe.log"
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([QEMU, "-accel", "kvm", "-m", "256", "-nodefaults", "-display", "none",
                            "-no-reboot", "-serial", f"file:{log}", "-kernel", str(kernel),
                            "-initrd", str(initrd), "-append",
                            "console=ttyS0 panic=-1 workload=console poweroff_after=0"],
                           timeout=20, capture_output=True)
            ok = "SPICE-RS-GUEST: booted" in log.read_text(errors="replace")
        except (subprocess.TimeoutExpired, OSError):
            ok = False
        CACHE.mkdir(parents=True, exist_ok=True)
        stamp.write_text("yes\n" if ok else "no\n")
    return ok


class QMPError(Exception):
    pass


class QMP:
    """Minimal QMP client: greeting, qmp_capabilities, execute, events.

    Asynchronous events that arrive while waiting for a reply, or while polling with
    poll_events/wait_event, are appended to self.events (in arrival order)."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _readline(self, timeout):
        """One line, or None when nothing complete arrived within timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise QMPError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _read(self):
        line = self._readline(self.timeout)
        if line is None:
            raise QMPError(f"no QMP message within {self.timeout}s")
        return json.loads(line)

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(self.timeout)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self._reply(cmd)

    def execute_with_fd(self, cmd, fd, **args):
        """execute(), with fd passed alongside the command (SCM_RIGHTS), as QMP `getfd`
        and `add-fd` take it."""
        import array
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(self.timeout)
        data = json.dumps(msg).encode() + b"\n"
        fds = array.array("i", [fd])
        sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        if sent < len(data):
            self.sock.sendall(data[sent:])
        return self._reply(cmd)

    def _reply(self, cmd):
        """The answer to `cmd`, keeping the events that arrive before it."""
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise QMPError(f"{cmd}: {r['error']}")
            elif "return" in r:
                return r["return"]

    def add_spice_client(self, fd, skipauth=False, name="spice-client"):
        """Hands a connected socket to QEMU's SPICE server (QMP getfd + add_client), as
        virt-manager/libvirt open a local console. QEMU gets a duplicate of fd."""
        self.execute_with_fd("getfd", fd, fdname=name)
        return self.execute("add_client", protocol="spice", fdname=name, skipauth=skipauth)

    def poll_events(self, timeout=0.0):
        """Reads the events that arrive within timeout into self.events; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(max(0.0, deadline - time.monotonic()) or 0.01)
            if line is None:
                return self.events
            r = json.loads(line)
            if "event" in r:
                self.events.append(r)

    def wait_event(self, name, timeout=10, pred=None, start=0):
        """Waits for an event called name (and matching pred(event) if given) among
        self.events[start:]; returns it. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events[start:]:
                if e["event"] == name and (pred is None or pred(e)):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no QMP event {name} within {timeout}s; saw "
                                   f"{[e['event'] for e in self.events[start:]]}")
            self.poll_events(min(left, 0.2))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Rig:
    DISPLAYS = {
        "std": ["-vga", "std"],
        "qxl": ["-vga", "qxl"],
        "virtio": ["-vga", "none", "-device", "virtio-vga"],
        "bochs": ["-vga", "none", "-device", "bochs-display"],
        # Two heads: the primary qxl-vga and a second qxl device (its own QXL instance,
        # worker and display channel).
        "qxl2": ["-vga", "qxl", "-device", "qxl"],
    }

    def __init__(self, display="std", workload="desktop", lib=None, workdir=None, mem=384,
                 poweroff_after=None, append="", password=None, spice_opts=None,
                 usb_tablet=False, video_disk=None, extra_args=(), guest_dir=None,
                 video="1024x768", env_extra=None):
        self.display = display
        self.workload = workload
        self.lib = lib or default_lib()
        self.mem = mem
        self.poweroff_after = poweroff_after
        self.append = append
        self.password = password
        self.spice_opts = dict(spice_opts or {})
        self.usb_tablet = usb_tablet
        self.video_disk = (workload == "video") if video_disk is None else video_disk
        self.extra_args = list(extra_args)
        self.video = video  # kernel cmdline video=WxH (None: the driver's default)
        self.env_extra = dict(env_extra or {})  # e.g. {"SPICE_RS_LOG": "info"}
        self.guest_dir = Path(guest_dir or GUEST_DIR)
        if workdir is None:
            import tempfile
            workdir = tempfile.mkdtemp(prefix=f"spice-rs-{display}-")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.serial_path = self.dir / "serial.log"
        self.stderr_path = self.dir / "qemu-stderr.log"
        self.qmp_path = self.dir / "qmp.sock"
        self.port = None
        self.proc = None
        self.qmp = None
        self.mapped_lib = None
        self.returncode = None
        self.started_at = None
        self.accel = None

    # ----------------------------------------------------------------- start
    def argv(self):
        kernel, initrd = self.guest_dir / "vmlinuz", self.guest_dir / "initrd.img"
        if not kernel.exists():
            raise FileNotFoundError(f"{kernel} missing: run tests/guest/build.sh {self.guest_dir}")
        self.accel = "kvm" if kvm_works() else "tcg,thread=multi"
        self.port = free_port()
        spice = {"port": self.port, "addr": "127.0.0.1"}
        if self.password is not None:
            spice["password-secret"] = "spicepw"
        else:
            spice["disable-ticketing"] = "on"
        spice.update(self.spice_opts)
        spice = {k: v for k, v in spice.items() if v is not None}  # None drops a default
        cmdline = ["console=ttyS0", "panic=-1", "consoleblank=0"]
        if self.video:
            cmdline.append(f"video={self.video}")
        cmdline.append(f"workload={self.workload}")
        if self.poweroff_after is not None:
            cmdline.append(f"poweroff_after={self.poweroff_after}")
        if self.append:
            cmdline.append(self.append)
        a = [QEMU, "-accel", self.accel, "-m", str(self.mem), "-smp", "1", "-nodefaults",
             "-no-reboot", "-display", "none",
             "-serial", f"file:{self.serial_path}",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-kernel", str(kernel), "-initrd", str(initrd), "-append", " ".join(cmdline)]
        if self.password is not None:
            a += ["-object", f"secret,id=spicepw,data={self.password}"]
        a += ["-spice", ",".join(f"{k}={v}" for k, v in spice.items())]
        a += self.DISPLAYS[self.display]
        if self.usb_tablet:
            a += ["-device", "qemu-xhci", "-device", "usb-tablet"]
        if self.video_disk:  # every clip; the guest plays the one clip=NAME names
            for name in CLIP_FILES.values():
                disk = self.guest_dir / name
                if disk.exists():
                    a += ["-drive", f"file={disk},if=virtio,format=raw,readonly=on"]
        return a + self.extra_args

    def env(self):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if self.lib == "ours":
            d = str(lib_dir())
            env["LD_LIBRARY_PATH"] = d + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        elif self.lib == "c":
            env.pop("LD_LIBRARY_PATH", None)
        else:
            raise ValueError(f"lib must be 'ours' or 'c', not {self.lib!r}")
        env.update(self.env_extra)
        return env

    def start(self, qmp_timeout=30):
        argv = self.argv()
        for p in (self.qmp_path, self.serial_path):  # stale files from an earlier run
            if p.exists():
                p.unlink()
        (self.dir / "cmdline.txt").write_text(
            (f"LD_LIBRARY_PATH={lib_dir()} " if self.lib == "ours" else "") + shlex.join(argv) + "\n")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=open(self.stderr_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self.qmp = QMP(self.qmp_path, timeout=qmp_timeout)
        except Exception:
            self.stop()
            raise RuntimeError(f"QEMU did not open QMP (exit {self.proc.returncode}):\n{self.tail()}")
        self.mapped_lib = self.find_mapped_lib()
        ours = str(lib_dir()) + os.sep
        if self.lib == "ours" and not (self.mapped_lib or "").startswith(ours):
            # A missing build/lib silently falls back to Debian's library: every test would
            # then test the C server while claiming to test ours.
            self.stop()
            raise RuntimeError(f"QEMU mapped {self.mapped_lib}, not our library in {ours} (run make)")
        return self

    def find_mapped_lib(self):
        """The libspice-server.so.1 file the QEMU process actually mapped (or None)."""
        # ui-spice-core.so is loaded at startup with -spice, so the library is mapped by
        # the time QMP answers.
        try:
            for line in Path(f"/proc/{self.proc.pid}/maps").read_text().splitlines():
                parts = line.split(None, 5)
                if len(parts) == 6 and "libspice-server.so" in parts[5]:
                    return os.path.realpath(parts[5].strip())
        except OSError:
            pass
        return None

    # ----------------------------------------------------------------- serial
    def serial(self):
        try:
            return self.serial_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def input_lines(self, start=0):
        """The guest's input events printed on the serial line from offset start, complete
        lines only (the console writes a line in pieces: a half-written one is not an event
        yet)."""
        return re.findall(r"^SPICE-RS-INPUT: ([^\r\n]*)\r?\n", self.serial()[start:], re.M)

    def wait_serial(self, pattern, timeout=60, start=0):
        """Waits for a regex on the serial log (from offset start); returns the match.
        Raises TimeoutError (or RuntimeError if QEMU exited)."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.serial(), start)
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.serial(), start)
                if m:
                    return m
                raise RuntimeError(f"QEMU exited ({self.proc.returncode}) before /{pattern}/")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no /{pattern}/ on serial after {timeout}s")
            time.sleep(0.05)

    def guest_panicked(self):
        return "Kernel panic" in self.serial()

    # ----------------------------------------------------------------- stop
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=60):
        """Waits for QEMU to exit by itself (e.g. guest poweroff); returns the exit status
        (negative = killed by that signal), or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.qmp:
            self.qmp.close()
        return self.returncode

    def stop(self, timeout=15):
        """QMP quit, then SIGTERM, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.qmp is not None:
            try:
                self.qmp.execute("quit")
            except Exception:
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.qmp:
            self.qmp.close()
        self.returncode = self.proc.returncode
        return self.returncode

    def crashed(self):
        """True when QEMU exited with a signal or a non-zero status."""
        return self.returncode is not None and self.returncode != 0

    def tail(self, n=40):
        out = []
        for p in (self.stderr_path, self.serial_path):
            try:
                lines = p.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                lines = ["(missing)"]
            out.append(f"--- {p} (last {n} lines) ---")
            out += lines[-n:]
        return "\n".join(out)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------- screendump
def screendump(rig, path):
    """QMP screendump to PNG; returns a PIL RGB image."""
    from PIL import Image
    path = Path(path)
    if path.exists():
        path.unlink()
    rig.qmp.execute("screendump", filename=str(path), format="png")
    # screendump can complete asynchronously (qxl renders first): wait for the file.
    deadline = time.monotonic() + 10
    while True:
        try:
            img = Image.open(path)
            img.load()
            return img.convert("RGB")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def compare_images(a, b, diff_path=None):
    """Pixel-exact comparison of two PIL images (or (w, h, rgb bytes) tuples).
    Returns the number of differing pixels (size mismatch = all pixels of the larger).
    Saves a diff image (differences in red over a dimmed a) to diff_path if they differ."""
    from PIL import Image, ImageChops
    a, b = (to_image(x) for x in (a, b))
    if a.size != b.size:
        return max(a.size[0] * a.size[1], b.size[0] * b.size[1])
    d = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
    n = d.histogram()[255]
    if n and diff_path:
        base = Image.eval(a, lambda v: v // 3)
        red = Image.new("RGB", a.size, (255, 0, 0))
        Image.composite(red, base, d).save(diff_path)
    return n


def to_image(x):
    from PIL import Image
    if isinstance(x, tuple):
        w, h, data = x
        return Image.frombytes("RGB", (w, h), data)
    return x.convert("RGB")
