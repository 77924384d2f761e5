"""Memory bounded by size: a transcript names the conversation once (call records refer to
it), and the in-memory store keeps at most a byte budget of transcripts."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx2

from conclave.consensus.transcript import CallRecord, RoundRecord, Transcript
from conclave.server import MemoryTranscriptStore
from conclave.types import Message

from .conftest import Served


def test_a_transcript_holds_the_conversation_once_and_each_call_refers_to_it(
    served: Served,
) -> None:
    prompt = "Capital of France? " + "with a long preamble " * 500
    body = {"model": "default", "messages": [{"role": "user", "content": prompt}]}
    answer = httpx2.post(served.v1 + "/chat/completions", json=body).json()
    data = httpx2.get(f"{served.v1}/transcripts/{answer['conclave']['transcript_id']}").json()
    transcript = Transcript.model_validate(data)

    first_round, second_round = transcript.rounds
    for call in first_round.responses:
        assert call.conversation_messages == 1
        assert call.messages == ()
    for call in second_round.responses:
        assert call.conversation_messages == 1
        assert call.messages[0].content.startswith("Consensus: ")
    # What each member was really sent is still there, whole.
    for call in (*first_round.responses, *second_round.responses):
        sent = served.fakes[call.model].history
        assert transcript.sent(call) in {tuple(recorded.messages) for recorded in sent}
    # The conversation once, plus the question the aggregator is shown in each round.
    assert transcript.to_json().count(prompt) == 1 + len(transcript.rounds)


def transcript_of(run_id: str, chars: int) -> Transcript:
    question = Message(role="user", content="q" * chars)
    call = CallRecord(model="a", conversation_messages=1, text="answer")
    return Transcript(
        id=run_id,
        created_at=datetime.now(UTC),
        conversation=(question,),
        rounds=(RoundRecord(index=0, responses=(call,), aggregate=call),),
        answer="answer",
    )


async def test_the_store_keeps_the_newest_transcripts_within_its_byte_budget() -> None:
    store = MemoryTranscriptStore(100, max_bytes=35_000)
    for index in range(5):
        await store.put(transcript_of(f"run{index}", 10_000))

    assert [await store.get(f"run{index}") is not None for index in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert store.bytes_kept <= 35_000

    await store.put(transcript_of("huge", 50_000))  # over the whole budget: not kept
    assert await store.get("huge") is None
    assert await store.get("run4") is not None
