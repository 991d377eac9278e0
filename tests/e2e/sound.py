"""The sound tests' signal and what a listener would notice in what arrived (numpy).

The test signal, S16 stereo at 48 kHz, periodic over one second (integer frequencies):
left a 440 Hz tone, right a 1000 Hz tone, and on both channels a 30 ms Hann-windowed 3 kHz
burst at the start of every second: the marker. The guest makes the same samples with perl
(perl_script; perl-base is in every Debian), so no audio file crosses the command port.

    src = signal(seconds)                       # int16 array (frames, 2)
    pb = analyse(received, src, index, t0)      # frequencies, SNR, gaps, marker latency
    marker_latencies(received, index, t0)       # the same latency, also after drops
    rec = analyse(captured, src)                # the same, for what arecord captured
    summary(pb, seconds_of_audio, bytes)        # the numbers bench reports

Markers: marker k plays at t0 + k s when the guest's device starts at t0 (the serial line
the guest prints as it starts the device); its latency is the arrival time of the chunk that
carries its onset minus that. Gaps: spans of >= 2 ms where both channels are silent inside
the played part, and sample drops (the spacing of two markers off by more than 2 samples).
"""
import numpy as np

RATE = 48000
LEFT_HZ, RIGHT_HZ, MARKER_HZ = 440, 1000, 3000
AMP = 0.25 * 32767          # each tone's amplitude; the marker adds the same on top
MARKER_S = 0.030
GAP_MIN_S = 0.002           # silence on both channels this long inside the sound: a gap
BLOCK_S = 0.010             # glitches: 10 ms blocks far from the source (a click, a jump)
GLITCH_DB = 10.0
SILENT = 8                  # |sample| below this is silence (Opus leaves a little noise)


def period():
    """One second of the signal as float samples (frames, 2), before rounding."""
    i = np.arange(RATE)
    t = i / RATE
    left = AMP * np.sin(2 * np.pi * LEFT_HZ * t)
    right = AMP * np.sin(2 * np.pi * RIGHT_HZ * t)
    m = int(MARKER_S * RATE)
    burst = np.zeros(RATE)
    burst[:m] = AMP * 0.5 * (1 - np.cos(2 * np.pi * i[:m] / m)) * np.sin(2 * np.pi * MARKER_HZ * t[:m])
    return np.stack([left + burst, right + burst], axis=1)


def _round(x):  # half away from zero, as perl_script does it
    return (np.trunc(x + np.sign(x) * 0.5)).astype(np.int16)


def signal(seconds=1):
    """seconds (whole) of the signal as int16 (frames, 2)."""
    one = _round(period())
    return np.tile(one, (int(seconds), 1))


def perl_script(path):
    """A perl program that writes one second of signal() to path (raw S16LE stereo)."""
    m = int(MARKER_S * RATE)
    return (
        "my ($r,$m,$a)=(%d,%d,%r); my $pi=4*atan2(1,1); my $b='';"
        "sub rd { my $x=shift; return int($x + ($x<0 ? -0.5 : 0.5)); }"
        "for my $i (0..$r-1) { my $t=$i/$r; my $k=0;"
        " if ($i<$m) { $k=$a*0.5*(1-cos(2*$pi*$i/$m))*sin(2*$pi*%d*$t); }"
        " $b .= pack('s<s<', rd($a*sin(2*$pi*%d*$t)+$k), rd($a*sin(2*$pi*%d*$t)+$k)); }"
        "open(my $f,'>',%r) or die; binmode $f; print $f $b; close $f;"
    ) % (RATE, m, AMP, MARKER_HZ, LEFT_HZ, RIGHT_HZ, str(path))


def to_frames(raw, channels=2):
    a = np.frombuffer(raw[:len(raw) - len(raw) % (2 * channels)], dtype="<i2")
    return a.reshape(-1, channels)


def _marker_envelope(x):
    """|3 kHz component| of the channel mix, 5 ms moving average (quadrature demodulation)."""
    mono = x.astype(np.float64).sum(axis=1)
    n = np.arange(len(mono))
    z = mono * np.exp(-2j * np.pi * MARKER_HZ * n / RATE)
    w = int(0.005 * RATE)
    c = np.cumsum(np.concatenate([[0], z]))
    return np.abs((c[w:] - c[:-w]) / w)


