"""BENCHMARKS.md and the chart from bench/run.py's results."""
from collections import Counter

import measure

DASH = "—"


def _ok(r):
    return r is not None and "error" not in r


def fps(r):
    if not _ok(r) or not r.get("region"):
        return None
    return r["frames"] / r["seconds"]


def guest_fps(r):
    return r["guest_frames"] / r["seconds"] if _ok(r) and r.get("region") else None


def per_frame_ms(r, key):
    if not _ok(r) or not r.get("region") or not r["frames"]:
        return None
    return 1000 * _value(r, key) / r["frames"]


def load_pct(r, key):
    return 100 * _value(r, key) / r["seconds"] if _ok(r) else None


def _value(r, key):
    if key == "cpu_server_side" and key not in r:  # results from before the field
        return measure.server_side(r["cpu_qemu"], r["cpu_threads"])
    return r[key]


def wire_mbs(r):
    return r["wire_down"] / r["seconds"] / 1e6 if _ok(r) else None


def psnr(r):
    p = r.get("psnr") if _ok(r) else None
    return measure.percentile(p, 50) if p else None


def mbs(v):
    return f"{v:.2f}" if v >= 0.1 else f"{v:.4f}"


def latency(r, pct=50):
    lat = r.get("latency_ms") if _ok(r) else None
    return measure.percentile(lat, pct) if lat else None


def _cell(r, fn):
    if r is not None and "error" in r:
        return "failed"
    return fn(r)


def _f(v, fmt):
    return DASH if v is None else format(v, fmt)


def _cpu(key):
    return lambda r: f"{_f(per_frame_ms(r, key), '.1f')} ({_f(load_pct(r, key), '.0f')}%)"


def _codec(r):
    got = "+".join(r.get("stream_codecs") or [])
    if not got:
        return "**no stream** (images)"
    return f"**{got}** (not the one asked for)" if r.get("wrong_codec") else got


# (heading, cell of one server's result); the MJPEG table leaves out "codec decoded"
COLUMNS = [
    ("fps delivered / guest",
     lambda r: f"{_f(fps(r), '.1f')} / {_f(guest_fps(r), '.1f')}" if r.get("region") else DASH),
    ("server-side CPU ms/frame (% of a core) = QEMU minus vCPU", _cpu("cpu_server_side")),
    ("QEMU CPU ms/frame (% of a core)", _cpu("cpu_qemu")),
    ("server threads ms/frame (% of a core)", _cpu("cpu_server")),
    ("wire MB/s", lambda r: mbs(wire_mbs(r))),
    ("client CPU %", lambda r: _f(load_pct(r, "cpu_client"), ".0f")),
    ("PSNR dB", lambda r: _f(psnr(r), ".1f")),
    ("latency ms p50 / p95",
     lambda r: f"{_f(latency(r, 50), '.0f')} / {_f(latency(r, 95), '.0f')}" if r.get("region") else DASH),
    ("codec decoded", _codec),
]


