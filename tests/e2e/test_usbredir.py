"""USB redirection end to end: a USB device offered by the client appears in the guest.

There is no USB device on the test machine, so spice-gtk's usbredir (libusb) cannot be
used. The client is spice_raw (the main channel, then the usbredir channel, type 9, of
the same session) carrying usbredir_peer: the usb-host side of the usbredir protocol,
playing a full-speed HID mouse. QEMU's usb-redir device on a qemu-xhci controller is the
other end. What the user would see is the guest kernel's log on the serial console: the
device enumerated (its descriptors and strings read through our control-transfer
answers), hid-generic bound to it (its report descriptor read), the mouse reports the
client sends on the interrupt endpoint reaching the guest's input layer (the guest
workload prints each button and motion it reads from the new event device), and "USB
disconnect" when the client unplugs it or goes away.

Validated against Debian's C server (SPICE_RS_E2E_LIB=c)."""
import re
import time

import usbredir_peer as usb
from spice_raw import CHANNEL_USBREDIR, MSGC_SPICEVMC_DATA, RawSession
from test_foundation import assert_right_lib
from test_session import HOST

USB_ARGS = ["-device", "qemu-xhci,id=xhci",
            "-chardev", "spicevmc,id=usbredir1,name=usbredir",
            "-device", "usb-redir,chardev=usbredir1,id=redir1,bus=xhci.0,debug=3"]

FOUND = (rf"New USB device found, idVendor={usb.VENDOR_ID:04x}, "
         rf"idProduct={usb.PRODUCT_ID:04x}")
PRODUCT = rf"Product: {re.escape(usb.PRODUCT)}"
SERIAL = rf"SerialNumber: {re.escape(usb.SERIAL)}"
# hid-generic names the device "<manufacturer> <product>" once it read the report descriptor.
HID_BOUND = rf"input.*: USB HID v1\.11 Mouse \[{re.escape(usb.MANUFACTURER)} {re.escape(usb.PRODUCT)}\]"
NEW_DEVICE = r"usb (\d+-[\d.]+): new full-speed USB device number (\d+) using xhci_hcd"
OPENED = rf"SPICE-RS-GUEST: input (event\d+) name={re.escape(usb.MANUFACTURER + ' ' + usb.PRODUCT)}\r?$"
BURST = 100  # motion reports sent at once; QEMU buffers up to 1000 per interrupt endpoint


def plug(rig, peer, timeout=60):
    """connect_device, then waits for the guest to enumerate and bind the device.
    Returns (usb path, device number, seconds to "New USB device found", seconds to the
    HID driver bound, serial log offset before the plug)."""
    start = len(rig.serial())
    peer.connect_device()
    t0 = time.monotonic()
    new = rig.wait_serial(NEW_DEVICE, timeout=timeout, start=start)
    rig.wait_serial(FOUND, timeout=timeout, start=start)
    t_found = time.monotonic() - t0
    rig.wait_serial(PRODUCT, timeout=10, start=start)
    rig.wait_serial(SERIAL, timeout=10, start=start)
    rig.wait_serial(HID_BOUND, timeout=timeout, start=start)
    t_bound = time.monotonic() - t0
    return new.group(1), new.group(2), t_found, t_bound, start


def reports_reach_guest(rig, peer, since):
    """Once the guest opened the mouse (the workload rescans /dev/input each second), a
    click and a move, then a burst of BURST one-pixel moves, sent as interrupt reports.
    Returns (seconds to the click's line, seconds until the whole burst was read)."""
    rig.wait_serial(OPENED, timeout=30, start=since)
    assert peer.receiving.wait(15), "QEMU never started interrupt receiving on the mouse"
    start = len(rig.serial())
    t0 = time.monotonic()
    peer.interrupt_in(bytes([0x01, 0, 0]))                     # left button down
    rig.wait_serial(r"SPICE-RS-INPUT: btn code=272 value=1", timeout=10, start=start)
    t_click = time.monotonic() - t0
    peer.interrupt_in(bytes([0x00, 0, 0]))                     # up
    peer.interrupt_in(bytes([0x00, 5, (-3) & 0xFF]))           # move right 5, up 3
    rig.wait_serial(r"SPICE-RS-INPUT: btn code=272 value=0", timeout=10, start=start)
    rig.wait_serial(r"SPICE-RS-INPUT: rel x=5 y=-3", timeout=10, start=start)
    start = len(rig.serial())
    t0 = time.monotonic()
    for _ in range(BURST):
        peer.interrupt_in(bytes([0x00, 1, 2]))
    deadline = time.monotonic() + 30
    while True:
        moves = [m.groups() for l in rig.input_lines(start)
                 if (m := re.match(r"rel x=(-?\d+) y=(-?\d+)", l))]
        sx, sy = sum(int(x) for x, _ in moves), sum(int(y) for _, y in moves)
        if (sx, sy) == (BURST, 2 * BURST) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (sx, sy) == (BURST, 2 * BURST), \
        f"the guest read a motion of {sx},{sy} from {BURST} reports of 1,2 ({len(moves)} lines)"
    return t_click, time.monotonic() - t0


