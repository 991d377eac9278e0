"""Sound, end to end: a Debian guest (tests/guest-debian) plays and records on QEMU's HDA
card with `-audiodev spice`, spice-gtk's playback and record channels are the client (no
audio backend: the test reads the channels' own signals, tests/e2e/client.py).

What a user would hear, measured (tests/e2e/sound.py): the guest's tones arrive with their
frequencies (440 Hz left, 1000 Hz right), without gaps or dropped samples, close to the
source (SNR), and the marker at each second arrives a measured time after the guest started
playing; the client's tones reach the guest's arecord the same way; the guest's mixer
volume and mute reach the client's channel. Once with Opus (the default) and once raw
(-spice playback-compression=off). Every step prints what it measured.
Validated against Debian's C server (SPICE_RS_E2E_LIB=c)."""
import time

import pytest

import guest as guest_module
import sound
from client import SpiceClient
from rig import Rig, default_lib

HOST = "127.0.0.1"
AUDIO = ["-audiodev", "spice,id=snd0", "-device", "ich9-intel-hda",
         "-device", "hda-duplex,audiodev=snd0"] + sound.QEMU_AUDIO_TRACE
PLAY_S = 8
RECORD_S = 4
# SNR bounds (dB) against the source. Raw carries the samples untouched; Opus (spice's
# default bitrate) keeps tones well above this (measured ~20-30 dB on both servers).
SNR_MIN = {"raw": 60.0, "opus": 12.0}
# Share of each channel's power at its tone (between markers).
TONE_SHARE_MIN = {"raw": 0.99, "opus": 0.9}


class SoundVM:
    def __init__(self, mode, rig, guest, client, work):
        self.mode, self.rig, self.guest, self.client, self.work = mode, rig, guest, client, work

    def logs(self):
        out = [self.rig.tail()]
        try:
            out.append("--- guest aplay.log ---\n" + self.guest.log("/tmp/aplay.log")[-2000:])
        except Exception as e:  # noqa: BLE001 (the guest may be the thing that broke)
            out.append(f"--- guest: {e}")
        return "\n".join(out)


@pytest.fixture(scope="module", params=["opus", "raw"])
def vm(request, tmp_path_factory):
    mode = request.param
    try:
        guest_module.ensure_built()
    except guest_module.GuestError as e:
        pytest.fail(str(e), pytrace=False)
    work = tmp_path_factory.mktemp(f"sound-{mode}")
    kw, cmd_sock = guest_module.rig_args(work, agent=False, extra=AUDIO)
    spice_opts = {"playback-compression": "off"} if mode == "raw" else {}
    rig = Rig(workdir=work / "rig", lib=default_lib(), spice_opts=spice_opts, **kw)
    t0 = time.monotonic()
    rig.start()
    g = guest_module.Guest(cmd_sock)
    client = None
    try:
        guest_module.wait_booted(rig, g)
        cards = rig.wait_serial(r"SPICE-RS-GUEST: sound cards=.*").group(0).strip()
        print(f"\n[{mode}] guest ready in {time.monotonic() - t0:.1f} s ({cards}), "
              f"lib={rig.lib} {rig.mapped_lib}")
        # Full volume and unmuted: QEMU hands the volume to the server (the client applies
        # it), so the samples are the source's either way; this is the user's usual state.
        for ctl in ("Master", "PCM"):
            g.run(f"amixer -c 0 sset {ctl} 100% unmute", user=False, check=False)
        g.run("amixer -c 0 sset Capture 100% cap", user=False, check=False)
        client = SpiceClient(str(work / "client.log"), debug=True)
        client.connect(HOST, rig.port, timeout=60)
        client.wait(lambda s: any(n.startswith("playback") for n in s["open"]) and
                    any(n.startswith("record") for n in s["open"]), 30,
                    "the playback and record channels")
        yield SoundVM(mode, rig, g, client, work)
    except Exception:
        print(SoundVM(mode, rig, g, client, work).logs())
        raise
    finally:
        if client:
            client.close()
        g.close()
        rig.stop()


