#!/usr/bin/env bash
# Creates Evidently's own virtualenv under benchmarks/.peers/evidently/ (its pins conflict with
# learnloop's: pandas < 3, its own pydantic and plotly). Idempotent: a venv that is present and
# imports Evidently 0.7 with pandas < 3 is left alone.
#
#   benchmarks/drift/peers.sh            # from the repository root
#   PYTHON=python3.11 benchmarks/drift/peers.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/benchmarks/.peers"
PYTHON="${PYTHON:-python3.11}"
VENV="$PEERS/evidently"
# pandas 3 breaks `import evidently` (infer_dtype_from_object); pyarrow reads the parquet inputs.
PKGS=("evidently>=0.7,<0.8" "pandas<3" "pyarrow")
CHECK="import evidently, pandas, pyarrow
assert evidently.__version__.startswith('0.7'), evidently.__version__
assert int(pandas.__version__.split('.')[0]) < 3, pandas.__version__"

export DO_NOT_TRACK=1

pip_quiet() {  # pip, minus the notes about this machine's unused local index folders
    "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "peers: evidently ready ($VENV)"
    exit 0
fi
echo "peers: installing evidently into $VENV: ${PKGS[*]}"
rm -rf "$VENV"
mkdir -p "$PEERS"
"$PYTHON" -m venv "$VENV"
pip_quiet "$VENV/bin/python" -m pip install --quiet --upgrade pip
pip_quiet "$VENV/bin/python" -m pip install --quiet "${PKGS[@]}"
"$VENV/bin/python" -c "$CHECK"
echo "peers: evidently installed"
