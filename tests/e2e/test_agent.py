"""The SPICE guest agent, end to end: the real spice-vdagent in a Debian guest (Xorg on qxl,
tests/guest-debian) and spice-gtk as the client. What a user sees: the agent connects and the
mouse goes to client mode, text and a PNG copied on the client paste in the guest, text
copied in the guest pastes on the client, a file dragged onto the client window arrives
byte-identical in ~/Downloads, and a resized client window changes the guest's mode.
Each step prints what it measured.

One VM for the module (booting the Debian guest under TCG takes a while); the guest answers
questions on its command port (tests/e2e/guest.py). Validated against Debian's C server
(SPICE_RS_E2E_LIB=c)."""
import base64
import hashlib
import io
import os
import time

import pytest

import guest as guest_module
from client import SpiceClient
from rig import Rig, default_lib, poll

HOST = "127.0.0.1"
VD_CLIPBOARD_UTF8_TEXT, VD_CLIPBOARD_IMAGE_PNG = 1, 2
SPICE_MOUSE_MODE_SERVER, SPICE_MOUSE_MODE_CLIENT = 1, 2


def ms(t):
    return f"{t * 1000:.0f} ms"


class AgentVM:
    def __init__(self, rig, guest, client, boot_s):
        self.rig, self.guest, self.client, self.boot_s = rig, guest, client, boot_s

    def logs(self):
        out = [self.rig.tail()]
        for name in ("/tmp/vdagent.log", "/tmp/vdagentd.log"):
            try:
                out.append(f"--- guest {name} ---\n{self.guest.log(name)[-3000:]}")
            except Exception as e:  # noqa: BLE001 (the guest may be the thing that broke)
                out.append(f"--- guest {name}: {e}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    # No silent skip: a guest that cannot be built fails every test here with the reason.
    try:
        guest_module.ensure_built()
    except guest_module.GuestError as e:
        pytest.fail(str(e), pytrace=False)
    work = tmp_path_factory.mktemp("agent")
    kw, cmd_sock = guest_module.rig_args(work)
    rig = Rig(workdir=work / "rig", lib=default_lib(),
              spice_opts={"agent-mouse": "on"}, **kw)  # no usb tablet: the agent's mouse
    t0 = time.monotonic()
    rig.start()
    g = guest_module.Guest(cmd_sock)
    client = None
    try:
        # Fail fast on a guest that cannot come up rather than waiting out the timeout.
        guest_module.wait_booted(rig, g)
        boot = time.monotonic() - t0
        x = rig.wait_serial(r"SPICE-RS-GUEST: X running .*").group(0)
        print(f"\nguest ready in {boot:.1f} s ({x.strip()}), lib={rig.lib} {rig.mapped_lib}")
        client = SpiceClient(str(work / "client.log"))
        client.connect(HOST, rig.port, timeout=60)
        yield AgentVM(rig, g, client, boot)
    except Exception:
        print(AgentVM(rig, g, client, 0).logs())
        raise
    finally:
        if client:
            client.close()
        g.close()
        rig.stop()


@pytest.fixture
def agent_vm(vm, request):
    yield vm
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(vm.logs())


def test_agent_connects_client_mouse(agent_vm):
    """The agent attaches and the client gets client mouse mode (agent-mouse=on, no tablet);
    a client pointer position lands on that pixel in the guest's X server."""
    c, g = agent_vm.client, agent_vm.guest
    t0 = time.monotonic()
    c.wait_agent(timeout=90)
    print(f"agent-connected {ms(time.monotonic() - t0)} after the display")
    s = c.wait(lambda s: s["mouse_mode"] == SPICE_MOUSE_MODE_CLIENT, 30, "client mouse mode")
    print(f"mouse mode {s['mouse_mode']} (client)")
    c.wait_inputs()
    w, h = g.mode()
    for x, y in ((100, 80), (w - 50, h - 40), (w // 2, h // 3)):
        t = time.monotonic()
        c.mouse_position(x, y)
        # Within a pixel: the agent's uinput tablet spans 0..width and X scales that range
        # onto 0..width-1 (the C server lands on x-1 too).
        at = poll(f"guest pointer at {(x, y)}",
                  lambda: (lambda p: abs(p[0] - x) <= 1 and abs(p[1] - y) <= 1 and p)(g.pointer()),
                  15)
        print(f"pointer {(x, y)} -> {at} in the guest after {ms(time.monotonic() - t)}")


def test_clipboard_text_client_to_guest(agent_vm):
    c, g = agent_vm.client, agent_vm.guest
    c.wait_agent()
    text = f"spice-rs client clipboard {time.time():.0f} äöü ✓"
    t0 = time.monotonic()
    c.clipboard_offer(text, VD_CLIPBOARD_UTF8_TEXT)
    got = poll("the guest to paste the client's text",
               lambda: g.clipboard_get() == text.encode() and text, 20, 0.05)
    served = c.agent()["served"]
    print(f"client grab -> guest pasted {got!r}: {ms(time.monotonic() - t0)}, "
          f"requests served {len(served)}")
    assert served and served[-1]["type"] == VD_CLIPBOARD_UTF8_TEXT


def test_clipboard_text_guest_to_client(agent_vm):
    c, g = agent_vm.client, agent_vm.guest
    c.wait_agent()
    text = f"copied in the guest {time.time():.0f} ✓"
    n_grabs, n_data = len(c.agent()["grabs"]), len(c.agent()["data"])
    t0 = time.monotonic()
    g.clipboard_set(text)
    grab = poll("the guest's clipboard grab on the client",
                lambda: c.agent()["grabs"][n_grabs:], 20, 0.05)[-1]
    t_grab = time.monotonic() - t0
    assert VD_CLIPBOARD_UTF8_TEXT in grab["types"], grab
    c.clipboard_request(VD_CLIPBOARD_UTF8_TEXT, grab["selection"])
    data = poll("the guest's text on the client", lambda: c.agent()["data"][n_data:], 20, 0.05)
    got = base64.b64decode(data[-1]["data"]).rstrip(b"\0").decode()
    print(f"guest copy -> client grab {ms(t_grab)} (types {grab['types']}), "
          f"-> client has the text {ms(time.monotonic() - t0)}: {got!r}")
    assert got == text


def test_clipboard_png_client_to_guest(agent_vm):
    from PIL import Image, ImageDraw
    c, g = agent_vm.client, agent_vm.guest
    c.wait_agent()
    img = Image.new("RGB", (160, 90), (30, 60, 200))
    ImageDraw.Draw(img).rectangle((20, 10, 120, 70), fill=(250, 200, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    png = buf.getvalue()
    t0 = time.monotonic()
    c.clipboard_offer(png, VD_CLIPBOARD_IMAGE_PNG)
    targets = poll("image/png among the guest's clipboard targets",
                   lambda: "image/png" in g.clipboard_targets() and g.clipboard_targets(), 20)
    got = g.clipboard_get("image/png")
    took = time.monotonic() - t0
    assert got, f"the guest pasted nothing as image/png (targets {targets})"
    pasted = Image.open(io.BytesIO(got)).convert("RGB")
    same_bytes = got == png
    print(f"client PNG ({len(png)} B) -> guest pasted {len(got)} B {pasted.size}: {ms(took)}, "
          f"byte-identical {same_bytes}")
    assert pasted.size == img.size and pasted.tobytes() == img.tobytes()


def test_file_copy_to_guest(agent_vm, tmp_path):
    c, g = agent_vm.client, agent_vm.guest
    c.wait_agent()
    size = 4 * 1024 * 1024 + 12345
    data = os.urandom(size)
    src = tmp_path / "spice-rs-xfer.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    c.file_copy([src], "xfer")
    rec = poll("the file copy to finish", lambda: c.agent()["files"]["xfer"]["done"] and
               c.agent()["files"]["xfer"], 180, 0.2)
    assert rec["error"] is None, rec
    took = rec["t1"] - rec["t0"]
    got = poll("the file in the guest's Downloads",
               lambda: (g.latest_download() or (None, 0, None))[1] == size and
               g.latest_download(), 30)
    print(f"file {size} B -> guest {got[0]} {got[1]} B in {ms(took)} "
          f"({size / took / 1e6:.2f} MB/s), sha256 equal {got[2] == digest}")
    assert got[0] == src.name and got[2] == digest


def test_resize_changes_guest_mode(agent_vm):
    """A client window resize (update_display + send_monitor_config, as remote-viewer) gives
    the guest that mode and the client a primary surface of that size. With the kernel's qxl
    driver the server hands the monitors config to the qxl device (QEMU takes it), the
    kernel makes it the preferred mode and the session applies it (spice-rs-follow-mode).
    The agent's own path (the server passes the config to the agent when no device takes
    it, e.g. -vga std) does not work with Debian 12's agent: spice-vdagentd 0.22.1 refuses
    spice-gtk 0.42's config, which carries the physical-size extension ("invalid message
    size for VDAgentMonitorsConfig", with the C server too); and Xorg's own qxl driver, which
    would keep the config away from the device, crashes at start (xf86InitViewport)."""
    c, g = agent_vm.client, agent_vm.guest
    c.wait_agent()
    before = g.mode()
    for w, h in ((1280, 800), (800, 600)):
        if (w, h) == before:
            continue
        n = len(c.state()["primaries"])
        t0 = time.monotonic()
        c.resize(w, h)
        poll(f"the guest's mode {w}x{h}", lambda: g.mode() == (w, h), 30, 0.2)
        t_guest = time.monotonic() - t0
        poll(f"a {w}x{h} primary surface on the client",
             lambda: [w, h] in c.state()["primaries"][n:], 30, 0.05)
        print(f"client resize {before} -> {w}x{h}: guest xrandr {ms(t_guest)}, "
              f"client sees it {ms(time.monotonic() - t0)}")
        before = (w, h)
