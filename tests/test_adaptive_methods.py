"""`adaptive`'s methods for small models, driven by the shipped fakes: multiple choice read from
the options' probabilities, the options reordered and averaged back, a cheap check before
reasoning, per-kind thresholds, confidence-weighted votes; and the answer in the asked form."""

from __future__ import annotations

import random
from collections.abc import Sequence

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import AgreementMeter
from conclave.consensus.answers import Question
from conclave.consensus.choices import reordered, rotation
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import AggregateDelta, StepProgress
from conclave.consensus.panel import build_panel
from conclave.consensus.strategies.adaptive import REASONING_PROMPT
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.consensus.verification import CHECK_PROMPT
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Completion, Message, SamplingOptions

Fakes = dict[str, FakeModel | FunctionModel]

OPTIONS = ("Sydney", "Canberra", "Perth", "Hobart")
LETTER_QUESTION = (
    "Which is the capital of Australia?\n\n"
    + "\n".join(f"{letter}. {option}" for letter, option in zip("ABCD", OPTIONS, strict=True))
    + "\n\nAnswer with the letter only."
)
NUMBER_QUESTION = "What is 6 x 7? Answer with the number only."


def config(strategy: str = "adaptive", **options: object) -> ConsensusConfig:
    return ConsensusConfig.model_validate(
        {
            "iterations": 0,
            "models": [
                {"id": "local:strong", "max_tokens": 64, "temperature": 0.0, "weight": 0.6},
                {"id": "local:weak", "max_tokens": 64, "temperature": 0.0, "weight": 0.2},
            ],
            "aggregator": [{"model": {"id": "local:strong"}}],
            "strategy": strategy,
            "samples": 3,
            "strategy_options": options,
        }
    )


async def run(cfg: ConsensusConfig, fakes: Fakes, question: str) -> Transcript:
    fakes.setdefault("weak", FakeModel(default="A"))
    registry = ProviderRegistry(overrides={"local": FakeProvider(fakes)})
    engine = ConsensusEngine(cfg, build_panel(cfg, registry), rng=random.Random(0))
    return await engine.run_to_end([Message(role="user", content=question)])


def shown_options(messages: Sequence[Message]) -> list[str]:
    """The option texts in the order the question shows them."""
    lines = messages[-1].content.splitlines()
    return [line[3:] for line in lines if line[:3] in ("A. ", "B. ", "C. ", "D. ")]


def biased_reader(bias: float) -> FunctionModel:
    """A model that favours position A by `bias` and otherwise knows Canberra a little."""

    def answer(messages: Sequence[Message], options: SamplingOptions) -> Completion:
        shown = shown_options(messages)
        probabilities = dict.fromkeys("ABCD", 0.1)
        probabilities["A"] += bias
        probabilities["ABCD"[shown.index("Canberra")]] += 0.3
        best = max(probabilities, key=lambda letter: probabilities[letter])
        return Completion(model="strong", text=best, choice_probabilities=probabilities)

    return FunctionModel(answer)


async def test_a_letter_is_read_from_the_options_probabilities_in_a_one_token_call() -> None:
    fakes: Fakes = {"strong": biased_reader(bias=0.0)}
    transcript = await run(config(sure_probability=0.5), fakes, LETTER_QUESTION)
    call = fakes["strong"].history[0]
    assert call.options.max_tokens == 1
    assert call.options.first_token_choices == ("A", "B", "C", "D")
    assert transcript.answer == "B"
    assert len(transcript.rounds) == 1  # Canberra's share 0.4 / 0.7 = 0.57: sure enough
    assert transcript.agreement is not None
    assert transcript.agreement.support == 0.4 / 0.7


async def test_unsure_letters_are_asked_again_with_the_options_rotated_and_averaged_back() -> None:
    fakes: Fakes = {"strong": biased_reader(bias=0.35)}  # alone it says A (Sydney)
    cfg = config(sure_probability=0.45, reorderings=3)
    transcript = await run(cfg, fakes, LETTER_QUESTION)
    orders = [shown_options(call.messages) for call in fakes["strong"].history[:4]]
    assert orders[0] == list(OPTIONS)
    assert orders[1:] == [[OPTIONS[(i + shift) % 4] for i in range(4)] for shift in (1, 2, 3)]
    assert transcript.rounds[0].responses[0].text == "A"  # the position bias, alone
    assert transcript.answer == "B"  # averaged over four orders, Canberra wins
    assert transcript.stop_reason == "agreed"
    assert len(transcript.rounds) == 2


