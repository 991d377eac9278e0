#!/usr/bin/env bash
# Runs the server's create/init/add/remove/destroy cycle several times under valgrind:
# no definite leak, every thread joined, every fd closed, every async cookie completed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
lib=${1:-$root/build/lib}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Built the way a consumer builds: through spice-server.pc (the build tree's, or the
# installed one when PKG_CONFIG_PATH points there).
export PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-$root/build/pkgconfig}
echo "lifecycle: building against $(pkg-config --variable=includedir spice-server) ($PKG_CONFIG_PATH)"
cc -Wall -Wextra -Werror -o "$out/lifecycle" "$root/tests/lifecycle/lifecycle.c" \
    $(pkg-config --cflags --libs spice-server)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LD_LIBRARY_PATH="$lib" "$out/lifecycle" "$port" 3
LD_LIBRARY_PATH="$lib" valgrind -q --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=1 "$out/lifecycle" "$port" 2
echo "lifecycle: valgrind found no leak and no memory error"