@pytest.fixture
def sound_vm(vm, request):
    yield vm
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(vm.logs())


def client_modes(vm, what):
    """The data modes spice-gtk logged for its playback/record channel starts."""
    import re
    vm.client.log.flush()
    text = open(vm.client.log_path, errors="replace").read()
    fn = {"playback": "playback_handle_start", "record": "record_handle_start"}[what]
    return re.findall(fn + r": fmt \d+ channels \d+ freq (\d+).* mode (\w+)", text)


def test_sound_card(sound_vm):
    g = sound_vm.guest
    cards = g.sound_cards()
    print(f"[{sound_vm.mode}] /proc/asound/cards: {cards.strip()}")
    print(f"[{sound_vm.mode}] mixer controls: {g.mixer_controls()}")
    assert "HDA" in cards, cards


def test_playback(sound_vm):
    vm = sound_vm
    res, summ, snd = sound.measure_playback(vm.rig.serial_path, vm.guest, vm.client, PLAY_S,
                                            f"pb-{vm.mode}", vm.work / "playback.pcm",
                                            qemu_log=vm.rig.stderr_path)
    pb = snd["playback"]
    modes = client_modes(vm, "playback")
    print(f"[{vm.mode}] playback: starts {[s[1:] for s in pb['starts']]} modes {modes}, "
          f"{pb['chunks']} chunks {pb['bytes']} B")
    print(f"[{vm.mode}] playback analysis: {res}")
    print(f"[{vm.mode}] playback summary: {summ}")
    assert pb["starts"] and pb["starts"][-1][2:] == [2, 48000], pb["starts"]
    assert modes and modes[-1][1] == vm.mode, f"spice-gtk played {modes}, wanted {vm.mode}"
    assert res["left_peak_hz"] == pytest.approx(sound.LEFT_HZ, abs=2), res
    assert res["right_peak_hz"] == pytest.approx(sound.RIGHT_HZ, abs=2), res
    assert res["left_share"] >= TONE_SHARE_MIN[vm.mode], res
    assert res["right_share"] >= TONE_SHARE_MIN[vm.mode], res
    assert res["markers"] >= PLAY_S - 1, f"markers {res['markers']} of {PLAY_S}: {res}"
    # A 2048-frame drop is QEMU's HDA codec overrunning when its audio timer ran late (a
    # loaded host: seen with both servers); those are printed, any other gap fails.
    print(f"[{vm.mode}] QEMU: HDA overruns {res['qemu_hda_overruns']}, audio timer delayed "
          f"{res['qemu_timer_delayed']} times")
    assert not res["silent_spans"], f"silent spans {res['silent_spans']}: {res}"
    assert res["sample_drops"] <= res["qemu_hda_overruns"], \
        f"sample drops {res['sample_drops']} (spacing {res['marker_spacing']}) beyond QEMU's " \
        f"{res['qemu_hda_overruns']} HDA overruns"
    assert res["glitches"] <= 2 * res["qemu_hda_overruns"], \
        f"glitches at {res['glitch_at_s']} s: {res}"
    # The first and last seconds may be cut by the start and end of the sound.
    assert res["seconds_judged"] >= PLAY_S - 2 - res["sample_drops"], res
    assert res["snr_min_db"] >= SNR_MIN[vm.mode], res
    assert res["latency_p95_ms"] is None or res["latency_p95_ms"] < 1000, res


def wait_change(client, channel, what, pred, since, timeout=10):
    """The last volume/mute change on the client's playback or record channel after
    `since` (an index into its changes) for which pred(value) holds."""
    deadline = time.monotonic() + timeout
    while True:
        changes = client.sound()[channel]["changes"][since:]
        hit = [ch for ch in changes if ch[1] == what and pred(ch[2])]
        if hit:
            return hit[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} change on the client's {channel} channel; "
                                 f"changes {changes}")
        time.sleep(0.05)


