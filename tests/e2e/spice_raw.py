"""A raw SPICE client in Python, for channels spice-gtk cannot drive in the tests.

spice-gtk's usbredir channel needs a real libusb device; this client links the main
channel and then any other channel by hand (spice.proto, protocol.h) and hands the
channel's messages to the test:

    with RawSession(HOST, rig.port) as s:
        vmc = s.open_channel(CHANNEL_USBREDIR)
        vmc.send(MSGC_SPICEVMC_DATA, b"...")
        msg_type, body = vmc.recv(timeout=10)

Each channel has a reader thread that answers the base protocol (SET_ACK with ACK_SYNC
and ACKs every window, PING with PONG) and queues everything else. Only the mini
header is used; no compression caps are announced, so data arrives uncompressed.
"""
import queue
import socket
import struct
import threading

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

# Channel types (enums.h SpiceChannelType)
CHANNEL_MAIN = 1
CHANNEL_USBREDIR = 9
# Common caps (SpiceCommonCap)
CAP_AUTH_SELECTION, CAP_AUTH_SPICE, CAP_AUTH_SASL, CAP_MINI_HEADER = range(4)
# Base messages, server -> client and client -> server
MSG_SET_ACK, MSG_PING, MSG_DISCONNECTING, MSG_NOTIFY = 3, 4, 6, 7
MSGC_ACK_SYNC, MSGC_ACK, MSGC_PONG = 1, 2, 3
# Main channel
MSG_MAIN_INIT, MSG_MAIN_CHANNELS_LIST = 103, 104
MSGC_MAIN_ATTACH_CHANNELS = 104
# spicevmc channels (usbredir, port, webdav, smartcard data)
MSG_SPICEVMC_DATA, MSG_SPICEVMC_COMPRESSED_DATA = 101, 102
MSGC_SPICEVMC_DATA = 101

LINK_ERR_NAMES = {0: "OK", 1: "ERROR", 2: "INVALID_MAGIC", 3: "INVALID_DATA",
                  4: "VERSION_MISMATCH", 5: "NEED_SECURED", 6: "NEED_UNSECURED",
                  7: "PERMISSION_DENIED", 8: "BAD_CONNECTION_ID", 9: "CHANNEL_NOT_AVAILABLE"}


