"""A real PostgreSQL server for the tests, from Debian's `postgresql` package: `initdb` into a
temporary directory and `pg_ctl start` on 127.0.0.1 and a free port, as a non-root user
(PostgreSQL refuses to run as root: as root, the tests run it as the package's `postgres`)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

INSTALL_HINT = "install Debian's postgresql package (listed in requirements/apt-test.txt)"


def postgres_bin() -> Path | None:
    """The newest PostgreSQL's bin directory (Debian keeps it off PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextmanager
def running_postgres(bin_dir: Path) -> Iterator[str]:
    """Start a throwaway server; yields its URL (database `postgres`, user `conclave`)."""
    workdir = Path(tempfile.mkdtemp(prefix="conclave-pg-"))
    run_as = _unprivileged_user()
    if run_as is not None:
        os.chown(workdir, run_as.pw_uid, run_as.pw_gid)
    data, log = workdir / "data", workdir / "server.log"
    port = _free_port()
    try:
        _run(run_as, [str(bin_dir / "initdb"), "-D", str(data), "-U", "conclave",
                      "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off"
        _run(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
                      "-w", "-t", "60", "start"])  # fmt: skip
        try:
            yield f"postgresql://conclave@127.0.0.1:{port}/postgres"
        finally:
            _run(
                run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _run(user: pwd.struct_passwd | None, command: list[str]) -> None:
    prefix = ["runuser", "-u", user.pw_name, "--"] if user is not None else []
    result = subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no `postgres` or `nobody` user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0
