#!/usr/bin/python3
"""Desktop traffic, ours against Debian's C server: the test guest's desktop with its
front window's document scrolling a line up SCROLL_FPS times a second (workload.c
scroll_fps), QEMU's defaults otherwise (streaming-video off, image-compression auto_glz),
spice-gtk connected. Prints bytes per second server -> client and the server side's CPU
(QEMU minus its vCPU threads) per library and display.

    bench/desktop_scroll.py     env: SCROLL_FPS=10 SECONDS=15 WARMUP=6 DISPLAYS=qxl,std
                                     IMAGE_COMPRESSION=auto_glz|lz|glz|... LIBS=ours,c
                                     JPEG_WAN, ZLIB_GLZ_WAN=auto|always|never (WAN modes)
                                     THREADS=1 (also the busiest threads)
"""
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import measure  # noqa: E402
from client import SpiceClient  # noqa: E402


def run(display, lib, fps, seconds, warmup, compression):
    opts = {"image-compression": compression} if compression else {}
    for env, opt in (("JPEG_WAN", "jpeg-wan-compression"), ("ZLIB_GLZ_WAN", "zlib-glz-wan-compression")):
        if os.environ.get(env):
            opts[opt] = os.environ[env]
    work = Path(f"/tmp/desktop-scroll-{display}-{lib}")
    rig = measure.BenchRig(display=display, workload="desktop", lib=lib, workdir=work, mem=512,
                           video="1280x720", append=f"scroll_fps={fps:g}", spice_opts=opts,
                           extra_args=["-name", "bench,debug-threads=on"])  # vCPU threads named
    client = None
    try:
        rig.start()
        rig.wait_serial(r"workload desktop running", timeout=180)
        client = SpiceClient(log_path=work / "client.log")
        client.connect("127.0.0.1", rig.port, timeout=90)
        client.wait(lambda s: s["first_frame_s"] is not None, 30, "first drawing")
        time.sleep(warmup)
        w0, c0 = measure.wire_bytes(rig.port), measure.cpu_ticks(rig.proc.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        dur = time.monotonic() - t0
        w1, c1 = measure.wire_bytes(rig.port), measure.cpu_ticks(rig.proc.pid)
        down, _ = measure.wire_delta(w0, w1)
        cpu = measure.cpu_delta(c0, c1, rig.proc.pid)
        busiest = sorted(cpu["threads"].items(), key=lambda kv: -kv[1])[:5]
        return down / dur, cpu["server_side"] / dur, busiest
    finally:
        if client:
            client.close()
        rig.stop()


def main():
    fps = float(os.environ.get("SCROLL_FPS", 10))
    seconds = float(os.environ.get("SECONDS", 15))
    warmup = float(os.environ.get("WARMUP", 6))
    compression = os.environ.get("IMAGE_COMPRESSION")
    displays = os.environ.get("DISPLAYS", "qxl,std").split(",")
    libs = os.environ.get("LIBS", "ours,c").split(",")
    print(f"desktop, a document scrolling {fps:g} lines/s, 1280x720, image-compression="
          f"{compression or 'default (auto_glz)'}, {seconds:g} s measured")
    for display in displays:
        for lib in libs:
            rate, cpu, busiest = run(display, lib, fps, seconds, warmup, compression)
            print(f"{display:4} {lib:5} {rate / 1e6:7.3f} MB/s  server side CPU {cpu * 100:5.1f} %",
                  flush=True)
            if os.environ.get("THREADS") == "1":
                print("      busiest threads (CPU s): " +
                      ", ".join(f"{name} {sec:.2f}" for name, sec in busiest))


if __name__ == "__main__":
    main()