async def test_a_check_that_says_yes_ends_the_run_before_any_reasoning() -> None:
    verdicts = {"Yes": 0.8, "No": 0.2}

    def strong(messages: Sequence[Message], options: SamplingOptions) -> Completion | str:
        if messages[-1].content == CHECK_PROMPT:
            return Completion(model="strong", text="Yes", choice_probabilities=verdicts)
        return "42"  # no token probability: not sure by itself

    fakes: Fakes = {"strong": FunctionModel(strong)}
    transcript = await run(config(check=True), fakes, NUMBER_QUESTION)
    assert [[r.model for r in rnd.responses] for rnd in transcript.rounds] == [
        ["local:strong"],
        ["local:strong (check)"],
    ]
    check = fakes["strong"].history[1]
    assert check.messages[-2:] == (
        Message(role="assistant", content="42"),
        Message(role="user", content=CHECK_PROMPT),
    )
    assert check.options.max_tokens == 1
    assert transcript.answer == "42"
    assert transcript.agreement is not None
    assert transcript.agreement.supporters == ("local:strong",)  # the check is no ballot


async def test_a_check_that_says_no_goes_on_to_reasoning() -> None:
    def strong(messages: Sequence[Message], options: SamplingOptions) -> Completion | str:
        if messages[-1].content == CHECK_PROMPT:
            verdicts = {"Yes": 0.1, "No": 0.9}
            return Completion(model="strong", text="No", choice_probabilities=verdicts)
        if messages[-1].content == REASONING_PROMPT:
            return "6 x 7 = 42\nAnswer: 42"
        return "41"

    fakes: Fakes = {"strong": FunctionModel(strong)}
    transcript = await run(config(check=True), fakes, NUMBER_QUESTION)
    assert transcript.rounds[2].responses[0].model == "local:strong #2"
    assert transcript.answer == "42"


async def test_each_kind_of_question_has_its_own_threshold() -> None:
    def sure_of(text: str) -> FunctionModel:
        return FunctionModel(
            lambda m, o: Completion(model="strong", text=text, token_probability=0.8)
        )

    cfg = config(sure_probability=0.5, sure_by_kind={"number": 0.9})
    number = await run(cfg, {"strong": sure_of("42")}, NUMBER_QUESTION)
    text = await run(cfg, {"strong": sure_of("Paris")}, "Capital of France? In one word.")
    assert len(number.rounds) > 1  # 0.8 is below the numbers' 0.9
    assert len(text.rounds) == 1


def test_votes_weighted_by_their_own_confidence_let_a_sure_answer_outvote_unsure_ones() -> None:
    conversation = [Message(role="user", content=NUMBER_QUESTION)]
    candidates = [
        CallRecord(model="a", text="41", token_probability=0.2),
        CallRecord(model="b", text="41", token_probability=0.2),
        CallRecord(model="c", text="42", token_probability=0.9),
    ]
    weights = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert AgreementMeter(weights).vote(conversation, candidates).text == "41"
    weighted = AgreementMeter(weights, confidence_weighted=True)
    assert weighted.vote(conversation, candidates).text == "42"


def test_rotated_options_keep_their_letters_and_move_their_texts() -> None:
    question_messages = [Message(role="user", content=LETTER_QUESTION)]
    question = Question.of(question_messages)
    assert rotation("ABCD", 1) == ("B", "C", "D", "A")
    moved = reordered(question_messages, question, 1)
    assert shown_options(moved) == ["Canberra", "Perth", "Hobart", "Sydney"]
    assert moved[-1].content.endswith("Answer with the letter only.")


