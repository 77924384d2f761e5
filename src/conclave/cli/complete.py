"""`conclave complete`: a plain completion from one model, streamed to stdout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from conclave.cli import common
from conclave.cli.common import SystemOption, checked, conversation, err, out, run
from conclave.config import ModelSpec
from conclave.types import Message, TextDelta


def register(app: typer.Typer) -> None:
    app.command()(complete)


def complete(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt.")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="local:<pack>, openrouter:<slug>, a bare OpenRouter slug, or "
            "the model name at --base-url.",
        ),
    ],
    system: SystemOption = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    base_url: Annotated[
        str | None, typer.Option(help="Any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="The environment variable holding --base-url's key.")
    ] = None,
) -> None:
    """Plain completion from one model, streamed to stdout."""
    spec = checked(
        lambda: ModelSpec(
            id=model,
            max_tokens=max_tokens,
            temperature=temperature,
            base_url=base_url,
            api_key_env=api_key_env,
        )
    )
    run(_complete(spec, conversation(prompt, system)))


async def _complete(spec: ModelSpec, messages: Sequence[Message]) -> None:
    registry = common.make_registry()
    try:
        provider = registry.provider_for(spec)
        async for item in provider.stream(spec.model_name, messages, spec.sampling):
            if isinstance(item, TextDelta):
                out.print(item.text, end="", markup=False)
            else:
                out.print()
                if item.truncated:
                    err.print("(stopped at --max-tokens)", style="yellow")
    finally:
        await registry.aclose()
