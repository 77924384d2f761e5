"""Grounded runs through `Consensus`, for every strategy, with fake models: the members get the
numbered passages, the consensus's citations are checked by the strongest member, and the
transcript carries the passages, the citations and the abstention."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from conclave.config import ConsensusConfig
from conclave.consensus.grounding import ABSTENTION, SOURCES_HEADER
from conclave.consensus.support import JUDGE_SYSTEM
from conclave.consensus.transcript import Transcript
from conclave.documents import add_documents
from conclave.documents.sqlite_index import SqliteLibrary
from conclave.errors import ConfigError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeProvider, FunctionModel
from conclave.session import Consensus
from conclave.types import Message, SamplingOptions
from test_engine import make_config
from test_grounding import source_and_claim

FACTS = {
    "trains.txt": "The night train to Inverness leaves London Euston at nine in the evening.",
    "bees.txt": "A honey bee queen lays up to two thousand eggs a day.",
}
TRAIN_QUESTION = "When does the night train to Inverness leave London?"


def numbered_sources(messages: Sequence[Message]) -> dict[int, str]:
    """The passages as the sources message numbers them."""
    sources = next((m.content for m in messages if m.content.startswith(SOURCES_HEADER)), "")
    return {
        int(number): text
        for number, text in re.findall(r"^\[(\d+)\] [^\n]*\n([^\n]*)", sources, re.MULTILINE)
    }


def panel_member(messages: Sequence[Message], options: SamplingOptions) -> str:
    """Answers from the passage about trains, citing it; says yes as a judge when every word
    of the claim that starts with a capital is in the source."""
    if messages[0].content == JUDGE_SYSTEM:
        source, claim = source_and_claim(messages[-1].content)
        names = re.findall(r"\b[A-Z][a-z]+\b", claim)[1:]
        return "yes" if all(name in source for name in names) else "no"
    sources = numbered_sources(messages)
    if "Peru" in messages[-1].content:
        return "The capital of Peru is Lima [1]."
    trains = next((n for n, text in sources.items() if "Euston" in text), 9)
    return f"The night train leaves London Euston at nine in the evening [{trains}]."


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "facts"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, "utf-8")
    location = tmp_path / "collections"
    add_documents(SqliteLibrary(location), "facts", [folder])
    return location


def grounded_config(library: Path, strategy: str, **documents: object) -> ConsensusConfig:
    return make_config(
        iterations=0,
        strategy=strategy,
        documents={"collection": "facts", "library": str(library), **documents},
    )


def fakes() -> dict[str, FunctionModel]:
    return {name: FunctionModel(panel_member) for name in ("a", "b", "c", "agg")}


async def ask(
    config: ConsensusConfig, question: str, models: dict[str, FunctionModel]
) -> Transcript:
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(dict(models))})
    async with Consensus(config, registry=registry) as consensus:
        return await consensus.ask(question)


@pytest.mark.parametrize("strategy", ["flare", "vote", "rank", "sample", "adaptive"])
async def test_every_strategy_answers_with_checked_citations(library: Path, strategy: str) -> None:
    models = fakes()
    transcript = await ask(grounded_config(library, strategy), TRAIN_QUESTION, models)

    retrieval = transcript.retrieval
    assert retrieval is not None
    assert retrieval.passages[0].passage.path.endswith("trains.txt")
    member_call = next(call for _, call in transcript.calls() if call.role == "member")
    sent = transcript.sent(member_call)
    assert any(message.content.startswith(SOURCES_HEADER) for message in sent)
    assert sent[-1].content == TRAIN_QUESTION  # the question itself as the user wrote it

    assert transcript.answer == "The night train leaves London Euston at nine in the evening [1]."
    assert not transcript.abstained
    [citation] = transcript.citations
    assert (citation.marker, citation.passage_id) == (1, retrieval.passages[0].passage.id)
    assert citation.path.endswith("trains.txt")
    judged = [call for _, call in transcript.calls() if call.model == "a (support judge)"]
    assert len(judged) == 1
    assert judged[0].role == "step"
    shown = json.loads(transcript.to_json())
    assert shown["citations"][0]["path"] == citation.path
    assert shown["abstained"] is False
    assert Transcript.model_validate_json(transcript.to_json()) == transcript  # stored and read


async def test_no_passage_holding_the_answer_means_an_abstention(library: Path) -> None:
    transcript = await ask(
        grounded_config(library, "vote"), "What is the capital of Peru?", fakes()
    )
    assert transcript.answer == ABSTENTION
    assert transcript.abstained
    assert transcript.citations == ()
    report = transcript.citation_report
    assert report is not None
    assert report.statements[0].status == "unsupported"


async def test_a_marker_naming_no_passage_given_is_removed(library: Path) -> None:
    models = fakes()
    models["agg"] = FunctionModel(
        lambda messages, options: "The night train leaves London Euston at nine [1][7]."
    )
    transcript = await ask(grounded_config(library, "flare"), TRAIN_QUESTION, models)
    assert transcript.answer == "The night train leaves London Euston at nine [1]."
    report = transcript.citation_report
    assert report is not None
    assert report.removed_markers == (7,)
    assert [c.marker for c in transcript.citations] == [1]


async def test_an_unknown_collection_fails_before_any_model_is_called(library: Path) -> None:
    models = fakes()
    config = make_config(documents={"collection": "nope", "library": str(library)})
    with pytest.raises(ConfigError, match=r"no document collection named 'nope'.*facts"):
        await ask(config, TRAIN_QUESTION, models)
    assert all(not model.history for model in models.values())


def test_the_config_block_may_name_the_collection_alone() -> None:
    config = make_config(documents="manual")
    assert config.documents is not None
    assert config.documents.collection == "manual"
    assert config.documents.support_check == "judge"


async def test_runs_of_the_same_question_at_once_each_find_their_passages(library: Path) -> None:
    models = {name: FunctionModel(panel_member, latency_s=0.05) for name in ("a", "b", "c")}
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(dict(models))})
    async with Consensus(grounded_config(library, "vote"), registry=registry) as consensus:
        first, second = await asyncio.gather(
            consensus.ask(TRAIN_QUESTION), consensus.ask(TRAIN_QUESTION)
        )
    assert first.citations == second.citations
    assert len(first.citations) == 1
