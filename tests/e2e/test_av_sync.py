"""Audio and video in step, end to end (issue 13): the Debian guest plays a clip whose video
follows its audio clock (tests/guest-debian/avplay.c: a beep and a flash frame at the start
of every second), spice-gtk is the client with an emulated audio backend of latency D
(its clock set from the audio stamps by spice_playback_channel_set_delay(D) every second,
as spice-gtk's GStreamer backend does), and tests/e2e/avsync.py measures, per second,
(time the client showed the flash) - (time the beep's samples arrived + D).

What a user would notice, asserted on ours: audio and video within +-40 ms (p95 of the
absolute skew) for a low-latency desktop backend (D=30 ms) and a typical PulseAudio one
(D=150 ms), and the video still moving while audio plays. Against Debian's C server
(SPICE_RS_E2E_LIB=c) the same is measured and printed only: the test is checked by running
it there, but C's A/V sync is not what this test holds it to."""
import time

import pytest

import avsync
import guest as guest_module
import sound
from client import SpiceClient
from rig import Rig, default_lib

HOST = "127.0.0.1"
AUDIO = ["-audiodev", "spice,id=snd0", "-device", "ich9-intel-hda",
         "-device", "hda-duplex,audiodev=snd0"] + sound.QEMU_AUDIO_TRACE
SECONDS = 15
# Seconds with both a beep and its flash measured: on a loaded host the guest's sound
# underruns now and then (its stream restarts, a beep can be cut), so not every second.
JUDGED_MIN = 8
SKEW_P95_MAX_MS = 40
# Frames the client shows a second while audio plays (avplay draws 30; a TCG guest fewer).
MOVING_FPS_MIN = 10


class AvVM:
    def __init__(self, rig, guest, client, work):
        self.rig, self.guest, self.client, self.work = rig, guest, client, work

    def logs(self):
        out = [self.rig.tail()]
        try:
            out.append("--- guest avplay.log ---\n" + self.guest.log("/tmp/avplay.log")[-2000:])
        except Exception as e:  # noqa: BLE001 (the guest may be the thing that broke)
            out.append(f"--- guest: {e}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    try:
        guest_module.ensure_built()
    except guest_module.GuestError as e:
        pytest.fail(str(e), pytrace=False)
    work = tmp_path_factory.mktemp("avsync")
    player = avsync.build_player(work)
    kw, cmd_sock = guest_module.rig_args(work, agent=False, extra=AUDIO)
    # streaming-video=all: the clip is sent as a video stream, which the client schedules
    # by its multimedia clock (QEMU's default is off: everything is drawn at once).
    rig = Rig(workdir=work / "rig", lib=default_lib(), spice_opts={"streaming-video": "all"},
              **kw)
    t0 = time.monotonic()
    rig.start()
    g = guest_module.Guest(cmd_sock)
    client = None
    try:
        m = rig.wait_serial(r"SPICE-RS-GUEST: (ready|cannot mount.*|X failed)|Kernel panic",
                            timeout=300)
        if "ready" not in m.group(0):
            raise AssertionError(f"the Debian guest did not start: {m.group(0)}")
        g.wait_ready(timeout=60)
        print(f"\nguest ready in {time.monotonic() - t0:.1f} s, lib={rig.lib} {rig.mapped_lib}")
        for ctl in ("Master", "PCM"):
            g.run(f"amixer -c 0 sset {ctl} 100% unmute", user=False, check=False)
        avsync.install_player(g, player)
        client = SpiceClient(str(work / "client.log"), debug=True)
        client.connect(HOST, rig.port, timeout=60)
        client.wait(lambda s: any(n.startswith("playback") for n in s["open"]), 30,
                    "the playback channel")
        yield AvVM(rig, g, client, work)
    except Exception:
        print(AvVM(rig, g, client, work).logs())
        raise
    finally:
        if client:
            client.close()
        g.close()
        rig.stop()


@pytest.mark.parametrize("delay_ms", [30, 150])
def test_av_sync(vm, delay_ms, request):
    r = avsync.measure(vm.rig.serial_path, vm.guest, vm.client, SECONDS, delay_ms, vm.work,
                       tag=f"av-{delay_ms}")
    s = avsync.summary(r)
    lib = vm.rig.lib
    print(f"\n[{lib} D={delay_ms}] {s}")
    print(f"[{lib} D={delay_ms}] skew per second (ms): "
          f"{ {k: round(v) for k, v in r['skew_ms'].items()} }")
    print(f"[{lib} D={delay_ms}] video latency per second (ms): "
          f"{ {k: round(v) for k, v in r['video_latency_ms'].items()} }")
    print(f"[{lib} D={delay_ms}] beeps {r['beeps']} (unmatched {r['beeps_unmatched']}), audio (re)starts {r['playback_starts']}, flashes "
          f"{r['flashes']}, frames shown {r['frames_shown']}, streams {r['streams_created']}, "
          f"set_delay calls {r['set_delay_calls']}; player: {r['player']} "
          f"{r['player_seconds']}")
    try:
        assert r["set_delay_calls"] >= SECONDS - 2, r["set_delay_calls"]
        assert r["stream_frames"] > 0, f"the video never became a stream: {s}"
        assert s["seconds_judged"] >= JUDGED_MIN, f"flash/beep pairs: {s}"
        if lib == "c":
            print(f"[c D={delay_ms}] measured only: Debian's C server is not held to the "
                  f"+-{SKEW_P95_MAX_MS} ms bound (p95 |skew| {s['abs_skew_p95_ms']:.0f} ms)")
            return
        assert s["shown_fps_while_audio"] >= MOVING_FPS_MIN, f"the video stalled: {s}"
        assert s["abs_skew_p95_ms"] <= SKEW_P95_MAX_MS, \
            f"audio and video {s['abs_skew_p95_ms']:.0f} ms apart (p95) at D={delay_ms}: {s}"
    except AssertionError:
        print(vm.logs())
        raise
