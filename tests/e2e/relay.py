"""A TCP relay between client and server for the bench and the e2e tests: it adds a fixed delay in each
direction (the "+20 ms round trip" rows: `tc netem` is not available here, no CAP_NET_ADMIN
or a kernel without sch_netem), can limit the server -> client rate as a slow link would,
and counts the bytes of each SPICE channel.

    with DelayRelay("127.0.0.1", server_port, delay=0.010) as relay:
        client.connect("127.0.0.1", relay.port)
    DelayRelay(host, port, delay=0, rate=8000)   # a 64 kbit/s link to the client
    DelayRelay(host, port, delay=0.020,          # 4 Mbit/s, 1 Mbit/s from 10 s on,
               schedule=[(0, 500_000), (10, 125_000), (20, 500_000)])  # 4 again from 20 s
    relay.restart_schedule()                     # the schedule's 0 s is now
    relay.set_rate(125_000)                      # from now on this rate (no schedule)
    relay.bytes_by_channel()                     # {channel type: [to client, to server]}

Every connection accepted on relay.port gets its own connection to the server. Each
direction has a reader and a writer thread: the reader stamps what it read, the writer
sends it once `delay` has passed. TCP backpressure is kept: the reader stops reading while
`limit` bytes are waiting to be forwarded, so a slow receiver slows the sender as it would
without the relay (nothing piles up in between).

With `rate` (bytes per second), the server -> client direction of all connections shares
one link of that rate: each piece is forwarded once the link has carried what was queued
before it. The relay then holds at most ~50 ms of the link's bytes (plus those on their
way through the delay) and makes its sockets' buffers small, so the server's socket backs up as it would behind a slow link (the
server's own send buffer still holds what it holds). A `schedule` of (seconds, bytes/s)
steps changes the link's rate as time passes (seconds from the relay's start, or from
restart_schedule()); what the relay holds follows the rate of the moment.

Byte counts: the channel type is read from each connection's SpiceLinkMess (byte 20 of
what the client sends first; plain connections, not TLS); bytes count as they are
forwarded, SPICE headers included (TCP payload).
"""
import collections
import socket
import threading
import time

CHUNK = 64 << 10
LINK_TYPE_AT = 20  # SpiceLinkHeader (16 bytes), then SpiceLinkMess: connection_id, channel_type
SMALL_BUFFER = 2048  # socket buffers when rate-limited (the kernel doubles it)
SLACK = 0.020  # seconds of link a late writer may catch up on
LINK_MSS = 1448  # the MSS the relay offers the server when rate-limited: an Ethernet link


class _Link:
    """A shared link of `rate` bytes/s, or of a schedule of rates: when may n more bytes
    have been carried."""

    def __init__(self, rate, schedule=None, delay=0.0):
        self.steps = sorted(schedule) if schedule else [(0.0, rate)]
        self.delay = delay
        self.start = time.monotonic()
        self.free_at = 0.0
        self.lock = threading.Lock()

    @property
    def rate(self):
        """The rate of the moment."""
        at = time.monotonic() - self.start
        now = self.steps[0][1]
        for t, r in self.steps:
            if t <= at:
                now = r
        return now

    def restart(self, steps=None):
        with self.lock:
            if steps is not None:
                self.steps = sorted(steps)
            self.start = time.monotonic()

    def hold(self, limit):
        """Bytes the relay may hold for this link (at most `limit`): ~50 ms of it queued,
        plus what is on its way through the delay (else the delay would cap the rate)."""
        return min(limit, max(1500, int(self.rate * (0.05 + self.delay))))

    def carried_at(self, n):
        rate = self.rate
        with self.lock:
            # A writer that woke up late (a busy machine) may catch up on what the link
            # could have carried meanwhile, up to SLACK: the link keeps its rate.
            self.free_at = max(self.free_at, time.monotonic() - SLACK) + n / rate
            return self.free_at


