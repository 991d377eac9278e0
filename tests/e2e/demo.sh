#!/usr/bin/env bash
# Boots the demo guest (desktop workload) in the foreground with our library and
# prints the spice:// URL; starts remote-viewer when there is a $DISPLAY for it.
#   tests/e2e/demo.sh [std|qxl|virtio|bochs] [desktop|video|console]
#   SPICE_RS_E2E_LIB=c tests/e2e/demo.sh    same with Debian's C server
# Ctrl-C (or closing the viewer and Ctrl-C) stops QEMU.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tests/guest/build.sh build/guest
exec /usr/bin/python3 - "${1:-qxl}" "${2:-desktop}" <<'PY'
import os, shutil, subprocess, sys, time
sys.path.insert(0, "tests/e2e")
from rig import Rig
display, workload = sys.argv[1], sys.argv[2]
rig = Rig(display=display, workload=workload, mem=512, usb_tablet=True).start()
url = f"spice://127.0.0.1:{rig.port}"
print(f"QEMU pid {rig.proc.pid}, library {rig.mapped_lib}")
print(f"logs: {rig.dir}")
print(f"connect: remote-viewer {url}")
viewer = None
if os.environ.get("DISPLAY") and shutil.which("remote-viewer"):
    viewer = subprocess.Popen(["remote-viewer", url])
try:
    rig.wait_serial(r"workload \w+ running", timeout=120)
    print("guest is up; Ctrl-C to stop")
    while rig.alive():
        time.sleep(0.5)
except KeyboardInterrupt:
    pass
finally:
    if viewer and viewer.poll() is None:
        viewer.terminate()
    print(f"QEMU exit status {rig.stop()}")
    print(rig.tail(10))
PY
