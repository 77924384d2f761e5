"""The store's tests run against both databases: a SQLite file and a real PostgreSQL server
(started once per session by the test run itself, see `postgres.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.conftest import serve  # noqa: F401  (the real-uvicorn server fixture, shared)
from test_cli import fakes  # noqa: F401  (the embedded preset's models, as fakes)

from .postgres import INSTALL_HINT, fresh_database, postgres_bin, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail(f"PostgreSQL is needed for the store's tests: {INSTALL_HINT}", pytrace=False)
    with running_postgres(bin_dir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    server: str = request.getfixturevalue("postgres_server")
    return fresh_database(server)
