#!/usr/bin/env bash
# Builds the test guest (cached) and runs the e2e tests with Debian's python3
# (it sees python3-gi/pytest; a pyenv python3 on PATH does not).
#   tests/e2e/run.sh                         all e2e tests, our library (build/lib)
#   tests/e2e/run.sh -k foundation           extra args go to pytest
#   SPICE_RS_E2E_LIB=c tests/e2e/run.sh      the same tests against Debian's C server
#   SPICE_RS_LIB_DIR=/path tests/e2e/run.sh  another build of libspice-server.so.1
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tests/guest/build.sh build/guest
# The agent tests' Debian guest (cached). A failed build does not stop the other tests:
# test_agent.py builds it again and fails with the reason.
tests/guest-debian/build.sh build/guest-debian || echo "run.sh: the Debian guest did not build; test_agent.py will fail" >&2
exec /usr/bin/python3 -m pytest -v tests/e2e "$@"
