"""`conclave models` (the embedded packs and OpenRouter's catalogue) and `conclave credits`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conclave.cli import common
from conclave.cli.common import err, fail, out, run
from conclave.errors import ConclaveError


def register(app: typer.Typer) -> None:
    app.command()(models)
    app.command()(credits)


def models(
    free: Annotated[bool, typer.Option("--free", help="Only OpenRouter's free models.")] = False,
    local: Annotated[bool, typer.Option("--local", help="Only the embedded models.")] = False,
    search: Annotated[str | None, typer.Option(help="Only ids containing this text.")] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Prepare the default embedded packs now: join and sha256-check them."
        ),
    ] = False,
) -> None:
    """The embedded model packs (and whether installed) and OpenRouter's models with prices."""
    if verify:
        _verify_default_packs()
    run(_models(free=free, local_only=local, search=search))


def credits() -> None:
    """OpenRouter credits and the key's limits (needs OPENROUTER_API_KEY)."""
    run(_credits())


async def _models(*, free: bool, local_only: bool, search: str | None) -> None:
    registry = common.make_registry()
    try:
        packs = Table("embedded model", "installed", "about", title="Embedded models (local:)")
        for info in await registry.local().list_models():
            installed = "[green]yes[/]" if info.installed else "[red]no[/]"
            packs.add_row(f"local:{info.id}", installed, escape(info.description))
        out.print(packs)
        if local_only:
            return
        listed = await registry.openrouter().list_models()
        table = Table("OpenRouter model", "context", "$/M input", "$/M output", title="OpenRouter")
        for info in listed:
            if (free and not info.free) or (search and search.lower() not in info.id.lower()):
                continue
            table.add_row(
                info.id,
                f"{info.context_length:,}" if info.context_length else "?",
                _per_million(info.prompt_price_usd),
                _per_million(info.completion_price_usd),
            )
        out.print(table)
    finally:
        await registry.aclose()


def _verify_default_packs() -> None:
    from conclave.providers.packs import DEFAULT_PACKS, resolve_pack
    from conclave.settings import Settings

    models_dir = Settings().models_dir
    for name in DEFAULT_PACKS:
        try:
            path = resolve_pack(name, models_dir)
        except ConclaveError as exc:
            fail(str(exc))
        err.print(f"local:{name}: sha256 verified ({path})", markup=False)


async def _credits() -> None:
    registry = common.make_registry()
    try:
        openrouter = registry.openrouter()
        credits_, key = await asyncio.gather(openrouter.credits(), openrouter.key_info())
        out.print(f"credits bought: ${credits_.total_credits:,.4f}", markup=False)
        out.print(f"credits used:   ${credits_.total_usage:,.4f}", markup=False)
        out.print(f"remaining:      ${credits_.remaining:,.4f}", markup=False)
        limit = "none" if key.limit is None else f"${key.limit:,.4f}"
        out.print(f"key {key.label!r}: limit {limit}, used ${key.usage:,.4f}", markup=False)
    finally:
        await registry.aclose()


def _per_million(price: float | None) -> str:
    return "?" if price is None else f"{price * 1_000_000:,.2f}"
