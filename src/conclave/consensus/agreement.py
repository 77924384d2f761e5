"""Agreement between answers: clusters of answers that say the same thing, a weighted vote,
and how far the members back a consensus.

Short answers (letters, numbers, short strings) are compared by their extracted keys; free-form
answers by a `Similarity` (sentence embeddings where installed, else word overlap), because
cosine similarity alone does not separate contradicting short answers ("Canberra" against
"Sydney" scores 0.88 with MiniLM). Member weights decide the vote, so a weak member cannot
outvote a strong one. Ties between numbers or texts go first by how the answers were reached:
to a worked answer (reasoning that ends on its answer) for a calculation, to a direct answer for
a recalled fact, since working a question out pays on calculations and not on recall (Sprague et
al., "To CoT or not to CoT?", arXiv 2409.12183), and a worked text's mean token probability,
mostly that of its easy working, says little of the fact it ends on. Then ties go to the cluster
whose answers the models were surer of. A request of several numbered questions is voted part
by part, and the consensus joins the winning answer of each part. A multiple-choice answer read
from the options' probabilities votes with all of them (each letter gets the member's weight
times its share), so that draws shown the options in other orders average their probabilities
back; votes may also be weighted by each answer's own confidence (its mean token probability),
as CISC does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from conclave.consensus.answers import (
    Question,
    final_answer,
    letter_shares,
    part_answers,
    same_text_answer,
    text_similarity,
)
from conclave.consensus.transcript import Agreement, AnswerCluster, CallRecord
from conclave.types import Message

_PREVIEW_CHARS = 80


class Similarity(Protocol):
    """How alike free-form answers are, pairwise, 0..1; `same` is the level from which two
    answers count as saying the same thing."""

    same: float

    def matrix(self, texts: Sequence[str]) -> list[list[float]]: ...


class WordOverlap:
    """Similarity by shared wording (difflib over words): no model needed, but blind to
    paraphrase."""

    same = 0.5

    def matrix(self, texts: Sequence[str]) -> list[list[float]]:
        return [
            [1.0 if i == j else text_similarity(a, b) for j, b in enumerate(texts)]
            for i, a in enumerate(texts)
        ]


@dataclass(frozen=True)
class Ballot:
    """One answer to count: who gave it, its text, the member's weight, and how sure the model
    was (mean token probability), where known."""

    member: str
    text: str
    weight: float = 1.0
    probability: float | None = None
    shares: Mapping[str, float] | None = None
    """For a multiple-choice answer read from the options' probabilities: each letter's share."""
    worked: bool = False
    """Whether the answer was worked out: asked for more than the question (to reason first),
    or its text ends on a final "Answer:" line or runs over several lines; a direct answer is
    the question's answer in a line."""

    @classmethod
    def of(cls, record: CallRecord, weight: float, asked: Sequence[Message] = ()) -> Ballot:
        """The record's answer: what it concludes, when it reasoned first (see final_answer);
        with the options' probabilities, the likeliest letter, as sure as its share. `asked`
        is the conversation the vote is on."""
        shares = letter_shares(record.choice_probabilities)
        if shares:
            letter = max(sorted(shares), key=lambda key: shares[key])
            return cls(record.model, letter, weight, shares[letter], shares)
        answer = final_answer(record.text)
        worked = answer != record.text or "\n" in record.text.strip() or record.asked_beyond(asked)
        return cls(record.model, answer, weight, record.token_probability, worked=worked)


@dataclass
class _Cluster:
    key: str
    ballots: list[int] = field(default_factory=list)
    mass: float | None = None
    """The letter's weighted share over every ballot, when the options' probabilities vote."""


@dataclass(frozen=True)
class VoteResult:
    """The winning ballot of a vote, and the agreement measured around it; for a request of
    several parts, `text` joins each part's winning answer ("1. B\n2. 42")."""

    winner: int
    agreement: Agreement
    text: str | None = None


