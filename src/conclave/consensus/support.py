"""Does a passage support a claim? A model's yes/no judgement, or a lexical check.

The judge is the panel's strongest member, asked under a constrained reply: one token, "yes" or
"no", at temperature 0, with that token's probability where the backend reports one (the
embedded models always do; an OpenAI-compatible server when asked for logprobs). The support
probability is the probability of "yes" (one minus that of "no"); without a probability a "yes"
counts as 1 and a "no" as 0.

Before either, a claim stating a number (in digits) that none of its passages states is not
supported: no judge is asked (`missing_number`).

The lexical check stands in when no judge is configured, or when the judge's call fails or its
reply is neither yes nor no: a claim is supported when at least LEXICAL_THRESHOLD of its content
words (stop words left out, crudely stemmed) are in the passages and every number it states is
there too. It cannot see paraphrase or negation, which is why it is the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from conclave.consensus.calls import ModelCalls
from conclave.consensus.citations import Passage, SupportVerdict, content_words
from conclave.consensus.panel import Member
from conclave.consensus.transcript import CallRecord
from conclave.types import Message

LEXICAL_THRESHOLD = 0.6
"""The least share of a claim's content words found in the passages for lexical support."""

JUDGE_SYSTEM = (
    "You check whether a source text supports a claim. Reply with one word: yes if the source "
    "states the claim or directly implies it, no otherwise."
)
JUDGE_MAX_TOKENS = 1

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SUFFIXES = ("ingly", "ings", "ing", "edly", "ies", "ed", "es", "s")


def judge_messages(
    passages: Sequence[Passage], claim: str, question: str = ""
) -> tuple[Message, ...]:
    """What the judge is asked about `claim` and these passages (given together). The
    question the claim answers goes with it: a short answer ("8.9") says nothing alone."""
    source = "\n\n".join(f"{p.title}\n{p.text}" for p in passages)
    asked = f"Question: {question.strip()}\n" if question.strip() else ""
    request = (
        f"Source:\n{source}\n\n{asked}Claim: {claim}\n\n"
        "Does the source support the claim"
        + (" as an answer to the question" if asked else "")
        + "? Reply yes or no."
    )
    return (Message(role="system", content=JUDGE_SYSTEM), Message(role="user", content=request))


def judge_member(member: Member) -> Member:
    """`member` as the support judge: one token at temperature 0, with its probability where
    the backend reports one."""
    logprobs = member.provider.capabilities.token_probabilities or member.spec.logprobs
    return member.variant(
        f"{member.label} (support judge)",
        max_tokens=JUDGE_MAX_TOKENS,
        temperature=0.0,
        logprobs=logprobs,
    )


def read_judgement(record: CallRecord, threshold: float) -> SupportVerdict | None:
    """The judge's verdict from its reply, or None when the call failed or the reply is
    neither yes nor no."""
    if not record.ok:
        return None
    word = record.text.strip().lstrip("*\"'").lower()
    if word.startswith("yes"):
        yes = record.token_probability if record.token_probability is not None else 1.0
    elif word.startswith("no"):
        no = record.token_probability if record.token_probability is not None else 1.0
        yes = 1.0 - no
    else:
        return None
    return SupportVerdict(supported=yes >= threshold, probability=yes, method="judge")


async def judge_support(
    calls: ModelCalls,
    judge: Member,
    passages: Sequence[Passage],
    claim: str,
    question: str,
    threshold: float,
) -> tuple[SupportVerdict | None, CallRecord]:
    """Ask the judge (a member made by `judge_member`) through the run's call path whether
    `passages` support `claim` as an answer to `question`; the verdict is None when it could
    not say (the lexical check then decides)."""
    record = await calls.ask(judge, "step", judge_messages(passages, claim, question))
    return read_judgement(record, threshold), record


def missing_number(passages: Sequence[Passage], claim: str) -> str | None:
    """A number the claim states (in digits) that none of the passages states, or None:
    passages cannot support a number they do not give ("1,030,700" and "1030700" are one)."""
    given = {_plain_number(n) for p in passages for n in _NUMBER.findall(f"{p.title} {p.text}")}
    stated: list[str] = _NUMBER.findall(claim)
    return next((number for number in stated if _plain_number(number) not in given), None)


def lexical_support(passages: Sequence[Passage], claim: str) -> SupportVerdict:
    """The lexical check (see the module docstring)."""
    source = " ".join(f"{p.title} {p.text}" for p in passages)
    wanted = {_stem(word) for word in content_words(claim) if not word.isdigit()}
    have = {_stem(word) for word in content_words(source)}
    numbers_ok = missing_number(passages, claim) is None
    share = len(wanted & have) / len(wanted) if wanted else (1.0 if numbers_ok else 0.0)
    supported = numbers_ok and share >= LEXICAL_THRESHOLD and bool(wanted or _NUMBER.search(claim))
    return SupportVerdict(supported=supported, probability=share, method="lexical")


def content_overlap(claim: str, text: str) -> float:
    """The share of the claim's content words found in `text` (0 when it has none)."""
    wanted = {_stem(word) for word in content_words(claim)}
    if not wanted:
        return 0.0
    have = {_stem(word) for word in content_words(text)}
    return len(wanted & have) / len(wanted)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _plain_number(number: str) -> str:
    plain = number.replace(",", "")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    return plain