async def test_a_rambling_answer_to_a_letter_instruction_is_the_letter_and_the_ramble_is_kept() -> (
    None
):
    ramble = "To determine this, recall that Canberra was built as the capital. The answer is B."
    fakes: Fakes = {"strong": FakeModel(default=ramble), "weak": FakeModel(default=ramble)}
    transcript = await run(config("vote"), fakes, LETTER_QUESTION)
    assert transcript.answer == "B"
    assert transcript.reasoning == ramble
    assert transcript.rounds[-1].aggregate is not None
    assert transcript.rounds[-1].aggregate.text == ramble  # the call's text stays on record


async def test_several_numbered_questions_are_voted_part_by_part() -> None:
    question = (
        "Answer each of these questions.\n\n1. What is 6 x 7?\n\n2. What is the capital of "
        "Peru?\n\nReply in the form:\n1. <number>\n2. <a few words>"
    )
    fakes: Fakes = {
        "strong": FakeModel(default="1. 42\n2. Cusco"),
        "weak": FakeModel(default="1. 41\n2. Lima"),
        "third": FakeModel(default="1. 42\n2. The capital is Lima."),
    }
    cfg = config("vote").with_changes(
        models=[
            {"id": f"local:{name}", "max_tokens": 64, "temperature": 0.0}
            for name in ("strong", "weak", "third")
        ]
    )
    transcript = await run(cfg, fakes, question)
    assert transcript.answer == "1. 42\n2. Lima"


async def test_a_kind_that_does_not_reason_stops_after_its_cheap_stages() -> None:
    fakes: Fakes = {"strong": biased_reader(bias=0.0)}
    cfg = config(sure_probability=0.9, reorderings=1, reasoning_for=["number"], check=True)
    transcript = await run(cfg, fakes, LETTER_QUESTION)
    assert len(fakes["strong"].history) == 2  # the letter, and one rotation: no reasoning
    assert transcript.stop_reason == "iterations"
    assert transcript.answer == "B"


RECALLED_NUMBER = "What is the atomic number of iron? Answer with the number only."


def sure_of(text: str, probability: float = 0.8) -> FunctionModel:
    return FunctionModel(
        lambda m, o: Completion(model="strong", text=text, token_probability=probability)
    )


async def test_a_calculation_has_its_own_threshold_and_falls_back_to_its_answers() -> None:
    cfg = config(sure_probability=0.5, sure_by_kind={"calculation": 0.9})
    calculated = await run(cfg, {"strong": sure_of("42")}, NUMBER_QUESTION)
    recalled = await run(cfg, {"strong": sure_of("26")}, RECALLED_NUMBER)
    assert len(calculated.rounds) > 1  # 0.8 is below the calculations' 0.9
    assert len(recalled.rounds) == 1  # a recalled number keeps the numbers' threshold
    numbers = config(sure_probability=0.5, sure_by_kind={"number": 0.9})
    both = await run(numbers, {"strong": sure_of("42")}, NUMBER_QUESTION)
    assert len(both.rounds) > 1  # a setting for numbers covers calculated ones


async def test_reasoning_for_calculations_leaves_recalled_numbers_at_their_first_answer() -> None:
    cfg = config(sure_probability=0.9, reasoning_for=["calculation"])
    recalled_fakes: Fakes = {"strong": sure_of("26", 0.5)}
    recalled = await run(cfg, recalled_fakes, RECALLED_NUMBER)
    assert len(recalled_fakes["strong"].history) == 1
    assert recalled.stop_reason == "iterations"
    calculated_fakes: Fakes = {"strong": sure_of("42", 0.5)}
    await run(cfg, calculated_fakes, NUMBER_QUESTION)
    asked = [call.messages[-1].content for call in calculated_fakes["strong"].history]
    assert REASONING_PROMPT in asked


THREE_PARTS = (
    "Answer each of these questions.\n\n"
    "1. Which is the capital of Australia?\nA. Sydney\nB. Canberra\nC. Perth\nD. Hobart\n\n"
    "2. What is 6 x 7?\n\n3. What is the capital of Peru?\n\n"
    "Reply in the form:\n1. <letter>\n2. <number>\n3. <a few words>"
)