def unplugged(rig, path, number, start, timeout=30):
    m = rig.wait_serial(rf"usb {re.escape(path)}: USB disconnect, device number {number}",
                        timeout=timeout, start=start)
    return m


def open_usbredir(session):
    """Links the usbredir channel with a fresh peer serving it; waits for QEMU's hello
    (its usb-redir parser starts when the channel opens the char device) and answers.
    Returns (channel, peer, reader thread, stop event, ms from link to hello)."""
    vmc = session.open_channel(CHANNEL_USBREDIR)
    peer = usb.UsbredirPeer(send=lambda b: vmc.send(MSGC_SPICEVMC_DATA, b))
    reader, stop = usb.start_serving(peer, vmc)
    t0 = time.monotonic()
    assert peer.hello_seen.wait(15), "no usbredir hello from QEMU over the channel"
    t_hello = time.monotonic() - t0
    peer.hello()
    return vmc, peer, reader, stop, t_hello


def test_usbredir_device_enumerates_and_goes_away(make_rig, tmp_path):
    rig = make_rig(display="std", workload="console", extra_args=USB_ARGS)
    assert_right_lib(rig)
    rig.wait_serial(r"starting workload", timeout=90)
    peers = []

    with RawSession(HOST, rig.port) as session:
        channels = session.channel_list()
        assert (CHANNEL_USBREDIR, 0) in channels, f"usbredir not offered: {channels}"
        vmc, peer, reader, stop, t_hello = open_usbredir(session)
        peers.append(peer)

        # 1. Plugged by the client: enumerated, strings read, HID driver bound, reports read.
        path, number, t_found, t_bound, since = plug(rig, peer)
        assert peer.configured.is_set(), "the guest never set a configuration"
        assert peer.configuration == 1
        t_click, t_burst = reports_reach_guest(rig, peer, since)

        # 2. Unplugged by the client (device_disconnect): the guest sees it go.
        start = len(rig.serial())
        peer.disconnect_device()
        t0 = time.monotonic()
        unplugged(rig, path, number, start)
        t_unplug = time.monotonic() - t0
        rig.wait_serial(r"SPICE-RS-GUEST: input event\d+ gone", timeout=10, start=start)

        # 3. Plugged again, then the usbredir channel closes: the device goes with it.
        time.sleep(0.5)  # QEMU delays a re-attach 200 ms after a detach
        path, number, t_found2, _, since = plug(rig, peer)
        reports_reach_guest(rig, peer, since)  # the guest opened the new one too
        start = len(rig.serial())
        stop.set()
        t0 = time.monotonic()
        vmc.close()
        unplugged(rig, path, number, start)
        t_chan_gone = time.monotonic() - t0
        reader.join(5)

        # 4. The same client links the channel again (the device is free once more),
        # plugs, and then goes away altogether (every socket closed, as when the
        # viewer quits): the device goes with it.
        time.sleep(0.5)
        vmc, peer, reader, stop, _ = open_usbredir(session)
        peers.append(peer)
        path, number, t_found3, _, since = plug(rig, peer)
        reports_reach_guest(rig, peer, since)
        start = len(rig.serial())
        stop.set()
        t0 = time.monotonic()
    # leaving the with block closed the session: usbredir and main channels
    unplugged(rig, path, number, start)
    t_client_gone = time.monotonic() - t0
    reader.join(5)

    for p in peers:
        assert not p.errors, p.errors
    assert rig.alive(), rig.tail()
    assert not rig.guest_panicked()
    peer = peers[0]
    controls = [e for _, e in peer.log if e.startswith("control")]
    print(f"\nlib={rig.lib} usbredir: hello {t_hello * 1000:.0f} ms after link "
          f"(QEMU {peer.peer_version!r}, caps {peer.peer_caps:#x}); device_connect -> "
          f"'New USB device found' {t_found:.2f} s, -> HID bound {t_bound:.2f} s "
          f"({len(controls)} control transfers); report -> guest input "
          f"{t_click * 1000:.0f} ms, {BURST} reports read in {t_burst:.2f} s; "
          f"device_disconnect -> 'USB disconnect' {t_unplug:.2f} s; re-plug found in "
          f"{t_found2:.2f} s; channel closed -> 'USB disconnect' {t_chan_gone:.2f} s; "
          f"relinked, found in {t_found3:.2f} s; client gone -> 'USB disconnect' "
          f"{t_client_gone:.2f} s")
    for n, p in enumerate(peers):
        (tmp_path / f"peer{n}.log").write_text(
            "\n".join(f"{t - p.log[0][0]:8.3f} {e}" for t, e in p.log) + "\n")
