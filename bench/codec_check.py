#!/usr/bin/python3
"""Which codec each server really streams when the H.264/VP8/VP9 rows ask for one, read
off the wire: a relay (tests/e2e/test_video.WireTap) between spice-gtk and the server
decodes every STREAM_CREATE's codec. One short boot per server and codec, -vga qxl 720p.

    /usr/bin/python3 bench/codec_check.py                # the client asks (stock QEMU)
    BENCH_CODEC_VIA=server /usr/bin/python3 bench/codec_check.py   # patched QEMU video-codec=
    ... codec_check.py h264 vp9                          # only these codecs

Prints one line per server and codec; exit status 1 if any streamed another codec.
"""
import os
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import measure  # noqa: E402
import rig as rig_module  # noqa: E402
from client import VIDEO_CODECS, ClientError, SpiceClient  # noqa: E402
from run import CODECS, PATCHED_QEMU, SPICE_OPTS  # noqa: E402
from test_video import WireTap  # noqa: E402

NAMES = {v: k for k, v in VIDEO_CODECS.items()}


def check(lib, codec, via, workdir):
    shutil.rmtree(workdir, ignore_errors=True)
    opts, qemu = dict(SPICE_OPTS), rig_module.QEMU
    if via == "server":
        opts["video-codec"] = f"gstreamer:{codec}"
        rig_module.QEMU = str(PATCHED_QEMU)
    rig = measure.BenchRig(display="qxl", workload="video", lib=lib, workdir=workdir, mem=512,
                           video="1280x720", append="fps=30 video_rect=full", spice_opts=opts)
    tap = client = None
    try:
        rig.start()
        rig_module.QEMU = qemu
        rig.wait_serial(r"workload video running", timeout=180)
        tap = WireTap(rig.port)
        client = SpiceClient(log_path=workdir / "client.log")
        try:
            client.connect("127.0.0.1", tap.port, timeout=90,
                           video_codecs=[codec] if via == "client" else None)
        except ClientError as e:
            return f"no codec preference possible: {e}", False
        time.sleep(6)
        creates = [r[3] for r in tap.stream(kinds=("create",))]
        frames = len(tap.stream(kinds=("data",)))
        got = [NAMES.get(c["codec"], c["codec"]) for c in creates]
        ok = bool(got) and all(g == codec for g in got)
        return f"STREAM_CREATE codecs {got}, {frames} STREAM_DATA in 6 s", ok
    finally:
        rig_module.QEMU = qemu
        if client:
            client.close()
        if tap:
            tap.close()
        rig.stop()


def main():
    via = os.environ.get("BENCH_CODEC_VIA", "client")
    codecs = sys.argv[1:] or list(CODECS)
    work = HERE.parent / "build" / "bench" / "codec-check"
    bad = 0
    for codec in codecs:
        for lib in ("ours", "c"):
            text, ok = check(lib, codec, via, work / f"{lib}-{codec}")
            bad += not ok
            print(f"{'ok  ' if ok else 'BAD '} {lib:>4} asked {codec:>4} ({via}): {text}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
