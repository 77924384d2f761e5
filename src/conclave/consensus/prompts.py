"""The messages the engine builds: Flare's default prompts, candidate anonymising, improvement.

Candidates reach the aggregator as plain text, anonymised (`<response 1>...</response 1>`, ...)
and shuffled, so the aggregator cannot favour a model by name or by position. The tags matter for
small models: with "Response 1:" headings, Qwen2.5-0.5B copied the whole block back as its answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from conclave.types import Message, Role

FLARE_AGGREGATOR_CONTEXT = (
    Message(
        role="system",
        content=(
            "Your role is to objectively evaluate responses from multiple large-language models "
            "and combine them into a single response based on majority."
        ),
    ),
)

FLARE_AGGREGATOR_PROMPT = (
    Message(
        role="user",
        content=(
            "You have been provided with a set of responses from various open-source models to "
            "the latest user query. Your task is to synthesize these responses into a single, "
            "high-quality response. It is crucial to critically evaluate the information provided "
            "in these responses, recognizing that some of it may be biased or incorrect. Your "
            "response should not simply replicate the given answers but should offer a refined, "
            "accurate, and comprehensive reply to the instruction. Ensure your response is "
            "well-structured, coherent, and adheres to the highest standards of accuracy and "
            "reliability. Ensure that the length of your response is similar to that of the "
            "other responses."
        ),
    ),
)


# Short, direct prompts for small models (the embedded preset). Flare's long aggregator prompt
# made Qwen2.5-0.5B repeat its input back; these get direct answers.
COMPACT_AGGREGATOR_CONTEXT = (
    Message(
        role="system",
        content=(
            "You are the editor of a panel of assistants. You read their draft answers to a "
            "user's question and write the one best answer."
        ),
    ),
)

COMPACT_AGGREGATOR_PROMPT = (
    Message(
        role="user",
        content=(
            "Now answer the user's query yourself, correctly and briefly. Use the responses only "
            "where they are right. Do not mention the responses."
        ),
    ),
)

COMPACT_IMPROVEMENT_PROMPT = (
    "Taking the consensus above into account, answer the original query again: correct, direct "
    "and brief."
)


def anonymise_candidates(texts: Sequence[str], rng: random.Random) -> str:
    """The candidates shuffled and numbered, with no trace of which model wrote which."""
    shuffled = list(texts)
    rng.shuffle(shuffled)
    return "\n".join(
        f"<response {number}>\n{text.strip()}\n</response {number}>"
        for number, text in enumerate(shuffled, start=1)
    )


def latest_user_query(conversation: Sequence[Message]) -> str | None:
    for message in reversed(conversation):
        if message.role == "user":
            return message.content
    return None


def aggregation_messages(
    context: Sequence[Message],
    prompt: Sequence[Message],
    conversation: Sequence[Message],
    candidates: str,
) -> tuple[Message, ...]:
    """Flare's layout (context, then the candidates as a system message, then the prompt), with
    the user's whole conversation (system message and earlier turns included) before the
    candidates, so the aggregator keeps the user's instructions ("answer with the letter only")
    and knows what the candidates answer."""
    candidates_message = Message(
        role="system",
        content=f"Responses from the panel to the user's latest message:\n{candidates}",
    )
    return (
        *(context or FLARE_AGGREGATOR_CONTEXT),
        *conversation,
        candidates_message,
        *(prompt or FLARE_AGGREGATOR_PROMPT),
    )


def improvement_conversation(
    conversation: Sequence[Message],
    consensus: str,
    consensus_role: Role,
    improvement_prompt: str,
) -> tuple[Message, ...]:
    """The original conversation, the consensus so far (as the configured role), the prompt."""
    return (
        *conversation,
        Message(role=consensus_role, content=f"Consensus: {consensus}"),
        Message(role="user", content=improvement_prompt),
    )


def peer_answers_conversation(
    conversation: Sequence[Message],
    answers: str,
    consensus: str,
    consensus_role: Role,
    improvement_prompt: str,
) -> tuple[Message, ...]:
    """The original conversation, every answer of the last round (anonymised), the consensus
    so far, and the prompt: a debate round, or the next layer of a Mixture-of-Agents."""
    return (
        *conversation,
        Message(
            role=consensus_role,
            content=f"Answers from the panel:\n{answers}\n\nConsensus: {consensus}",
        ),
        Message(role="user", content=improvement_prompt),
    )
