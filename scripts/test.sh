#!/usr/bin/env bash
# Sets up .venv with the test tools, then runs every check: ruff (lint and format), mypy (strict),
# and the whole pytest suite, the tests on the real embedded models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/system-packages.sh requirements/apt-test.txt
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy (strict)"
.venv/bin/mypy
echo "==> pytest (the embedded-model tests are required: a missing model fails, never skips)"
export CONCLAVE_REQUIRE_EMBEDDED=1
.venv/bin/python -m pytest "$@"
