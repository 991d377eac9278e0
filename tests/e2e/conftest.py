"""pytest glue: a `rig` factory fixture that tears QEMU down and prints log tails on failure.

Library under test: SPICE_RS_E2E_LIB=ours (default) or c (Debian's C server, to check
the harness itself). Guest: SPICE_RS_GUEST_DIR (default <repo>/build/guest, made by
tests/e2e/run.sh)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import rig as rig_module  # noqa: E402
from rig import GUEST_DIR, PATCHED_QEMU, Rig, default_lib  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def patched(monkeypatch):
    """Rigs started from this fixture run the patched QEMU, under TCG unless
    SPICE_RS_ACCEL says otherwise (no KVM probe of a new binary)."""
    monkeypatch.setattr(rig_module, "QEMU", str(PATCHED_QEMU))
    monkeypatch.setenv("SPICE_RS_ACCEL", os.environ.get("SPICE_RS_ACCEL", "tcg"))
    return PATCHED_QEMU


@pytest.fixture
def make_rig(request, tmp_path):
    """make_rig(display=..., workload=..., ...) -> started Rig, stopped at teardown."""
    if not (GUEST_DIR / "vmlinuz").exists():
        pytest.skip(f"no guest in {GUEST_DIR}: run tests/guest/build.sh {GUEST_DIR}")
    rigs = []

    def factory(start=True, **kw):
        kw.setdefault("lib", default_lib())
        r = Rig(workdir=tmp_path / f"rig{len(rigs)}", **kw)
        rigs.append(r)
        return r.start() if start else r

    yield factory
    failed = any(getattr(request.node, "rep_" + w, None) is not None and
                 getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    for r in rigs:
        if r.proc is not None:
            r.stop()
        if failed:
            print(f"\n===== rig {r.display} lib={r.lib} exit={r.returncode} logs in {r.dir}")
            print(r.tail())
