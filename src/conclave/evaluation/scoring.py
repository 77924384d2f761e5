"""Scorers: is an answer right for a row? One per answer kind, chosen per row, and pluggable.

A scorer is any `function(answer: str, row: EvalRow) -> bool`. `Scorers` picks one by the row's
`kind`; `--scorer module:function` replaces them all, `--scorer number=module:function` only the
one for a kind. A row of several numbered questions (a composite task among them) is right
when each of its parts is, each part's answer (after its number) scored by the scorer of the
part's kind.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from conclave.consensus.answers import (
    Question,
    canonical_number,
    extract_letter,
    extract_number,
    normalise_text,
    part_answers,
    same_text_answer,
)
from conclave.errors import ConfigError
from conclave.evaluation.dataset import EvalRow, PartKind

Scorer = Callable[[str, EvalRow], bool]


def score_letter(answer: str, row: EvalRow) -> bool:
    """Right when the option letter read from the answer is an accepted one."""
    letter = extract_letter(answer, dict(zip(row.letters, row.choices, strict=True)))
    return letter is not None and letter in {a.strip().upper() for a in row.answers}


def score_number(answer: str, row: EvalRow) -> bool:
    """Right when the answer's number equals an accepted one (commas, `$`, units and words
    around it tolerated)."""
    given = extract_number(answer)
    return given is not None and given in {canonical_number(a) for a in row.answers}


def score_text(answer: str, row: EvalRow) -> bool:
    """Right when the answer's short reading (its first clause, without a lead-in or the
    question's own words; case, accents, punctuation and articles ignored) says an accepted
    answer (aliases count)."""
    asked = frozenset(normalise_text(fold_accents(row.prompt())).split())
    question = Question(kind="text", options={}, aliases={}, asked_words=asked)
    key = question.extract(fold_accents(answer))
    # The accepted answers are read the same way ("Port of Spain" loses the question's "of" too)
    accepted = (question.extract(fold_accents(a)) or "" for a in row.answers)
    return key is not None and any(same_text_answer(key, wanted) for wanted in accepted if wanted)


def fold_accents(text: str) -> str:
    """The text without accents: "Chișinău" -> "Chisinau"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


DEFAULT_SCORERS: Mapping[PartKind, Scorer] = {
    "letter": score_letter,
    "number": score_number,
    "text": score_text,
}


@dataclass(frozen=True)
class Scorers:
    """The scorer for each answer kind."""

    by_kind: Mapping[PartKind, Scorer] = field(default_factory=lambda: dict(DEFAULT_SCORERS))

    def score(self, answer: str, row: EvalRow) -> bool:
        """Whether `answer` is right for `row`; a row of several parts when every part is (each
        read after its number, see `part_answers`)."""
        if row.kind != "parts":
            return self.by_kind[row.kind](answer, row)
        return all(self.score_parts(answer, row))

    def score_parts(self, answer: str, row: EvalRow) -> tuple[bool, ...]:
        """Whether each part of a row of several parts was answered right."""
        parts = row.part_rows()
        given = part_answers(answer, len(parts))
        return tuple(
            text is not None and self.score(text, part)
            for text, part in zip(given, parts, strict=True)
        )

    @classmethod
    def from_specs(cls, specs: Sequence[str]) -> Scorers:
        """Scorers from `--scorer` values: `module:function` (every kind) or
        `kind=module:function` (that kind only); later values win."""
        by_kind: dict[PartKind, Scorer] = dict(DEFAULT_SCORERS)
        kinds: tuple[PartKind, ...] = get_args(PartKind)
        for spec in specs:
            kind_name, has_kind, target = spec.partition("=")
            if not has_kind:
                target = spec
            elif kind_name not in kinds:
                raise ConfigError(
                    f"--scorer {spec}: {kind_name!r} is not an answer kind "
                    f"(one of {', '.join(kinds)})"
                )
            scorer = load_scorer(target)
            for kind in kinds:
                if not has_kind or kind == kind_name:
                    by_kind[kind] = scorer
        return cls(by_kind=by_kind)


def load_scorer(target: str) -> Scorer:
    """Import `module:function` as a scorer, with a clear error if it cannot be."""
    module_name, colon, function_name = target.partition(":")
    if not colon or not module_name or not function_name:
        raise ConfigError(
            f"scorer {target!r}: expected module:function, e.g. my_scorers:exact_match"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"scorer {target!r}: cannot import {module_name} ({exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"scorer {target!r}: {module_name} has no function {function_name}")
    scorer: Scorer = function
    return scorer
