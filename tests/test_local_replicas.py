"""Several instances of one embedded model: calls to the model that would queue behind each
other get an instance of their own (up to `replicas`), each loaded only when needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conclave.providers.local import LocalProvider
from conclave.types import Message, SamplingOptions

QUESTION = [Message(role="user", content="Name a colour.")]
SHORT = SamplingOptions(max_tokens=8, temperature=0.0)


@pytest.mark.embedded
@pytest.mark.parametrize(("replicas", "instances"), [(1, 1), (2, 2), (3, 2)])
async def test_calls_at_once_to_one_model_get_instances_up_to_replicas(
    models_dir: Path, embedded_models: dict[str, Path], replicas: int, instances: int
) -> None:
    provider = LocalProvider(models_dir=models_dir, n_threads=2, replicas=replicas)
    try:
        answers = await asyncio.gather(
            *(provider.complete("smollm2-135m", QUESTION, SHORT) for _ in range(2))
        )
        assert provider.loaded_instances() == {"smollm2-135m": instances}
        assert all(answer.text.strip() for answer in answers)
        await provider.complete("smollm2-135m", QUESTION, SHORT)  # alone: no new instance
        assert provider.loaded_instances() == {"smollm2-135m": instances}
    finally:
        await provider.aclose()


def test_replicas_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replicas must be at least 1, not 0"):
        LocalProvider(models_dir=tmp_path, n_threads=1, replicas=0)