def markers(x):
    """Sample indexes where a marker starts (the envelope crossing half its peak level)."""
    if len(x) < RATE // 10:
        return []
    env = _marker_envelope(x)
    level = AMP * 2 * 0.5 * 0.5  # half of the windowed burst's envelope peak (mix of 2 channels)
    above = env > level / 2
    edges = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    out = []
    for e in edges:
        if not out or e - out[-1] > RATE // 2:
            out.append(int(e))
    return out


def tone_purity(ch, hz):
    """(strongest frequency in Hz, share of the power within +-10 Hz of hz) of one channel."""
    ch = ch.astype(np.float64)
    ch = ch - ch.mean()
    if not len(ch) or not ch.any():
        return 0.0, 0.0
    spec = np.abs(np.fft.rfft(ch * np.hanning(len(ch)))) ** 2
    freqs = np.fft.rfftfreq(len(ch), 1 / RATE)
    near = np.abs(freqs - hz) <= 10
    return float(freqs[np.argmax(spec)]), float(spec[near].sum() / spec.sum())


def silent_spans(x, min_s=GAP_MIN_S):
    """[(start, length)] of runs >= min_s where both channels are silent."""
    quiet = (np.abs(x.astype(np.int32)) < SILENT).all(axis=1)
    if not quiet.any():
        return []
    d = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    n = int(min_s * RATE)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends) if e - s >= n]


def snr_db(got, ref):
    """SNR of got against ref (same length, float): the best gain fit is the signal, the
    rest is noise."""
    got, ref = got.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    g = np.dot(got, ref) / max(np.dot(ref, ref), 1e-9)
    noise = got - g * ref
    ps, pn = np.dot(g * ref, g * ref), np.dot(noise, noise)
    return float(10 * np.log10(ps / pn)) if pn > 0 else 200.0


def _align(seg, src, start, search=96):
    """The offset in src (near start, +-search) that best matches seg."""
    best, best_c = start, -np.inf
    a = seg.astype(np.float64).ravel()
    for off in range(start - search, start + search + 1):
        if off < 0 or off + len(seg) > len(src):
            continue
        c = np.dot(a, src[off:off + len(seg)].astype(np.float64).ravel())
        if c > best_c:
            best, best_c = off, c
    return best


