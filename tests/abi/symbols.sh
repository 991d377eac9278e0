#!/usr/bin/env bash
# The dynamic symbols of spice-rs' library must be exactly spice-server 0.15's.
#
#   bash tests/abi/symbols.sh [OUR_LIB [REFERENCE_LIB]]
#     OUR_LIB        default build/lib/libspice-server.so.1
#     REFERENCE_LIB  default /lib/x86_64-linux-gnu/libspice-server.so.1 (Debian's C library)
#
# Checks (objdump -T / objdump -p):
#   1. the set of exported functions, each with its version node (e.g.
#      "SPICE_SERVER_0.14.2 spice_qxl_set_device_info"), is identical;
#   2. OUR_LIB exports nothing else: no data, no Rust internals, no unversioned symbol
#      (the only other entries allowed are the absolute version-node symbols some linkers
#      emit, e.g. "SPICE_SERVER_0.8.0 SPICE_SERVER_0.8.0");
#   3. the set of version nodes it defines is identical;
#   4. its SONAME is libspice-server.so.1.
# The inheritance chain between version nodes is shown when it differs, but not
# enforced: the dynamic loader does not use it (rust-lld, rustc's default linker on
# x86_64 Linux, does not record it).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ours=${1:-$root/build/lib/libspice-server.so.1}
ref=${2:-/lib/x86_64-linux-gnu/libspice-server.so.1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

[ -e "$ours" ] || { echo "FAIL: $ours not found (run 'make lib' first)" >&2; exit 1; }
[ -e "$ref" ] || { echo "FAIL: reference library $ref not found (apt install libspice-server1)" >&2; exit 1; }

# Defined dynamic symbols as "FLAGS VERSION NAME". objdump -T prints
# "ADDRESS FLAGS(7 chars) SECTION<TAB>SIZE VERSION NAME"; undefined ones are in *UND*.
exports() {
    objdump -T "$1" | awk -F'\t' '
        /^[0-9a-f]+ / && NF >= 2 {
            split($1, left, " ")
            section = left[length(left)]
            if (section == "*UND*") next
            flags = substr($1, index($1, " ") + 1, 7)
            gsub(/ /, "", flags)
            n = split($2, right, " ")
            name = right[n]
            version = (n >= 3) ? right[n - 1] : "(none)"
            print flags, version, name, section
        }' | sort -u
}

# Version nodes the library defines (skipping the entry for the file name itself).
nodes() {
    objdump -p "$1" | awk '
        /^Version definitions:/ { on = 1; next }
        /^Version References:/ || /^$/ { on = 0 }
        on && $2 != "0x01" && NF >= 4 { print $4 }' | sort -u
}

# Node -> parent pairs, for information.
chains() {
    objdump -p "$1" | awk '
        /^Version definitions:/ { on = 1; next }
        /^Version References:/ || /^$/ { on = 0 }
        on && NF >= 4 { node = $4; next }
        on && NF == 1 { print node " <- " $1 }' | sort -u
}

exports "$ours" > "$tmp/ours.all"
exports "$ref" > "$tmp/ref.all"

# 1. functions with their version node.
awk '$1 ~ /F/ { print $2, $3 }' "$tmp/ours.all" | sort -u > "$tmp/ours.fn"
awk '$1 ~ /F/ { print $2, $3 }' "$tmp/ref.all" | sort -u > "$tmp/ref.fn"
echo "functions: $(wc -l < "$tmp/ours.fn") exported by $ours, $(wc -l < "$tmp/ref.fn") by $ref"
if ! diff -u --label "$ref" --label "$ours" "$tmp/ref.fn" "$tmp/ours.fn"; then
    echo "FAIL: exported functions/version nodes differ (- missing or wrong node, + extra)" >&2
    status=1
fi

# 2. nothing else: every non-function export must be an absolute version-node symbol.
awk '!($1 ~ /F/) && !($4 == "*ABS*" && $2 == $3) { print }' "$tmp/ours.all" > "$tmp/ours.extra"
echo "other exports of $ours: $(wc -l < "$tmp/ours.extra") (must be 0)"
if [ -s "$tmp/ours.extra" ]; then
    echo "FAIL: unexpected exported symbols (flags version name section):" >&2
    head -50 "$tmp/ours.extra" >&2
    status=1
fi

# 3. version nodes.
nodes "$ours" > "$tmp/ours.nodes"
nodes "$ref" > "$tmp/ref.nodes"
echo "version nodes: $(wc -l < "$tmp/ours.nodes") defined by $ours, $(wc -l < "$tmp/ref.nodes") by $ref"
if ! diff -u --label "$ref" --label "$ours" "$tmp/ref.nodes" "$tmp/ours.nodes"; then
    echo "FAIL: version node definitions differ" >&2
    status=1
fi
chains "$ours" > "$tmp/ours.chains"
chains "$ref" > "$tmp/ref.chains"
if ! cmp -s "$tmp/ref.chains" "$tmp/ours.chains"; then
    echo "note: version node inheritance differs ($(wc -l < "$tmp/ours.chains") parent links vs $(wc -l < "$tmp/ref.chains")); not used at run time"
fi

# 4. SONAME.
soname=$(objdump -p "$ours" | awk '$1 == "SONAME" { print $2 }')
echo "SONAME: ${soname:-(none)}"
if [ "$soname" != "libspice-server.so.1" ]; then
    echo "FAIL: SONAME is '${soname:-(none)}', expected libspice-server.so.1" >&2
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "symbols: all checks passed"
fi
exit "$status"
