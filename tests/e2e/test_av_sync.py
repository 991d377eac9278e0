"""Audio and video in step, end to end (issue 13): the Debian guest plays a clip whose video
follows its audio clock (tests/guest-debian/avplay.c: a beep and a flash frame at the start
of every second), spice-gtk is the client with an emulated audio backend of latency D
(its clock set from the audio stamps by spice_playback_channel_set_delay(D) every second,
as spice-gtk's GStreamer backend does), and tests/e2e/avsync.py measures, per second,
(time the client showed the flash) - (time the beep's samples arrived + D).

What a user would notice, asserted on ours, for a low-latency desktop backend (D=30 ms) and
a typical PulseAudio one (D=150 ms): audio and video in step, and the video still moving
while audio plays. Strict where our code decides: the median skew (the stamps' offset,
what the server chooses) within +-40 ms. Generous where the machine's load decides: on a
busy two-core host the TCG guest's own player falls behind and its sound restarts, so the
spread (p95 of |skew|, printed; `make bench` measures it on a quiet machine) is only held
under 100 ms, and the video to 5 frames a second. Against Debian's C server
(SPICE_RS_E2E_LIB=c) the same is measured and printed only: the test is checked by running
it there, but C's A/V sync is not what this test holds it to.

avplay's ALSA buffer is 100 ms (avsync.BUFFER_MS), not the 40 ms a low-latency player might
ask for: QEMU's HDA codec moves the guest's DMA data in 43 ms blocks, and a TCG guest on a
loaded host underran every few hundred ms with 40 ms. The video follows snd_pcm_delay
either way, so the buffer does not move the skew."""
import pytest

import avsync
import guest as guest_module
import sound
from rig import default_lib

SECONDS = 20
# Seconds judged: both a beep and its flash measured, and no restart of the guest's sound
# near them. On a loaded host the starved guest underruns now and then (QEMU stops and
# starts its voice, which resets the client's clock, a beep can be cut): those seconds are
# printed (abs_skew_p95_all_ms) but not judged; too few left fails as unjudgeable.
JUDGED_MIN = 5
SKEW_P50_MAX_MS = 40
SKEW_P95_MAX_MS = 100
# Frames the client shows a second while audio plays (avplay draws 30; a loaded TCG guest
# far fewer).
MOVING_FPS_MIN = 5


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    try:
        v = avsync.AvVM(default_lib(), tmp_path_factory.mktemp("avsync"),
                        extra_audio=sound.QEMU_AUDIO_TRACE)
    except (guest_module.GuestError, avsync.PlayerError) as e:
        pytest.fail(str(e), pytrace=False)
    print(f"\nguest ready in {v.boot_s:.1f} s, lib={v.rig.lib} {v.rig.mapped_lib}")
    yield v
    v.close()


@pytest.mark.parametrize("delay_ms", [30, 150])
def test_av_sync(vm, delay_ms):
    r = vm.measure(SECONDS, delay_ms, tag=f"av-{delay_ms}")
    s = avsync.summary(r)
    lib = vm.rig.lib
    print(f"\n[{lib} D={delay_ms}] {s}")
    print(f"[{lib} D={delay_ms}] skew per second (ms): "
          f"{ {k: round(v) for k, v in r['skew_ms'].items()} }, not judged (sound restarted "
          f"near): {r['near_restart']}")
    print(f"[{lib} D={delay_ms}] video latency per second (ms): "
          f"{ {k: round(v) for k, v in r['video_latency_ms'].items()} }")
    print(f"[{lib} D={delay_ms}] beeps {r['beeps']} (unmatched {r['beeps_unmatched']}), audio (re)starts {r['playback_starts']}, flashes "
          f"{r['flashes']}, frames shown {r['frames_shown']}, streams {r['streams_created']}, "
          f"set_delay calls {r['set_delay_calls']}; player: {r['player']} "
          f"{r['player_seconds']}")
    try:
        assert r["set_delay_calls"] >= SECONDS - 2, r["set_delay_calls"]
        assert r["stream_frames"] > 0, f"the video never became a stream: {s}"
        # The measurement itself worked: beeps and flashes paired (checked on C too).
        assert len(r["skew_ms"]) >= JUDGED_MIN, f"flash/beep pairs {len(r['skew_ms'])}: {s}"
        if lib == "c":
            print(f"[c D={delay_ms}] measured only: Debian's C server is not held to the "
                  f"+-{SKEW_P50_MAX_MS} ms bound (p95 |skew| {s['abs_skew_p95_all_ms']:.0f} ms "
                  f"over every second, {s['abs_skew_p95_ms'] or 0:.0f} ms away from restarts)")
            return
        assert s["seconds_judged"] >= JUDGED_MIN, \
            f"only {s['seconds_judged']} seconds to judge (the guest's sound restarted near " \
            f"{s['seconds_near_restart']}: a starved guest, see its underruns): {s}"
        assert s["shown_fps_while_audio"] >= MOVING_FPS_MIN, f"the video stalled: {s}"
        assert abs(s["skew_p50_ms"]) <= SKEW_P50_MAX_MS, \
            f"audio and video {s['skew_p50_ms']:.0f} ms apart (median) at D={delay_ms}: {s}"
        assert s["abs_skew_p95_ms"] <= SKEW_P95_MAX_MS, \
            f"audio and video {s['abs_skew_p95_ms']:.0f} ms apart (p95) at D={delay_ms}: {s}"
    except AssertionError:
        print(vm.logs())
        raise
