#!/usr/bin/env bash
# Replays a recorded real session through spice_replay_* with our library and with Debian's
# C spice-server, and compares the primary surfaces after the last command pixel for pixel.
#
#   tests/replay/run.sh [OUR_LIBDIR [C_LIBDIR]]     (defaults: build/lib, /lib/x86_64-linux-gnu)
#   REPLAY_OUT=/some/dir     keeps the recording copy, dumps, logs and diff image there
#   REPLAY_SECONDS=4         how long the recorded desktop runs after it is up
#
# The recording: Debian's QEMU (TCG) with -vga qxl and Debian's C library, writing every QXL
# command and worker call to SPICE_WORKER_RECORD_FILENAME while the test guest boots and runs
# its desktop workload. It is cached under ~/.cache/spice-rs (SPICE_RS_CACHE) keyed on the
# guest build, QEMU's and the C library's versions and this recipe, so warm runs skip it.
#
# Passes when both replays run to the end, replay the same number of commands, ours releases
# nothing twice or foreign and at least what the C server released, the final surfaces are equal, and a truncated copy of the recording
# ends our replay cleanly.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ours=$(cd "${1:-$root/build/lib}" 2>/dev/null && pwd) || { echo "replay: no library dir ${1:-$root/build/lib} (run 'make lib')"; exit 2; }
theirs=${2:-/lib/x86_64-linux-gnu}
py=/usr/bin/python3
seconds=${REPLAY_SECONDS:-4}
[ -e "$ours/libspice-server.so.1" ] || { echo "replay: $ours/libspice-server.so.1 missing (run 'make lib')"; exit 2; }
[ -e "$theirs/libspice-server.so.1" ] || { echo "replay: $theirs/libspice-server.so.1 missing"; exit 2; }
[ -e "$root/include/spice-server/spice.h" ] || { echo "replay: include/spice-server missing (run 'make lib')"; exit 2; }

out=${REPLAY_OUT:-$(mktemp -d /tmp/replay.XXXXXX)}
mkdir -p "$out"

# --- the recording (cached) ----------------------------------------------------------
bash "$root/tests/guest/build.sh" "$root/build/guest" >/dev/null || { echo "replay: guest build failed"; exit 2; }
guest=$(basename "$(dirname "$(readlink -f "$root/build/guest/initrd.img")")")
qemu=$(qemu-system-x86_64 --version | head -n1)
clib=$(readlink -f "$theirs/libspice-server.so.1")
key=$(printf '%s\n' "$guest" "$qemu" "$(basename "$clib")" "$seconds" | cat - "$here/record.py" | sha256sum | cut -c1-16)
cache="${SPICE_RS_CACHE:-$HOME/.cache/spice-rs}/replay-$key"
rec=$cache/session.rec
if [ -s "$rec" ]; then
    echo "replay: recording $rec (cached)"
else
    mkdir -p "$cache"
    echo "replay: recording a session ($guest, $qemu, ${seconds}s of desktop)"
    SPICE_RS_GUEST_DIR="$root/build/guest" "$py" "$here/record.py" "$rec" "$seconds" \
        || { echo "replay: recording failed"; exit 2; }
fi
echo "replay: $(stat -c %s "$rec") bytes, $(grep -ac '^event [0-9]* 0 ' "$rec") commands and" \
     "$(grep -ac '^event [0-9]* 1 ' "$rec") worker calls recorded"

# --- the replayer ----------------------------------------------------------------------
replayer=$out/replayer
cc -O1 -g -Wall -Wextra -rdynamic -o "$replayer" "$here/replayer.c" \
    -I"$root/include/spice-server" $(pkg-config --cflags spice-protocol) \
    -L"$ours" -lspice-server -lpthread -ldl || { echo "replay: replayer does not build"; exit 2; }

run() { # LIB NAME RECORDING: status word, log in $out/NAME.{out,err}
    LD_LIBRARY_PATH="$1" timeout -k 5 300 "$replayer" "$3" "$out/$2.ppm" >"$out/$2.out" 2>"$out/$2.err"
    local rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo timeout
    elif [ $rc -gt 128 ]; then echo "signal:$((rc - 128))"
    else echo "exit:$rc"; fi
}
field() { sed -nE "s/^replay .*\b$1=([^ ]+).*/\1/p" "$out/$2.out"; }

cst=$(run "$theirs" c "$rec")
ost=$(run "$ours" ours "$rec")
for n in c ours; do
    printf '%-5s %s\n      %s\n' "$n" "$(grep '^replay ' "$out/$n.out" || echo "(no result)")" \
        "$(grep '^draws:' "$out/$n.out")"
done
px=n/a
if [ -s "$out/c.ppm" ] && [ -s "$out/ours.ppm" ]; then
    px=$("$py" "$root/tests/qxl/compare.py" diff "$out/c.ppm" "$out/ours.ppm" "$out/diff.png")
fi
echo "replay: C $cst, ours $ost; pixels differing in the final primary surface: $px"

# --- a recording cut short (a recorder killed mid-write) must end our replay cleanly -----
cut=$out/cut.rec
head -c $(( $(stat -c %s "$rec") * 3 / 5 )) "$rec" >"$cut"
tst=$(run "$ours" cut "$cut")
tcmd=$(field commands cut)
echo "replay: recording cut at 60%: ours $tst after ${tcmd:-?} commands ($(grep -c 'replay ends' "$out/cut.err") 'replay ends' log line)"

fail=0
[ "$cst" = exit:0 ] || { echo "replay: FAIL: the C library's replay did not finish ($cst, $out/c.err)"; fail=1; }
[ "$ost" = exit:0 ] || { echo "replay: FAIL: our replay did not finish ($ost, $out/ours.err)"; fail=1; }
[ "$(field commands c)" = "$(field commands ours)" ] || { echo "replay: FAIL: command counts differ"; fail=1; }
crel=$(field released c); orel=$(field released ours)
[ "${orel%%/*}" -ge "${crel%%/*}" ] 2>/dev/null || { echo "replay: FAIL: ours released ${orel:-?}, the C server ${crel:-?}"; fail=1; }
[ "$px" = 0 ] || { echo "replay: FAIL: final surfaces differ ($px pixels, $out/diff.png)"; fail=1; }
case "$tst" in exit:*) ;; *) echo "replay: FAIL: the cut recording crashed our replay ($tst)"; fail=1 ;; esac
[ -n "$tcmd" ] || { echo "replay: FAIL: no result from the cut recording"; fail=1; }
echo "replay: dumps, logs and diff image: $out"
[ $fail -eq 0 ] && echo "replay: passed" || echo "replay: failed"
exit $fail
