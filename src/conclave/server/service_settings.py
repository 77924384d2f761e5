"""The HTTP service's own settings (keys, limits, CORS), from the environment
(`CONCLAVE_<NAME>`) or a `.env` file. Where models and keys live is `conclave.settings`.

Lists are comma-separated: `CONCLAVE_API_KEYS=key-one,key-two`,
`CONCLAVE_CORS_ORIGINS=https://app.example.com`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Who may call the service and how much one caller may ask of it.

    The defaults suit a service behind a proxy that sees a few hundred concurrent clients:
    a run holds little but its connections while the models think, so the cap on concurrent
    runs is set by what the upstream providers allow, not by this process.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONCLAVE_", env_file=".env", extra="ignore", frozen=True
    )

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Bearer keys accepted on every route but `/health`, the page and the API docs. Without
    any, only callers on this machine are served (unless `allow_unauthenticated`)."""

    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser origins allowed to call the service; `*` allows any (without credentials)."""

    max_body_bytes: int = Field(default=1_000_000, gt=0)
    """Largest request body accepted (413 above it)."""

    max_prompt_chars: int = Field(default=100_000, gt=0)
    """Most characters of message content in one request (400 above it)."""

    max_messages: int = Field(default=200, gt=0)
    """Most messages in one conversation (400 above it)."""

    max_concurrent_runs: int = Field(default=256, gt=0)
    """Consensus runs in flight at once; a request beyond it is answered 429."""

    rate_limit_per_minute: int = Field(default=0, ge=0)
    """Requests one API key (or, without keys, one client address) may send per minute, in
    bursts of at most as many; beyond it a 429 with Retry-After. 0: no per-key limit."""

    allow_unauthenticated: bool = False
    """Serve anyone who reaches the port with no API keys: without it, a server with no keys
    refuses to listen beyond loopback, and answers only callers on this machine."""

    retry_after_s: int = Field(default=1, ge=0)
    """What the Retry-After header of a 429 says."""

    transcripts_kept: int = Field(default=1000, ge=0)
    """With the run store disabled (`CONCLAVE_STORE_ENABLED=false`), how many recent runs this
    process keeps in memory for `GET /v1/transcripts`."""

    transcripts_max_bytes: int = Field(default=200_000_000, gt=0)
    """At most this much text of recent transcripts is kept in memory (the oldest go first)."""

    request_head_timeout_s: float = Field(default=10.0, gt=0)
    """A request's headers must arrive whole within this many seconds of the connection
    opening (or of the previous response), else the connection is closed."""

    request_body_timeout_s: float = Field(default=30.0, gt=0)
    """A request's body must arrive whole within this many seconds of its headers, else the
    answer is a 408 and the connection is closed."""

    response_write_timeout_s: float = Field(default=30.0, gt=0)
    """A client that lets a response back up (it reads too slowly) must catch up within this
    many seconds, else its connection is dropped."""

    keepalive_s: float = Field(default=15.0, gt=0)
    """Seconds between SSE keep-alive comments while a stream waits for the models."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("api_keys")
    @classmethod
    def _keys_not_trivial(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for key in value:
            if len(key.get_secret_value()) < 8:
                raise ValueError("every API key must be at least 8 characters long")
        return value


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value
