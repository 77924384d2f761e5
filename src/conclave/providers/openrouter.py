"""OpenRouter: an OpenAI-compatible provider plus its own endpoints and conventions.

What OpenRouter adds to the base provider: app attribution headers, usage accounting
(`usage.cost` in US dollars), a public model list with context lengths and per-token prices,
and the account endpoints `/credits` and `/key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import httpx2
from pydantic import BaseModel, ConfigDict

from conclave.errors import MissingCredentialsError
from conclave.providers.openai_compat import OpenAICompatibleProvider
from conclave.types import ModelInfo

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"

MISSING_KEY_MESSAGE = (
    "OpenRouter needs an API key and OPENROUTER_API_KEY is not set. Create a key at "
    "https://openrouter.ai/keys, then `export OPENROUTER_API_KEY=sk-or-...` "
    "(or put OPENROUTER_API_KEY=... in a .env file in the working directory)."
)


def attribution_headers(app_url: str, app_title: str) -> dict[str, str]:
    """The headers that credit requests to this app in OpenRouter's rankings.

    `X-OpenRouter-Title` is the current name of the title header; `X-Title` is its older name,
    still read, and is sent as well for deployments that know only that one."""
    return {"HTTP-Referer": app_url, "X-OpenRouter-Title": app_title, "X-Title": app_title}


class _OpenRouterRecord(BaseModel):
    """A frozen value read from OpenRouter; fields OpenRouter adds later are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class OpenRouterCredits(_OpenRouterRecord):
    """The account's credits in US dollars (`GET /credits`)."""

    total_credits: float
    total_usage: float

    @property
    def remaining(self) -> float:
        """Credits left to spend."""
        return self.total_credits - self.total_usage


class OpenRouterRateLimit(_OpenRouterRecord):
    """A request-rate limit: `requests` per `interval` (such as "10s")."""

    requests: int
    interval: str


class OpenRouterKeyInfo(_OpenRouterRecord):
    """The API key in use (`GET /key`). Amounts are US dollars; a `None` limit is no limit."""

    label: str
    usage: float
    limit: float | None = None
    limit_remaining: float | None = None
    limit_reset: str | None = None
    is_free_tier: bool = False
    rate_limit: OpenRouterRateLimit | None = None


class OpenRouterProvider(OpenAICompatibleProvider):
    """Models on OpenRouter. Listing models needs no key; every other call does."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = OPENROUTER_BASE_URL,
        app_url: str = "https://github.com/conclave-ai/conclave",
        app_title: str = "conclave",
        max_retries: int = 2,
        timeout_s: float = 120.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            name="openrouter",
            default_headers=attribution_headers(app_url, app_title),
            max_retries=max_retries,
            timeout_s=timeout_s,
            http_client=http_client,
        )

    async def list_models(self) -> list[ModelInfo]:
        """Every model OpenRouter offers, with context length and USD price per token."""
        listing = await self._get("/models", _ModelList)
        return [entry.to_model_info(self.name) for entry in listing.data]

    async def credits(self) -> OpenRouterCredits:
        """Credits bought and used on the account (OpenRouter may require a management key)."""
        self._require_key()
        return (await self._get("/credits", _Envelope[OpenRouterCredits])).data

    async def key_info(self) -> OpenRouterKeyInfo:
        """Usage, spending limit, tier and rate limit of the key in use."""
        self._require_key()
        return (await self._get("/key", _Envelope[OpenRouterKeyInfo])).data

    def _require_key(self) -> None:
        if not self._api_key:
            raise MissingCredentialsError(MISSING_KEY_MESSAGE)

    def _chat_extra_body(self) -> Mapping[str, object]:
        # OpenRouter reports usage and cost on every answer and ignores this switch; it is
        # kept so that older deployments and OpenRouter-compatible gateways still send the cost.
        return {"usage": {"include": True}}


_Data = TypeVar("_Data", bound=BaseModel)


class _Envelope(BaseModel, Generic[_Data]):
    """OpenRouter wraps account documents as `{"data": ...}`."""

    model_config = ConfigDict(extra="ignore")

    data: _Data


class _Pricing(BaseModel):
    """USD per token, sent as decimal strings; a negative price means "varies" (routers)."""

    model_config = ConfigDict(extra="ignore")

    prompt: float | None = None
    completion: float | None = None


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""
    description: str = ""
    context_length: int | None = None
    pricing: _Pricing = _Pricing()

    def to_model_info(self, provider: str) -> ModelInfo:
        return ModelInfo(
            id=self.id,
            name=self.name or self.id,
            provider=provider,
            context_length=self.context_length,
            prompt_price_usd=_known_price(self.pricing.prompt),
            completion_price_usd=_known_price(self.pricing.completion),
            description=self.description,
        )


class _ModelList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: tuple[_ModelEntry, ...]


def _known_price(price: float | None) -> float | None:
    return price if price is not None and price >= 0 else None
