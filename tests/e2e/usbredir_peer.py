"""The usb-host side of the usbredir protocol (usbredirproto.h), playing one simple device.

QEMU's usb-redir device is the usb-guest side: it sends hello, then forwards the guest's
control transfers, configuration and endpoint requests to us; we answer them from the
descriptors of a full-speed HID mouse (one interface, one interrupt IN endpoint).

The peer is sans-I/O: feed() takes the bytes QEMU sent, and everything we answer goes to
the send callable given at construction (e.g. a SPICE usbredir channel's DATA messages).

    peer = UsbredirPeer(send=lambda b: vmc.send(MSGC_SPICEVMC_DATA, b))
    peer.feed(bytes_from_qemu)          # answers hello, control packets ...
    peer.connect_device()               # interface_info, ep_info, device_connect
    peer.disconnect_device()

Packet layout: a header (type u32, length u32, id u32, or u64 once both sides announced
the 64-bit ids cap in their hellos), then the type's own header and its data.
"""
import struct
import threading
import time

from spice_raw import MSG_SPICEVMC_COMPRESSED_DATA, MSG_SPICEVMC_DATA

# Packet types
HELLO, DEVICE_CONNECT, DEVICE_DISCONNECT, RESET, INTERFACE_INFO, EP_INFO = range(6)
SET_CONFIGURATION, GET_CONFIGURATION, CONFIGURATION_STATUS = 6, 7, 8
SET_ALT_SETTING, GET_ALT_SETTING, ALT_SETTING_STATUS = 9, 10, 11
START_INTERRUPT_RECEIVING, STOP_INTERRUPT_RECEIVING, INTERRUPT_RECEIVING_STATUS = 15, 16, 17
CANCEL_DATA_PACKET, FILTER_REJECT, FILTER_FILTER, DEVICE_DISCONNECT_ACK = 21, 22, 23, 24
CONTROL_PACKET, BULK_PACKET, ISO_PACKET, INTERRUPT_PACKET = 100, 101, 102, 103
NOTED_TYPES = {CANCEL_DATA_PACKET: "cancel_data_packet", FILTER_FILTER: "filter_filter",
               DEVICE_DISCONNECT_ACK: "device_disconnect_ack"}
# Status
SUCCESS, CANCELLED, INVAL, IOERROR, STALL = 0, 1, 2, 3, 4
# Caps (bit numbers in the hello's first caps word)
CAP_CONNECT_DEVICE_VERSION = 1
CAP_EP_INFO_MAX_PACKET_SIZE = 4
CAP_64BITS_IDS = 5
CAP_32BITS_BULK_LENGTH = 6
OUR_CAPS = (1 << CAP_CONNECT_DEVICE_VERSION) | (1 << CAP_EP_INFO_MAX_PACKET_SIZE) | \
    (1 << CAP_64BITS_IDS) | (1 << CAP_32BITS_BULK_LENGTH)
# Endpoint types and speeds
EP_CONTROL, EP_INTERRUPT, EP_INVALID = 0, 3, 255
SPEED_FULL = 1

# ------------------------------------------------------------------ the device
VENDOR_ID, PRODUCT_ID, DEVICE_BCD = 0x1D6B, 0x7273, 0x0100
MANUFACTURER = "spice-rs"
PRODUCT = "spice-rs usbredir test mouse"
SERIAL = "SPRS-0001"
INTERRUPT_EP = 0x81
INTERRUPT_INTERVAL = 10
REPORT_SIZE = 3

# A three-button relative mouse: buttons byte, X, Y (HID 1.11 appendix E style).
REPORT_DESCRIPTOR = bytes([
    0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x09, 0x01, 0xA1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01,
    0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05,
    0x81, 0x01, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81,
    0x25, 0x7F, 0x75, 0x08, 0x95, 0x02, 0x81, 0x06, 0xC0, 0xC0,
])
DEVICE_DESCRIPTOR = struct.pack(
    "<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64, VENDOR_ID, PRODUCT_ID, DEVICE_BCD,
    1, 2, 3, 1)
HID_DESCRIPTOR = struct.pack("<BBHBBBH", 9, 0x21, 0x0111, 0, 1, 0x22, len(REPORT_DESCRIPTOR))
_INTERFACE = struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 1, 3, 0, 0, 0)  # HID, no boot protocol
_ENDPOINT = struct.pack("<BBBBHB", 7, 5, INTERRUPT_EP, 3, 4, INTERRUPT_INTERVAL)
_CONFIG_BODY = _INTERFACE + HID_DESCRIPTOR + _ENDPOINT
CONFIG_DESCRIPTOR = struct.pack("<BBHBBBBB", 9, 2, 9 + len(_CONFIG_BODY), 1, 1, 0, 0x80, 50) \
    + _CONFIG_BODY


def string_descriptor(index):
    if index == 0:
        return struct.pack("<BBH", 4, 3, 0x0409)  # English (US)
    text = {1: MANUFACTURER, 2: PRODUCT, 3: SERIAL}.get(index)
    if text is None:
        return None
    data = text.encode("utf-16-le")
    return bytes([2 + len(data), 3]) + data


