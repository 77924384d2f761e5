"""Does a passage support a claim? A model's yes/no judgement, or a lexical check.

The judge is the panel's strongest member, asked under a constrained reply: one token, "yes" or
"no", at temperature 0, with that token's probability where the backend reports one (the
embedded models always do; an OpenAI-compatible server when asked for logprobs). The support
probability is the probability of "yes" (one minus that of "no"); without a probability a "yes"
counts as 1 and a "no" as 0.

Before either, a claim stating a number (in digits) or a code name (`zipfile.ZIP_STORED`) that
none of its passages states is not supported: no judge is asked (`missing_exact_term`).

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
SHORT_CLAIM_WORDS = 6
"""A claim of at most this many words is judged as the answer to the question."""

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CODE_NAME = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\(\))?|\b[A-Za-z]\w*_\w+\b")
"""A dotted name (`heapq.merge`, with `()` or not) or a name with an underscore (`ZIP_STORED`);
it is stated by a passage that has its last part (`merge`, `ZIP_STORED`)."""
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_SUFFIXES = ("ingly", "ings", "ing", "edly", "ies", "ed", "es", "s")


def judge_messages(
    passages: Sequence[Passage], claim: str, question: str = ""
) -> tuple[Message, ...]:
    """What the judge is asked about `claim` and these passages (given together). A short
    claim ("8.9") says nothing alone: it is put as the answer to the question (its first
    paragraph, without the instructions that may follow); a sentence is judged as it is, as
    ALCE judges statements."""
    source = "\n\n".join(f"{p.title}\n{p.text}" for p in passages)
    asked = " ".join(question.strip().split("\n\n")[0].split())
    if asked and len(claim.split()) <= SHORT_CLAIM_WORDS:
        claim = f'The answer to the question "{asked}" is: {claim}'
    request = (
        f"Source:\n{source}\n\nClaim: {claim}\n\n"
        "Does the source support the claim? Reply yes or no."
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
    neither yes nor no. Only a "yes" whose probability reaches `threshold` is support. A "no"
    never is; its recorded probability of yes is at most that of the "no" token (the reply is
    the most likely token) and of its complement."""
    if not record.ok:
        return None
    word = record.text.strip().lstrip("*\"'").lower()
    probability = record.token_probability
    if word.startswith("yes"):
        yes = probability if probability is not None else 1.0
        return SupportVerdict(supported=yes >= threshold, probability=yes, method="judge")
    if word.startswith("no"):
        yes = min(probability, 1.0 - probability) if probability is not None else 0.0
        return SupportVerdict(supported=False, probability=yes, method="judge")
    return None


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


def missing_exact_term(passages: Sequence[Passage], claim: str) -> str | None:
    """A term the claim states that only an exact copy can support, and that none of the
    passages states, or None: a number in digits ("1,030,700" and "1030700" are one) or a code
    name (`heapq.merge()`: the passages must name `merge`). Passages cannot support what they
    do not give."""
    source = " ".join(f"{p.title} {p.text}" for p in passages)
    given = {_plain_number(n) for n in _NUMBER.findall(source)}
    stated: list[str] = _NUMBER.findall(_CODE_NAME.sub(" ", claim))
    missing = next((number for number in stated if _plain_number(number) not in given), None)
    if missing is not None:
        return missing
    words = set(_IDENTIFIER.findall(source))
    return next(
        (
            name
            for name in _CODE_NAME.findall(claim)
            if name.removesuffix("()").rpartition(".")[2] not in words
        ),
        None,
    )


def lexical_support(passages: Sequence[Passage], claim: str) -> SupportVerdict:
    """The lexical check (see the module docstring)."""
    source = " ".join(f"{p.title} {p.text}" for p in passages)
    wanted = {_stem(word) for word in content_words(claim) if not word.isdigit()}
    have = {_stem(word) for word in content_words(source)}
    numbers_ok = missing_exact_term(passages, claim) is None
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
