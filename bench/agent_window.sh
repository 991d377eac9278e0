#!/usr/bin/env bash
# The agent token window (issue 12): the file transfer rows of bench/devices.py (64 MiB,
# plain and +20 ms round trip) with spice-rs built with WINDOW = each value given
# (src/agent/mod.rs: the tokens each client gets in MAIN_INIT / AGENT_CONNECTED_TOKENS).
#   bench/agent_window.sh [WORKDIR] [WINDOWS...]     default: build/bench/window 10 32 64 128
# Each value is built from a copy of this commit (git archive, WINDOW patched) into
# WORKDIR/src, its library installed into WORKDIR/lib-wN; the worktree is not touched.
# CARGO_TARGET_DIR: where the copies build (default WORKDIR/target; seed it with a copy of
# an existing target directory's release/ to skip building the dependencies).
# Results: WORKDIR/wN.json and a table on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${1:-$repo/build/bench/window}
shift || true
windows=("$@")
[ ${#windows[@]} -gt 0 ] || windows=(10 32 64 128)
mkdir -p "$work"
work=$(cd "$work" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$work/target}
src=$work/src
rm -rf "$src" && mkdir -p "$src"
git -C "$repo" archive HEAD | tar -x -C "$src"
# The guests are found through the repo's build/ (cached).
export SPICE_RS_GUEST_DIR=$repo/build/guest SPICE_RS_GUEST_DEBIAN_DIR=$repo/build/guest-debian
for w in "${windows[@]}"; do
    sed -i -E "s/^(pub\(crate\) const WINDOW: u32 = )[0-9]+;/\1$w;/" "$src/src/agent/mod.rs"
    grep -q "const WINDOW: u32 = $w;" "$src/src/agent/mod.rs"
    (cd "$src" && nice -n 19 cargo build --release --locked --quiet)
    lib=$work/lib-w$w
    mkdir -p "$lib"
    cp "$CARGO_TARGET_DIR/release/libspice_server.so" "$lib/libspice-server.so.1.15.1"
    ln -sf libspice-server.so.1.15.1 "$lib/libspice-server.so.1"
    echo "== WINDOW=$w ($lib)"
    SPICE_RS_LIB_DIR=$lib SPICE_RS_LOG=${SPICE_RS_LOG:-warn} \
        /usr/bin/python3 "$here/devices.py" --lib ours --only "file transfer" \
        --json "$work/w$w.json" --work "$work/runs-w$w" || true
done
/usr/bin/python3 - "$work" "${windows[@]}" <<'EOF'
import json, sys
work, windows = sys.argv[1], sys.argv[2:]
print("\n| WINDOW | plain MB/s | +20 ms RTT MB/s | bytes identical | beyond-token drops |")
print("|---|---|---|---|---|")
for w in windows:
    try:
        rows = json.load(open(f"{work}/w{w}.json"))
    except OSError:
        print(f"| {w} | not run | | | |")
        continue
    cells, same, beyond = [], [], 0
    for r in rows:
        o = r["ours"]
        if "error" in o:
            cells.append("failed")
            continue
        cells.append(f"{o['mb_s']:.2f}")
        same.append(o["sha256_equal"])
        beyond += o["beyond_tokens"]
    print(f"| {w} | {' | '.join(cells)} | {all(same) and bool(same)} | {beyond} |")
EOF
