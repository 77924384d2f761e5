"""The call cache: deterministic calls are computed once, across set-ups and runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conclave.evaluation.cache import CachingProvider, CallCache, metered
from conclave.evaluation.dataset import load_dataset
from conclave.evaluation.evaluate import EvaluationRun
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import plan_setups
from conclave.providers.base import ProviderCapabilities
from conclave.providers.testing import FakeProvider, FunctionModel
from conclave.types import Message, SamplingOptions

from .fakes import fake_models, fake_registry, panel_config, write_capitals


async def _evaluate(
    tmp_path: Path, models: dict[str, FunctionModel], *, temperature: float = 0.0
) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl"))
    config = panel_config(temperature=temperature)
    setups = plan_setups([(config.name, config)], ["flare"])
    registry = fake_registry(models)
    await EvaluationRun(out_dir=tmp_path / "out").run([dataset], setups, Scorers(), registry)


async def test_a_members_round_zero_answer_is_computed_once_for_every_set_up(
    tmp_path: Path,
) -> None:
    models = fake_models()
    await _evaluate(tmp_path, models)
    # 4 rows: alone (4 calls) and in the consensus (round 0 reused, round 1 new: 4 calls)
    assert len(models["strong"].history) == 8
    assert len(models["weak"].history) == 8


async def test_calls_that_are_not_deterministic_are_never_reused(tmp_path: Path) -> None:
    models = fake_models()
    await _evaluate(tmp_path, models, temperature=0.7)
    assert len(models["strong"].history) == 12


async def test_a_new_run_reuses_the_cached_calls(tmp_path: Path) -> None:
    await _evaluate(tmp_path, fake_models())
    (tmp_path / "out" / "results.jsonl").unlink()  # results gone, the cache kept
    again = fake_models()
    await _evaluate(tmp_path, again)
    assert [len(model.history) for model in again.values()] == [0, 0, 0]
    assert (tmp_path / "out" / "results.jsonl").read_text().count("\n") == 12


async def test_identical_calls_running_at_once_are_computed_once() -> None:
    model = FunctionModel(lambda messages, options: "Lima", latency_s=0.05)
    provider = CachingProvider(FakeProvider({"m": model}), CallCache(), where="fake")
    question = [Message(role="user", content="Capital of Peru?")]
    options = SamplingOptions(temperature=0.0)
    with metered() as meter:
        answers = await asyncio.gather(
            *(provider.complete("m", question, options) for _ in range(3))
        )
    assert [a.text for a in answers] == ["Lima"] * 3
    assert len(model.history) == 1
    assert (meter.calls, meter.cached_calls) == (3, 2)
    assert meter.model_s >= 3 * 0.05  # cached answers count the time they took once


def test_the_cache_keeps_what_the_backend_can_report() -> None:
    """adaptive asks for token probabilities only from a backend that reports them; behind the
    cache, the embedded models still say they do."""

    class Reporting(FakeProvider):
        capabilities = ProviderCapabilities(token_probabilities=True, embedded=True)

    wrapped = CachingProvider(Reporting({}), CallCache(), where="local:")
    assert wrapped.capabilities.token_probabilities
