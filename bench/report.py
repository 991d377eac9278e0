"""BENCHMARKS.md and the chart from bench/run.py's results."""
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
    return 1000 * r[key] / r["frames"]


def load_pct(r, key):
    return 100 * r[key] / r["seconds"] if _ok(r) else None


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


def cells(r):
    """The row's table cells for one server."""
    def f(v, fmt):
        return DASH if v is None else format(v, fmt)

    def cpu(key):
        return lambda r: f"{f(per_frame_ms(r, key), '.1f')} ({f(load_pct(r, key), '.0f')}%)"

    return [
        _cell(r, lambda r: f"{f(fps(r), '.1f')} / {f(guest_fps(r), '.1f')}" if r.get("region") else DASH),
        _cell(r, cpu("cpu_qemu")),
        _cell(r, cpu("cpu_server")),
        _cell(r, lambda r: mbs(wire_mbs(r))),
        _cell(r, lambda r: f(load_pct(r, "cpu_client"), ".0f")),
        _cell(r, lambda r: f(psnr(r), ".1f")),
        _cell(r, lambda r: f"{f(latency(r, 50), '.0f')} / {f(latency(r, 95), '.0f')}"
              if r.get("region") else DASH),
    ]


HEADS = ["fps delivered / guest", "QEMU CPU ms/frame (% of a core)",
         "server threads ms/frame (% of a core)", "wire MB/s", "client CPU %", "PSNR dB", "latency ms p50 / p95"]


def table(results):
    head = ["row"]
    for h in HEADS:
        head += [f"{h}: spice-rs", "C"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in results:
        ours, c = cells(res.get("ours")), cells(res.get("c"))
        row = [res["row"]]
        for a, b in zip(ours, c):
            row += [a, b]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def others_line(results, cfg):
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


def markdown(results, facts, cfg, command, chart_rel):
    out = [
        "# Benchmarks: spice-rs against the C spice-server",
        "",
        f"Produced by `{command}` (bench/run.py) on {facts['date']}, revision `{facts['revision']}`.",
        "",
        f"Machine: {facts['cores']} cores, {facts['cpu']}, Linux {facts['kernel']}; "
        f"{facts['qemu']} (TCG, no KVM); C server: Debian's {facts['c_server']}; client: "
        f"{facts['client']}. The whole run took {facts['wall_seconds']} s.",
        "",
        f"Both servers run with `-spice streaming-video=all` and the default video codec "
        f"(MJPEG for both). The guest plays its clip at {cfg.fps:g} fps; each run measures "
        f"{cfg.seconds:g} s after {cfg.warmup:g} s of warm-up. Each cell pair is "
        "spice-rs (this library), then C (Debian's libspice-server1).",
        "",
        table(results),
        "",
    ] + others_line(results, cfg)
    if chart_rel:
        out += [f"![spice-rs against the C server]({chart_rel})", ""]
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
        "has every thread).",
        "- **Wire.** Bytes the server sent on its TCP connections and the client acknowledged, "
        "from the kernel's tcp_info (`ss -ti`: bytes_acked) at the window's start and end; "
        "exact, and nothing sits in between client and server.",
        "- **Client CPU.** The spice-gtk client process (receiving, decoding, drawing; the "
        "stamp reading is a few hundred pixel reads per frame), as a share of one core.",
        "- **PSNR.** Every "
        f"{cfg.snap_every:g} s the client writes its whole surface at the moment it reads a "
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
        ("QEMU CPU ms per frame", lambda r: per_frame_ms(r, "cpu_qemu")),
        ("wire MB/s", wire_mbs),
        ("latency p50 ms", lambda r: latency(r, 50)),
    ]
    names = [r["row"] for r in results]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
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
