"""A consensus of shipped fakes for batch tests: it answers "answer for Q-<n>" as the scripted
upstream does, fails a conversation holding `[fail]`, and counts the questions it was asked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from conclave.config import ConsensusConfig
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.session import Consensus
from conclave.types import Message, SamplingOptions

_QUESTION = re.compile(r"Q-\d+")

CONFIG = ConsensusConfig.model_validate(
    {
        "models": [{"id": "a"}, {"id": "b"}],
        "aggregator": [{"model": {"id": "agg"}}],
        "iterations": 0,
    }
)


@dataclass
class ScriptedPanel:
    """Builds `Consensus` objects on fakes; `fail_marks` can be cleared to make rows pass."""

    latency_s: float = 0.0
    failing: bool = True
    asked: list[str] = field(default_factory=list)

    def answer(self, messages: Sequence[Message], options: SamplingOptions) -> str:
        text = "\n".join(message.content for message in messages)
        if self.failing and "[fail]" in text:
            raise ProviderHTTPError("scripted failure", status_code=400, body="")
        found = _QUESTION.search(text)
        return f"answer for {found.group() if found else 'nothing'}"

    def member(self, name: str) -> FunctionModel:
        def answer(messages: Sequence[Message], options: SamplingOptions) -> str:
            if name == "a":  # one member per question: count each question once
                self.asked.append(messages[-1].content)
            return self.answer(messages, options)

        return FunctionModel(answer, latency_s=self.latency_s)

    def consensus(self) -> Consensus:
        models: dict[str, FakeModel | FunctionModel] = {
            name: self.member(name) for name in ("a", "b", "agg")
        }
        registry = ProviderRegistry(overrides={"openrouter": FakeProvider(models)})
        return Consensus(CONFIG, registry=registry)
