"""Asking one member more than once: the order members are tried in, and labelled draws."""

from __future__ import annotations

from collections.abc import Sequence

from conclave.consensus.panel import Member

SAMPLE_TEMPERATURE = 0.7
"""The least temperature of a member's extra draws; the first keeps the member's own."""


def strongest_first(members: Sequence[Member]) -> tuple[Member, ...]:
    """The members by weight, heaviest first; equal weights keep the config's order."""
    return tuple(sorted(members, key=lambda member: -member.spec.weight))


def sampled(member: Member, count: int) -> tuple[Member, ...]:
    """`count` draws of one member: the first with its own settings, the others drawn (see
    `drawn`)."""
    first = member.variant(f"{member.label} #1")
    return (first, *(drawn(member, number) for number in range(2, count + 1)))


def drawn(member: Member, number: int, **spec_changes: object) -> Member:
    """Draw `number` of a member, labelled "<member> #<number>": at a temperature of at least
    SAMPLE_TEMPERATURE, with a seed of its own."""
    return member.variant(
        f"{member.label} #{number}",
        temperature=max(member.spec.temperature, SAMPLE_TEMPERATURE),
        seed=(member.spec.seed or 0) + number,
        **spec_changes,
    )
