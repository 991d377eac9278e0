"""A TCP relay that adds a fixed delay in each direction, for the bench's "+20 ms round
trip" rows where `tc netem` is not available (no CAP_NET_ADMIN, or a kernel without
sch_netem).

    with DelayRelay("127.0.0.1", server_port, delay=0.010) as relay:
        client.connect("127.0.0.1", relay.port)

Every connection accepted on relay.port gets its own connection to the server. Each
direction has a reader and a writer thread: the reader stamps what it read, the writer
sends it once `delay` has passed. TCP backpressure is kept: the reader stops reading while
`limit` bytes are waiting to be forwarded, so a slow receiver slows the sender as it would
without the relay (nothing piles up in between).
"""
import collections
import socket
import threading
import time

CHUNK = 64 << 10


class _Pipe:
    """One direction of one connection: src -> (delay) -> dst."""

    def __init__(self, src, dst, delay, limit, on_end):
        self.src, self.dst, self.delay, self.limit = src, dst, delay, limit
        self.queue = collections.deque()  # (due time, bytes); b"" = end of stream
        self.queued = 0
        self.cond = threading.Condition()
        self.on_end = on_end
        for target in (self._read, self._write):
            threading.Thread(target=target, daemon=True).start()

    def _read(self):
        while True:
            with self.cond:
                while self.queued >= self.limit:
                    self.cond.wait()
            try:
                data = self.src.recv(CHUNK)
            except OSError:
                data = b""
            with self.cond:
                self.queue.append((time.monotonic() + self.delay, data))
                self.queued += len(data)
                self.cond.notify_all()
            if not data:
                return

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
                    self.dst.sendall(data)
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
    def __init__(self, host, port, delay=0.010, limit=4 << 20):
        self.target = (host, port)
        self.delay, self.limit = delay, limit
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.conns = []
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
                b = socket.create_connection(self.target)
            except OSError:
                a.close()
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
            with self.lock:
                if self.closed:
                    a.close()
                    b.close()
                    return
                self.conns.append((a, b))
            _Pipe(a, b, self.delay, self.limit, on_end)
            _Pipe(b, a, self.delay, self.limit, on_end)

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
