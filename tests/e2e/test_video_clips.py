"""Video of other content than Megamind, full screen at 720p, through spice-gtk.

The guest plays one of its clips (tests/guest/build.sh; kernel clip=NAME) full screen:

    street   a fixed camera on a street (opencv-doc's vtest.avi): a still background,
             people walking
    screen   a screen recording: text typed into an editor window, a pointer gliding
    anim     an animation: flat colours, sharp edges, shapes moving, a windmill turning

With streaming-video=all, what the user sees is checked against the source: the client's
picture, every 0.4 s for a few seconds, scored (PSNR) against the source frame its stamp
names; no part of the video area left unpainted once the video plays (the guest's dark
background showing where the source has a picture); the bytes per second sent. The
bounds sit near what Debian's C server gives (SPICE_RS_E2E_LIB=c passes them too; both
sets of numbers are printed).
"""
import time

import numpy as np
import pytest

from client import SpiceClient, decode_stamp
from rig import CLIP_FILES, GUEST_DIR
from test_video import STAMP_ROWS, Clip, WireTap, region_psnr, save_rgb, wait_for

FPS = 25
MODE = (1280, 720)
REGION = (MODE[0], MODE[1], 0, 0)  # full screen: the clip scaled x2
WARMUP_S = 8  # from the client's first picture: streams start within a second or two
SHOTS, SHOT_EVERY = 15, 0.4
BLOCK = 32  # the unpainted-area check works on blocks of this side

# Per clip and display: (median PSNR dB at least, bytes/s at most), near what Debian's C
# server gives on this rig (PSNR median / MB/s, three runs on a busy two-core machine; its
# bytes follow how many frames the guest manages):
#   street std 25.3-28.8 / 1.40-2.61 (no stream: column strips as lossless images, the
#   stamp and the picture below it on different clocks), street qxl 37-99 / 1.93-3.58,
#   screen std 32.2-34.9 / 0.08-0.18 and anim std 20.9-28.3 / 0.23-0.40 (a 32x32 stream on
#   the stamp, the rest lossless). spice-rs: street std 29-37 / 0.2-1.0 (one stream over
#   the whole picture), street qxl 29.3-33.6 / 0.19-0.75, screen and anim 99 / 0.02-0.04
#   and 0.13-0.15 (no stream: the few changed parts go exact and cheaper as pixels). Our
#   29.3 dB runs are MJPEG quality 10: the rate control cut hard while the stream's first
#   frames waited behind the lossless start (video/rate.rs, not this test's subject).
BOUNDS = {
    ("street", "std"): (24.0, 3.0e6),
    ("street", "qxl"): (28.0, 4.0e6),
    ("screen", "std"): (28.0, 0.2e6),
    ("anim", "std"): (20.0, 0.5e6),
}


def unpainted_blocks(img, want):
    """Blocks of the region where the client shows a flat dark area (the guest's 0x101010
    background, or a surface never drawn) while the source frame has a picture there."""
    h, w = want.shape[:2]
    h, w = h - h % BLOCK, w - w % BLOCK
    got = img[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3)
    src = want[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).astype(np.int32)
    top, bottom = got.max(axis=(1, 3, 4)), got.min(axis=(1, 3, 4))
    dark = (top <= 24) & (top - bottom <= 6)  # flat: never drawn, not a dark coat
    picture = src.mean(axis=(1, 3, 4)) >= 48
    return int((dark & picture).sum())


@pytest.mark.parametrize("clip_name,display", list(BOUNDS))
def test_clip_plays_close_to_the_source(make_rig, clip_name, display, tmp_path):
    path = GUEST_DIR / CLIP_FILES[clip_name]
    if not path.exists():
        pytest.skip(f"no {path}: run tests/guest/build.sh {GUEST_DIR}")
    clip = Clip(path)
    psnr_bound, bytes_bound = BOUNDS[(clip_name, display)]
    rig = make_rig(display=display, workload="video", mem=512, video=f"{MODE[0]}x{MODE[1]}",
                   append=f"fps={FPS} clip={clip_name}",
                   spice_opts={"streaming-video": "all"})
    rig.wait_serial(rf"SPICE-RS-GUEST: clip {clip_name} on /dev/vd", timeout=90)
    m = rig.wait_serial(r"SPICE-RS-GUEST: video \d+x\d+ frames=(\d+) -> (\d+)x(\d+)\+0\+0",
                        timeout=30)
    assert int(m.group(1)) > 0 and (int(m.group(2)), int(m.group(3))) == MODE, m.group(0)
    rig.wait_serial(r"workload video running", timeout=30)
    tap = WireTap(rig.port)
    try:
        c = SpiceClient(tmp_path / "client.log", debug=True)
        c.connect("127.0.0.1", tap.port, timeout=60)
        wait_for(lambda: decode_stamp(c.screenshot(), 0, 0) is not None, 30,
                 "a stamped picture at the client")
        time.sleep(WARMUP_S)
        rw, rh, _, _ = REGION
        b0, t0 = tap.down_bytes, time.monotonic()
        psnrs, unpainted, stamps = [], [], []
        for i in range(SHOTS):
            time.sleep(SHOT_EVERY)
            shot = c.screenshot()
            n = decode_stamp(shot, 0, 0)
            if n is None:
                continue
            img = np.frombuffer(shot[2], dtype=np.uint8).reshape(shot[1], shot[0], 3)
            want = clip.rgb(n, rw, rh)
            stamps.append(n)
            psnrs.append(region_psnr(shot, clip, n, REGION))
            unpainted.append(unpainted_blocks(img[STAMP_ROWS:rh, :rw], want[STAMP_ROWS:]))
            if psnrs[-1] < psnr_bound or unpainted[-1]:
                save_rgb(shot, tmp_path / f"low-{i}-client.png")
                save_rgb((rw, rh, np.ascontiguousarray(want).tobytes()),
                         tmp_path / f"low-{i}-source.png")
        rate = (tap.down_bytes - b0) / (time.monotonic() - t0)
        creates = [r[3]["dest"] for r in tap.stream({"create"})]
        median = float(np.median(psnrs)) if psnrs else 0.0
        print(f"{clip_name} {display}: lib={rig.lib} PSNR dB median {median:.1f} "
              f"min {min(psnrs, default=0):.1f} {[round(p, 1) for p in psnrs]}; "
              f"unpainted blocks {unpainted}; {rate / 1e6:.2f} MB/s; "
              f"streams {creates[:6]}{'...' if len(creates) > 6 else ''} ({len(creates)})")
        assert len(stamps) >= SHOTS // 2, f"the stamp was readable in {len(stamps)} shots"
        assert not any(unpainted), f"unpainted video area (blocks per shot): {unpainted}"
        assert median >= psnr_bound, f"PSNR median {median:.1f} dB < {psnr_bound}"
        assert rate <= bytes_bound, f"{rate / 1e6:.2f} MB/s > {bytes_bound / 1e6:.2f}"
    finally:
        tap.close()
