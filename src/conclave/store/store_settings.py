"""Where runs are kept and for how long, from the environment (`CONCLAVE_STORE_<NAME>`).

`CONCLAVE_STORE_URL` names the database: empty means a SQLite file under `CONCLAVE_HOME`
(`runs.db`); `sqlite:///path/to/file.db` another file; `postgresql://user:pass@host:5432/db` a
PostgreSQL server (through the psycopg driver). `CONCLAVE_STORE_ENABLED=false` keeps nothing
on disk: the service then holds its recent runs in memory only, as before the store existed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from conclave.errors import ConfigError

DATABASE_FILE = "runs.db"


class StoreSettings(BaseSettings):
    """The run store's database and retention."""

    model_config = SettingsConfigDict(
        env_prefix="CONCLAVE_STORE_", env_file=".env", extra="ignore", frozen=True
    )

    enabled: bool = True
    """Keep runs in the database (false: in memory only, lost on restart)."""

    url: SecretStr | None = None
    """The database URL (a secret: it may carry a password); empty: SQLite under the home."""

    max_age_days: float = Field(default=90.0, gt=0)
    """Runs older than this are deleted."""

    max_mb: float = Field(default=1024.0, gt=0)
    """When the kept transcripts exceed this many megabytes, the oldest are deleted."""

    def database_url(self, home: Path) -> str:
        """The SQLAlchemy URL of the database (the psycopg driver for PostgreSQL)."""
        if self.url is None or not self.url.get_secret_value().strip():
            return f"sqlite:///{home / DATABASE_FILE}"
        url = self.url.get_secret_value().strip()
        scheme, separator, rest = url.partition("://")
        if not separator:
            raise ConfigError(
                "CONCLAVE_STORE_URL must be a database URL such as sqlite:///path/runs.db or "
                "postgresql://user:password@host:5432/conclave"
            )
        if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
            return f"postgresql+psycopg://{rest}"
        if scheme == "sqlite":
            return url
        raise ConfigError(
            f"CONCLAVE_STORE_URL: unsupported database {scheme!r}; use sqlite:///... or "
            "postgresql://..."
        )

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)