def analyse(x, src=None, index=None, t0=None):
    """What arrived, judged: x int16 (frames, 2). src: the signal as sent (periodic, for
    the SNR; default signal(2)). index: [[arrival time, byte offset], ...] of x's chunks and
    t0 the time the guest started playing (marker latency). Returns a dict of numbers."""
    src = signal(2) if src is None else src
    out = {"frames": len(x), "seconds": len(x) / RATE}
    loud = np.flatnonzero((np.abs(x.astype(np.int32)) >= SILENT).any(axis=1))
    if not len(loud):
        out.update(first_sound_s=None, markers=0, gaps=0, snr_db=None)
        return out
    first, last = int(loud[0]), int(loud[-1])
    out["first_sound_s"] = first / RATE
    body = x[first:last + 1]
    out["sound_s"] = len(body) / RATE
    mk = markers(x)
    out["markers"] = len(mk)
    spacing = np.diff(mk) if len(mk) > 1 else np.array([], dtype=int)
    # A second between markers has RATE samples; fewer: samples dropped, ~2 RATE: a marker lost.
    out["marker_spacing"] = sorted(set(int(s) for s in spacing))[:8]
    out["sample_drops"] = int(sum(1 for s in spacing if abs(int(s) - RATE) > 2))
    spans = silent_spans(body)
    out["silent_spans"] = [(round((s + first) / RATE, 3), round(n / RATE * 1000, 1))
                           for s, n in spans][:10]
    out["gaps"] = len(spans) + out["sample_drops"]
    out["gaps_per_min"] = out["gaps"] / max(out["sound_s"] / 60, 1e-9)
    # Seconds with no samples dropped (the next marker exactly a second on): the ones whose
    # sound is judged; a drop is counted as a gap once, not again as noise.
    intact = [m for i, m in enumerate(mk)
              if i + 1 >= len(mk) or abs(mk[i + 1] - m - RATE) <= 2]
    for name, c, hz in (("left", 0, LEFT_HZ), ("right", 1, RIGHT_HZ)):
        # Between markers: the tone alone.
        segs = [x[m + int(0.05 * RATE):m + int(0.95 * RATE), c] for m in intact
                if m + RATE <= len(x)] or [body[:, c]]
        peak, share = tone_purity(np.concatenate(segs), hz)
        out[f"{name}_peak_hz"], out[f"{name}_share"] = round(peak, 1), round(share, 4)
    # SNR per whole second, each aligned on its marker (drops elsewhere do not smear it).
    m0 = markers(src)[0] if markers(src) else 0
    # Each 10 ms block against the same aligned source: a block far below the rest is a
    # glitch a listener hears (adjacent ones count once).
    snrs, blocks, glitches, glitch_at = [], [], 0, []
    bl = int(BLOCK_S * RATE)
    for m in intact:
        seg = x[m - m0 + int(0.01 * RATE):m - m0 + int(0.99 * RATE)]
        # A second cut by the end of the sound (the player's last period) is not judged.
        if m - m0 < 0 or len(seg) < int(0.98 * RATE) or m - m0 + int(0.99 * RATE) > last - bl:
            continue
        off = _align(seg, src, int(0.01 * RATE))
        ref = src[off:off + len(seg)]
        snrs.append(snr_db(seg, ref))
        prev_bad = False
        for b in range(0, len(seg) - bl + 1, bl):
            v = snr_db(seg[b:b + bl], ref[b:b + bl])
            blocks.append(v)
            bad = v < GLITCH_DB
            if bad and not prev_bad:
                glitches += 1
                glitch_at.append(round((m - m0 + int(0.01 * RATE) + b) / RATE, 3))
            prev_bad = bad
    out["snr_db"] = round(float(np.median(snrs)), 1) if snrs else None
    out["snr_min_db"] = round(float(min(snrs)), 1) if snrs else None
    out["block_snr_median_db"] = round(float(np.median(blocks)), 1) if blocks else None
    out["glitches"] = glitches
    out["glitch_at_s"] = glitch_at[:10]
    out["glitches_per_min"] = round(glitches / max(len(snrs) * 0.98 / 60, 1e-9), 1)
    out["seconds_judged"] = len(snrs)
    if index is not None and t0 is not None and mk:
        times = np.array([t for t, _ in index])
        offs = np.array([o // 4 for _, o in index])  # byte offset -> frame
        lat = []
        for k, m in enumerate(mk):
            if abs(m - mk[0] - k * RATE) > 2 * (k + 1):
                break  # after a drop the stream no longer follows the guest's timeline
            j = int(np.searchsorted(offs, m, side="right")) - 1
            if j >= 0:
                lat.append(float(times[j] - (t0 + k + m0 / RATE)))
        out["latency_ms"] = [round(v * 1000, 1) for v in lat]
        out["latency_p50_ms"] = round(float(np.percentile(lat, 50)) * 1000, 1) if lat else None
        out["latency_p95_ms"] = round(float(np.percentile(lat, 95)) * 1000, 1) if lat else None
    return out


def marker_latencies(x, index, t0):
    """Latency (s) of every marker that arrived, also after samples were dropped (analyse()
    stops at the first drop): marker k plays at t0 + k s; k follows the spacing of the
    markers that arrived (n seconds apart, give or take less than half a second of drops,
    moves k on by n). index and t0 as for analyse()."""
    mk = markers(x)
    if not mk or not index:
        return []
    m0 = markers(signal(2))[0]
    times = np.array([t for t, _ in index])
    offs = np.array([o // 4 for _, o in index])
    out, k = [], 0
    for i, m in enumerate(mk):
        if i:
            k += max(1, int(round((m - mk[i - 1]) / RATE)))
        j = int(np.searchsorted(offs, m, side="right")) - 1
        if j >= 0:
            out.append(float(times[j] - (t0 + k + m0 / RATE)))
    return out


def summary(result, audio_seconds, received_bytes):
    """The numbers bench reports for one playback run: latency p50/p95 (ms), bytes per
    second of audio on the wire as the client decoded it, gaps per minute, SNR."""
    return {"latency_p50_ms": result.get("latency_p50_ms"),
            "latency_p95_ms": result.get("latency_p95_ms"),
            "bytes_per_s": round(received_bytes / max(audio_seconds, 1e-9)),
            "gaps_per_min": round(result.get("gaps_per_min", 0.0), 2),
            "glitches_per_min": result.get("glitches_per_min"),
            "snr_db": result.get("snr_db"),
            "qemu_hda_overruns": result.get("qemu_hda_overruns")}


# ----------------------------------------------------------------------- measuring runs
class SerialWatch:
    """Notes the host time a regex first shows up on the guest's serial log (polled every
    millisecond from the current end of the file, in a thread)."""

    def __init__(self, path, pattern):
        import os
        import re
        import threading
        self.path, self.rx = path, re.compile(pattern)
        self.at, self.match = None, None
        self.pos = os.path.getsize(path) if os.path.exists(path) else 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        import time
        buf = ""
        while not self._stop.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.pos)
                    chunk = f.read()
            except OSError:
                chunk = b""
            if chunk:
                now = time.monotonic()
                self.pos += len(chunk)
                buf += chunk.decode(errors="replace")
                m = self.rx.search(buf)
                if m:
                    self.at, self.match = now, m
                    return
            time.sleep(0.001)

    def wait(self, timeout):
        self._t.join(timeout)
        self._stop.set()
        return self.at


def qemu_trace_counts(log_path):
    """How often QEMU's trace points fired so far in its log (QEMU run with
    QEMU_AUDIO_TRACE): hda_audio_overrun (its HDA codec dropped a 2048-frame buffer the audio
    backend had not taken in time) and audio_timer_delayed (its audio timer ran late)."""
    out = {"hda_audio_overrun": 0, "audio_timer_delayed": 0}
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                for k in out:
                    if k in line:
                        out[k] += 1
    except OSError:
        pass
    return out


QEMU_AUDIO_TRACE = ["-trace", "hda_audio_overrun", "-trace", "audio_timer_delayed"]


def measure_playback(serial_path, guest, client, seconds, tag, pcm_path, qemu_log=None):
    """Plays `seconds` of the signal in the guest and collects it at the client. Returns
    (analyse() result, summary(), client sound state). Bench can call this as it is.
    qemu_log: QEMU's stderr log (QEMU_AUDIO_TRACE on): the result then says how many
    buffers QEMU's own HDA codec dropped meanwhile (qemu_hda_overruns)."""
    import time
    before = qemu_trace_counts(qemu_log) if qemu_log else None
    client.playback_take(pcm_path)  # forget anything before
    watch = SerialWatch(serial_path, rf"SPICE-RS-GUEST: play {tag} start")
    guest.play_signal(perl_script("/tmp/sig1.raw"), seconds, tag)
    t0 = watch.wait(30)
    if t0 is None:
        raise AssertionError(f"no 'play {tag} start' line on the serial log")
    # Until the stream stops (playback-stop) or nothing arrived for a second.
    deadline = time.monotonic() + seconds + 20
    last_bytes, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        snd = client.sound()["playback"]
        if snd and snd["stops"] and snd["stops"][-1] > t0 + seconds:
            break
        b = snd["bytes"] if snd else 0
        if b != last_bytes:
            last_bytes, last_change = b, time.monotonic()
        elif time.monotonic() - last_change > 1.5 and time.monotonic() > t0 + seconds:
            break
        time.sleep(0.1)
    index = client.playback_take(pcm_path)
    with open(pcm_path, "rb") as f:
        raw = f.read()
    x = to_frames(raw)
    res = analyse(x, signal(2), index, t0)
    res["marker_latency_ms"] = [round(v * 1000, 1) for v in marker_latencies(x, index, t0)]
    if qemu_log:
        after = qemu_trace_counts(qemu_log)
        res["qemu_hda_overruns"] = after["hda_audio_overrun"] - before["hda_audio_overrun"]
        res["qemu_timer_delayed"] = after["audio_timer_delayed"] - before["audio_timer_delayed"]
    return res, summary(res, seconds, len(raw)), client.sound()


def measure_record(guest, client, seconds, src_path):
    """The client loops the signal into its record channel while the guest's arecord
    captures `seconds`; returns analyse() of the capture (first_sound_s: the first-sample
    delay after arecord opened the device)."""
    with open(src_path, "wb") as f:
        f.write(signal(1).astype("<i2").tobytes())
    client.record_source(src_path)
    raw = guest.record(seconds)
    with open(str(src_path) + ".captured", "wb") as f:
        f.write(raw)
    return analyse(to_frames(raw), signal(2)), client.sound()
