"""Records a real session for the replay test: Debian's QEMU (TCG) with -vga qxl and
Debian's C spice-server, SPICE_WORKER_RECORD_FILENAME set, the test guest running its
desktop workload (boot console, qxl driver, a drawn desktop, a clock redrawn each second).

    record.py OUT.rec [SECONDS]

Writes OUT.rec only when the recording is complete (QEMU quit, file closed)."""
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from rig import Rig  # noqa: E402


def main():
    out = Path(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 4
    tmp = out.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    os.environ["SPICE_RS_ACCEL"] = "tcg"
    rig = Rig(display="qxl", workload="desktop", lib="c",
              env_extra={"SPICE_WORKER_RECORD_FILENAME": str(tmp)})
    with rig:
        if rig.mapped_lib and "build/lib" in rig.mapped_lib:
            raise SystemExit(f"record: QEMU mapped {rig.mapped_lib}, not Debian's library")
        rig.wait_serial(r"workload desktop running", timeout=240)
        time.sleep(seconds)
    if rig.returncode not in (0, None):
        raise SystemExit(f"record: QEMU exited with {rig.returncode}\n{rig.tail()}")
    size = tmp.stat().st_size if tmp.exists() else 0
    if size < 1000:
        raise SystemExit(f"record: {tmp} has {size} bytes\n{rig.tail()}")
    shutil.move(tmp, out)
    print(f"record: {out} ({size} bytes, library {rig.mapped_lib})")
    shutil.rmtree(rig.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
