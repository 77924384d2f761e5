"""The retrieval step and the citation check, with fake models: passages given numbered,
markers naming no passage removed, unsupported sentences dropped, marked or re-cited,
abstention, and ALCE's citation recall and precision."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from conclave.config import DocumentsOptions, ModelSpec
from conclave.consensus.answers import Question
from conclave.consensus.calls import ModelCalls
from conclave.consensus.citations import (
    Passage,
    RetrievalReport,
    alce_scores,
    read_statements,
    without_markers,
)
from conclave.consensus.grounding import (
    ABSTENTION,
    GENERAL_KNOWLEDGE_MARK,
    UNSUPPORTED_MARK,
    Grounding,
)
from conclave.consensus.health import MemberHealth
from conclave.consensus.panel import Member
from conclave.consensus.support import missing_exact_term
from conclave.consensus.transcript import CallRecord
from conclave.documents import add_documents
from conclave.documents.extension import CollectionFinder
from conclave.documents.sqlite_index import SqliteLibrary
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Completion, Message, SamplingOptions

FACTS = {
    "bread.txt": "Sourdough rises with wild yeast over twelve hours.",
    "bees.txt": "A honey bee queen lays up to two thousand eggs a day.",
    "trains.txt": "The night train to Inverness leaves London Euston at nine in the evening.",
}


def source_and_claim(asked: str) -> tuple[str, str]:
    """The source and the claim of a support judge's question."""
    found = re.match(r"Source:\n(.*?)\n\nClaim: (.*?)\n\n", asked, re.DOTALL)
    assert found is not None, asked
    claim = re.sub(r'^The answer to the question ".*?" is: ', "", found.group(2))
    return found.group(1), claim


def judge_by_words(messages: Sequence[Message], options: SamplingOptions) -> str:
    """A judge that says yes when every number and capitalised word of the claim is in the
    source (enough to tell the facts above apart)."""
    source, claim = source_and_claim(messages[-1].content)
    wanted = re.findall(r"\b(?:[A-Z][a-z]+|\d+|twelve|thousand|nine)\b", claim)
    return "yes" if all(word in source for word in wanted[1:] or wanted) else "no"


@pytest.fixture
def collection(tmp_path: Path) -> SqliteLibrary:
    folder = tmp_path / "facts"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, "utf-8")
    library = SqliteLibrary(tmp_path / "collections")
    add_documents(library, "facts", [folder])
    return library


def grounding_with(
    library: SqliteLibrary,
    judge: FakeModel | FunctionModel | None = None,
    **options: object,
) -> Grounding:
    member = None
    if judge is not None:
        provider = FakeProvider({"judge": judge})
        member = Member(spec=ModelSpec(id="judge"), provider=provider, label="judge")
    return Grounding(
        DocumentsOptions.model_validate({"collection": "facts", **options}),
        CollectionFinder(library.open("facts"), "bm25"),
        judge=member,
        calls=ModelCalls(MemberHealth(), timeout_s=5.0),
    )


async def retrieval_for(grounding: Grounding, question: str) -> RetrievalReport:
    return await grounding.retrieve([Message(role="user", content=question)])


def number_of(retrieval: RetrievalReport, name: str) -> int:
    return next(p.number for p in retrieval.passages if p.passage.path.endswith(name))


async def test_the_passages_go_numbered_before_the_question(collection: SqliteLibrary) -> None:
    grounding = grounding_with(collection)
    conversation = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="When does the night train to Inverness leave?"),
    ]
    retrieval = await grounding.retrieve(conversation)
    assert retrieval.passages[0].passage.path.endswith("trains.txt")
    grounded = grounding.conversation(conversation, retrieval)
    assert [m.role for m in grounded] == ["system", "system", "user"]
    assert grounded[-1] == conversation[-1]  # the question itself is left as it was
    assert "[1] trains\nThe night train to Inverness" in grounded[1].content
    assert "in square brackets" in grounded[1].content
    assert "for example" in grounded[1].content


