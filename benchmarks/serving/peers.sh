#!/usr/bin/env bash
# Creates each serving peer's own virtualenv under benchmarks/.peers/<name>/ (their pins conflict
# with each other and with learnloop's). Idempotent: a venv that is present and imports its peer
# with the right scikit-learn is left alone. Also installs `wrk` from Debian when it is missing and
# we are root (the benchmark falls back to its Python load generator otherwise).
#
#   benchmarks/serving/peers.sh            # from the repository root
#   PYTHON=python3.11 benchmarks/serving/peers.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/benchmarks/.peers"
PYTHON="${PYTHON:-python3.11}"
MAIN_PY="$ROOT/.venv/bin/python"

# One joblib model must load everywhere: every peer gets learnloop's scikit-learn version.
SKLEARN="${SKLEARN_VERSION:-$("$MAIN_PY" -c 'import sklearn; print(sklearn.__version__)')}"

MLSERVER_PKGS=("mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop==0.21.0" "scikit-learn==$SKLEARN")
# uvloop 0.21.0: with the uvloop pip picks otherwise (0.23) every MLServer inference worker dies
# at start ("There is no current event loop in thread 'MainThread'") and the model never loads.
BENTOML_PKGS=("bentoml>=1.4,<1.5" "scikit-learn==$SKLEARN")

pip_quiet() {  # pip, minus the notes about this machine's unused local index folders
    "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}

ensure_venv() {  # name, import check (python code), packages...
    local name="$1" check="$2"; shift 2
    local venv="$PEERS/$name"
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "$check" 2>/dev/null; then
        echo "peers: $name ready ($venv)"
        return
    fi
    echo "peers: installing $name into $venv: $*"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    pip_quiet "$venv/bin/python" -m pip install --quiet --upgrade pip
    pip_quiet "$venv/bin/python" -m pip install --quiet "$@"
    "$venv/bin/python" -c "$check"
    echo "peers: $name installed"
}

sk_check="import sklearn; assert sklearn.__version__ == '$SKLEARN', sklearn.__version__"
ensure_venv mlserver \
    "import mlserver, mlserver_sklearn, uvloop; assert uvloop.__version__ == '0.21.0'; $sk_check" \
    "${MLSERVER_PKGS[@]}"
ensure_venv bentoml "import bentoml; $sk_check" "${BENTOML_PKGS[@]}"

if ! command -v wrk >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "peers: installing wrk (Debian)"
        (apt-get install -y -qq wrk >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; }) ||
            echo "peers: wrk not installable; the Python load generator will be used"
    else
        echo "peers: wrk not found; the Python load generator will be used"
    fi
fi
