"""Saved llama.cpp prompt states, so a model does not process the same prompt prefix twice.

llama.cpp already skips the part of a prompt that matches the tokens its context holds from
the call before. That is lost whenever one model serves two roles: a model that is both panel
member and aggregator alternates between two prompts, so each improvement round would read its
whole member prompt again (and the aggregator its own). After each call the context's state (its
KV cache and the tokens it holds) is saved here; before the next one, the saved state sharing the
longest prefix with the new prompt is restored when it beats what the context holds already.

Memory is bounded per model: at most `max_states` states and `max_bytes` bytes, the least
recently used dropped first. A state costs the KV cache of its tokens (about 12 KB a token for
Qwen2.5-0.5B, 28 KB for 1.5B, 23 KB for SmolLM2-135M), so the defaults (4 states, 256 MiB)
keep two roles' latest prompts of a few thousand tokens each.

A cache belongs to one Llama and is used only by the thread that owns it (a Llama object is not
thread-safe, so neither is this).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_MAX_STATES = 4
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

MIN_TOKENS_GAINED = 8
"""Restoring copies the whole state back (a few milliseconds for a thousand tokens), about what
processing a handful of prompt tokens costs; a smaller gain is not worth it."""


class StatefulLlama(Protocol):
    """What this module touches of a `llama_cpp.Llama`."""

    input_ids: npt.NDArray[np.intc]
    n_tokens: int
    _requires_eval: bool

    @property
    def ctx(self) -> object: ...


@dataclass(frozen=True)
class SavedState:
    """A context's state and the tokens it holds."""

    tokens: tuple[int, ...]
    data: ctypes.Array[ctypes.c_uint8]


class PromptStateCache:
    """The latest states of one Llama, found by the longest prefix they share with a prompt."""

    def __init__(
        self, *, max_states: int = DEFAULT_MAX_STATES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_states < 1 or max_bytes < 1:
            raise ValueError("a prompt state cache needs room for at least one state")
        self.max_states = max_states
        self.max_bytes = max_bytes
        self._states: OrderedDict[tuple[int, ...], SavedState] = OrderedDict()

    @property
    def size_bytes(self) -> int:
        return sum(len(state.data) for state in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def save(self, llama: StatefulLlama) -> None:
        """Keep the context's current state, dropping the states it makes redundant and, past
        the bounds, the least recently used."""
        tokens: tuple[int, ...] = tuple(llama.input_ids[: llama.n_tokens].tolist())
        if not tokens:
            return
        for key in [key for key in self._states if tokens[: len(key)] == key]:
            del self._states[key]  # a prefix of this state: this one serves its prompts too
        import llama_cpp

        size = llama_cpp.llama_state_get_size(llama.ctx)
        if size > self.max_bytes:
            return
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(llama.ctx, data, size)
        if written != size:  # not expected: llama.cpp sizes the state exactly
            data = (ctypes.c_uint8 * written).from_buffer_copy(data)
        self._states[tokens] = SavedState(tokens=tokens, data=data)
        while len(self._states) > self.max_states or self.size_bytes > self.max_bytes:
            self._states.popitem(last=False)

    def restore_for(self, llama: StatefulLlama, prompt: Sequence[int]) -> int:
        """Put back the saved state sharing the longest prefix with `prompt`, if it shares at
        least MIN_TOKENS_GAINED more tokens than the context holds now. Returns the number of
        prompt tokens the context then already holds (llama.cpp skips them)."""
        held = held_prefix(llama, prompt)
        best: SavedState | None = None
        best_length = held
        for state in self._states.values():
            length = common_prefix(state.tokens, prompt)
            if length > best_length:
                best, best_length = state, length
        if best is None or best_length < held + MIN_TOKENS_GAINED:
            return held
        self._load(llama, best)
        self._states.move_to_end(best.tokens)
        return best_length

    @staticmethod
    def _load(llama: StatefulLlama, state: SavedState) -> None:
        import llama_cpp

        size = len(state.data)
        if llama_cpp.llama_state_set_data(llama.ctx, state.data, size) != size:
            raise RuntimeError("llama.cpp did not take the saved prompt state back")
        count = len(state.tokens)
        llama.input_ids[:count] = state.tokens
        llama.n_tokens = count
        # The restored logits are not those of a live decode: make llama-cpp-python decode at
        # least the last prompt token again before it samples (what its own load_state does).
        llama._requires_eval = True


def held_prefix(llama: StatefulLlama, prompt: Sequence[int]) -> int:
    """How many leading tokens of `prompt` the context holds already."""
    held: list[int] = llama.input_ids[: llama.n_tokens].tolist()
    return common_prefix(held, prompt)


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading tokens the two sequences share."""
    count = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        count += 1
    return count