async def test_a_supported_answer_keeps_its_citation(collection: SqliteLibrary) -> None:
    judge = FunctionModel(judge_by_words)
    grounding = grounding_with(collection, judge)
    retrieval = await retrieval_for(grounding, "How long does sourdough take to rise?")
    n = number_of(retrieval, "bread.txt")
    checked = await grounding.check(retrieval, f"Sourdough rises over twelve hours [{n}].")
    assert checked.answer == f"Sourdough rises over twelve hours [{n}]."
    report = checked.report
    assert not report.abstained
    [citation] = report.citations
    assert citation.marker == n
    assert citation.path.endswith("bread.txt")
    assert citation.uri.startswith("file:///")
    assert "#char=0," in citation.uri
    assert checked.answer[citation.answer_start : citation.answer_end] == f"[{n}]"
    assert report.returned is not None
    assert report.returned.recall == 1.0
    assert report.checks == ("markers", "support:judge:judge (support judge)")
    assert [call.role for call in checked.calls] == ["step"]
    assert judge.history[0].options.max_tokens == 1  # a one-word, constrained reply
    assert judge.history[0].options.temperature == 0.0


async def test_a_marker_naming_no_passage_is_removed(collection: SqliteLibrary) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words))
    retrieval = await retrieval_for(grounding, "How many eggs does a queen bee lay?")
    n = number_of(retrieval, "bees.txt")
    checked = await grounding.check(retrieval, f"A queen lays two thousand eggs a day [{n}][9].")
    assert "[9]" not in checked.answer
    assert checked.report.removed_markers == (9,)
    assert [c.marker for c in checked.report.citations] == [n]
    assert checked.report.written is not None
    assert checked.report.written.recall == 0.0
    assert checked.report.returned is not None
    assert checked.report.returned.recall == 1.0


async def test_an_unsupported_sentence_is_dropped_or_marked(collection: SqliteLibrary) -> None:
    retrieval = await retrieval_for(grounding_with(collection), "sourdough bread rise")
    n = number_of(retrieval, "bread.txt")
    answer = f"Sourdough rises over twelve hours [{n}]. It was invented in Paris in 1850 [{n}]."
    dropped = await grounding_with(collection, FunctionModel(judge_by_words)).check(
        retrieval, answer
    )
    assert dropped.answer == f"Sourdough rises over twelve hours [{n}]."
    assert [s.action for s in dropped.report.statements] == ["kept", "dropped"]
    assert dropped.report.written is not None
    assert dropped.report.written.recall == 0.5
    marked = await grounding_with(
        collection, FunctionModel(judge_by_words), unsupported="mark"
    ).check(retrieval, answer)
    assert marked.answer.endswith(f"It was invented in Paris in 1850. {UNSUPPORTED_MARK}")
    assert marked.report.returned is not None
    assert marked.report.returned.recall == 0.5


async def test_a_wrong_citation_is_replaced_by_the_supporting_passage(
    collection: SqliteLibrary,
) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words))
    retrieval = await grounding.retrieve(
        [Message(role="user", content="bee queen eggs and sourdough")]
    )
    bees, bread = number_of(retrieval, "bees.txt"), number_of(retrieval, "bread.txt")
    checked = await grounding.check(retrieval, f"A queen lays two thousand eggs a day [{bread}].")
    assert checked.answer == f"A queen lays two thousand eggs a day [{bees}]."
    assert checked.report.statements[0].status == "recited"


async def test_the_passage_members_cited_is_tried_first(collection: SqliteLibrary) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words))
    retrieval = await grounding.retrieve([Message(role="user", content="train bee bread")])
    trains = number_of(retrieval, "trains.txt")
    members = [
        CallRecord(model=name, text=f"The train leaves Euston at nine [{trains}].")
        for name in ("a", "b")
    ]
    checked = await grounding.check(
        retrieval, "The night train leaves Euston at nine.", member_answers=members
    )
    assert checked.answer == f"The night train leaves Euston at nine [{trains}]."
    assert checked.report.statements[0].members == ("a", "b")


async def test_not_in_the_documents_is_an_abstention(collection: SqliteLibrary) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words))
    retrieval = await retrieval_for(grounding, "What is the capital of Peru?")
    said = await grounding.check(retrieval, "The documents do not mention the capital of Peru.")
    assert said.answer == ABSTENTION
    assert said.report.abstained
    assert said.calls == ()  # nothing to judge
    unsupported = await grounding.check(retrieval, "The capital of Peru is Lima [1].")
    assert unsupported.answer == ABSTENTION
    assert unsupported.report.abstained
    assert unsupported.report.citations == ()


