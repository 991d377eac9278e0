"""Smartcard passthrough end to end: a client's card reader reaches QEMU's CCID reader.

QEMU runs a usb-ccid reader on a qemu-xhci controller with a ccid-card-passthru card
whose chardev is `spicevmc,name=smartcard` (QEMU refuses the subtype unless the server
lists it). There is no card reader on the test machine, so spice-gtk's smartcard channel
(libcacard's NSS or a real reader) is not used: the client is spice_raw speaking VSC
(libcacard's vscard_common.h) on the smartcard channel, as spice-gtk does. What a user
would see: the channel is offered, the client's VSC_ReaderAdd reaches the passthru
device, whose answer (VSC_Error SUCCESS) comes back carrying the reader id the client
must use from then on; a card's ATR is accepted the same way; the reader is freed when
the client leaves, so the next client can add it; a message whose header lies about its
length closes only that channel. The guest sees the CCID reader on its USB bus.

Validated against Debian's C server (SPICE_RS_E2E_LIB=c)."""
import struct
import time

from spice_raw import RawSession
from test_foundation import assert_right_lib
from test_session import HOST

CHANNEL_SMARTCARD = 8
MSG_SMARTCARD_DATA = MSGC_SMARTCARD_DATA = 101
# VSCMsgType and VSCErrorCode
VSC_INIT, VSC_ERROR, VSC_READER_ADD, VSC_READER_REMOVE, VSC_ATR, VSC_CARD_REMOVE, VSC_APDU = range(1, 8)
VSC_SUCCESS, VSC_GENERAL_ERROR, VSC_CANNOT_ADD_MORE_READERS = 0, 1, 2
UNDEFINED_READER_ID = 0xFFFFFFFF
VSCARD_MAGIC = b"VSCD"
VSCARD_VERSION = 2  # MAKE_VERSION(0, 0, 2)
# The ATR ccid-card-passthru ships as its default (an Athena card), which its check_atr accepts.
ATR = bytes([0x3B, 0xD5, 0x18, 0xFF, 0x80, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x73, 0xC8, 0x21,
             0x13, 0x08])

SMARTCARD_ARGS = ["-device", "qemu-xhci,id=xhci",
                  "-device", "usb-ccid,id=ccid,bus=xhci.0",
                  "-chardev", "spicevmc,id=sc,name=smartcard",
                  "-device", "ccid-card-passthru,chardev=sc"]
# usb-ccid's USB ids (hw/usb/dev-smartcard-reader.c: a Gemalto reader).
CCID_FOUND = r"New USB device found, idVendor=08e6, idProduct=4433"


def vsc(msg_type, reader_id, data=b""):
    """A SPICE_MSGC_SMARTCARD_DATA body: the VSC header in the SPICE wire's byte order."""
    return struct.pack("<III", msg_type, reader_id, len(data)) + data


def recv_vsc(ch, timeout=10):
    """The next VSC message from the server: (type, reader id, data)."""
    msg_type, body = ch.recv(timeout)
    assert msg_type == MSG_SMARTCARD_DATA, f"unexpected message {msg_type} on the smartcard channel"
    vtype, reader_id, length = struct.unpack_from("<III", body)
    assert len(body) == 12 + length, f"VSC length {length} in a {len(body)}-byte message"
    return vtype, reader_id, body[12:]


def add_reader(session):
    """Links the smartcard channel, says Init and adds a reader as spice-gtk does.
    Returns (channel, reader id the device's answer carried, ms from ReaderAdd to it)."""
    ch = session.open_channel(CHANNEL_SMARTCARD)
    ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_INIT, UNDEFINED_READER_ID,
                                     VSCARD_MAGIC + struct.pack(">II", VSCARD_VERSION, 0)))
    t0 = time.monotonic()
    ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_READER_ADD, UNDEFINED_READER_ID, b"spice-rs e2e reader\0"))
    # The device's own VSC_Init (sent when its chardev opened) never reaches the client.
    vtype, reader_id, data = recv_vsc(ch, timeout=15)
    ms = (time.monotonic() - t0) * 1000
    assert vtype == VSC_ERROR, f"ReaderAdd answered with VSC type {vtype}, expected VSC_Error"
    assert struct.unpack(">I", data)[0] == VSC_SUCCESS, f"ReaderAdd refused: {data.hex()}"
    return ch, reader_id, ms


def test_smartcard_reader_reaches_the_passthru_device(make_rig):
    rig = make_rig(display="std", workload="console", extra_args=SMARTCARD_ARGS)
    assert_right_lib(rig)
    rig.wait_serial(r"starting workload", timeout=90)
    # The guest enumerated QEMU's CCID reader on its USB bus.
    rig.wait_serial(CCID_FOUND, timeout=30)

    with RawSession(HOST, rig.port) as session:
        channels = session.channel_list()
        assert (CHANNEL_SMARTCARD, 0) in channels, f"smartcard channel not offered: {channels}"
        ch, reader_id, t_add = add_reader(session)
        assert reader_id == 0, f"the first reader is 0, the client was told {reader_id}"

        # A card inserted on the client: its ATR is checked and accepted by the device.
        t0 = time.monotonic()
        ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_ATR, reader_id, ATR))
        vtype, rid, data = recv_vsc(ch)
        t_atr = (time.monotonic() - t0) * 1000
        assert (vtype, rid, struct.unpack(">I", data)[0]) == (VSC_ERROR, reader_id, VSC_SUCCESS)

        # Card removed, then the reader: each answered by the device.
        ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_CARD_REMOVE, reader_id))
        vtype, rid, data = recv_vsc(ch)
        assert (vtype, rid, struct.unpack(">I", data)[0]) == (VSC_ERROR, reader_id, VSC_SUCCESS)
        ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_READER_REMOVE, reader_id))
        vtype, rid, data = recv_vsc(ch)
        assert (vtype, rid, struct.unpack(">I", data)[0]) == (VSC_ERROR, reader_id, VSC_SUCCESS)
        # Removing it twice is the server's own error, in the client's byte order.
        ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_READER_REMOVE, reader_id))
        vtype, rid, data = recv_vsc(ch)
        assert (vtype, rid, struct.unpack("<I", data)[0]) == (VSC_ERROR, reader_id, VSC_GENERAL_ERROR)

        # Added again, the client leaves with its reader: the server removes it for it.
        ch.send(MSGC_SMARTCARD_DATA, vsc(VSC_READER_ADD, UNDEFINED_READER_ID, b"again\0"))
        vtype, rid, data = recv_vsc(ch)
        assert (vtype, rid) == (VSC_ERROR, reader_id)

    # The next client gets the reader.
    with RawSession(HOST, rig.port) as session:
        session.channel_list()
        ch, reader_id, _ = add_reader(session)
        assert reader_id == 0

        # A header announcing more than the message holds closes this channel only.
        ch.send(MSGC_SMARTCARD_DATA, struct.pack("<III", VSC_APDU, reader_id, 1000) + b"\0" * 10)
        assert ch.closed.wait(10), "a VSC message shorter than its header says was accepted"
        time.sleep(0.5)
        assert not session.main.closed.is_set(), "the bad smartcard message closed the session"

    # And the reader is free again after that.
    with RawSession(HOST, rig.port) as session:
        session.channel_list()
        ch, reader_id, _ = add_reader(session)
        assert reader_id == 0
    print(f"\nsmartcard ({rig.lib}): ReaderAdd answered in {t_add:.1f} ms, ATR in {t_atr:.1f} ms")
