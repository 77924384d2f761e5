"""Test code that uses conclave with no network and no model weights.

```python
from conclave import AggregatorSpec, Consensus, ConsensusConfig, ModelSpec
from conclave.testing import FakeModel, FunctionModel, fake_registry

judge = FakeModel(default="Paris")
registry = fake_registry({
    "member-a": FakeModel(["Paris"]),
    "member-b": FunctionModel(lambda messages, options: "Paris, France."),
    "judge": judge,
})
config = ConsensusConfig(
    models=[ModelSpec(id="member-a"), ModelSpec(id="member-b")],
    aggregator=[AggregatorSpec(model=ModelSpec(id="judge"))],
    iterations=0,
)
async with Consensus(config, registry=registry) as consensus:
    transcript = await consensus.ask("What is the capital of France?")
assert transcript.answer == "Paris"
assert len(judge.history) == 1  # every fake keeps the calls it received
```

A fake is named in a config as any model is (`"member-a"`, `"openrouter:member-a"`,
`"local:member-a"`, or an entry with a `base_url`); `fake_registry` serves it in place of the
provider that model would have used.
"""

from conclave.providers.testing import (
    Answer,
    AnswerFunction,
    FakeModel,
    FakeProvider,
    FunctionModel,
    RecordedCall,
    fake_registry,
)

__all__ = [
    "Answer",
    "AnswerFunction",
    "FakeModel",
    "FakeProvider",
    "FunctionModel",
    "RecordedCall",
    "fake_registry",
]
