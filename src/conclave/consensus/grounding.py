"""Grounded answers: the retrieval step before the first round, and the citation check after
the combiner. Both are steps any strategy runs; neither calls a model but through the one call
path (`calls.ModelCalls`).

**Retrieval.** The latest user message is the query; the collection's best `passages` passages
(BM25, or the hybrid) are put into the conversation, numbered, in a system message just before
that user message, with the instruction to answer from them only, to cite each sentence's
sources inline ([1], [2][3]) and, when they do not hold the answer, to say only ABSTENTION.
The user's message itself is left as it was, so that reading the answer (its kind, the words of
the question) is not confused by the passages.

**Citation check.** The answer is read as statements (see `citations`). Markers naming no
passage given are removed. Each statement that cites is checked against its passages together
(`support`: the strongest member's yes/no, or the lexical check); one that cites nothing, or
whose citations do not support it, is tried against one other passage, the one most members
cited for the same claim and, among those, the closest in words: if that passage supports it, it
is cited instead (re-cited). What no passage supports is dropped, or kept and marked
(`unsupported: mark`). When no statement is left that the passages support, the answer
abstains: ABSTENTION, recorded with `abstained: true`; or, with `general_knowledge: true`, the
panel's answer is returned marked as general knowledge. The report carries each statement's
verdict, the citations of the answer returned, ALCE's citation recall and precision of the
answer as written and as returned, and which checks ran.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from conclave.config import DocumentsOptions
from conclave.consensus.calls import ModelCalls
from conclave.consensus.citations import (
    MARKER,
    CheckedStatement,
    Citation,
    CitationReport,
    CitationScores,
    Passage,
    RetrievalReport,
    RetrievedPassage,
    Statement,
    StatementStatus,
    SupportVerdict,
    alce_scores,
    cited_text,
    content_words,
    read_statements,
)
from conclave.consensus.events import AnswerChecked, ConversationPrepared, StepProgress
from conclave.consensus.panel import Member
from conclave.consensus.prompts import latest_user_query
from conclave.consensus.steps import CheckEvent, PrepareEvent
from conclave.consensus.strategies.registry import Extension
from conclave.consensus.support import (
    content_overlap,
    judge_member,
    judge_support,
    lexical_support,
    missing_exact_term,
)
from conclave.consensus.transcript import CallRecord, RoundRecord, StepRecord
from conclave.types import Message

ABSTENTION = "The documents do not contain the answer."
"""What a grounded answer says when the passages do not hold the answer."""

GENERAL_KNOWLEDGE_MARK = "[not from the documents: general knowledge]"
UNSUPPORTED_MARK = "[not supported by the documents]"

SOURCES_HEADER = "Sources from the user's documents, numbered:"
CITING = (
    "end each sentence of your answer with the numbers of the sources that support it, in "
    'square brackets; for example: "The bridge is 120 metres long [2]."'
)
GROUNDED_INSTRUCTION = (
    f"Answer the user's question from these sources only, in the form the question asks for, "
    f'and {CITING} If the sources do not contain the answer, reply only: "{ABSTENTION}"'
)
GENERAL_KNOWLEDGE_INSTRUCTION = (
    f"Answer the user's question from these sources, in the form the question asks for, and "
    f'{CITING} If the sources do not contain the answer, say "{ABSTENTION}", then answer from '
    "general knowledge without citations."
)

RECITE_OVERLAP = 0.5
"""A member's statement makes "the same claim" as the answer's when it shares at least this
share of its content words."""

_ABSTAINING = re.compile(
    r"\b(?:"
    r"(?:not|no where|nowhere) (?:(?:found|mentioned|stated|given|contained|covered) )?"
    r"in (?:the |these |any of the )?(?:documents?|sources?|passages?|context|text)"
    r"|(?:documents?|sources?|passages?|context|text) (?:do|does|did) not "
    r"(?:contain|hold|mention|say|state|provide|include|give|specify)"
    r"|(?:documents?|sources?|passages?|context|text) (?:don't|doesn't|didn't) "
    r"(?:contain|hold|mention|say|state|provide|include|give|specify)"
    r"|no (?:information|mention|answer) (?:about|on|of|to|for|in)"
    r"|(?:cannot|can't|could not|couldn't|unable to) (?:find|answer|determine|tell)"
    r")",
    re.IGNORECASE,
)
"""A sentence saying the documents do not hold the answer (the instructed ABSTENTION, or the
usual ways models put it)."""


def says_not_in_documents(text: str) -> bool:
    return _ABSTAINING.search(text) is not None


class PassageFinder(Protocol):
    """Where the retrieval step finds passages: a collection of documents, searched one way
    (see `conclave.documents`, which builds one from a config's `documents` block)."""

    @property
    def collection(self) -> str: ...

    @property
    def retrieval(self) -> str:
        """How it searches (bm25, hybrid), for the record."""
        ...

    def find(self, question: str, limit: int) -> list[tuple[Passage, float]]:
        """The `limit` best passages for `question` with their scores, best first (blocking:
        the step runs it in a worker thread)."""
        ...


def numbered(retrieval: RetrievalReport, number: int) -> Passage | None:
    """The passage the members saw as [number], or None when there is no such number."""
    if 1 <= number <= len(retrieval.passages):
        return retrieval.passages[number - 1].passage
    return None


def sources_message(retrieval: RetrievalReport, *, general_knowledge: bool) -> Message:
    """The system message that gives the members the passages and the instruction."""
    blocks = [
        f"[{item.number}] {item.passage.title}\n{item.passage.text.strip()}"
        for item in retrieval.passages
    ]
    listed = "\n\n".join(blocks) if blocks else "(no passage of the documents matches)"
    instruction = GENERAL_KNOWLEDGE_INSTRUCTION if general_knowledge else GROUNDED_INSTRUCTION
    return Message(role="system", content=f"{SOURCES_HEADER}\n\n{listed}\n\n{instruction}")


def grounded_conversation(
    conversation: Sequence[Message], retrieval: RetrievalReport, *, general_knowledge: bool
) -> tuple[Message, ...]:
    """The conversation with the sources message just before its latest user message."""
    messages = list(conversation)
    latest = max(i for i, message in enumerate(messages) if message.role == "user")
    sources = sources_message(retrieval, general_knowledge=general_knowledge)
    return (*messages[:latest], sources, *messages[latest:])


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer after the citation check, its report, and the judge's calls."""

    answer: str
    report: CitationReport
    calls: tuple[CallRecord, ...]


class Grounding:
    """The retrieval step and the citation check for one config's `documents` block.

    `judge` is the member whose yes/no decides support (the strongest), asked through `calls`
    (the run's call path); None, or `support_check: lexical`, uses the lexical check alone.
    """

    def __init__(
        self,
        options: DocumentsOptions,
        finder: PassageFinder,
        *,
        judge: Member | None,
        calls: ModelCalls,
    ) -> None:
        self.options = options
        self._finder = finder
        use_judge = judge is not None and options.support_check == "judge"
        self._judge = judge_member(judge) if use_judge and judge is not None else None
        self._calls = calls

    async def retrieve(self, conversation: Sequence[Message]) -> RetrievalReport:
        """The passages for the conversation's latest user message."""
        query = latest_user_query(conversation) or ""
        hits = await asyncio.to_thread(self._finder.find, query, self.options.passages)
        return RetrievalReport(
            collection=self._finder.collection,
            query=query,
            retrieval=self._finder.retrieval,
            passages=tuple(
                RetrievedPassage(number=number, score=score, passage=passage)
                for number, (passage, score) in enumerate(hits, start=1)
            ),
        )

    def conversation(
        self, conversation: Sequence[Message], retrieval: RetrievalReport
    ) -> tuple[Message, ...]:
        return grounded_conversation(
            conversation, retrieval, general_knowledge=self.options.general_knowledge
        )

    async def check(
        self, retrieval: RetrievalReport, answer: str, member_answers: Sequence[CallRecord] = ()
    ) -> CheckedAnswer:
        """Check `answer`'s citations against the retrieval (see the module docstring);
        `member_answers` are the answers it was made from."""
        checker = _Checker(self, retrieval, member_answers)
        return await checker.run(answer)

    async def verdict(
        self, passages: Sequence[Passage], claim: str, question: str, calls: list[CallRecord]
    ) -> SupportVerdict:
        """Whether `passages` together support `claim` (answering `question`); a judge call
        made is added to `calls`."""
        if missing_exact_term(passages, claim) is not None:
            return SupportVerdict(supported=False, probability=0.0, method="exact_terms")
        if self._judge is not None:
            verdict, record = await judge_support(
                self._calls,
                self._judge,
                passages,
                claim,
                question,
                self.options.support_threshold,
            )
            calls.append(record)
            if verdict is not None:
                return verdict
        return lexical_support(passages, claim)

    @property
    def judge_label(self) -> str | None:
        return self._judge.label if self._judge is not None else None


@dataclass
class _Checker:
    """One answer's check, remembering every verdict so that no question is asked twice."""

    grounding: Grounding
    retrieval: RetrievalReport
    member_answers: Sequence[CallRecord]
    calls: list[CallRecord] = field(default_factory=list)
    verdicts: dict[tuple[tuple[int, ...], str], SupportVerdict] = field(default_factory=dict)
    methods: set[str] = field(default_factory=set)

    async def support(self, numbers: Sequence[int], claim: str) -> SupportVerdict:
        key = (tuple(sorted(numbers)), claim)
        if key not in self.verdicts:
            passages = [p for n in key[0] if (p := numbered(self.retrieval, n)) is not None]
            question = self.retrieval.query
            verdict = await self.grounding.verdict(passages, claim, question, self.calls)
            self.methods.add(verdict.method)
            self.verdicts[key] = verdict
        return self.verdicts[key]

    async def run(self, answer: str) -> CheckedAnswer:
        options = self.grounding.options
        statements = read_statements(answer)
        checked = [await self._check(statement) for statement in statements]
        written = await self._scores(
            [(s.claim, s.markers) for s, c in zip(statements, checked, strict=True) if _claims(c)]
        )
        grounded = any(c.status in ("supported", "recited") for c in checked)
        general = not grounded and options.general_knowledge and any(map(_claims, checked))
        abstained = not grounded and not general
        if general:
            checked = [
                c.model_copy(update={"action": "marked", "cited": ()}) if _claims(c) else c
                for c in checked
            ]
        if abstained:
            checked = [
                c.model_copy(update={"action": "dropped", "cited": ()}) if _claims(c) else c
                for c in checked
            ]
        breaks = [_line_break(answer, a, b) for a, b in itertools.pairwise(statements)]
        mark = GENERAL_KNOWLEDGE_MARK if general else UNSUPPORTED_MARK
        final, citations = (ABSTENTION, []) if abstained else self._compose(checked, breaks, mark)
        returned = None
        if not abstained:
            returned = await self._scores(
                [(c.claim, c.cited) for c in checked if _claims(c) and c.action != "dropped"]
            )
        report = CitationReport(
            statements=tuple(checked),
            citations=tuple(citations),
            removed_markers=tuple(n for c in checked for n in c.invalid_markers),
            written=written,
            returned=returned,
            abstained=abstained,
            general_knowledge=general,
            checks=self._checks_run(),
        )
        return CheckedAnswer(answer=final, report=report, calls=tuple(self.calls))

    async def _check(self, statement: Statement) -> CheckedStatement:
        count = len(self.retrieval.passages)
        valid = tuple(n for n in statement.markers if 1 <= n <= count)
        invalid = tuple(n for n in statement.markers if not 1 <= n <= count)
        claim = statement.claim
        base = CheckedStatement(
            text=statement.text,
            claim=claim,
            markers=statement.markers,
            invalid_markers=invalid,
            cited=valid,
            status="not_a_claim",
            action="kept",
        )
        if statement.source_list:  # its markers went to the statements before it
            return base.model_copy(update={"action": "dropped", "cited": ()})
        if says_not_in_documents(claim):
            return base.model_copy(update={"status": "abstention", "cited": ()})
        if not content_words(claim):
            return base
        members = self._members_citing(claim, valid)
        if valid:
            verdict = await self.support(valid, claim)
            if verdict.supported:
                return base.model_copy(
                    update={"status": "supported", "verdict": verdict, "members": members}
                )
        else:
            verdict = None
        for number in self._recite_candidates(claim, exclude=valid):
            tried = await self.support([number], claim)
            if tried.supported:
                return base.model_copy(
                    update={
                        "status": "recited",
                        "action": "recited",
                        "cited": (number,),
                        "verdict": tried,
                        "members": self._members_citing(claim, (number,)),
                    }
                )
            verdict = verdict or tried
        action = "marked" if self.grounding.options.unsupported == "mark" else "dropped"
        status: StatementStatus = "unsupported"
        return base.model_copy(
            update={"status": status, "action": action, "verdict": verdict, "cited": ()}
        )

    def _recite_candidates(self, claim: str, exclude: Sequence[int]) -> list[int]:
        """The one passage worth trying for an unsupported claim: among those it did not cite
        and that share a word with it, the one most members cited for the same claim, then
        the closest in words."""
        scored = []
        for item in self.retrieval.passages:
            if item.number in exclude:
                continue
            overlap = content_overlap(claim, f"{item.passage.title} {item.passage.text}")
            if overlap <= 0.0:
                continue
            backing = len(self._members_citing(claim, (item.number,)))
            scored.append((backing, overlap, -item.number, item.number))
        scored.sort(reverse=True)
        return [number for *_, number in scored[:1]]

    def _members_citing(self, claim: str, numbers: Sequence[int]) -> tuple[str, ...]:
        """The members whose own answer makes this claim (by shared words) citing one of
        `numbers`."""
        if not numbers:
            return ()
        backing: list[str] = []
        for record in self.member_answers:
            for statement in read_statements(record.text):
                if set(statement.markers) & set(numbers) and (
                    content_overlap(claim, statement.claim) >= RECITE_OVERLAP
                ):
                    backing.append(record.model)
                    break
        return tuple(dict.fromkeys(backing))

    async def _scores(self, statements: Sequence[tuple[str, Sequence[int]]]) -> CitationScores:
        """ALCE's recall and precision of (claim, cited numbers) pairs."""
        count = len(self.retrieval.passages)
        entailed: list[bool] = []
        needed: list[list[bool]] = []
        for claim, numbers in statements:
            if not numbers or any(not 1 <= n <= count for n in numbers):
                entailed.append(False)
                needed.append([False] * len(numbers))
                continue
            joint = (await self.support(numbers, claim)).supported
            entailed.append(joint)
            if not joint or len(numbers) == 1:
                needed.append([joint] * len(numbers))
                continue
            flags = []
            for number in numbers:
                alone = (await self.support([number], claim)).supported
                if alone:
                    flags.append(True)
                    continue
                rest = [n for n in numbers if n != number]
                flags.append(not (await self.support(rest, claim)).supported)
            needed.append(flags)
        return alce_scores(entailed, needed)

    def _compose(
        self, checked: Sequence[CheckedStatement], breaks: Sequence[bool], mark: str
    ) -> tuple[str, list[Citation]]:
        """The answer returned, from the checked statements (a statement that began a new
        line still does; a marked one ends with `mark`), and a citation for every marker in
        it."""
        answer = ""
        citations: list[Citation] = []
        for index, statement in enumerate(checked):
            piece = _shown(statement, mark)
            if not piece:
                continue
            if answer:
                answer += "\n" if index > 0 and breaks[index - 1] else " "
            offset = len(answer)
            answer += piece
            for match in MARKER.finditer(piece):
                for number in _numbers(match.group(1)):
                    passage = numbered(self.retrieval, number)
                    if passage is None or number not in statement.cited:
                        continue
                    citations.append(
                        Citation(
                            marker=number,
                            passage_id=passage.id,
                            path=passage.path,
                            title=passage.title,
                            start=passage.start,
                            end=passage.end,
                            uri=passage.uri,
                            snippet=passage.snippet(about=statement.claim),
                            statement=index,
                            answer_start=offset + match.start(),
                            answer_end=offset + match.end(),
                        )
                    )
        return answer, citations

    def _checks_run(self) -> tuple[str, ...]:
        checks = ["markers"]
        if "judge" in self.methods and self.grounding.judge_label is not None:
            checks.append(f"support:judge:{self.grounding.judge_label}")
        if "lexical" in self.methods:
            checks.append("support:lexical")
        if "exact_terms" in self.methods:
            checks.append("support:exact-terms")
        return tuple(checks)


def _claims(checked: CheckedStatement) -> bool:
    return checked.status not in ("abstention", "not_a_claim")


def _shown(checked: CheckedStatement, mark: str) -> str:
    if checked.action == "dropped":
        return ""
    if checked.action == "marked":
        return f"{checked.claim} {mark}"
    if checked.status in ("abstention", "not_a_claim"):
        return checked.claim
    return cited_text(checked.claim, checked.cited)


def _line_break(answer: str, before: Statement, after: Statement) -> bool:
    return "\n" in answer[before.end : after.start]


def _numbers(marker_body: str) -> list[int]:
    return [int(n) for n in re.split(r"\s*[,;]\s*", marker_body)]


STEP = "grounding"
"""The name of both grounding steps in events and transcripts."""

KEPT_RETRIEVALS = 256
"""Retrievals held for their runs' checks: a run that fails before its check leaves one."""


class _Retrievals:
    """Each run's retrieval, found again by the check through the conversation the rounds were
    given (the grounded one): runs of one engine at the same time never mix their passages,
    and two runs of the same conversation each find theirs."""

    def __init__(self) -> None:
        self._by_conversation: OrderedDict[tuple[Message, ...], list[RetrievalReport]] = (
            OrderedDict()
        )

    def keep(self, grounded: tuple[Message, ...], retrieval: RetrievalReport) -> None:
        self._by_conversation.setdefault(grounded, []).append(retrieval)
        while len(self._by_conversation) > KEPT_RETRIEVALS:
            self._by_conversation.popitem(last=False)

    def take(self, grounded: Sequence[Message]) -> RetrievalReport:
        key = tuple(grounded)
        kept = self._by_conversation.get(key)
        if not kept:
            raise AssertionError("the citation check ran on a conversation never grounded")
        retrieval = kept.pop(0)
        if not kept:
            del self._by_conversation[key]
        return retrieval


class RetrievalStep:
    """The step before the first round: retrieve, and put the numbered passages in."""

    name = STEP

    def __init__(self, grounding: Grounding, retrievals: _Retrievals) -> None:
        self._grounding = grounding
        self._retrievals = retrievals

    async def prepare(
        self, conversation: tuple[Message, ...]
    ) -> AsyncGenerator[PrepareEvent, None]:
        retrieval = await self._grounding.retrieve(conversation)
        grounded = self._grounding.conversation(conversation, retrieval)
        self._retrievals.keep(grounded, retrieval)
        yield StepProgress(
            step=STEP,
            name=retrieval.collection,
            status="finished",
            message=f"{len(retrieval.passages)} passage(s) from {retrieval.collection!r}",
        )
        yield ConversationPrepared(
            step=STEP, conversation=grounded, record=StepRecord(step=STEP, report=retrieval)
        )


class CitationCheckStep:
    """The check after the combiner: the final consensus's citations, checked."""

    name = STEP

    def __init__(self, grounding: Grounding, retrievals: _Retrievals) -> None:
        self._grounding = grounding
        self._retrievals = retrievals

    async def check(
        self, round: RoundRecord, conversation: Sequence[Message], answer: str
    ) -> AsyncGenerator[CheckEvent, None]:
        retrieval = self._retrievals.take(conversation)
        yield StepProgress(
            step=STEP, round=round.index, status="started", message="checking the citations"
        )
        checked = await self._grounding.check(retrieval, answer, round.answered)
        yield AnswerChecked(
            round=round.index,
            step=STEP,
            answer=checked.answer,
            revised=checked.answer != answer,
            record=StepRecord(step=STEP, calls=checked.calls, report=checked.report),
        )


def grounding_steps(grounding: Grounding) -> Extension:
    """Both grounding steps around a strategy's rounds, sharing each run's retrieval."""
    retrievals = _Retrievals()
    return Extension(
        before=(RetrievalStep(grounding, retrievals),),
        after=(CitationCheckStep(grounding, retrievals),),
    )
