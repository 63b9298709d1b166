#!/usr/bin/env bash
# Creates pyBKT's own virtualenv under benchmarks/.peers/pybkt/ for the knowledge-tracing peer
# run (benchmarks/kt/pybkt_runner.py). Idempotent: a venv that is present, imports pyBKT and holds
# its compiled E-step extension is left alone.
#
#   benchmarks/kt/peers.sh               # from the repository root
#   PYTHON=python3.11 benchmarks/kt/peers.sh
#
# Install traps: a plain `pip install pyBKT` yields a pure-Python build (~480x slower), because
# its setup.py silently falls back when the C++ extension cannot be built. The extension needs
# numpy present at build time, hence --no-build-isolation after installing the build deps.
# pyBKT 1.4.3 fails at import with scikit-learn >= 1.8; pandas 3 is untested with it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/benchmarks/.peers"
PYTHON="${PYTHON:-python3.11}"
VENV="$PEERS/pybkt"
DEPS=("numpy" "pandas<3" "scikit-learn<1.8" "setuptools" "wheel")
PYBKT="pyBKT==1.4.3"
CHECK="import glob, os, pyBKT
from pyBKT.models import Model
so = glob.glob(os.path.join(os.path.dirname(pyBKT.__file__), 'fit', 'E_step*.so'))
assert so, 'pyBKT has no compiled E_step extension (pure-Python fallback build)'"

export DO_NOT_TRACK=1

pip_quiet() {  # pip, minus the notes about this machine's unused local index folders
    "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "peers: pybkt ready ($VENV)"
    exit 0
fi
echo "peers: installing pybkt into $VENV: ${DEPS[*]}, then $PYBKT from source (compiles C++)"
rm -rf "$VENV"
mkdir -p "$PEERS"
"$PYTHON" -m venv "$VENV"
pip_quiet "$VENV/bin/python" -m pip install --quiet --upgrade pip
pip_quiet "$VENV/bin/python" -m pip install --quiet "${DEPS[@]}"
pip_quiet "$VENV/bin/python" -m pip install --quiet --no-build-isolation --no-binary pyBKT "$PYBKT"
"$VENV/bin/python" -c "$CHECK"
echo "peers: pybkt installed"