@dataclass(frozen=True)
class Counting:
    """How the answers of one question are read and compared."""

    question: Question
    similarity: Similarity

    def vote(self, ballots: Sequence[Ballot]) -> VoteResult:
        """Plurality by weight over the extracted answers (ties: for numbers and texts the
        cluster with an answer reached the way that suits the question, then the surer
        cluster, the heavier single member, panel order); for free-form answers the most central
        answer (the highest weighted similarity to all the others) wins. Falls back to the
        heaviest ballot when no answer can be read. `ballots` must not be empty."""
        if not ballots:
            raise ValueError("a vote needs at least one answer")
        if self.question.kind == "parts":
            return self._vote_parts(ballots)
        clusters, unparsed = self._clusters(ballots)
        if self.question.kind == "free":
            centrality = self._centrality(ballots)
            winner = max(range(len(ballots)), key=lambda i: (centrality[i], -i))
        elif clusters:
            best = max(clusters, key=lambda c: self._rank_key(c, ballots))
            if not best.ballots:  # a letter that wins on the draws' shares, no one's first
                winner = max(range(len(ballots)), key=lambda i: _ballot_rank(ballots[i], i))
                agreement = self._agreement(ballots, clusters, unparsed, best)
                return VoteResult(winner, agreement, text=best.key)
            winner = max(
                best.ballots, key=lambda i: (ballots[i].weight, _probability(ballots[i]), -i)
            )
        else:
            winner = max(range(len(ballots)), key=lambda i: _ballot_rank(ballots[i], i))
        winning_cluster = next((c for c in clusters if winner in c.ballots), None)
        return VoteResult(winner, self._agreement(ballots, clusters, unparsed, winning_cluster))

    def _vote_parts(self, ballots: Sequence[Ballot]) -> VoteResult:
        """Each part voted on its own, among the ballots that answer it; the heaviest ballot
        that gives every winning answer stands for the vote (else the heaviest)."""
        parts = self.question.parts
        given = [part_answers(ballot.text, len(parts)) for ballot in ballots]
        lines = []
        for index, part in enumerate(parts):
            answering = [i for i, texts in enumerate(given) if texts[index] is not None]
            if not answering:
                continue
            part_ballots = [replace(ballots[i], text=given[i][index] or "") for i in answering]
            won = Counting(part, self.similarity).vote(part_ballots).winner
            lines.append(f"{index + 1}. {part_ballots[won].text}")
        text = "\n".join(lines)
        agreement = self.support_for(ballots, text)
        backing = [i for i, b in enumerate(ballots) if b.member in agreement.supporters]
        everyone = range(len(ballots))
        winner = max(backing or everyone, key=lambda i: _ballot_rank(ballots[i], i))
        return VoteResult(winner, agreement, text=text)

    def support_for(self, ballots: Sequence[Ballot], consensus: str) -> Agreement:
        """The agreement among `ballots`, and how far they back `consensus` (a text written by
        an aggregator, which may match none of them)."""
        clusters, unparsed = self._clusters(ballots)
        if not ballots:
            return Agreement(
                kind=self.question.kind,
                score=0.0,
                clusters=(),
                calculation=self.question.calculation,
            )
        if self.question.kind == "free":
            similarity = self.similarity.matrix([consensus, *(b.text for b in ballots)])[0][1:]
            backing = [i for i, value in enumerate(similarity) if value >= self.similarity.same]
            cluster = next((c for c in clusters if set(backing) & set(c.ballots)), None)
            return self._agreement(ballots, clusters, unparsed, cluster, backing=backing)
        key = self.question.extract(consensus)
        cluster = None
        if key is not None:
            cluster = next((c for c in clusters if self._same(c.key, key)), None)
        agreement = self._agreement(ballots, clusters, unparsed, cluster)
        return agreement.model_copy(update={"answer": key})

    def _clusters(self, ballots: Sequence[Ballot]) -> tuple[list[_Cluster], list[int]]:
        if self.question.kind == "free":
            return self._free_clusters(ballots), []
        if self.question.kind == "letter" and any(b.shares for b in ballots):
            return self._share_clusters(ballots)
        clusters: list[_Cluster] = []
        unparsed: list[int] = []
        for index, ballot in enumerate(ballots):
            key = self.question.extract(ballot.text)
            if key is None:
                unparsed.append(index)
                continue
            cluster = next((c for c in clusters if self._same(c.key, key)), None)
            if cluster is None:
                clusters.append(_Cluster(key, [index]))
            else:
                cluster.ballots.append(index)
                if len(key) < len(cluster.key):
                    cluster.key = key  # the shortest spelling names the cluster
        return clusters, unparsed

    def _share_clusters(self, ballots: Sequence[Ballot]) -> tuple[list[_Cluster], list[int]]:
        """A cluster per letter with any share: its mass the weights times the shares (a
        ballot with no shares puts its whole weight on the letter it names), its ballots
        those whose likeliest letter it is."""
        masses: dict[str, float] = {}
        firsts: dict[str, list[int]] = {}
        unparsed: list[int] = []
        for index, ballot in enumerate(ballots):
            letter = self.question.extract(ballot.text)
            if letter is None and not ballot.shares:
                unparsed.append(index)
                continue
            if letter is not None:
                firsts.setdefault(letter, []).append(index)
            shares = ballot.shares or ({letter: 1.0} if letter is not None else {})
            for key, share in shares.items():
                masses[key] = masses.get(key, 0.0) + ballot.weight * share
        clusters = [
            _Cluster(letter, firsts.get(letter, []), mass)
            for letter, mass in sorted(masses.items())
            if mass > 0 or letter in firsts
        ]
        return clusters, unparsed

    def _free_clusters(self, ballots: Sequence[Ballot]) -> list[_Cluster]:
        matrix = self.similarity.matrix([b.text for b in ballots])
        clusters: list[_Cluster] = []
        for index in range(len(ballots)):
            cluster = next(
                (c for c in clusters if matrix[c.ballots[0]][index] >= self.similarity.same), None
            )
            if cluster is None:
                clusters.append(_Cluster(_preview(ballots[index].text), [index]))
            else:
                cluster.ballots.append(index)
        return clusters

    def _centrality(self, ballots: Sequence[Ballot]) -> list[float]:
        matrix = self.similarity.matrix([b.text for b in ballots])
        return [
            sum(ballots[j].weight * matrix[i][j] for j in range(len(ballots)))
            for i in range(len(ballots))
        ]

    def _same(self, first: str, second: str) -> bool:
        if self.question.kind == "text":
            return same_text_answer(first, second)
        return first == second

    def _rank_key(
        self, cluster: _Cluster, ballots: Sequence[Ballot]
    ) -> tuple[float, bool, float, float, int]:
        """Weight, then (numbers and texts) whether the cluster holds an answer reached the way
        that suits the question (worked for a calculation, direct for recall), then surety,
        the heaviest member, the first answer."""
        members = cluster.ballots
        surety = sum(_probability(ballots[i]) for i in members) / len(members) if members else 0.0
        heaviest = max((ballots[i].weight for i in members), default=0.0)
        first = -min(members, default=len(ballots))
        suited = False
        if self.question.kind in ("number", "text"):
            suited = any(ballots[i].worked == self.question.calculation for i in members)
        return round(_weight(cluster, ballots), 9), suited, surety, heaviest, first

    def _agreement(
        self,
        ballots: Sequence[Ballot],
        clusters: Sequence[_Cluster],
        unparsed: Sequence[int],
        backing_cluster: _Cluster | None,
        *,
        backing: Sequence[int] | None = None,
    ) -> Agreement:
        total = sum(b.weight for b in ballots) or 1.0
        shown = sorted(
            (
                AnswerCluster(
                    answer=c.key,
                    members=tuple(ballots[i].member for i in c.ballots),
                    weight=_weight(c, ballots),
                    share=_weight(c, ballots) / total,
                )
                for c in clusters
            ),
            key=lambda c: -c.weight,
        )
        supporting = list(backing) if backing is not None else []
        if backing is None and backing_cluster is not None:
            supporting = backing_cluster.ballots
        support = sum(ballots[i].weight for i in supporting) / total
        if backing is None and backing_cluster is not None and backing_cluster.mass is not None:
            support = backing_cluster.mass / total
        probabilities = [p for i in supporting if (p := ballots[i].probability) is not None]
        probability = sum(probabilities) / len(probabilities) if probabilities else None
        confidence = support if probability is None else (support + probability) / 2
        free = self.question.kind == "free"
        return Agreement(
            kind=self.question.kind,
            score=shown[0].share if shown else 0.0,
            clusters=tuple(shown),
            unparsed=tuple(ballots[i].member for i in unparsed),
            answer=None if backing_cluster is None or free else backing_cluster.key,
            supporters=tuple(ballots[i].member for i in supporting),
            support=support,
            token_probability=probability,
            confidence=confidence,
            calculation=self.question.calculation,
        )


