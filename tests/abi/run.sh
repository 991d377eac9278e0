#!/usr/bin/env bash
# ABI/API compatibility of spice-rs' generated headers with spice-server 0.15's.
#
#   bash tests/abi/run.sh [LIBDIR]   (LIBDIR holds our libspice-server.so.1; default build/lib)
#
# 1. tests/abi/layout.c, built against our headers (include/spice-server + spice-protocol)
#    and against the installed C headers (pkg-config spice-server), prints the size and
#    alignment of every public type, the offset/size of every field and the value of
#    every constant; it also statically asserts every field's C type. Outputs must be
#    identical.
# 2. tests/abi/api.c statically asserts the prototype of all 97 exported functions and
#    takes their addresses: built with -Wall -Werror against our headers + our library
#    and against the C headers + Debian's library, linked with -z now and run; the
#    C-built binary is also run on our library (LD_LIBRARY_PATH), the way QEMU uses it.
# 3. <spice.h> compiles as C++ (extern "C" guards) with both header sets.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
libdir=${1:-$root/build/lib}
ours_inc=$root/include/spice-server
cc=${CC:-cc}
cxx=${CXX:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$ours_inc/spice.h" ] || fail "$ours_inc/spice.h missing: run 'cargo build' (or 'make lib') first"
pkg-config --exists spice-protocol || fail "spice-protocol development files (pkg-config spice-protocol) not installed"
pkg-config --exists spice-server || fail "spice-server development files (libspice-server-dev) not installed"

# shellcheck disable=SC2207
ours_cflags=(-I "$ours_inc" $(pkg-config --cflags spice-protocol))
# shellcheck disable=SC2207
sys_cflags=($(pkg-config --cflags spice-server))
# shellcheck disable=SC2207
sys_libs=($(pkg-config --libs spice-server))
# The C headers mark some fields/functions SPICE_GNUC_DEPRECATED; using them here is the point.
warn=(-std=gnu11 -Wall -Wextra -Werror -Wno-deprecated-declarations -Wno-missing-field-initializers -Wno-type-limits)

echo "== layout: sizes, offsets, field types and constants"
"$cc" "${warn[@]}" "${ours_cflags[@]}" "$root/tests/abi/layout.c" -o "$tmp/layout-ours"
"$cc" "${warn[@]}" "${sys_cflags[@]}" "$root/tests/abi/layout.c" -o "$tmp/layout-c"
"$tmp/layout-ours" > "$tmp/layout-ours.txt"
"$tmp/layout-c" > "$tmp/layout-c.txt"
if ! diff -u --label "spice-server 0.15 headers" --label "spice-rs headers" \
        "$tmp/layout-c.txt" "$tmp/layout-ours.txt"; then
    fail "layouts/constants differ (- C headers, + ours)"
fi
printf '   identical: %s types, %s fields, %s constants, %s opaque handles\n' \
    "$(grep -c '^type ' "$tmp/layout-c.txt")" "$(grep -c '^  ' "$tmp/layout-c.txt")" \
    "$(grep -c '^const ' "$tmp/layout-c.txt")" "$(grep -c '^opaque ' "$tmp/layout-c.txt")"

echo "== api: prototypes of every exported function, resolved at load time"
ourlib=$libdir/libspice-server.so.1
[ -e "$ourlib" ] || fail "$ourlib not found: run 'make lib' first"
# Linked against our file itself (not -lspice-server, which could find the system's).
"$cc" "${warn[@]}" "${ours_cflags[@]}" "$root/tests/abi/api.c" -o "$tmp/api-ours" \
    -Wl,-z,now "$ourlib" -Wl,-rpath,"$libdir"
"$cc" "${warn[@]}" "${sys_cflags[@]}" "$root/tests/abi/api.c" -o "$tmp/api-c" \
    -Wl,-z,now "${sys_libs[@]}"
echo -n "   spice-rs headers, linked with $ourlib: "
"$tmp/api-ours" || fail "api probe against spice-rs failed"
# (Captured first: with pipefail, `grep -q` closing the pipe early would fail ldd.)
linked=$(ldd "$tmp/api-ours")
grep -qF "$ourlib" <<<"$linked" || fail "api-ours did not load $ourlib"
echo -n "   C headers, linked with the C library: "
"$tmp/api-c" || fail "api probe against the C library failed"
# Drop-in: the binary built against the C library, run on ours (as QEMU would be).
echo -n "   C-built binary run on $ourlib: "
LD_LIBRARY_PATH=$libdir "$tmp/api-c" || fail "C-built api probe does not run on spice-rs"
linked=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/api-c")
grep -qF "$ourlib" <<<"$linked" ||
    fail "LD_LIBRARY_PATH=$libdir did not make api-c load $ourlib"

echo "== C++: <spice.h> inside extern \"C\""
echo '#include <spice.h>' > "$tmp/cxx.cc"
"$cxx" -Wall -Werror -fsyntax-only "${ours_cflags[@]}" "$tmp/cxx.cc" || fail "spice-rs headers do not compile as C++"
"$cxx" -Wall -Werror -fsyntax-only "${sys_cflags[@]}" "$tmp/cxx.cc" || fail "C headers do not compile as C++"
echo "   ok"

echo "abi: all checks passed"