async def test_general_knowledge_is_returned_marked_when_allowed(
    collection: SqliteLibrary,
) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words), general_knowledge=True)
    retrieval = await retrieval_for(grounding, "What is the capital of Peru?")
    checked = await grounding.check(retrieval, f"{ABSTENTION} The capital of Peru is Lima.")
    assert not checked.report.abstained
    assert checked.report.general_knowledge
    assert checked.answer == f"{ABSTENTION} The capital of Peru is Lima. {GENERAL_KNOWLEDGE_MARK}"


async def test_the_judges_token_probability_decides(collection: SqliteLibrary) -> None:
    unsure = Completion(model="judge", text="Yes", token_probability=0.4)
    grounding = grounding_with(collection, FakeModel(default=unsure), support_threshold=0.5)
    retrieval = await retrieval_for(grounding, "sourdough")
    checked = await grounding.check(retrieval, "Sourdough rises over twelve hours [1].")
    verdict = checked.report.statements[0].verdict
    assert verdict is not None
    assert verdict.probability == 0.4
    assert not verdict.supported
    assert checked.report.abstained
    sure_no = Completion(model="judge", text="No", token_probability=0.9)
    grounding = grounding_with(collection, FakeModel(default=sure_no))
    checked = await grounding.check(retrieval, "Sourdough rises over twelve hours [1].")
    verdict = checked.report.statements[0].verdict
    assert verdict is not None
    assert verdict.probability == pytest.approx(0.1)
    # a "no" is never support, however unsure: its most likely token was no
    unsure_no = Completion(model="judge", text="no", token_probability=0.4)
    grounding = grounding_with(collection, FakeModel(default=unsure_no))
    checked = await grounding.check(retrieval, "Sourdough rises over twelve hours [1].")
    verdict = checked.report.statements[0].verdict
    assert verdict is not None
    assert not verdict.supported
    assert verdict.probability == pytest.approx(0.4)


async def test_the_lexical_check_stands_in_for_a_judge_that_cannot_say(
    collection: SqliteLibrary,
) -> None:
    grounding = grounding_with(collection, FakeModel(default="Maybe."))
    retrieval = await retrieval_for(grounding, "sourdough")
    supported = await grounding.check(retrieval, "Sourdough rises with wild yeast [1].")
    assert supported.report.statements[0].verdict is not None
    assert supported.report.statements[0].verdict.method == "lexical"
    assert supported.report.checks == ("markers", "support:lexical")
    assert not supported.report.abstained
    wrong_number = await grounding.check(retrieval, "Sourdough rises over 48 hours [1].")
    assert wrong_number.report.abstained  # a number the passage does not state


def test_statements_keep_the_markers_written_after_them() -> None:
    statements = read_statements("Lima is the capital. [2] It is old [1, 3].\nA list item [4]")
    assert [s.markers for s in statements] == [(2,), (1, 3), (4,)]
    assert statements[0].claim == "Lima is the capital."
    assert statements[1].claim == "It is old."


def test_alce_precision_counts_only_needed_citations() -> None:
    # statement 1 entailed by [a, b] where b alone is irrelevant; statement 2 not entailed
    scores = alce_scores([True, False], [[True, False], [False]])
    assert scores.recall == 0.5
    assert scores.precision == pytest.approx(1 / 3)


async def test_a_short_claim_is_judged_as_the_answer_to_the_question(
    collection: SqliteLibrary,
) -> None:
    judge = FunctionModel(judge_by_words)
    grounding = grounding_with(collection, judge)
    retrieval = await retrieval_for(grounding, "How long does sourdough take to rise?")
    await grounding.check(retrieval, "Twelve hours [1].")
    asked = judge.history[0].messages[-1].content
    assert (
        'Claim: The answer to the question "How long does sourdough take to rise?" is: Twelve '
        "hours." in asked
    )
    await grounding.check(retrieval, "Sourdough rises with wild yeast over twelve hours [1].")
    assert "Claim: Sourdough rises with wild yeast over twelve hours.\n" in (
        judge.history[-1].messages[-1].content
    )


def test_citation_markers_are_not_read_as_the_answer() -> None:
    answers = ["The capital of Benin is Porto-Novo [1].", "Porto-Novo [3]."]
    question = Question.read("What is the capital of Benin?", answers)
    assert question.kind == "text"
    assert [question.extract(answer) for answer in answers] == ["porto novo", "porto novo"]
    population = Question.read("Population of Fiji?", ["It is 859,178 [2].", "859178 [1]"])
    assert population.extract("It is 859,178 [2].") == "859178"