def answers_alone(messages: Sequence[Message], options: SamplingOptions) -> Completion:
    """A model that answers a lone question in its form and copies a reply template."""
    asked = messages[-1].content
    if "Reply in the form" in asked:
        return Completion(model="strong", text="1. <letter>\n2. <number>\n3. <a few words>")
    if "Australia" in asked:
        probabilities = {"A": 0.1, "B": 0.8, "C": 0.05, "D": 0.05}
        return Completion(model="strong", text="B", choice_probabilities=probabilities)
    text = "42" if "6 x 7" in asked else "The capital of Peru is Lima."
    return Completion(model="strong", text=text, token_probability=0.95)


async def test_several_numbered_questions_are_each_run_as_a_question_of_their_own() -> None:
    fakes: Fakes = {"strong": FunctionModel(answers_alone)}
    transcript = await run(config(sure_probability=0.5), fakes, THREE_PARTS)
    assert transcript.answer == "1. B\n2. 42\n3. Lima"
    asked = [call.messages[-1].content for call in fakes["strong"].history]
    assert not any("Reply in the form" in text for text in asked)  # never the whole request
    assert asked[0].endswith("D. Hobart\n\nAnswer with the letter only.")
    assert asked[1] == "What is 6 x 7?\n\nAnswer with the number only."
    assert asked[2] == "What is the capital of Peru?\n\nAnswer in a few words only."
    (record,) = transcript.rounds
    assert record.responses == ()
    calls = [call for step in record.steps for call in step.calls]
    assert [call.model.split()[:2] for call in calls] == [
        ["part", "1"],
        ["part", "2"],
        ["part", "3"],
    ]
    assert calls[1].messages[-1].content == asked[1]  # each call keeps what it was sent


DEPENDENT_PARTS = (
    "This task has 3 parts. Answer every part.\n\n1. What is 6 x 7?\n\n"
    "2. What is the capital of Peru?\n\n3. Add 9 to the answer to part 1.\n\n"
    "Reply in the form:\n1. <number>\n2. <a few words>\n3. <number>"
)


async def test_a_part_that_names_an_earlier_part_is_shown_it_and_its_answer() -> None:
    def model(messages: Sequence[Message], options: SamplingOptions) -> Completion:
        asked = messages[-1].content
        if "Add 9" in asked:
            text = "51" if "Answer to part 1: 42" in asked else "9"
            return Completion(model="strong", text=text, token_probability=0.95)
        return answers_alone(messages, options)

    fakes: Fakes = {"strong": FunctionModel(model)}
    transcript = await run(config(sure_probability=0.5), fakes, DEPENDENT_PARTS)
    assert transcript.answer == "1. 42\n2. Lima\n3. 51"
    asked = [call.messages[-1].content for call in fakes["strong"].history]
    assert asked[1] == "What is the capital of Peru?\n\nAnswer in a few words only."  # names none
    assert asked[2] == (
        "Part 1: What is 6 x 7?\nAnswer to part 1: 42\n\n"
        "Add 9 to the answer to part 1.\n\nAnswer with the number only."
    )


async def test_by_parts_off_asks_the_request_as_one_question() -> None:
    fakes: Fakes = {"strong": FunctionModel(answers_alone)}
    await run(config(sure_probability=0.5, by_parts=False), fakes, THREE_PARTS)
    assert "Reply in the form" in fakes["strong"].history[0].messages[-1].content


async def test_a_request_of_parts_streams_its_numbered_answer_and_each_part_as_it_ends() -> None:
    fakes: Fakes = {"strong": FunctionModel(answers_alone), "weak": FakeModel(default="A")}
    cfg = config(sure_probability=0.5)
    registry = ProviderRegistry(overrides={"local": FakeProvider(fakes)})
    engine = ConsensusEngine(cfg, build_panel(cfg, registry), rng=random.Random(0))
    events = [event async for event in engine.run([Message(role="user", content=THREE_PARTS)])]
    parts = [e for e in events if isinstance(e, StepProgress) and e.step == "parts"]
    assert [e.name for e in parts] == ["part 1", "part 2", "part 3"]
    deltas = "".join(e.text for e in events if isinstance(e, AggregateDelta))
    assert deltas == "1. B\n2. 42\n3. Lima"  # each part already in its form