class LinkError(Exception):
    pass


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def caps_words(bits):
    """Cap bit numbers as the link message's u32 words (none for no caps)."""
    words = [0] * (max(bits) // 32 + 1 if bits else 0)
    for b in bits:
        words[b // 32] |= 1 << (b % 32)
    return words


def link_message(channel_type=1, channel_id=0, connection_id=0, channel_caps=(), magic=b"REDQ"):
    """The client's link message (SpiceLinkHeader + SpiceLinkMess) with the common caps
    a client announces (auth selection, SPICE auth, mini header)."""
    common = caps_words([CAP_AUTH_SELECTION, CAP_AUTH_SPICE, CAP_MINI_HEADER])
    chan = caps_words(list(channel_caps))
    caps = b"".join(struct.pack("<I", w) for w in common + chan)
    body = struct.pack("<IBBIII", connection_id, channel_type, channel_id,
                       len(common), len(chan), 18) + caps
    return magic + struct.pack("<III", 2, 2, len(body)) + body


def link(host, port, channel_type, channel_id=0, connection_id=0, channel_caps=(),
         ticket=b"", timeout=15):
    """Links one channel (SpiceLinkMess, SpiceLinkReply, the RSA-OAEP ticket, the result)
    and returns (socket, server common caps, server channel caps). Raises LinkError."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(link_message(channel_type, channel_id, connection_id, channel_caps))
        magic, major, minor, size = struct.unpack("<4sIII", recv_exact(sock, 16))
        if magic != b"REDQ" or major != 2:
            raise LinkError(f"bad link reply header {magic!r} {major}.{minor}")
        reply = recv_exact(sock, size)
        error = struct.unpack_from("<I", reply, 0)[0]
        if error:
            raise LinkError(f"link of channel {channel_type}:{channel_id} refused: "
                            f"{LINK_ERR_NAMES.get(error, error)}")
        pub_key = reply[4:4 + 162]
        n_common, n_chan, off = struct.unpack_from("<III", reply, 166)
        words = struct.unpack_from(f"<{n_common + n_chan}I", reply, off)
        server_common, server_chan = words[:n_common], words[n_common:]
        if not (server_common and server_common[0] & (1 << CAP_MINI_HEADER)):
            raise LinkError("server does not offer the mini header")
        key = serialization.load_der_public_key(pub_key)
        encrypted = key.encrypt(ticket + b"\0", padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
        sock.sendall(struct.pack("<I", CAP_AUTH_SPICE) + encrypted)
        result = struct.unpack("<I", recv_exact(sock, 4))[0]
        if result:
            raise LinkError(f"ticket of channel {channel_type}:{channel_id} refused: "
                            f"{LINK_ERR_NAMES.get(result, result)}")
        sock.settimeout(None)
        return sock, server_common, server_chan
    except BaseException:
        sock.close()
        raise


class RawChannel:
    """One linked channel with the mini header: send(type, body), recv() -> (type, body)."""

    def __init__(self, sock, name):
        self.sock = sock
        self.name = name
        self.messages = queue.Queue()
        self.closed = threading.Event()
        self.close_reason = None
        self._send_lock = threading.Lock()
        self._ack_window = 0
        self._unacked = 0
        self.reader = threading.Thread(target=self._read_loop, name=f"raw-{name}", daemon=True)
        self.reader.start()

    def send(self, msg_type, body=b""):
        with self._send_lock:
            self.sock.sendall(struct.pack("<HI", msg_type, len(body)) + body)

    def recv(self, timeout=10):
        """The next message that is not base protocol; raises TimeoutError, or
        ConnectionError once the channel closed and nothing is left."""
        try:
            item = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no message within {timeout}s") from None
        if item is None:
            self.messages.put(None)  # later calls see the close too
            raise ConnectionError(f"{self.name} closed: {self.close_reason}")
        return item

    def _read_loop(self):
        try:
            while True:
                msg_type, size = struct.unpack("<HI", recv_exact(self.sock, 6))
                body = recv_exact(self.sock, size)
                if self._ack_window:
                    self._unacked += 1
                    if self._unacked >= self._ack_window:
                        self._unacked = 0
                        self.send(MSGC_ACK)
                if msg_type == MSG_SET_ACK:
                    generation, window = struct.unpack_from("<II", body)
                    self._ack_window, self._unacked = window, 0
                    self.send(MSGC_ACK_SYNC, struct.pack("<I", generation))
                elif msg_type == MSG_PING:
                    ping_id, timestamp = struct.unpack_from("<IQ", body)
                    self.send(MSGC_PONG, struct.pack("<IQ", ping_id, timestamp))
                elif msg_type == MSG_NOTIFY:
                    continue
                else:
                    self.messages.put((msg_type, body))
        except (OSError, ConnectionError, struct.error) as e:
            self.close_reason = str(e)
        finally:
            self.closed.set()
            self.messages.put(None)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


class RawSession:
    """The main channel (linked at construction; MAIN_INIT gives the session id), and
    other channels of the same session through open_channel()."""

    def __init__(self, host, port, timeout=15):
        self.host, self.port = host, port
        sock, _, _ = link(host, port, CHANNEL_MAIN, timeout=timeout)
        self.main = RawChannel(sock, "main")
        msg_type, body = self.main.recv(timeout)
        if msg_type != MSG_MAIN_INIT:
            raise LinkError(f"main channel: first message {msg_type}, expected MAIN_INIT")
        self.session_id = struct.unpack_from("<I", body)[0]
        self.channels = []

    def channel_list(self, timeout=10):
        """ATTACH_CHANNELS, as spice-gtk sends it; returns [(type, id)] from CHANNELS_LIST."""
        self.main.send(MSGC_MAIN_ATTACH_CHANNELS)
        while True:
            msg_type, body = self.main.recv(timeout)
            if msg_type == MSG_MAIN_CHANNELS_LIST:
                n = struct.unpack_from("<I", body)[0]
                return [struct.unpack_from("<BB", body, 4 + 2 * i) for i in range(n)]

    def open_channel(self, channel_type, channel_id=0, channel_caps=()):
        sock, _, _ = link(self.host, self.port, channel_type, channel_id,
                          connection_id=self.session_id, channel_caps=channel_caps)
        ch = RawChannel(sock, f"{channel_type}:{channel_id}")
        self.channels.append(ch)
        return ch

    def close(self):
        for ch in self.channels + [self.main]:
            ch.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
