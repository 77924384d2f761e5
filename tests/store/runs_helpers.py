"""Real transcripts for the store's tests: the engine run on the shipped fakes."""

from __future__ import annotations

from collections.abc import Sequence

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import build_panel
from conclave.consensus.transcript import Transcript
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message


def panel_config(name: str = "panel") -> ConsensusConfig:
    return ConsensusConfig.model_validate(
        {
            "name": name,
            "models": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
            "aggregator": [{"model": {"id": "agg"}}],
            "iterations": 1,
        }
    )


async def run_consensus(
    conversation: Sequence[Message] | str,
    *,
    answer: str = "Paris is the capital of France.",
    failing_member: bool = False,
    name: str = "panel",
) -> Transcript:
    """One real run of the engine: members a, b, c (b failing when asked), aggregator agg."""
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(default="Paris."),
        "b": FakeModel(
            default=ProviderHTTPError("b: HTTP 503 upstream down", status_code=503)
            if failing_member
            else "Paris, France."
        ),
        "c": FakeModel(default="It is Paris."),
        "agg": FakeModel(default=answer),
    }
    config = panel_config(name)
    engine = ConsensusEngine(
        config, build_panel(config, ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)}))
    )
    messages = (
        [Message(role="user", content=conversation)]
        if isinstance(conversation, str)
        else list(conversation)
    )
    return await engine.run_to_end(messages)