def check_mixer(vm, channel, ctl):
    """ctl to 40%, muted, then unmuted at 100% while the guest plays (records): each
    reaches the client's channel. (QEMU's HDA codec has no audio voice, so passes no volume
    on, until the guest first opens the stream.)"""
    c, g = vm.client, vm.guest
    tool = "aplay" if channel == "playback" else "arecord"
    io = "/dev/zero" if channel == "playback" else "/dev/null"
    g.run(f"{tool} -q -D plughw:0 -t raw -f S16_LE -r 48000 -c 2 -d 30 {io} "
          f">/dev/null 2>&1 &", user=False)
    try:
        mixer_steps(vm, channel, ctl)
    finally:
        g.run(f"pkill -x {tool}; while pgrep -x {tool} >/dev/null; do sleep 0.1; done",
              user=False, check=False)


def mixer_steps(vm, channel, ctl):
    c, g = vm.client, vm.guest
    # Full and unmuted first: what the client holds before the user turns it down (QEMU
    # starts a voice muted at 0 and applies the codec's amplifier as the stream opens).
    g.mixer(ctl, volume="100%", mute=False)
    full = wait_change(c, channel, "volume", lambda v: v and min(v) > 60000, 0)[2]
    time.sleep(0.3)  # the rest of that burst (QEMU sets one channel at a time)
    n = len(c.sound()[channel]["changes"])
    t = time.monotonic()
    g.mixer(ctl, volume="40%")
    low = wait_change(c, channel, "volume", lambda v: v and max(v) < max(full), n)
    print(f"\n[{vm.mode}] {ctl} 100% -> 40%: client {channel} volume {full} -> {low[2]} "
          f"after {(low[0] - t) * 1000:.0f} ms")
    n = len(c.sound()[channel]["changes"])
    t = time.monotonic()
    g.mixer(ctl, mute=True)
    m = wait_change(c, channel, "mute", lambda v: v is True, n)
    print(f"[{vm.mode}] {ctl} muted: client {channel} mute True after "
          f"{(m[0] - t) * 1000:.0f} ms")
    n = len(c.sound()[channel]["changes"])
    t = time.monotonic()
    g.mixer(ctl, volume="100%", mute=False)
    m = wait_change(c, channel, "mute", lambda v: v is False, n)
    v = wait_change(c, channel, "volume", lambda v: v and max(v) > max(low[2]), n)
    print(f"[{vm.mode}] {ctl} unmuted at 100%: client {channel} mute False after "
          f"{(m[0] - t) * 1000:.0f} ms, volume {v[2]}")


def test_volume_and_mute(sound_vm):
    """The guest's playback mixer reaches the client's playback channel (volume, mute)."""
    ctls = " ".join(sound_vm.guest.mixer_controls())
    ctl = next((n for n in ("Master", "PCM") if f"'{n}'" in ctls), None)
    assert ctl, ctls
    check_mixer(sound_vm, "playback", ctl)


def test_record_volume_and_mute(sound_vm):
    """The guest's capture mixer reaches the client's record channel (volume, mute)."""
    ctls = " ".join(sound_vm.guest.mixer_controls())
    assert "'Capture'" in ctls, ctls
    check_mixer(sound_vm, "record", "Capture")


def test_record(sound_vm):
    """The client's tones (looped into its record channel from record-start) reach the
    guest's arecord."""
    vm = sound_vm
    res, snd = sound.measure_record(vm.guest, vm.client, RECORD_S, vm.work / "record-src.pcm")
    rc = snd["record"]
    modes = client_modes(vm, "record")
    print(f"[{vm.mode}] record: starts {[s[1:] for s in rc['starts']]} modes {modes}, "
          f"sent {rc['chunks']} chunks {rc['bytes']} B")
    print(f"[{vm.mode}] record analysis: {res}")
    assert rc["starts"], "no record-start on the client"
    assert res["first_sound_s"] is not None, "the guest recorded silence"
    print(f"[{vm.mode}] record: first sample {res['first_sound_s'] * 1000:.0f} ms after "
          f"arecord started")
    assert res["left_peak_hz"] == pytest.approx(sound.LEFT_HZ, abs=2), res
    assert res["right_peak_hz"] == pytest.approx(sound.RIGHT_HZ, abs=2), res
    assert res["markers"] >= RECORD_S - 2, res
    assert res["gaps"] == 0, res
    rec_mode = "raw" if modes and modes[-1][1] == "raw" else "opus"
    assert res["block_snr_median_db"] >= SNR_MIN[rec_mode], res
    if vm.rig.lib == "c":
        # Debian's C server (0.15.1) corrupts the packet that straddles the end of its
        # 8192-frame record ring (sound.cpp snd_record_handle_write: `data + now` on a
        # uint8_t *, frames wanted): a click every 170.7 ms. Measured, not held against it.
        per_s = res["glitches"] / (res["markers"] or 1)
        print(f"[{vm.mode}] C server: {res['glitches']} record glitches ({per_s:.1f}/s; its "
              f"ring wrap is every {8192 / sound.RATE * 1000:.1f} ms) at {res['glitch_at_s']}")
        assert per_s <= sound.RATE / 8192 + 1, res
    else:
        assert res["glitches"] == 0, f"glitches at {res['glitch_at_s']} s: {res}"
        assert res["snr_min_db"] >= SNR_MIN[rec_mode], res


