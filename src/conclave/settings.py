"""Settings from the environment (and a `.env` file in the working directory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "conclave"


class Settings(BaseSettings):
    """Where conclave finds keys and keeps its files. Every field reads `CONCLAVE_<NAME>`
    except the OpenRouter key, which keeps its usual name `OPENROUTER_API_KEY`."""

    model_config = SettingsConfigDict(
        env_prefix="CONCLAVE_", env_file=".env", extra="ignore", frozen=True
    )

    openrouter_api_key: SecretStr | None = Field(default=None, alias="OPENROUTER_API_KEY")
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    app_url: str = "https://github.com/conclave-ai/conclave"
    app_title: str = "conclave"
    home: Path = Field(default_factory=_default_home)
    threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), gt=0)
    local_replicas: int = Field(default=1, ge=1, le=8)
    """Instances of one embedded model that may answer at once (a swarm's parallel steps on
    one model); each costs the model's size in memory."""
    max_retries: int = Field(default=2, ge=0)
    attestation: Literal["none", "simulated", "confidential-space"] = "none"
    """What vouches for receipts: nothing (the transcript hash only), a simulated TEE (a
    development key kept under `home`), or the Confidential Space launcher."""
    attestation_audience: str = "conclave-receipt"
    """The audience attestation tokens are requested for, and checked against."""

    @property
    def models_dir(self) -> Path:
        """Where embedded model files are assembled."""
        return self.home / "models"
