"""spice-gtk's port channel for tests/e2e/test_port.py, run as a subprocess with Debian's
/usr/bin/python3 (python3-gi): it connects a session, finds the SpicePortChannel named
NAME and plays one scenario, printing JSON lines (one per step, the last one
{"done": ...}). A spice-gtk crash shows up as a dead worker, not a dead pytest.

    port_client.py HOST PORT NAME echo BYTES [CHUNK]  write BYTES random bytes (in writes
        of CHUNK bytes, one after the other; default one write), read them back, then wait
        for the guest to close and reopen the port; reports the events seen
    port_client.py HOST PORT NAME slow SECONDS  read for a while, then stop running the
        main loop (nobody reads the socket) for SECONDS, then read again
"""
import hashlib
import json
import os
import sys
import time


def main():
    host, port, name, mode, arg = sys.argv[1:6]
    chunk = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    out_fd = os.dup(1)
    os.dup2(2, 1)  # GLib debug output must not mix with the JSON lines

    def say(**kw):
        kw["t"] = time.monotonic()
        os.write(out_fd, json.dumps(kw).encode() + b"\n")

    import ctypes
    import gi
    gi.require_version("SpiceClientGLib", "2.0")
    from gi.repository import GLib, GObject
    from gi.repository import SpiceClientGLib as Spice

    st = {"port": None, "events": [], "received": bytearray(), "count": 0, "errors": []}
    session = Spice.Session()
    session.set_property("host", host)
    session.set_property("port", port)

    def on_data(ch, data, size):
        # `data` is a gpointer: PyGObject hands over its address.
        if mode == "echo":
            st["received"] += ctypes.string_at(data, size)
        st["count"] += size

    def on_event(ch, event):
        st["events"].append(int(event))
        say(port_event=int(event), opened=bool(ch.get_property("port-opened")))

    def on_channel_event(ch, event):
        if event != Spice.ChannelEvent.OPENED:
            st["errors"].append(event.value_nick)
            say(channel_event=event.value_nick)

    def on_channel_new(s, ch):
        if isinstance(ch, Spice.PortChannel):
            GObject.Object.connect(ch, "notify::port-name", lambda c, _p: adopt(c))
            GObject.Object.connect(ch, "channel-event", on_channel_event)
            adopt(ch)
        if not isinstance(ch, Spice.MainChannel):
            ch.connect()

    def adopt(ch):
        if st["port"] is None and ch.get_property("port-name") == name:
            st["port"] = ch
            GObject.Object.connect(ch, "port-data", on_data)
            GObject.Object.connect(ch, "port-event", on_event)
            say(port_init=name, opened=bool(ch.get_property("port-opened")))

    GObject.Object.connect(session, "channel-new", on_channel_new)
    session.connect()
    ctx = GLib.MainContext.default()

    def run_until(pred, timeout):
        end = time.monotonic() + timeout
        while not pred() and time.monotonic() < end:
            ctx.iteration(False) or time.sleep(0.002)
        return pred()

    if not run_until(lambda: st["port"] is not None, 30):
        say(done=False, error="no port channel named " + name, errors=st["errors"])
        return
    if mode == "echo":
        n = int(arg)
        payload = os.urandom(n)
        # The guest opens a round every second while no client is there (its reads end
        # at once): write once its port has stayed open for a while, in a round that
        # waits for our bytes.
        opened = lambda: st["port"].get_property("port-opened")  # noqa: E731
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if run_until(opened, 15) and not run_until(lambda: not opened(), 1.5):
                break
        written = {}
        step = chunk or n

        def on_written(ch, res, _data):
            try:
                written["n"] = written.get("n", 0) + ch.write_finish(res)
            except GLib.Error as e:
                written["error"] = str(e)
                return
            if written["n"] < n:
                write(written["n"])

        def write(at):
            written["piece"] = payload[at:at + step]  # alive until its write finished
            st["port"].write_async(written["piece"], None, on_written, None)

        t0 = time.monotonic()
        write(0)
        run_until(lambda: len(st["received"]) >= n, 60)
        t1 = time.monotonic()
        written.pop("piece", None)
        say(written=written, received=len(st["received"]), seconds=t1 - t0,
            same=hashlib.sha256(bytes(st["received"][:n])).hexdigest()
            == hashlib.sha256(payload).hexdigest())
        # The guest closes the port after its round and reopens it a second later.
        before = len(st["events"])
        run_until(lambda: st["events"][before:] == [1, 0], 15)
        say(done=True, events=st["events"], errors=st["errors"])
        # Stay connected until the test says go (it watches the guest meanwhile).
        sys.stdin.readline()
        session.disconnect()
        run_until(lambda: False, 0.5)
    elif mode == "slow":
        seconds = float(arg)
        run_until(lambda: st["count"] > 4 << 20, 60)
        say(reading=st["count"])
        say(paused=True)
        time.sleep(seconds)  # nobody runs the main loop: nobody reads the socket
        before = st["count"]
        say(resumed=True)
        run_until(lambda: st["count"] - before > 16 << 20, 60)
        say(done=True, after_pause=st["count"] - before, errors=st["errors"])
        session.disconnect()
        run_until(lambda: False, 0.5)


if __name__ == "__main__":
    main()
