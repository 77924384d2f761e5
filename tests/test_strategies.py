"""Every strategy, driven by the shipped fakes: who is asked, what wins, what is recorded."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import AgreementMeter, Ballot, Counting
from conclave.consensus.answers import Question
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import AggregateDelta, ConsensusDone
from conclave.consensus.panel import build_panel
from conclave.consensus.strategies.adaptive import REASONING_MAX_TOKENS, REASONING_PROMPT
from conclave.consensus.strategies.rank import borda_points, parse_ranking
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.errors import ConsensusError, ProviderHTTPError
from conclave.providers.base import ProviderCapabilities
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Completion, Message, SamplingOptions, Usage
from test_engine import make_config, make_engine

Fakes = dict[str, FakeModel | FunctionModel]

CHOICE = (
    Message(
        role="user",
        content="Which is the capital of Australia?\nA. Sydney\nB. Canberra\nC. Perth\nD. Hobart",
    ),
)


def weighted(weights: dict[str, float], strategy: str, **changes: object) -> ConsensusConfig:
    models = [
        {"id": name, "max_tokens": 100, "temperature": 0.0, "weight": weight}
        for name, weight in weights.items()
    ]
    return make_config(list(weights), "agg", strategy=strategy, models=models, **changes)


def answers(**texts: str | BaseException) -> Fakes:
    fakes: Fakes = {name: FakeModel(default=text) for name, text in texts.items()}
    fakes.setdefault("agg", FakeModel(default="AGGREGATED"))
    return fakes


def in_turn(letters: str) -> FunctionModel:
    """A model answering with each letter in turn, one per call."""
    answers = iter(letters)
    return FunctionModel(lambda messages, options: next(answers))


def sure(text: str, probability: float) -> Completion:
    return Completion(
        model="fake", text=text, usage=Usage(completion_tokens=3), token_probability=probability
    )


async def run(
    config: ConsensusConfig, fakes: Fakes, conversation: Sequence[Message] = CHOICE
) -> Transcript:
    return await make_engine(config, fakes).run_to_end(conversation)


# --- vote -------------------------------------------------------------------------------------


async def test_vote_returns_the_winning_members_own_answer_without_an_aggregator() -> None:
    fakes = answers(
        a="The answer is B, since Canberra was built as the capital.", b="B", c="A. Sydney"
    )
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "vote", iterations=0), fakes)

    assert transcript.answer == "The answer is B, since Canberra was built as the capital."
    assert fakes["agg"].history == []
    record = transcript.rounds[0]
    assert record.decided_by == "vote"
    agreement = transcript.agreement
    assert agreement is not None
    assert agreement.kind == "letter"
    assert agreement.answer == "B"
    assert agreement.supporters == ("a", "b")
    assert [(c.answer, c.members) for c in agreement.clusters] == [("B", ("a", "b")), ("A", ("c",))]
    assert agreement.score == pytest.approx(2 / 3)
    assert agreement.confidence == pytest.approx(2 / 3)


async def test_a_weak_member_pair_cannot_outvote_a_strong_member() -> None:
    fakes = answers(strong="B", weak1="A", weak2="A")
    config = weighted({"strong": 0.9, "weak1": 0.3, "weak2": 0.3}, "vote", iterations=0)
    transcript = await run(config, fakes)
    assert transcript.answer == "B"
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ("strong",)


async def test_a_tie_goes_to_the_answer_the_models_were_surer_of() -> None:
    fakes: Fakes = {
        "a": FakeModel(default=sure("A", 0.4)),
        "b": FakeModel(default=sure("C", 0.95)),
        "agg": FakeModel(default="unused"),
    }
    transcript = await run(weighted({"a": 1, "b": 1}, "vote", iterations=0), fakes)
    assert transcript.answer == "C"
    assert transcript.agreement is not None
    assert transcript.agreement.token_probability == pytest.approx(0.95)
    assert transcript.agreement.confidence == pytest.approx((0.5 + 0.95) / 2)


async def test_a_tie_with_no_probabilities_goes_to_the_heavier_then_the_first_member() -> None:
    fakes = answers(a="A", b="C")
    assert (await run(weighted({"a": 1, "b": 1}, "vote", iterations=0), fakes)).answer == "A"
    fakes = answers(a="A", b="C")
    assert (await run(weighted({"a": 1, "b": 2}, "vote", iterations=0), fakes)).answer == "C"


def ask(question: str) -> tuple[Message, ...]:
    return (Message(role="user", content=f"{question} Reply with the number only."),)


@pytest.mark.parametrize(
    ("question", "won_by"),
    [
        ("What is the atomic number of francium?", "direct"),  # recalled: the direct answer
        ("What is 17 * 23?", "worked"),  # a calculation: the worked answer
    ],
)
async def test_a_tie_between_numbers_goes_to_the_answer_reached_the_way_that_suits_the_question(
    question: str, won_by: str
) -> None:
    answers_by = {"direct": "87", "worked": "17 * 23 = 391, so the number is 391.\nAnswer: 391"}
    surer = "worked" if won_by == "direct" else "direct"  # surety alone would pick the other
    fakes: Fakes = {
        name: FakeModel(default=sure(text, 0.9 if name == surer else 0.3))
        for name, text in answers_by.items()
    }
    fakes["agg"] = FakeModel(default="unused")
    config = weighted({"direct": 1, "worked": 1}, "vote", iterations=0)
    transcript = await run(config, fakes, ask(question))
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == (won_by,)


def test_an_answer_asked_to_be_worked_out_counts_as_worked_even_in_one_line() -> None:
    question = ask("What is the atomic number of francium?")
    direct = CallRecord(model="a", text="87", token_probability=0.3)
    told_to_reason = (*question, Message(role="user", content=REASONING_PROMPT))
    worked = CallRecord(
        model="a #2", messages=told_to_reason, text="It is 79.", token_probability=0.9
    )
    meter = AgreementMeter({"a": 1.0, "a #2": 1.0})
    assert meter.vote(question, [direct, worked]).text == "87"
    both_direct = [direct, worked.model_copy(update={"messages": question})]
    assert meter.vote(question, both_direct).text == "It is 79."  # the surer


async def test_a_tie_between_answers_reached_alike_goes_to_the_surer() -> None:
    fakes: Fakes = {
        "a": FakeModel(default=sure("87", 0.3)),
        "b": FakeModel(default=sure("88", 0.9)),
        "agg": FakeModel(default="unused"),
    }
    config = weighted({"a": 1, "b": 1}, "vote", iterations=0)
    transcript = await run(config, fakes, ask("What is the atomic number of francium?"))
    assert transcript.answer == "88"


async def test_unparseable_answers_support_nothing_and_are_listed() -> None:
    fakes = answers(a="I cannot tell.", b="C", c="Hmm, hard to say.")
    transcript = await run(weighted({"a": 5, "b": 1, "c": 5}, "vote", iterations=0), fakes)
    assert transcript.answer == "C"
    agreement = transcript.agreement
    assert agreement is not None
    assert agreement.unparsed == ("a", "c")
    assert agreement.score == pytest.approx(1 / 11)


async def test_when_nothing_can_be_read_the_heaviest_member_answers() -> None:
    fakes = answers(a="No idea.", b="Cannot say.")
    transcript = await run(weighted({"a": 1, "b": 2}, "vote", iterations=0), fakes)
    assert transcript.answer == "Cannot say."
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ()


async def test_vote_goes_on_when_one_member_fails() -> None:
    fakes = answers(a="B", b=ProviderHTTPError("b: down", status_code=503), c="B")
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "vote", iterations=0), fakes)
    assert transcript.answer == "B"
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ("a", "c")


async def test_vote_fails_clearly_when_every_member_fails() -> None:
    down = ProviderHTTPError("down", status_code=503)
    fakes = answers(a=down, b=down)
    with pytest.raises(ConsensusError, match="0 of 2 members answered"):
        await run(weighted({"a": 1, "b": 1}, "vote", iterations=0), fakes)


async def test_numbers_are_voted_by_value_not_by_wording() -> None:
    fakes = answers(a="17 + 25 = 42", b="The answer is 42.", c="32")
    question = (Message(role="user", content="What is 17 + 25?"),)
    transcript = await run(
        weighted({"a": 1, "b": 1, "c": 1}, "vote", iterations=0), fakes, question
    )
    assert transcript.answer == "17 + 25 = 42"
    assert transcript.agreement is not None
    assert transcript.agreement.answer == "42"


async def test_vote_stops_early_once_the_members_agree() -> None:
    fakes = answers(a="B", b="B", c="B")
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "vote", iterations=2), fakes)
    assert len(transcript.rounds) == 1
    assert transcript.stop_reason == "agreed"


async def test_the_vote_is_streamed_as_one_piece() -> None:
    fakes = answers(a="B", b="B")
    engine = make_engine(weighted({"a": 1, "b": 1}, "vote", iterations=0), fakes)
    events = [event async for event in engine.run(CHOICE)]
    assert [e.text for e in events if isinstance(e, AggregateDelta)] == ["B"]
    assert isinstance(events[-1], ConsensusDone)


def test_free_form_answers_elect_the_most_central_one() -> None:
    class Scripted:
        same = 0.8

        def matrix(self, texts: Sequence[str]) -> list[list[float]]:
            # answers 0 and 1 say nearly the same; 2 is off on its own
            table = {(0, 1): 0.9, (0, 2): 0.2, (1, 2): 0.3}
            return [
                [1.0 if i == j else table[min(i, j), max(i, j)] for j in range(len(texts))]
                for i in range(len(texts))
            ]

    counting = Counting(Question("free", {}, {}), Scripted())
    ballots = [
        Ballot("a", "tides come from the moon"),
        Ballot("b", "the moon pulls the sea"),
        Ballot("c", "wind makes tides"),
    ]
    result = counting.vote(ballots)
    assert result.winner == 1
    assert [cluster.members for cluster in result.agreement.clusters] == [("a", "b"), ("c",)]


# --- rank -------------------------------------------------------------------------------------


async def test_rank_reviews_exclude_the_reviewers_own_answer_and_the_chairman_gets_the_best() -> (
    None
):
    own = {"a": "Answer A text", "b": "Answer B text", "c": "Answer C text"}
    reviews: dict[str, list[str]] = {name: [] for name in own}

    def member(name: str) -> FunctionModel:
        def respond(messages: Sequence[Message], options: SamplingOptions) -> str:
            prompt = messages[-1].content
            if "RANKING" not in prompt:
                return own[name]
            reviews[name].append(prompt)
            shown = [line for line in prompt.splitlines() if line.startswith("Answer ")]
            # everyone prefers B's answer, then C's, then A's
            preference = ["Answer B text", "Answer C text", "Answer A text"]
            ordered = sorted(shown, key=preference.index)
            return "RANKING: " + ", ".join(str(shown.index(text) + 1) for text in ordered)

        return FunctionModel(respond)

    fakes: Fakes = {name: member(name) for name in own}
    fakes["agg"] = FakeModel(default="Chairman's answer")
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "rank", iterations=0), fakes)

    for name, prompts in reviews.items():
        assert len(prompts) == 1
        assert own[name] not in prompts[0]
        assert sum(text in prompts[0] for text in own.values()) == 2
    chairman_input = fakes["agg"].history[0].messages[-2].content
    assert "Answer B text" in chairman_input
    assert "Answer C text" in chairman_input
    assert "Answer A text" not in chairman_input
    record = transcript.rounds[0]
    assert record.decided_by == "rank"
    assert transcript.answer == "Chairman's answer"
    assert [call.role for call in record.other_calls] == ["reviewer"] * 3
    assert transcript.usage.completion_tokens == sum(
        call.usage.completion_tokens for call in (*record.responses, *record.other_calls)
    ) + (record.aggregate.usage.completion_tokens if record.aggregate else 0)


async def test_rank_survives_failing_and_unreadable_reviews() -> None:
    def flaky(messages: Sequence[Message], options: SamplingOptions) -> str:
        if "RANKING" in messages[-1].content:
            raise ProviderHTTPError("c: down", status_code=503)
        return "C text"

    fakes: Fakes = {
        "a": FunctionModel(lambda m, o: "I like them all" if "RANKING" in m[-1].content else "A"),
        "b": FunctionModel(lambda m, o: "RANKING: 9, 9" if "RANKING" in m[-1].content else "B"),
        "c": FunctionModel(flaky),
        "agg": FakeModel(default="final"),
    }
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "rank", iterations=0), fakes)
    assert transcript.answer == "final"
    reviews = transcript.rounds[0].other_calls
    assert sum(1 for call in reviews if not call.ok) == 1


def test_rankings_are_read_leniently_and_counted_by_borda() -> None:
    assert parse_ranking("RANKING: 2, 1, 3", 3) == [2, 1, 3]
    assert parse_ranking("ranking: 3 > 3 > 1 > 7", 3) == [3, 1]
    assert parse_ranking("Response 2 is best, then Response 1.", 2) == [2, 1]
    assert parse_ranking("all good", 3) == []
    assert [borda_points(place, 3) for place in range(3)] == [1.0, 0.5, 0.0]
    assert borda_points(0, 1) == 1.0


# --- sample -----------------------------------------------------------------------------------


async def test_sample_draws_the_strongest_member_only_and_votes_its_samples() -> None:
    drawn: list[SamplingOptions] = []

    def strong(messages: Sequence[Message], options: SamplingOptions) -> str:
        drawn.append(options)
        return "B" if len(drawn) != 2 else "A"

    fakes: Fakes = {"weak": FakeModel(default="D"), "strong": FunctionModel(strong)}
    fakes["agg"] = FakeModel(default="unused")
    config = weighted({"weak": 0.3, "strong": 0.8}, "sample", samples=4, iterations=0)
    transcript = await run(config, fakes)

    assert fakes["weak"].history == []
    assert len(drawn) == 4
    assert drawn[0].temperature == 0.0
    assert all(options.temperature == 0.7 for options in drawn[1:])
    assert len({options.seed for options in drawn[1:]}) == 3
    assert transcript.answer == "B"
    assert transcript.agreement is not None
    assert len(transcript.agreement.supporters) == 3


# --- adaptive ---------------------------------------------------------------------------------


async def test_adaptive_asks_the_strongest_to_reason_when_it_is_unsure() -> None:
    fakes = answers(weak="A", strong="B", middle="C")  # no token probability: never sure
    config = weighted({"weak": 0.3, "strong": 0.9, "middle": 0.6}, "adaptive")
    transcript = await run(config, fakes)
    first, reasoning = transcript.rounds
    assert [r.model for r in first.responses] == ["strong"]
    assert [r.model for r in reasoning.responses] == ["strong #2"]
    assert transcript.sent(first.responses[0]) == CHOICE
    assert transcript.sent(reasoning.responses[0]) == (
        *CHOICE,
        Message(role="user", content=REASONING_PROMPT),
    )
    options = fakes["strong"].history[1].options
    assert options.temperature == 0.0  # its own settings, with room to reason
    assert options.max_tokens is not None
    assert options.max_tokens >= REASONING_MAX_TOKENS
    assert fakes["middle"].history == []
    assert fakes["weak"].history == []
    assert transcript.stop_reason == "agreed"
    assert transcript.answer == "B"


async def test_adaptive_draws_more_then_brings_in_the_others_while_answers_disagree() -> None:
    fakes = answers(weak="C", middle="C")
    fakes["strong"] = in_turn("BCDA")
    config = weighted({"weak": 0.3, "strong": 0.9, "middle": 0.6}, "adaptive", samples=4)
    transcript = await run(config, fakes)
    assert [[r.model for r in record.responses] for record in transcript.rounds] == [
        ["strong"],
        ["strong #2"],
        ["strong #3", "strong #4"],
        ["middle", "weak"],
    ]
    drawn = [call.options for call in fakes["strong"].history[2:]]
    assert all(o.temperature is not None and o.temperature >= 0.7 for o in drawn)
    assert len({o.seed for o in drawn}) == 2
    assert transcript.sent(transcript.rounds[3].responses[0])[-1].content == REASONING_PROMPT
    assert transcript.stop_reason == "iterations"
    assert transcript.answer == "C"  # strong #2 (0.9) + middle (0.6) + weak (0.3)
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ("strong #2", "middle", "weak")


async def test_adaptive_answers_what_a_worked_answer_concludes() -> None:
    worked = "Canberra was chosen as a compromise between Sydney and Melbourne.\nAnswer: B"
    fakes = answers(strong=worked)
    transcript = await run(weighted({"strong": 1.0}, "adaptive", samples=3), fakes)
    assert transcript.answer == "B"
    assert transcript.rounds[-1].responses[0].text == worked  # the reasoning stays on record
    assert transcript.agreement is not None
    assert transcript.agreement.answer == "B"


async def test_adaptive_does_not_stop_on_an_answer_the_model_is_unsure_of() -> None:
    fakes: Fakes = {
        "strong": FakeModel(default=sure("B", 0.45)),
        "agg": FakeModel(default="unused"),
    }
    transcript = await run(weighted({"strong": 0.9}, "adaptive"), fakes)
    assert len(transcript.rounds) >= 2
    assert transcript.rounds[1].responses[0].model == "strong #2"


async def test_adaptive_stops_after_one_answer_the_model_is_sure_of() -> None:
    fakes: Fakes = {
        "strong": FakeModel(default=sure("B", 0.97)),
        "weak": FakeModel(default="A"),
        "agg": FakeModel(default="unused"),
    }
    transcript = await run(weighted({"strong": 0.9, "weak": 0.3}, "adaptive"), fakes)
    assert len(transcript.rounds) == 1
    assert fakes["weak"].history == []


class ProbabilityFakes(FakeProvider):
    capabilities = ProviderCapabilities(token_probabilities=True)


@pytest.mark.parametrize("reports_probabilities", [True, False])
async def test_adaptive_asks_for_token_probabilities_where_the_provider_reports_them(
    reports_probabilities: bool,
) -> None:
    fakes: Fakes = {"strong": FakeModel(default=sure("B", 0.97)), "agg": FakeModel(default="")}
    provider = ProbabilityFakes(fakes) if reports_probabilities else FakeProvider(fakes)
    config = weighted({"strong": 0.9}, "adaptive")
    registry = ProviderRegistry(overrides={"openrouter": provider})
    await ConsensusEngine(config, build_panel(config, registry)).run_to_end(CHOICE)
    assert fakes["strong"].history[0].options.logprobs is reports_probabilities


async def test_adaptive_costs_fewer_tokens_than_flare_when_members_agree() -> None:
    adaptive = await run(
        weighted({"a": 1, "b": 1, "c": 1}, "adaptive"), answers(a="B", b="B", c="B")
    )
    flare = await run(weighted({"a": 1, "b": 1, "c": 1}, "flare"), answers(a="B", b="B", c="B"))
    assert adaptive.usage.total_tokens < flare.usage.total_tokens


# --- agreement on flare, improvement rounds ---------------------------------------------------


async def test_flare_records_which_members_back_the_aggregate() -> None:
    fakes = answers(a="B", b="Canberra, so B.", c="A")
    fakes["agg"] = FakeModel(default="The answer is B.")
    transcript = await run(weighted({"a": 1, "b": 1, "c": 1}, "flare", iterations=0), fakes)
    assert transcript.answer == "The answer is B."
    assert transcript.rounds[0].decided_by == "aggregator"
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ("a", "b")


async def test_improvement_rounds_can_show_every_answer_of_the_last_round() -> None:
    fakes = answers(a="first from a", b="first from b")
    fakes["agg"] = FakeModel(default="CONSENSUS")
    config = weighted({"a": 1, "b": 1}, "flare", iterations=1, show_answers=True)
    transcript = await run(config, fakes)
    shown = transcript.rounds[1].responses[0].messages[-2].content
    assert "first from a" in shown
    assert "first from b" in shown
    assert "CONSENSUS" in shown
    assert "<response 1>" in shown


# --- fallbacks --------------------------------------------------------------------------------


async def test_a_failed_aggregator_hands_over_to_the_fallback_aggregator() -> None:
    fakes = answers(a="A", b="B")
    fakes["agg"] = FakeModel(default=ProviderHTTPError("agg: down", status_code=503))
    fakes["backup"] = FakeModel(default="backup's answer")
    config = weighted({"a": 1, "b": 1}, "flare", iterations=0, fallback_aggregator={"id": "backup"})
    transcript = await run(config, fakes)
    assert transcript.answer == "backup's answer"
    record = transcript.rounds[0]
    assert record.decided_by == "fallback_aggregator"
    assert [call.model for call in record.other_calls] == ["agg (aggregator)"]


async def test_when_every_aggregator_fails_the_answers_are_voted() -> None:
    fakes = answers(a="B", b="B", c="A")
    fakes["agg"] = FakeModel(default=ProviderHTTPError("agg: down", status_code=503))
    fakes["backup"] = FakeModel(default=ProviderHTTPError("backup: down", status_code=503))
    config = weighted(
        {"a": 1, "b": 1, "c": 1}, "flare", iterations=0, fallback_aggregator={"id": "backup"}
    )
    transcript = await run(config, fakes)
    assert transcript.answer == "B"
    assert transcript.rounds[0].decided_by == "fallback_vote"
    assert len(transcript.rounds[0].other_calls) == 2


async def test_a_later_round_that_fails_keeps_the_previous_consensus() -> None:
    down = ProviderHTTPError("down", status_code=503)
    fakes: Fakes = {
        "a": FakeModel(["B", down]),
        "b": FakeModel(["B", down]),
        "agg": FakeModel(default="Consensus: B"),
    }
    transcript = await run(weighted({"a": 1, "b": 1}, "flare", iterations=1), fakes)
    assert transcript.answer == "Consensus: B"
    assert transcript.stop_reason == "quorum_lost"
    assert transcript.rounds[1].decided_by == "previous_round"
    assert transcript.agreement == transcript.rounds[0].agreement


def test_strategy_is_a_config_field_and_flare_is_the_default() -> None:
    config = make_config()
    assert config.strategy == "flare"
    assert config.with_changes(strategy="vote").strategy == "vote"
    assert config.models[0].weight == 1.0


async def test_the_aggregator_receives_the_whole_conversation() -> None:
    conversation = (
        Message(role="system", content="Reply with the letter only."),
        Message(role="user", content="Is the sky blue?\nA. yes\nB. no"),
        Message(role="assistant", content="A"),
        CHOICE[0],
    )
    fakes = answers(a="B", b="B")
    await run(weighted({"a": 1, "b": 1}, "flare", iterations=0), fakes, conversation)
    sent = fakes["agg"].history[0].messages
    assert sent[1 : 1 + len(conversation)] == conversation


async def test_adaptive_keeps_the_strongest_members_free_form_answer() -> None:
    essay = "Over twelve centuries Rome grew from a small kingdom on the Tiber into a republic. "
    fakes = answers(strong=essay, weak="Rome was founded in 753 BC, legend says. " * 6)
    question = (Message(role="user", content="Tell me about the history of Rome."),)
    transcript = await run(weighted({"strong": 0.9, "weak": 0.3}, "adaptive"), fakes, question)
    assert len(transcript.rounds) == 1
    assert transcript.stop_reason == "free_form"
    assert transcript.answer == essay
    assert fakes["weak"].history == []


async def test_adaptive_stops_once_the_members_left_could_not_change_the_vote() -> None:
    fakes = answers(weak1="B", weak2="B")
    fakes["strong"] = in_turn("ABA")
    config = weighted({"strong": 0.9, "weak1": 0.1, "weak2": 0.1}, "adaptive", samples=3)
    transcript = await run(config, fakes)
    # A (0.9 + 0.9) leads B (0.9) by more than the two weak members (0.2) could add
    assert len(transcript.rounds) == 3
    assert transcript.stop_reason == "settled"
    assert transcript.answer == "A"
    assert fakes["weak1"].history == []
    assert fakes["weak2"].history == []