SLOW_LINK_BYTES_S = 8000   # 64 kbit/s to the client, shared by all its channels
SLOW_PLAY_S = 15
SLOW_RECEIVED_MIN = 0.8    # share of the sound played that must reach the client
SLOW_LATENCY_P95_MAX_MS = 2000


def test_playback_behind_a_slow_link(sound_vm):
    """Behind a 64 kbit/s link (less than Opus' own ~110 kbit/s stream) the sound keeps
    coming, late by well under a second or two rather than by ever more: the server fits its
    Opus bit rate to what the link carries and drops whole frames rather than queueing
    them. Measured on C (which queues, and falls seconds behind), asserted on ours."""
    vm = sound_vm
    if vm.mode != "opus":
        pytest.skip("raw audio (1.5 Mbit/s) behind a slow link is measured by make bench")
    from relay import DelayRelay
    vm.client.disconnect()
    relay = DelayRelay(HOST, vm.rig.port, delay=0.0, rate=SLOW_LINK_BYTES_S)
    slow = SpiceClient(str(vm.work / "slow-client.log"), debug=True)
    try:
        slow.connect(HOST, relay.port, timeout=120)
        slow.wait(lambda s: any(n.startswith("playback") for n in s["open"]), 60,
                  "the playback channel behind the slow link")
        # The display's first picture takes a while at 64 kbit/s: the link is quiet first.
        deadline, last = time.monotonic() + 120, -1
        while time.monotonic() < deadline:
            total = sum(down for down, _ in relay.bytes_by_channel().values())
            if total - last < 512:
                break
            last = total
            time.sleep(2)
        res, summ, _ = sound.measure_playback(vm.rig.serial_path, vm.guest, slow, SLOW_PLAY_S,
                                              "pb-slow", vm.work / "playback-slow.pcm",
                                              qemu_log=vm.rig.stderr_path)
        lat = sorted(res.get("marker_latency_ms") or [])
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None
        wire = relay.bytes_by_channel()
        print(f"[{vm.mode}] behind {SLOW_LINK_BYTES_S * 8 // 1000} kbit/s: received "
              f"{res.get('seconds')} s of {SLOW_PLAY_S}, marker latency {lat} ms (p95 {p95}), "
              f"gaps/min {res.get('gaps_per_min', 0):.1f}, glitches {res.get('glitches')}, "
              f"bytes per channel {wire}")
        if vm.rig.lib == "c":
            print(f"[{vm.mode}] C server: measured only (it queues what the link cannot "
                  "carry, so its latency grows)")
            return
        assert res.get("seconds", 0) >= SLOW_RECEIVED_MIN * SLOW_PLAY_S, res
        assert lat and len(lat) >= SLOW_PLAY_S // 2, f"markers heard: {lat}"
        assert p95 <= SLOW_LATENCY_P95_MAX_MS, f"marker latency p95 {p95} ms: {lat}"
    finally:
        slow.close()
        relay.close()
        vm.client.connect(HOST, vm.rig.port, timeout=60)