def test_a_citations_snippet_starts_at_the_sentence_it_supports() -> None:
    passage = Passage(
        id="p",
        path="/bees.txt",
        start=0,
        end=90,
        title="Bees",
        text="Bees live in colonies. A queen lays up to two thousand eggs a day. Drones die.",
    )
    assert passage.snippet(6, about="The queen lays two thousand eggs.") == (
        "A queen lays up to two ..."
    )
    assert passage.snippet(4).startswith("Bees live in colonies.")


async def test_a_number_no_passage_states_is_unsupported_without_asking_the_judge(
    collection: SqliteLibrary,
) -> None:
    judge = FakeModel(default="yes")
    grounding = grounding_with(collection, judge)
    retrieval = await retrieval_for(grounding, "When does the night train leave Euston?")
    checked = await grounding.check(retrieval, "The night train leaves at 23:45 [1].")
    assert checked.report.abstained
    verdict = checked.report.statements[0].verdict
    assert verdict is not None
    assert verdict.method == "exact_terms"
    assert "support:exact-terms" in checked.report.checks
    assert judge.history == []  # no judge could make a passage state a number it does not


def test_a_code_name_no_passage_states_cannot_be_supported() -> None:
    passage = Passage(
        id="z",
        path="/zipfile.html",
        start=0,
        end=60,
        title="zipfile",
        text="exception zipfile.BadZipFile. The default is ZIP_STORED, 1,030,700 bytes.",
    )
    assert missing_exact_term([passage], "It raises zipfile.BadZipFile.") is None
    assert missing_exact_term([passage], "The default is zipfile.ZIP_STORED.") is None
    assert missing_exact_term([passage], "The limit is 1030700 bytes.") is None
    assert missing_exact_term([passage], "Use heapq.heappushpop().") == "heapq.heappushpop()"
    assert missing_exact_term([passage], "The default is ZIP_DEFLATED.") == "ZIP_DEFLATED"
    assert missing_exact_term([passage], "It holds 4 GiB.") == "4"


async def test_a_sources_line_cites_for_the_sentences_before_it(collection: SqliteLibrary) -> None:
    grounding = grounding_with(collection, FunctionModel(judge_by_words))
    retrieval = await retrieval_for(grounding, "How many eggs does a queen bee lay?")
    n = number_of(retrieval, "bees.txt")
    checked = await grounding.check(
        retrieval,
        f"A queen lays up to two thousand eggs. A honey bee queen lays eggs daily.\nSources: [{n}]",
    )
    assert (
        checked.answer
        == f"A queen lays up to two thousand eggs [{n}]. A honey bee queen lays eggs daily [{n}]."
    )
    written = [statement.markers for statement in checked.report.statements]
    assert written == [(n,), (n,), (n,)]
    assert checked.report.statements[-1].action == "dropped"
    assert read_statements("Lima [1]. References: [2]")[1].source_list


def test_a_dotted_name_in_a_short_answer_is_read_whole() -> None:
    question = Question.read("Which exception does zipfile raise?", ["zipfile.BadZipFile [1]."])
    assert question.extract("zipfile.BadZipFile [1].") == "badzipfile"  # not cut at its dot


def test_a_number_with_its_unit_is_read_as_the_number() -> None:
    question = Question.read("What is the density of tungsten in g/cm3?", ["19.3 g/cm3 [1]"])
    assert question.kind == "number"
    assert question.extract("19.3 g/cm3 [1]") == "19.3"  # not the 3 of cm3, nor the marker


@pytest.mark.parametrize(
    ("answer", "read"),
    [
        ("Paris, on the Seine.", "Paris, on the Seine."),
        ("Paris [1] .", "Paris."),
        ("Paris [1, 3]; Lyon [2]!", "Paris; Lyon!"),
        ("  Paris\n\n  is\tit\u00a0 ,  really ?", "Paris is it, really?"),
        ("[x] is no marker [1000]", "[x] is no marker [1000]"),
        ("", ""),
    ],
)
def test_an_answer_is_read_without_its_markers_and_extra_spaces(answer: str, read: str) -> None:
    assert without_markers(answer) == read
