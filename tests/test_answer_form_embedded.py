"""The default preset on the real embedded models answers in the form the instruction asks:
the letter alone, the number alone, one word, and every part of several numbered questions."""

from __future__ import annotations

import pytest

from conclave.consensus.answers import Question
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.forms import is_in_form
from conclave.consensus.panel import build_panel
from conclave.presets import embedded_config
from conclave.providers.local import LocalProvider
from conclave.providers.registry import ProviderRegistry
from conclave.types import Message

pytestmark = pytest.mark.embedded

LETTER_ONLY = [
    "Which of these is a mammal?\n\nA. Shark\nB. Dolphin\nC. Trout\nD. Octopus\n\n"
    "Answer with the letter only.",
    "What do plants take in from the air to make sugar?\n\nA. Oxygen\nB. Nitrogen\n"
    "C. Carbon dioxide\nD. Helium\n\nAnswer with the letter only.",
    "Which planet is closest to the Sun?\n\nA. Venus\nB. Earth\nC. Mars\nD. Mercury\n\n"
    "Answer with the letter only.",
]
NUMBER_ONLY = [
    "How many legs does a spider have? Answer with the number only.",
    "A shop sells pens at 3 dollars each. How much do 7 pens cost? Answer with the number only.",
    "What is 15 + 27 - 9? Answer with the number only.",
]
ONE_WORD = [
    "What colour is a ripe banana? Answer in one word.",
    "Which gas do humans breathe in to live? Answer in one word.",
    "What is the largest ocean on Earth? Answer in one word.",
]
SEVERAL = (
    "Answer each of these questions.\n\n"
    "1. Which of these is a fruit?\n\nA. Carrot\nB. Apple\nC. Potato\nD. Onion\n\n"
    "2. What is 8 x 6?\n\n"
    "3. What is the capital of France?\n\n"
    "Reply in the form:\n1. <letter>\n2. <number>\n3. <a few words>"
)


async def _answer(local_provider: LocalProvider, prompt: str) -> tuple[str, Question]:
    config = embedded_config()
    panel = build_panel(config, ProviderRegistry(overrides={"local": local_provider}))
    conversation = [Message(role="user", content=prompt)]
    transcript = await ConsensusEngine(config, panel).run_to_end(conversation)
    return transcript.answer, Question.of(conversation)


@pytest.mark.parametrize("prompt", LETTER_ONLY + NUMBER_ONLY + ONE_WORD)
async def test_a_letter_number_or_word_instruction_gets_that_alone(
    local_provider: LocalProvider, prompt: str
) -> None:
    answer, question = await _answer(local_provider, prompt)
    assert question.form in {"letter", "number", "word"}
    assert is_in_form(question, answer), answer


async def test_several_numbered_questions_get_every_part_on_its_line(
    local_provider: LocalProvider,
) -> None:
    answer, question = await _answer(local_provider, SEVERAL)
    assert question.kind == "parts"
    lines = answer.splitlines()
    assert [line.split(".")[0] for line in lines] == ["1", "2", "3"], answer
    assert is_in_form(question, answer), answer
