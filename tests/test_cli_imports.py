"""The command line starts light: `conclave ask` and its siblings do not load the web stack."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("fastapi", "starlette", "uvicorn", "ray", "llama_cpp")


def test_importing_the_cli_leaves_the_web_stack_and_ray_unloaded() -> None:
    code = f"import sys, conclave.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
