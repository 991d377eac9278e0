"""A VM whose screen stands still costs the host nothing but memory (issue 15).

The guest plays the video clip (streaming-video=all) to spice-gtk, then pauses it (key P):
the stream ends, and while the screen stays still the SPICE library's threads sleep: no
encoder thread is left, and they wake (almost) never, as the C server's "SPICE Worker"
does. Then the video resumes and streams again: sleeping without timers must not miss
the guest's drawings. bench/host.py measures the same per VM with 1 to 8 VMs.
"""
import sys
import time
from pathlib import Path

from test_video import WireTap, clip_or_skip, connect, pause_video, start_video, wait_for, \
    KEY_P

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import measure  # noqa: E402

# Voluntary context switches the library's threads may make in IDLE_S of a still screen:
# none are due (no timer runs); a few allow for the stream's last frame and its end.
IDLE_S = 4.0
MAX_IDLE_SWITCHES = 3


def library_threads(pid):
    """{tid: (name, voluntary switches)} of the threads the SPICE library started."""
    return {tid: (comm, vol) for tid, (comm, vol, _) in measure.thread_switches(pid).items()
            if measure.is_server_thread(comm)}


def test_a_still_screen_wakes_no_thread_and_the_video_streams_again(make_rig, tmp_path):
    clip_or_skip()
    rig = start_video(make_rig, "qxl", "all")
    tap = WireTap(rig.port)
    try:
        c = connect(rig, tmp_path, tap)
        wait_for(lambda: tap.stream({"create"}), 30, "STREAM_CREATE")
        t_pause = time.monotonic()
        pause_video(rig, c)
        wait_for(lambda: tap.stream({"destroy", "destroy_all"}, t_pause), 15,
                 "STREAM_DESTROY after the video paused")
        c.wait_quiet(1.0, timeout=20)  # the area's lossless pixels went out

        pid = rig.proc.pid
        before = library_threads(pid)
        time.sleep(IDLE_S)
        after = library_threads(pid)
        woke = {f"{name}#{tid}": vol - before.get(tid, (name, 0))[1]
                for tid, (name, vol) in after.items()}
        names = sorted(name for name, _ in after.values())
        print(f"lib={rig.lib}: library threads while still: {names}; their wake-ups in "
              f"{IDLE_S:g} s: {woke}")
        assert not [n for n in names if n.startswith("spice-encode")], \
            f"an encoder thread outlived its stream: {names}"
        assert sum(woke.values()) <= MAX_IDLE_SWITCHES, \
            f"the library's threads woke {woke} in {IDLE_S:g} s of a still screen"

        # The video plays again: the sleeping worker sees it and a stream starts.
        t_resume = time.monotonic()
        start = len(rig.serial())
        c.key_press_release(KEY_P)
        rig.wait_serial(r"SPICE-RS-VIDEO: resumed", timeout=10, start=start)
        create = wait_for(lambda: tap.stream({"create"}, t_resume), 20,
                          "a STREAM_CREATE after the video resumed")[0]
        time.sleep(2)
        frames = tap.stream({"data"}, t_resume)
        print(f"lib={rig.lib}: stream again {create[0] - t_resume:.2f} s after resuming, "
              f"{len(frames)} frames since")
        assert len(frames) >= 10, f"only {len(frames)} stream frames after resuming"
        c.close()
    finally:
        tap.close()
