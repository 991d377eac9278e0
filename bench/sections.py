"""The extra sections of `make bench` after the video rows (devices, av, sound, desktop,
links): which of their rows a run measures, and the loop that measures rows in boots of
one guest per server. One copy for all sections.

A section module has SECTION (its BENCH_ONLY key and its results' "section"), rows(),
selected(row, only) and run(only, libs); BENCH_<KEY>=0 leaves a section out.
BENCH_LIBS=c (or ours, or c,ours) runs only those servers; merging into results.json then
keeps the other server's numbers of the same rows.
"""
import os
import time
from dataclasses import dataclass, field

LIBS = ("ours", "c")


@dataclass
class Section:
    key: str           # BENCH_ONLY=key: only this section's rows; BENCH_<KEY>=0: none of them
    module: object
    quick: dict = field(default_factory=dict)  # BENCH_QUICK=1: these knobs, unless set

    @property
    def enabled(self):
        return os.environ.get(f"BENCH_{self.key.upper()}", "1") == "1"


def libs():
    """The servers this run measures (BENCH_LIBS), in the order they run."""
    got = tuple(v for v in os.environ.get("BENCH_LIBS", ",".join(LIBS)).split(",") if v)
    bad = [v for v in got if v not in LIBS]
    if bad or not got:
        raise SystemExit(f"BENCH_LIBS={','.join(got)}: a list of {', '.join(LIBS)}")
    return got


def only_for(section, only, keys):
    """What BENCH_ONLY means to `section`: None (all its rows), a regex, or False (none:
    BENCH_ONLY names another section, or the codec rows)."""
    if only is None or only == section.key:
        return None
    if only == "codecs" or only in keys:
        return False
    return only


def todo(section, only, quick, keys):
    """The rows of `section` this run measures."""
    if not section.enabled:
        return []
    mine = only_for(section, only, keys)
    if mine is False:
        return []
    if quick:
        for k, v in section.quick.items():
            os.environ.setdefault(k, v)
    return [r for r in section.module.rows() if section.module.selected(r, mine)]


def run(section, only, keys):
    return section.module.run(only_for(section, only, keys) or None, libs())


def run_boots(groups, libs, boot, measure, summary, label):
    """Measures rows in boots: `groups` {boot key: [rows]}; per key and server,
    boot(lib, key) gives a VM (with .close(), and .logs() for a failure); measure(vm, row)
    gives a row's result dict. A failed row is a result ({"error"}), and the rows after it
    get a fresh boot (a failure can leave the guest or the server stuck); a boot that
    fails fails the rows left. {(lib, row name): result}."""
    out = {}
    for key, rows in groups.items():
        for lib in libs:
            vm = None
            t0 = time.monotonic()
            try:
                for row in rows:
                    if vm is None:
                        vm = boot(lib, key)
                    try:
                        res = measure(vm, row)
                    except Exception as e:  # noqa: BLE001 (a failed row is a result)
                        res = {"error": f"{type(e).__name__}: {e}"}
                        print(vm.logs(), flush=True)
                        vm.close()
                        vm = None
                    res["lib"] = lib
                    out[(lib, row.name)] = res
                    print(f"  {row.name} [{lib}]: {summary(res)}", flush=True)
                print(f"  [{lib}] {label(key)}: {time.monotonic() - t0:.0f} s", flush=True)
            except Exception as e:  # noqa: BLE001 (the guest or the client did not come up)
                for row in rows:
                    if (lib, row.name) not in out:
                        out[(lib, row.name)] = {"lib": lib, "error": f"{type(e).__name__}: {e}"}
                        print(f"  {row.name} [{lib}]: FAILED {e}", flush=True)
            finally:
                if vm:
                    vm.close()
    return out


def script_main(doc, run):
    """The command line of a section's script run alone (`[--lib ours|c]... [--only
    REGEX]`): runs its rows, prints them as JSON; exit status 1 when a row failed."""
    import argparse
    import json
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--lib", action="append", choices=LIBS)
    p.add_argument("--only", help="rows whose name matches this regex")
    a = p.parse_args()
    res = run(a.only, tuple(a.lib or LIBS))
    print(json.dumps(res, indent=1))
    return 0 if all("error" not in r[lib] for r in res for lib in LIBS if lib in r) else 1
