#!/usr/bin/env bash
# Tests of the Python client and worker against real 3-node clusters started from the
# taskswarm binary. Installs the package (with its test extras) into a virtualenv under
# $TMPDIR (or /var/tmp), then runs pytest; extra arguments go to pytest.
#   TASKSWARM_BIN          the server binary (default: the shared release build)
#   TASKSWARM_PY_VENV      the virtualenv to use (made when missing)
#   TASKSWARM_TEST_PORTS   LOW-HIGH: take node ports from this range (default: any free)
#   PYTHON                 the interpreter that makes the virtualenv (default: python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export TASKSWARM_BIN="${TASKSWARM_BIN:-/var/tmp/taskswarm-target/release/taskswarm}"
if [ ! -x "$TASKSWARM_BIN" ]; then
  echo "run-tests.sh: no taskswarm binary at $TASKSWARM_BIN (build it: cargo build --release, or set TASKSWARM_BIN)" >&2
  exit 1
fi
venv="${TASKSWARM_PY_VENV:-${TMPDIR:-/var/tmp}/taskswarm-py-venv}"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The package as a user gets it (a wheel built from this directory, not an editable
# install), so a file missing from the package fails the tests.
"$venv/bin/python" -m pip install --quiet "$here[test]"
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$here"
cd "$here"
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