def _weight(cluster: _Cluster, ballots: Sequence[Ballot]) -> float:
    """A cluster's weight in the vote: its mass when the options' probabilities vote, else its
    members' weights."""
    if cluster.mass is not None:
        return cluster.mass
    return sum(ballots[i].weight for i in cluster.ballots)


def _ballot_rank(ballot: Ballot, index: int) -> tuple[float, float, int]:
    """Within a cluster, the answer that stands for it: the heaviest member, the surest, the
    first."""
    return ballot.weight, _probability(ballot), -index


def _probability(ballot: Ballot) -> float:
    return ballot.probability if ballot.probability is not None else 0.0


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


class AgreementMeter:
    """Reads a round's answers against the question and the members' weights: the one place
    agreement, support and votes are computed."""

    def __init__(
        self,
        weights: Mapping[str, float],
        similarity: Similarity | None = None,
        *,
        aliases: Mapping[str, str] | None = None,
        confidence_weighted: bool = False,
    ) -> None:
        """`confidence_weighted`: each answer counts its member's weight times its own
        confidence (its mean token probability, or its letter's share), where known."""
        self._weights = weights
        self._similarity = similarity or WordOverlap()
        self._aliases = aliases
        self._confidence_weighted = confidence_weighted

    def question(self, conversation: Sequence[Message], texts: Sequence[str] = ()) -> Question:
        """What the conversation's latest user message asks, with the instructions of its
        system messages (see `Question.read`); `texts`, answers to it, help tell its kind."""
        return Question.of(conversation, texts, aliases=self._aliases)

    def counted(
        self, conversation: Sequence[Message], candidates: Sequence[CallRecord]
    ) -> tuple[Counting, list[Ballot]]:
        """How the candidates' answers are read and compared, and their ballots: each the
        answer its text concludes, or the whole text for a request of several parts."""
        ballots = [
            Ballot.of(record, self._weights.get(record.model, 1.0), conversation)
            for record in candidates
        ]
        if self._confidence_weighted:
            ballots = [
                replace(b, weight=b.weight * b.probability) if b.probability else b for b in ballots
            ]
        question = self.question(conversation, [b.text for b in ballots])
        if question.kind == "parts":
            ballots = [replace(b, text=r.text) for b, r in zip(ballots, candidates, strict=True)]
        return Counting(question, self._similarity), ballots

    def vote(self, conversation: Sequence[Message], candidates: Sequence[CallRecord]) -> CallRecord:
        """The candidate that wins the weighted vote (`candidates` must not be empty), its text
        the answer it concludes when the question wants a short answer and it reasoned first
        (for several parts, each part's winning answer)."""
        counting, ballots = self.counted(conversation, candidates)
        result = counting.vote(ballots)
        record = candidates[result.winner]
        text = result.text if result.text is not None else ballots[result.winner].text
        if counting.question.kind == "free" or text == record.text:
            return record
        return record.model_copy(update={"text": text})

    def measure(
        self, conversation: Sequence[Message], candidates: Sequence[CallRecord], consensus: str
    ) -> Agreement:
        """How far the candidates agree, and how far they back `consensus`."""
        counting, ballots = self.counted(conversation, candidates)
        return counting.support_for(ballots, consensus)