class _Pipe:
    """One direction of one connection: src -> (delay, link) -> dst. limit: bytes it may
    hold, or a function giving them (a link's ~50 ms)."""

    def __init__(self, src, dst, delay, limit, on_end, link=None, counter=None, head=None):
        self.src, self.dst, self.delay, self.limit = src, dst, delay, limit
        self.link, self.counter, self.head = link, counter, head
        self.queue = collections.deque()  # (due time, bytes); b"" = end of stream
        self.queued = 0
        self.cond = threading.Condition()
        self.on_end = on_end
        for target in (self._read, self._write):
            threading.Thread(target=target, daemon=True).start()

    def _read(self):
        while True:
            with self.cond:
                while self.queued >= self._limit():
                    # a link's rate (and with it the limit) may change meanwhile
                    self.cond.wait(None if isinstance(self.limit, int) else 0.05)
                limit = self._limit()
            try:
                data = self.src.recv(min(CHUNK, limit - self.queued))
            except OSError:
                data = b""
            if self.head is not None and len(self.head) <= LINK_TYPE_AT:
                self.head += data[:LINK_TYPE_AT + 1 - len(self.head)]
            with self.cond:
                self.queue.append((time.monotonic() + self.delay, data))
                self.queued += len(data)
                self.cond.notify_all()
            if not data:
                return

    def _limit(self):
        return self.limit if isinstance(self.limit, int) else self.limit()

    def _send(self, data):
        # With a link: in slices of ~10 ms of it, each once the link has carried it.
        step = max(128, int(self.link.rate / 100)) if self.link else len(data)
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            if self.link:
                left = self.link.carried_at(len(piece)) - time.monotonic()
                if left > 0:
                    time.sleep(left)
            self.dst.sendall(piece)
            self.counter[0] += len(piece)

    def _write(self):
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, data = self.queue[0]
            left = due - time.monotonic()
            if left > 0:
                time.sleep(left)
            try:
                if data:
                    self._send(data)
                else:
                    self.dst.shutdown(socket.SHUT_WR)
            except OSError:
                data = b""
            with self.cond:
                self.queue.popleft()
                self.queued -= len(data)
                self.cond.notify_all()
            if not data:
                self.on_end()
                return


class DelayRelay:
    def __init__(self, host, port, delay=0.010, limit=4 << 20, rate=None, schedule=None):
        self.target = (host, port)
        self.delay, self.limit = delay, limit
        self.link = _Link(rate, schedule, delay) if rate or schedule else None
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.counts = []  # per connection: [head (client's first bytes), [down], [up]]
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            try:
                b = socket.socket()
                if self.link:  # before connect: the window it offers the server
                    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
                    b.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, LINK_MSS)
                    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
                b.connect(self.target)
            except OSError:
                a.close()
                b.close()
                continue
            for s in (a, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ends = [0]

            def on_end(a=a, b=b, ends=ends):
                with self.lock:
                    ends[0] += 1
                    done = ends[0] == 2
                if done:
                    a.close()
                    b.close()
            head, down, up = bytearray(), [0], [0]
            with self.lock:
                if self.closed:
                    a.close()
                    b.close()
                    return
                self.conns.append((a, b))
                self.counts.append((head, down, up))
            limit = self._hold if self.link else self.limit
            _Pipe(a, b, self.delay, limit, on_end, counter=up, head=head)
            _Pipe(b, a, self.delay, limit, on_end, link=self.link, counter=down)

    def _hold(self):
        return self.link.hold(self.limit)

    def set_rate(self, rate):
        """The link carries `rate` bytes/s from now on (a relay made with a rate or a
        schedule)."""
        self.link.restart([(0.0, rate)])

    def restart_schedule(self):
        """The schedule's time 0 is now."""
        self.link.restart()

    def bytes_by_channel(self):
        """{SPICE channel type (1 main, 5 playback, 6 record...): [bytes to the client,
        bytes to the server]} over all connections so far."""
        out = {}
        with self.lock:
            for head, down, up in self.counts:
                kind = head[LINK_TYPE_AT] if len(head) > LINK_TYPE_AT else None
                c = out.setdefault(kind, [0, 0])
                c[0] += down[0]
                c[1] += up[0]
        return out

    def close(self):
        with self.lock:
            self.closed = True
            conns, self.conns = self.conns, []
        self.listener.close()
        for a, b in conns:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
