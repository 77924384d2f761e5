"""`conclave config check FILE` and `conclave config show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conclave.cli import common
from conclave.cli.common import fail, out, run
from conclave.config import ConsensusConfig, load_config
from conclave.errors import ConclaveError
from conclave.presets import embedded_config
from conclave.session import Consensus

config_app = typer.Typer(no_args_is_help=True, help="Check and show consensus configs.")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="The config file.")]) -> None:
    """Validate a config: exit 0 if valid, 1 with every problem named if not (an unknown or
    uninstalled embedded model, or an `api_key_env` that is not set, included)."""
    from conclave.providers.readiness import check_embedded_models
    from conclave.settings import Settings

    try:
        config = load_config(file)
        check_embedded_models(config, Settings().models_dir, source=str(file))
    except ConclaveError as exc:
        fail(str(exc))
    run(_wire(config))
    aggregator = config.aggregator_spec.model.id
    out.print(
        f"{file}: valid: {len(config.models)} models, aggregator {aggregator}, "
        f"{config.iterations} improvement round(s), quorum {config.quorum}",
        markup=False,
    )


@config_app.command("show")
def config_show() -> None:
    """Print the embedded default config, a starting point for your own."""
    out.print(embedded_config().model_dump_json(indent=2, exclude_defaults=True), markup=False)


async def _wire(config: ConsensusConfig) -> None:
    """Bind the config's models to their providers as `ask` and `serve` do, so that what
    stops them (a key variable that is not set) stops the check with the same message."""
    async with Consensus(config, registry=common.make_registry()):
        pass