def table(results, codecs=False):
    cols = [c for c in COLUMNS if codecs or c[0] != "codec decoded"]
    head = ["row"]
    for h, _ in cols:
        head += [f"{h}: spice-rs", "C"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in results:
        row = [res["row"]]
        for _, fn in cols:
            row += [_cell(res.get("ours"), fn), _cell(res.get("c"), fn)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ targets
# The issue's targets for the H.264 rows, each against the C server in the same run:
# (name, the value compared, the bound from C's value, ours <= bound?, how a value reads)
TARGETS = [
    ("wire bytes/s ≤ C's", wire_mbs, lambda c: c, True, lambda v: f"{mbs(v)} MB/s"),
    ("PSNR ≥ C's", psnr, lambda c: c, False, lambda v: f"{v:.1f} dB"),  # difference in dB
    ("fps ≥ 95% of C's", fps, lambda c: 0.95 * c, False, lambda v: f"{v:.1f} fps"),
    ("server-side CPU/frame ≤ ½ C's", lambda r: per_frame_ms(r, "cpu_server_side"),
     lambda c: 0.5 * c, True, lambda v: f"{v:.1f} ms"),
]


def target_checks(res):
    """[(target, met: bool|None, text)] for one result row (None: not measurable)."""
    out = []
    ours, c = res.get("ours"), res.get("c")
    for name, fn, bound_of, at_most, show in TARGETS:
        a = fn(ours) if _ok(ours) else None
        b = fn(c) if _ok(c) else None
        if a is None or b is None:
            out.append((name, None, "not measured"))
            continue
        bound = bound_of(b)
        met = a <= bound if at_most else a >= bound
        rel = f"{a - b:+.1f} dB" if fn is psnr else (f"{100 * (a / b - 1):+.0f}% vs C" if b else "")
        out.append((name, met, f"{show(a)} vs {show(b)}, bound {show(bound)} ({rel})"))
    return out


def same_codec(res):
    ours, c = res.get("ours"), res.get("c")
    if not (_ok(ours) and _ok(c)):
        return "—"
    if ours.get("wrong_codec") or c.get("wrong_codec"):
        return f"**no**: spice-rs {_codec(ours)}, C {_codec(c)}"
    return "yes"


def targets_table(results):
    rows = [r for r in results if r.get("codec") == "h264"]
    if not rows:
        return []
    head = ["row", "both streamed H.264"] + [t[0] for t in TARGETS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in rows:
        checks = dict((n, (m, t)) for n, m, t in target_checks(res))
        cells = []
        for name, *_ in TARGETS:
            met, text = checks[name]
            mark = "—" if met is None else ("**met**" if met else "**missed**")
            cells.append(f"{mark}: {text}")
        lines.append("| " + " | ".join([res["row"], same_codec(res)] + cells) + " |")
    return lines


def others_line(results):
    loads = [load_pct(r[lib], "cpu_others") for r in results for lib in ("ours", "c")
             if _ok(r.get(lib)) and "cpu_others" in r[lib]]
    if not loads:
        return []
    busy = [f"{r['row']} [{'spice-rs' if lib == 'ours' else 'C'}] {load_pct(r[lib], 'cpu_others'):.0f}%"
            for r in results for lib in ("ours", "c")
            if _ok(r.get(lib)) and r[lib].get("cpu_others", 0) / r[lib]["seconds"] > 0.25]
    out = [f"Other processes on the machine used {min(loads):.0f}–{max(loads):.0f}% of a core "
           f"(median {measure.percentile(loads, 50):.0f}%) during the measured windows."]
    if busy and len(busy) == len(loads):
        out[0] += " Every run had more than 25% of a core taken by others: the two servers " \
            "of a row are comparable, absolute numbers less so (results.json: cpu_others)."
    elif busy:
        out[0] += " Rows measured while others used more than 25% of a core (less comparable): " \
            + ", ".join(busy) + "."
    return out + [""]


SECTION_NAMES = {"devices": "guest agent and device", "av": "audio/video skew", "sound": "sound",
                 "desktop": "desktop in use", "host": "host full of VMs",
                 "links": "video on real links"}


def _run_line(run, rows):
    f, cfg = run["facts"], run["config"]
    sections = {r.get("section") for r in rows}
    names = SECTION_NAMES
    if rows and sections <= set(names):
        what = ", ".join(names[s] for s in sorted(sections))
        return (f"- `{run['command']}` on {f['date']}, revision `{f['revision']}`: "
                f"{len(rows)} {what} rows, {f['wall_seconds']} s in all.")
    line = (f"- `{run['command']}` on {f['date']}, revision `{f['revision']}`: "
            f"{len(rows)} rows, {f['wall_seconds']} s in all; the guest plays its clip at "
            f"{cfg['fps']:g} fps, each run measures {cfg['seconds']:g} s after "
            f"{cfg['warmup']:g} s of warm-up.")
    if f.get("ours_lib"):
        line += f" spice-rs: {f['ours_lib']}."
    if f.get("codec_qemu"):
        line += f" QEMU of the H.264/VP8/VP9 rows: {f['codec_qemu']}."
    return line


def _codec_choice(runs, rows):
    vias = sorted({r[lib].get("codec_via", "client") for r in rows for lib in ("ours", "c")
                   if r.get(lib)})
    out = []
    for via in vias:
        if via == "client":
            out.append("the client asks for it: spice-gtk's display channel sends "
                       "PREFERRED_VIDEO_CODEC_TYPE with that one codec once it is open "
                       "(tests/e2e/client.py `video_codecs`), on the stock QEMU, with each "
                       "server's default codec list (both: `spice:mjpeg;gstreamer:mjpeg;"
                       "gstreamer:h264;gstreamer:vp8;gstreamer:vp9`), which the "
                       "client's choice reorders")
        else:
            out.append("the server is told: the patched QEMU (`make qemu`, Debian's 10.0.2 "
                       "with qemu-patches/) with `-spice video-codec=gstreamer:<codec>` for "
                       "both servers (Debian's C server takes the same list through "
                       "spice_server_set_video_codecs); the client asks for nothing")
    return "; ".join(out)


def markdown(data, chart_rel, notes=None, mjpeg_notes=None, desktop_notes=None,
             host_notes=None):
    """BENCHMARKS.md from a results.json's data (bench/run.py load_results)."""
    results, runs = data["results"], data["runs"]
    facts = data["facts"]
    dev = [r for r in results if r.get("section") == "devices"]
    avs = [r for r in results if r.get("section") == "av"]
    snd = [r for r in results if r.get("section") == "sound"]
    desk = [r for r in results if r.get("section") == "desktop"]
    vms = [r for r in results if r.get("section") == "host"]
    link_rows = [r for r in results if r.get("section") == "links"]
    results = [r for r in results if not r.get("section")]
    mjpeg = [r for r in results if not r.get("codec") and not r.get("tls") and not r.get("clip")]
    clips = [r for r in results if r.get("clip")]
    codecs = [r for r in results if r.get("codec")]
    tls = [r for r in results if r.get("tls") and not r.get("codec")]
    out = [
        "# Benchmarks: spice-rs against the C spice-server",
        "",
        "Produced by bench/run.py (`make bench`):",
        "",
    ] + [_run_line(run, [r for r in data["results"] if r["run"] == i])
         for i, run in enumerate(runs)] + [
        "",
        f"Machine: {facts['cores']} cores, {facts['cpu']}, Linux {facts['kernel']}; "
        f"{facts['qemu']} (TCG, no KVM); C server: Debian's {facts['c_server']}; client: "
        f"{facts['client']}.",
        "",
        "Both servers run with `-spice streaming-video=all`. Each cell pair is spice-rs "
        "(this library), then C (Debian's libspice-server1). \"Server-side CPU\" is QEMU's "
        "CPU minus its vCPU thread (`CPU 0/TCG`): the server library with its encoders plus "
        "QEMU's display code, without the guest's own work.",
        "",
    ]
    if mjpeg:
        out += ["## MJPEG (both servers' default codec)", "", table(mjpeg), ""] + others_line(mjpeg)
        if chart_rel:
            out += [f"![spice-rs against the C server]({chart_rel})", ""]
        if mjpeg_notes:
            out += [mjpeg_notes.rstrip(), ""]
    if clips:
        out += [
            "## Other clips (MJPEG)",
            "",
            "The guest's other clips (tests/guest/build.sh, kernel `clip=`) full screen, "
            "scaled from 640x360: `street` a fixed camera on a street, people walking "
            "(opencv-doc's vtest.avi); `screen` a screen recording (text typed into an "
            "editor window, a pointer gliding); `anim` an animation (flat colours, sharp "
            "edges, shapes moving). PSNR is that of the client's picture against the "
            "source frame its stamp names.",
            "",
            table(clips),
            "",
        ] + others_line(clips)
    if codecs:
        out += [
            "## H.264, VP8, VP9 (GStreamer encoders on both servers)",
            "",
            "The same codec on both servers; how it is chosen: " + _codec_choice(runs, codecs)
            + ". \"codec decoded\" is what spice-gtk really built a decoder for (its debug "
            "log: avdec_h264, vp8dec, vp9dec; a stream without a GStreamer decoder is MJPEG), "
            "so a server that fell back to another codec shows here.",
            "",
            table(codecs, codecs=True),
            "",
        ] + others_line(codecs)
        tt = targets_table(codecs)
        if tt:
            out += [
                "### Targets (H.264, same run)",
                "",
                "At no more than the C server's bytes per second, at no lower PSNR, at least "
                "95% of its frame rate, at most half its server-side CPU per frame. Each cell: "
                "spice-rs vs C, the bound, and the difference.",
                "",
            ] + tt + [""]
        if notes:
            out += [notes.rstrip(), ""]
    if tls:
        out += [
            "## Over TLS (MJPEG)",
            "",
            "`tls-port=` only (no plain port) with `x509-dir=` (a 2048-bit RSA test CA and "
            "server key), the client checking the CA and the certificate's subject. Wire bytes "
            "are TCP payload, so the TLS records' overhead counts.",
            "",
            table(tls),
            "",
        ] + others_line(tls)
    if dev:
        out += devices_section(dev)
    if avs:
        out += av_section(avs)
    if snd:
        out += sound_section(snd)
    if desk:
        out += desktop_section(desk, desktop_notes)
    if vms:
        out += host_section(vms, host_notes)
    if link_rows:
        import links  # its rows' own section (bench/links.py)
        out += links.markdown(link_rows)
    ct = connect_table(results)
    if ct:
        out += [
            "## Time to the first picture",
            "",
            "From the client opening its first socket (spice-gtk `spice_session_connect`) to "
            "its first drawing: the main channel's link, the display channel's (and, over TLS, "
            "each one's handshake: spice-gtk resumes no TLS session), the first image. One "
            "connection per row and server, so single samples: a row's spread says how much "
            "the machine's load moves it.",
            "",
        ] + ct + [""]
    out += [
        "## How measured",
        "",
        "- **Setup.** For each row, the same QEMU binary boots the same guest (tests/guest: "
        "Debian kernel, busybox, `workload.c`) twice, once with "
        "`LD_LIBRARY_PATH=build/lib` (spice-rs) and once with Debian's "
        "`/lib/x86_64-linux-gnu/libspice-server.so.1`; the mapped library is checked in "
        "/proc/PID/maps. `qxl` = `-vga qxl` with the Linux qxl DRM driver, `std` = `-vga std` "
        "(bochs DRM driver; QEMU sends the changed areas itself). The guest's screen mode comes "
        "from the kernel's `video=WxH`. The video workload draws the clip (640x360, decoded "
        "from opencv-doc's Megamind.avi, read from a virtio disk) scaled to full screen or "
        "to a window; \"static desktop\" draws a desktop once and a clock square each second. "
        "The client is spice-gtk (tests/e2e/client.py, headless, decoding everything it gets).",
        "- **fps delivered / guest.** The guest stamps every frame's number into the picture "
        "(a row of black/white blocks). The client reads the stamp each time it has drawn into "
        "it and gone idle; every new number is a delivered frame (a half-drawn update can "
        "mix two numbers: only the longest increasing run of readings counts). \"guest\" is "
        "the rate the guest itself managed (its serial report per frame), under the same "
        "host load.",
        "- **CPU.** utime+stime of the QEMU process over the measured window (/proc/PID/stat; "
        "it includes the emulated guest CPU, the same work for both servers), per delivered "
        "frame, and in brackets as a share of one core. \"Server threads\" are the threads the "
        "library starts, found by name in /proc/PID/task/*/comm: spice-rs's `spice-reactor` "
        "and `spice-qxl-N`, the C server's `SPICE Worker`. The C server also runs its main "
        "and inputs channels on QEMU's main thread, which is not counted there (results.json "
        "has every thread). \"Server-side CPU\" needs no names of the servers' threads: it is "
        "QEMU's CPU minus the vCPU threads QEMU names `CPU n/TCG` (or `CPU n/KVM`) with "
        "`-name debug-threads=on`, so GStreamer's and the encoders' own threads count too.",
        "- **Codec.** In the H.264/VP8/VP9 rows the client runs with SPICE_DEBUG=1 (a few "
        "lines a frame) and the bench reads which GStreamer decoders spice-gtk built for the "
        "streams it got; a row whose server streamed another codec says so.",
        "- **Wire.** Bytes the server sent on its TCP connections and the client acknowledged, "
        "from the kernel's tcp_info (`ss -ti`: bytes_acked) at the window's start and end; "
        "exact, and nothing sits in between client and server.",
        "- **Client CPU.** The spice-gtk client process (receiving, decoding, drawing; the "
        "stamp reading is a few hundred pixel reads per frame), as a share of one core.",
        "- **PSNR.** Every "
        f"{runs[-1]['config']['snap_every']:g} s the client writes its whole surface at the moment it reads a "
        "stamp; the video region (without the stamp rows) is compared with the source frame "
        "that stamp names, scaled as the guest scales it (over B, G, R; 99 = identical); the "
        "table gives the median over the samples. The guest tears (its framebuffer is copied "
        "out while it writes the next frame top to bottom), so the reference is frame N above "
        "the row that fits best and frame N-1 below it: what the server was given. A "
        "picture the client has only partly updated counts against it.",
        "- **Latency** (glass to glass). The guest prints `SPICE-RS-FRAME: N` on its serial "
        "console when frame N is in its framebuffer; the host time-stamps the line on arrival "
        "(serial on a socket). Latency = the moment the client first reads stamp N minus "
        "that time, over all delivered frames (median / 95th percentile). With the qxl driver "
        "the guest kernel flushes framebuffer damage at most 20 times a second, which is in "
        "both servers' numbers.",
        "- Everything runs on the same machine: QEMU (TCG), both servers and the client share "
        "its cores, so absolute numbers are this machine's; the comparison is the point. "
        "The host's busy time (/proc/stat) minus QEMU's and the client's is what other "
        "processes took meanwhile; it is recorded per run (`cpu_others`).",
        "",
        "Raw numbers (every thread's CPU, each latency and PSNR sample): "
        "[bench/results.json](bench/results.json).",
        "",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------ devices
def _device_cell(r, kind):
    if r is None:
        return DASH
    if "error" in r:
        return "failed"
    if kind == "xfer":
        cell = f"{r['mb_s']:.2f} MB/s"
        return cell if r.get("sha256_equal") else cell + " (**bytes differ**)"
    if kind == "clipboard":
        return f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} ms"
    if kind == "resize":
        return f"{r['p50_ms']:.0f} ms (max {r['max_ms']:.0f})"
    if kind == "port_echo":
        return f"{r['mb_s']:.2f} MB/s"
    return f"+{r['rss_growth_mib']:.1f} MiB (of {r['rss_base_kib'] / 1024:.0f} MiB) in {r['pause_s']} s"


DEVICE_MEASURE = {
    "xfer": "MB/s, file_copy_async to its callback (sha256 checked in the guest)",
    "clipboard": "client grab → the guest pastes the text, ms p50 / p95",
    "resize": "client monitor config → its primary surface on the client, ms p50",
    "port_echo": "client → guest echo → client, MB/s",
    "port_slow": "QEMU RSS growth while the client reads nothing",
}


def devices_section(rows):
    lines = [
        "## Guest agent and devices", "",
        "bench/devices.py, the same way for both servers. The agent rows boot the Debian "
        "guest (tests/guest-debian: Xorg on qxl, Debian 12's spice-vdagentd and "
        "spice-vdagent) once per server; the client is spice-gtk (tests/e2e/client.py).", "",
        "- **File transfer**: a 64 MiB random file with `spice_main_channel_file_copy_async`, "
        "from the call to its callback; the guest's sha256 is checked. \"+20 ms RTT\" goes "
        "through a relay delaying each direction by 10 ms (tests/e2e/relay.py: it reads only "
        "what it may forward, so TCP backpressure holds; this machine's kernel has no "
        "sch_netem for `tc netem`).",
        "- **Clipboard**: the client grabs its clipboard with a new text; a loop of `xclip -o` "
        "in the guest (each one asks the agent, which asks the client) ends when it pastes "
        "that text. From the grab to the guest command's answer, over 20 rounds.",
        "- **Resize**: the client's monitor config (as a resized remote-viewer window) until "
        "the client has a primary surface of that size; the guest settles 2 s between "
        "changes.",
        "- **Port**: the small guest with a `spiceport` (org.example.test) that echoes or "
        "floods, spice-gtk's port channel (tests/e2e/port_client.py). Echo: 16 MiB in "
        "64 KiB writes (spice-gtk sends each write as one message), until all came back. "
        "Slow reader: the client stops reading a flooding port for 20 s; QEMU's VmRSS from "
        "the pause's start to its peak.", "",
        "| row | measured | spice-rs | C |", "|---|---|---|---|"]
    for res in rows:
        kind = res.get("kind")
        lines.append(f"| {res['row']} | {DEVICE_MEASURE.get(kind, '')} | "
                     f"{_device_cell(res.get('ours'), kind)} | {_device_cell(res.get('c'), kind)} |")
    return lines + [""]


# ------------------------------------------------------------------ audio and video
def _av_cell(r):
    if r is None:
        return DASH
    if "error" in r:
        return "failed"

    def ms(v, sign=True):
        return DASH if v is None else (f"{v:+.0f}" if sign else f"{v:.0f}")
    return (f"{ms(r['skew_p50_ms'])} / {ms(r['skew_p95_ms'])} ms "
            f"(abs p95 {ms(r['abs_skew_p95_ms'], False)}; every second "
            f"{ms(r.get('abs_skew_p95_all_ms'), False)}); "
            f"video {ms(r.get('video_latency_p50_ms'), False)} ms; "
            f"{r['shown_fps_while_audio']:g} fps, {r['late_dropped']} late")


def av_section(rows):
    lines = [
        "## Audio and video in step", "",
        "bench/av.py, the same way for both servers (tests/e2e/avsync.py measures; "
        "tests/e2e/test_av_sync.py asserts on it): the Debian guest plays "
        "tests/guest-debian/avplay.c, a beep and a flash frame at the start of every second, "
        "its 30 fps video drawn on its ALSA clock as players do; QEMU's HDA card on "
        "`-audiodev spice`, `streaming-video=all`. spice-gtk stands in for an audio backend "
        "of latency D: `spice_playback_channel_set_delay(D)` every second, as its GStreamer "
        "backend does, so its clock follows the audio stamps; a beep counts as heard D after "
        "its samples arrived. Skew = (client shows the flash) - (beep heard), per second: "
        "p50 / p95 (positive: the picture is late), then the p95 of its absolute value, "
        "leaving out the seconds near a restart of the guest's sound (a starved guest "
        "underruns; QEMU stops and starts its voice, which resets the client's clock), "
        "then over every second; "
        "video: the "
        "guest's serial line as it draws the flash to the client showing it, p50; frames the "
        "client showed per second while audio played, and stream frames it dropped as late.",
        "", "| row | spice-rs | C |", "|---|---|---|"]
    for res in rows:
        lines.append(f"| {res['row']} | {_av_cell(res.get('ours'))} | {_av_cell(res.get('c'))} |")
    return lines + [""]
# ------------------------------------------------------------------ sound
def _pair(res, key, fmt, scale=1):
    """"spice-rs / C" of one number."""
    def one(r):
        if r is None:
            return DASH
        if "error" in r:
            return "failed"
        v = r.get(key)
        return _f(None if v is None else v * scale, fmt)
    return f"{one(res.get('ours'))} / {one(res.get('c'))}"


def _idle_s(rows):
    vals = sorted({r[lib].get("idle_s") for r in rows for lib in ("ours", "c")
                   if _ok(r.get(lib)) and r[lib].get("idle_s")})
    return "/".join(f"{v:g}" for v in vals) or "?"


def _record_s(rows):
    vals = sorted({r[lib]["audio_s"] for r in rows for lib in ("ours", "c") if _ok(r.get(lib))})
    return "/".join(f"{v:g}" for v in vals) or "?"


def sound_section(rows):
    play = [r for r in rows if r.get("kind") == "playback"]
    rec = [r for r in rows if r.get("kind") == "record"]
    lines = [
        "## Sound", "",
        "bench/sound.py, the same way for both servers: the Debian guest (tests/guest-debian) "
        "plays tones with a 3 kHz marker each second (tests/e2e/sound.py) with `aplay` on "
        "QEMU's HDA card (`-audiodev spice`), printing on its serial line when it starts; "
        "spice-gtk's playback channel receives them (tests/e2e/client.py, its `playback-data` "
        "signal, no audio device). One boot per playback mode and server: Opus (the default) "
        "and raw (`-spice playback-compression=off`). The client reaches the server through "
        "tests/e2e/relay.py, which counts each channel's bytes.", "",
        "- **wire kB/s**: the playback channel's bytes to the client (TCP payload, SPICE "
        "headers included, counted in the relay) per second of audio.",
        "- **CPU ms / audio s**: QEMU's utime+stime (/proc/<pid>/stat) while the tones play "
        "(from starting aplay to the last sample at the client) minus the same guest idle, "
        f"with the client connected, over as long (measured for {_idle_s(play)} s before), per "
        "second of audio: the audio path of QEMU and the server, with the guest's aplay.",
        "- **latency p50 / p95**: the guest's serial line saying it handed the samples to "
        "aplay → the client's `playback-data` carrying each second's marker, over the "
        "markers before the first dropped sample (after a buffer QEMU's HDA codec dropped, "
        "the guest's stream runs ahead of its clock); behind a throttled link over all "
        "markers, counted on by their spacing (the server's drops do not move the guest's "
        "clock). It includes the guest's ALSA buffer and QEMU's HDA timer.",
        "- **gaps / min**: silent spans of 2 ms or more inside the sound plus seconds whose "
        "markers are not a second apart (samples dropped). **glitches / min**: 10 ms blocks "
        "more than 10 dB below the source (clicks, jumps) in the seconds without drops. "
        "**HDA overruns**: buffers QEMU's own HDA codec dropped meanwhile because its audio "
        "timer ran late (QEMU's `hda_audio_overrun` trace point; a loaded host, either "
        "server): each is a gap before the server saw the samples.",
        "- **client link**: the relay carries at most that many bits per second to the "
        "client (shared by all channels), reading from the server only what the link took; "
        "towards the server it offers a 1448-byte MSS and a 2 KiB receive buffer (the kernel "
        "doubles it), so at most a few kB wait in the relay and the server's socket backs up "
        "as behind a slow link (the server's own send buffer holds what it holds). The "
        "client connects anew behind it and the tones start once the link is quiet (the "
        "display channel's first picture takes a while at 64 kbit/s). The "
        "client keeps every sample it gets (no playout clock), so lateness shows in the "
        "latency and drops in the gaps. Bytes per second are per second of audio sent, "
        "delivered over a longer time when the link is slower than the stream; **received**: "
        "seconds of audio that reached the client, of those played.", "",
        "Each cell: spice-rs / C.", "",
        "| row | wire kB/s | CPU ms / audio s | latency p50 ms | latency p95 ms | gaps / min "
        "| glitches / min | received s | QEMU HDA overruns |",
        "|---" * 9 + "|",
    ]
    for res in play:
        lines.append(
            f"| {res['row']} | {_pair(res, 'wire_bytes_s', '.1f', 1e-3)} | "
            f"{_pair(res, 'cpu_ms_per_audio_s', '.0f')} | {_pair(res, 'latency_p50_ms', '.0f')} | "
            f"{_pair(res, 'latency_p95_ms', '.0f')} | {_pair(res, 'gaps_per_min', '.1f')} | "
            f"{_pair(res, 'glitches_per_min', '.1f')} | {_pair(res, 'received_s', '.1f')} | "
            f"{_pair(res, 'qemu_hda_overruns', 'd')} |")
    lines.append("")
    lines += others_line(play)
    if rec:
        lines += [
            "**Record**: the client loops the same signal into its record channel (20 ms "
            "chunks paced by the clock) from the server's record-start; the guest's "
            f"`arecord` captures {_record_s(rec)} s. First sample: from `arecord` starting "
            "(its device opening, which starts the client sending) to the first non-silent "
            "sample it captured (sound.py `first_sound_s`, as test_sound.py); gaps and "
            "glitches as above, over the capture. Debian's C server (0.15.1) corrupts the "
            "packet that straddles the end of its 8192-frame record ring (a click each "
            "170.7 ms; see tests/e2e/test_sound.py), which its glitches count.", "",
            "| row | first sample ms | gaps / min | glitches / min |", "|---|---|---|---|"]
        for res in rec:
            lines.append(f"| {res['row']} | {_pair(res, 'first_sample_ms', '.0f')} | "
                         f"{_pair(res, 'gaps_per_min', '.1f')} | "
                         f"{_pair(res, 'glitches_per_min', '.1f')} |")
        lines.append("")
    return lines


def connect_table(results):
    """Time to the first drawing per row (ms), spice-rs and C; [] if not measured."""
    rows = [r for r in results
            if any(_ok(r.get(lib)) and "first_frame_ms" in r[lib] for lib in ("ours", "c"))]
    if not rows:
        return []

    def cell(r):
        if r is not None and "error" in r:
            return "failed"
        return _f(r.get("first_frame_ms") if r else None, ".0f")
    lines = ["| row | first picture ms: spice-rs | C |", "|---|---|---|"]
    lines += [f"| {r['row']} | {cell(r.get('ours'))} | {cell(r.get('c'))} |" for r in rows]
    return lines


def chart(results, path):
    """Grouped bars per row, spice-rs against C; returns False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [
        ("fps delivered", lambda r: fps(r)),
        ("server-side CPU ms per frame (QEMU minus vCPU)", lambda r: per_frame_ms(r, "cpu_server_side")),
        ("wire MB/s", wire_mbs),
        ("latency p50 ms", lambda r: latency(r, 50)),
    ]
    names = [r["row"] for r in results]
    fig, axes = plt.subplots(2, 2, figsize=(14, 3 + 0.4 * len(names)))
    for ax, (title, fn) in zip(axes.flat, metrics):
        ys = range(len(names))
        for k, (lib, label, color) in enumerate((("ours", "spice-rs", "#d0632a"),
                                                  ("c", "C spice-server", "#4a74b0"))):
            vals = [fn(r.get(lib)) if _ok(r.get(lib)) else None for r in results]
            ax.barh([y + (0.2 if k else -0.2) for y in ys], [v or 0 for v in vals], height=0.4,
                    label=label, color=color)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=9)
    fig.suptitle("spice-rs vs C spice-server 0.15 (same QEMU, guest, client; streaming-video=all)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ------------------------------------------------------------------ desktop in use
def _desk_rate(r, key):
    return r[key] / r["seconds"] if _ok(r) else None


def _desk_cpu(r):
    return 100 * r["cpu_server_side"] / r["seconds"] if _ok(r) else None


def _desk_pair(res, fn, fmt):
    def one(r):
        if r is None:
            return DASH
        return "failed" if "error" in r else _f(fn(r), fmt)
    return f"{one(res.get('ours'))} / {one(res.get('c'))}"


def _ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else DASH


def _picture(r):
    if r is None:
        return DASH
    if "error" in r:
        return "failed"
    n = r.get("picture_diff_pixels")
    return DASH if n is None else ("same" if n == 0 else f"**{n} px differ**")


# (name, value of a result, bound from C's value, applies to the row?)
DESKTOP_TARGETS = [
    ("bytes ≤ C's", lambda r: _desk_rate(r, "wire_down"), lambda c: c, lambda row: True),
    ("server-side CPU ≤ C's", _desk_cpu, lambda c: c, lambda row: True),
    ("framebuffer: bytes ≤ ½ C's", lambda r: _desk_rate(r, "wire_down"), lambda c: c / 2,
     lambda row: row.get("framebuffer")),
]


def desktop_target_cells(res):
    cells = []
    ours, c = res.get("ours"), res.get("c")
    for name, fn, bound_of, applies in DESKTOP_TARGETS:
        if not applies(res):
            cells.append(DASH)
            continue
        if not (_ok(ours) and _ok(c)):
            cells.append("not measured")
            continue
        a, b = fn(ours), fn(c)
        bound = bound_of(b)
        unit = "%" if fn is _desk_cpu else " MB/s"
        scale = 1 if fn is _desk_cpu else 1e-6
        cells.append(f"{'**met**' if a <= bound else '**missed**'}: {a * scale:.3g}{unit} vs "
                     f"bound {bound * scale:.3g}{unit} ({_ratio(a, b)} C)")
    return cells


def _warmups(rows):
    vals = sorted({r[lib].get("warmup") for r in rows for lib in ("ours", "c")
                   if _ok(r.get(lib)) and r[lib].get("warmup") is not None})
    return "/".join(f"{v:g}" for v in vals) or "?"


def desktop_section(rows, notes=None):
    settings = sorted({(r["setting"], r.get("setting_text", "")) for r in rows})
    lines = [
        "## Desktop in use", "",
        "bench/desktop.py, the same way for both servers: the test guest's desktop being used "
        "(tests/guest/workload.c `desktop_scene=`), 1280x720, spice-gtk connected, QEMU's "
        "defaults otherwise (streaming-video off). Scenes, each in steps of 0.1 s that draw "
        "the same pixels for both servers: **windows** (a window opens with its frame and "
        "title bar, its text appears, it closes; a new one elsewhere each second), **menus** "
        "(a menu drops down from the top bar, its 8 items highlighted one by one, it closes), "
        "**scroll** (the front window's document scrolls a line up, 10 lines a second), "
        "**viewer** (an image viewer shows a new photo-like picture every 1.5 s), **mixed** "
        "(each of the four for 5 s in turn; its row measures one whole 20 s cycle). "
        "Settings: " + "; ".join(f"**{k}** = {v}" for k, v in settings) + ". One boot per "
        "display, setting and server; the rows follow one another in it: a key (re)starts "
        "the guest's scene at its first step, the row measures after a warm-up "
        f"({_warmups(rows)} s, so the window starts between two of the viewer's pictures).", "",
        "- **MB/s**: bytes the server sent on its connections and the client acknowledged "
        "(kernel tcp_info), per second.",
        "- **updates/s**: the client's display invalidations (spice-gtk's `invalidate` "
        "signal), about one per drawing message.",
        "- **server-side CPU**: QEMU's CPU minus its vCPU threads, % of one core.",
        "- **picture**: the guest's screen frozen after the row (key P), the client's primary "
        "surface against QEMU's screendump, pixel for pixel (JPEG under the WAN settings is "
        "lossy: a picture it carried differs).", "",
        "Each cell: spice-rs / C.", "",
        "| row | MB/s | bytes vs C | updates/s | server-side CPU % | picture = QEMU's |",
        "|---|---|---|---|---|---|",
    ]
    for res in rows:
        ours, c = res.get("ours"), res.get("c")
        a = _desk_rate(ours, "wire_down") if _ok(ours) else None
        b = _desk_rate(c, "wire_down") if _ok(c) else None
        lines.append(
            f"| {res['row']} | {_desk_pair(res, lambda r: _desk_rate(r, 'wire_down') / 1e6, '.3f')} "
            f"| {_ratio(a, b)} | {_desk_pair(res, lambda r: _desk_rate(r, 'updates'), '.1f')} "
            f"| {_desk_pair(res, _desk_cpu, '.1f')} | {_picture(ours)} / {_picture(c)} |")
    lines.append("")
    lines += others_line(rows)
    lines += [
        "### Targets (desktop in use, same run)", "",
        "Issue 14: no more bytes than the C server at no more CPU; on the framebuffer path "
        "(`-vga std`: QEMU hands over changed areas, no drawing commands) at least 2x fewer "
        "bytes. Each cell: spice-rs, the bound from C's value, spice-rs / C.", "",
        "| row | " + " | ".join(t[0] for t in DESKTOP_TARGETS) + " |",
        "|---" * (len(DESKTOP_TARGETS) + 1) + "|",
    ]
    for res in rows:
        lines.append(f"| {res['row']} | " + " | ".join(desktop_target_cells(res)) + " |")
    lines.append("")
    if notes:
        lines += [notes.rstrip(), ""]
    return lines


# ------------------------------------------------------------ host full of VMs
def _host_pair(res, key, fmt, scale=1):
    """"spice-rs / C" of one per-VM mean."""
    def one(r):
        if r is None:
            return DASH
        if "error" in r:
            return "failed"
        return format(r["mean"][key] * scale, fmt)
    return f"{one(res.get('ours'))} / {one(res.get('c'))}"


def _host_threads(r):
    if r is None:
        return DASH
    if "error" in r:
        return "failed"
    names = Counter(r["library_threads"])
    return ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in sorted(names.items())) \
        or DASH


def host_section(rows, notes=None):
    lines = [
        "## A host full of VMs", "",
        "bench/host.py, the same way for both servers: 1, then 4, then 8 tiny VMs side by side "
        "(the test guest, TCG, 128 MiB, `-vga qxl`, `streaming-video=all`, the console "
        "workload: a screen of text that never changes), first with no client, then each "
        "with its own spice-gtk client connected; then one of the 8 is replaced by a VM "
        "playing the video clip (MJPEG, a 640x360 window at 30 frames/s, 512 MiB) with its "
        "client, and the 7 idle ones are measured again beside it. Each cell is the mean "
        "per VM, spice-rs / C.", "",
        "| row | threads | the library's threads (spice-rs; C) | wake-ups/s | "
        "of them the library's | server-side CPU % | RSS MiB | PSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in rows:
        lines.append(
            f"| {res['row']} | {_host_pair(res, 'threads', '.1f')} "
            f"| {_host_threads(res.get('ours'))}; {_host_threads(res.get('c'))} "
            f"| {_host_pair(res, 'wakeups_per_s', '.1f')} "
            f"| {_host_pair(res, 'library_wakeups_per_s', '.1f')} "
            f"| {_host_pair(res, 'cpu_server_side_pct', '.2f')} "
            f"| {_host_pair(res, 'rss_kib', '.1f', 1 / 1024)} "
            f"| {_host_pair(res, 'pss_kib', '.1f', 1 / 1024)} |")
    lines += [
        "",
        "### How measured (host full of VMs)", "",
        "- **threads**: of the QEMU process at the end of the window (/proc/PID/task). "
        "The library's are found by name: spice-rs's `spice-*` (reactor, QXL worker, "
        "encoders), the C server's `SPICE Worker`; results.json has every name per VM.",
        "- **wake-ups/s**: voluntary context switches (/proc/PID/task/*/status) of QEMU's "
        "threads other than the vCPU's (`CPU 0/TCG`, the guest's own timer ticks), over the "
        "window: a thread switches out voluntarily each time it goes back to sleep, so once "
        "per poll timeout, timer or message it woke for. Most of them are QEMU's main loop, "
        "the same with either server; the next column counts only the library's threads "
        "(the C server also runs its main and inputs channels on QEMU's main thread).",
        "- **server-side CPU**: QEMU's CPU minus the vCPU thread's, % of one core.",
        "- **RSS / PSS**: /proc/PID/smaps_rollup of the QEMU process (guest RAM the guest "
        "touched included; PSS shares the libraries' pages among the VMs).",
        "- All VMs are measured over the same window (BENCH_HOST_SECONDS, 10 s) after they "
        "settled (5 s); the clients (spice-gtk, one process each) run on the same 2 cores.",
        "",
    ]
    if notes:
        lines += [notes.rstrip(), ""]
    return lines