def ep_index(address):
    """usbredir's endpoint arrays: 0-15 OUT endpoints, 16-31 IN endpoints."""
    return (address & 0x0F) | ((address & 0x80) >> 3)


# ------------------------------------------------------------------ the peer
class UsbredirPeer:
    def __init__(self, send, version="spice-rs e2e usbredir peer"):
        self._send = send
        self.version = version
        self.buf = b""
        self.peer_caps = None          # set by QEMU's hello
        self.peer_version = None
        self.configuration = 0
        self.alt = 0
        self.interrupt_receiving = False
        self.log = []                  # (monotonic time, event string), for the test's report
        self.lock = threading.Lock()
        self.hello_seen = threading.Event()
        self.configured = threading.Event()
        self.receiving = threading.Event()  # QEMU asked for interrupt IN reports
        self.errors = []               # protocol surprises; the test asserts none

    # --- helpers
    def note(self, what):
        self.log.append((time.monotonic(), what))

    def first(self, prefix):
        """Time of the first logged event starting with prefix, or None."""
        return next((t for t, e in self.log if e.startswith(prefix)), None)

    def ids_64(self):
        return self.peer_caps is not None and bool(self.peer_caps & (1 << CAP_64BITS_IDS))

    def _packet(self, ptype, body=b"", pid=0):
        if ptype == HELLO or not self.ids_64():
            head = struct.pack("<III", ptype, len(body), pid)
        else:
            head = struct.pack("<IIQ", ptype, len(body), pid)
        with self.lock:
            self._send(head + body)

    # --- what we send on our own
    def hello(self):
        version = self.version.encode()[:63].ljust(64, b"\0")
        self._packet(HELLO, version + struct.pack("<I", OUR_CAPS))
        self.note("sent hello")

    def connect_device(self):
        """interface_info, ep_info, device_connect, as usbredirhost sends them."""
        n = 1
        iface = bytes([0] + [0] * 31)
        cls = bytes([3] + [0] * 31)
        zeros = bytes(32)
        self._packet(INTERFACE_INFO, struct.pack("<I", n) + iface + cls + zeros + zeros)
        types = [EP_INVALID] * 32
        interval = [0] * 32
        interface = [0] * 32
        mps = [0] * 32
        for addr in (0x00, 0x80):
            types[ep_index(addr)] = EP_CONTROL
            mps[ep_index(addr)] = 64
        i = ep_index(INTERRUPT_EP)
        types[i], interval[i], mps[i] = EP_INTERRUPT, INTERRUPT_INTERVAL, 4
        self._packet(EP_INFO, bytes(types) + bytes(interval) + bytes(interface)
                     + struct.pack("<32H", *mps))  # max_streams only with the bulk streams cap
        self._packet(DEVICE_CONNECT, struct.pack("<BBBBHHH", SPEED_FULL, 0, 0, 0,
                                                 VENDOR_ID, PRODUCT_ID, DEVICE_BCD))
        self.note("sent device_connect")

    def disconnect_device(self):
        self.interrupt_receiving = False
        self.receiving.clear()
        self.configured.clear()
        self._packet(DEVICE_DISCONNECT)
        self.note("sent device_disconnect")

    def interrupt_in(self, report):
        """One report on the interrupt IN endpoint (sent only once QEMU asked to receive)."""
        self._packet(INTERRUPT_PACKET, struct.pack("<BBH", INTERRUPT_EP, SUCCESS, len(report))
                     + report)

    # --- what QEMU sends
    def feed(self, data):
        self.buf += data
        while True:
            head = 12 if self.peer_caps is None or not self.ids_64() else 16
            if len(self.buf) < head:
                return
            ptype, length = struct.unpack_from("<II", self.buf)
            pid = struct.unpack_from("<Q" if head == 16 else "<I", self.buf, 8)[0]
            if len(self.buf) < head + length:
                return
            body, self.buf = self.buf[head:head + length], self.buf[head + length:]
            self._handle(ptype, pid, body)

    def _handle(self, ptype, pid, body):
        if ptype == HELLO:
            self.peer_version = body[:64].split(b"\0")[0].decode(errors="replace")
            self.peer_caps = struct.unpack_from("<I", body, 64)[0] if len(body) >= 68 else 0
            self.note(f"hello from {self.peer_version!r} caps {self.peer_caps:#x}")
            self.hello_seen.set()
        elif ptype == CONTROL_PACKET:
            self._control(pid, body)
        elif ptype == SET_CONFIGURATION:
            self.configuration = body[0]
            self.note(f"set_configuration {body[0]}")
            self._packet(CONFIGURATION_STATUS, bytes([SUCCESS, self.configuration]), pid)
            self.configured.set()
        elif ptype == GET_CONFIGURATION:
            self._packet(CONFIGURATION_STATUS, bytes([SUCCESS, self.configuration]), pid)
        elif ptype == SET_ALT_SETTING:
            interface, alt = body[0], body[1]
            ok = interface == 0 and alt == 0
            self.note(f"set_alt_setting {interface} {alt}")
            self._packet(ALT_SETTING_STATUS, bytes([SUCCESS if ok else INVAL, interface, alt]), pid)
        elif ptype == GET_ALT_SETTING:
            interface = body[0]
            self._packet(ALT_SETTING_STATUS, bytes([SUCCESS if interface == 0 else INVAL,
                                                    interface, self.alt]), pid)
        elif ptype == START_INTERRUPT_RECEIVING:
            ep = body[0]
            self.interrupt_receiving = ep == INTERRUPT_EP
            self.note(f"start_interrupt_receiving {ep:#04x}")
            self._packet(INTERRUPT_RECEIVING_STATUS,
                         bytes([SUCCESS if self.interrupt_receiving else STALL, ep]), pid)
            if self.interrupt_receiving:
                self.receiving.set()
        elif ptype == STOP_INTERRUPT_RECEIVING:
            self.interrupt_receiving = False
            self.receiving.clear()
            self.note(f"stop_interrupt_receiving {body[0]:#04x}")
            self._packet(INTERRUPT_RECEIVING_STATUS, bytes([SUCCESS, body[0]]), pid)
        elif ptype == RESET:
            self.configuration = 0
            self.note("reset")
        elif ptype in NOTED_TYPES:
            self.note(NOTED_TYPES[ptype])
        else:
            self.errors.append(f"unexpected packet type {ptype} ({len(body)} bytes)")
            self.note(f"unexpected {ptype}")

    def _control(self, pid, body):
        ep, request, rtype, _status, value, index, length = struct.unpack_from("<BBBBHHH", body)
        data_in = rtype & 0x80
        reply = self._answer(request, rtype, value, index, length, body[10:])
        what = f"control {rtype:#04x} {request:#04x} value {value:#06x} index {index} len {length}"
        if reply is None:
            self.note(what + " -> stall")
            self._packet(CONTROL_PACKET, struct.pack("<BBBBHHH", ep, request, rtype, STALL,
                                                     value, index, 0), pid)
        elif data_in:
            reply = reply[:length]
            self.note(what + f" -> {len(reply)} bytes")
            self._packet(CONTROL_PACKET, struct.pack("<BBBBHHH", ep, request, rtype, SUCCESS,
                                                     value, index, len(reply)) + reply, pid)
        else:
            self.note(what + " -> ok")
            self._packet(CONTROL_PACKET, struct.pack("<BBBBHHH", ep, request, rtype, SUCCESS,
                                                     value, index, length), pid)

    def _answer(self, request, rtype, value, index, length, data):
        """The data of an IN request, b"" for an accepted OUT request, None to stall."""
        kind, recipient = (rtype >> 5) & 3, rtype & 0x1F
        if kind == 0 and request == 0x00:                     # GET_STATUS
            return b"\0\0"
        if kind == 0 and request == 0x06:                     # GET_DESCRIPTOR
            dtype, dindex = value >> 8, value & 0xFF
            if recipient == 0:
                if dtype == 1:
                    return DEVICE_DESCRIPTOR
                if dtype == 2 and dindex == 0:
                    return CONFIG_DESCRIPTOR
                if dtype == 3:
                    return string_descriptor(dindex)
                return None                                    # e.g. device qualifier
            if recipient == 1 and index == 0:
                if dtype == 0x22:
                    return REPORT_DESCRIPTOR
                if dtype == 0x21:
                    return HID_DESCRIPTOR
            return None
        if kind == 1 and recipient == 1 and index == 0:       # HID class requests
            if request == 0x0A:                                # SET_IDLE
                return b""
            if request == 0x0B:                                # SET_PROTOCOL
                return b""
            if request == 0x01:                                # GET_REPORT
                return bytes(REPORT_SIZE)
            if request == 0x09:                                # SET_REPORT
                return b""
        if kind == 0 and request in (0x01, 0x03):             # CLEAR/SET_FEATURE
            return b""
        return None


def serve(peer, channel, recv_timeout=0.5, stop=None):
    """Feeds a RawChannel's SPICEVMC_DATA to the peer until the channel closes or stop is
    set. Runs on its own thread (see start_serving)."""
    while not (stop and stop.is_set()):
        try:
            msg_type, body = channel.recv(timeout=recv_timeout)
        except TimeoutError:
            continue
        except ConnectionError:
            return
        if msg_type == MSG_SPICEVMC_DATA:
            peer.feed(body)
        elif msg_type == MSG_SPICEVMC_COMPRESSED_DATA:
            peer.errors.append("compressed data although no LZ4 cap was announced")
        else:
            peer.note(f"spice message {msg_type} on the usbredir channel")


def start_serving(peer, channel):
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(peer, channel), kwargs={"stop": stop},
                         name="usbredir-peer", daemon=True)
    t.start()
    return t, stop
