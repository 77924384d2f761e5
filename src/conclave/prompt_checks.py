"""What a prompt must be before any model sees it: valid Unicode text, and not blank.

The server, the CLI and the engine apply the same checks, so a bad prompt is refused with one
clear message wherever it comes from, before a run starts (never a 500 or a cut-off stream)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from conclave.errors import ConfigError
from conclave.types import Message

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be sent to a model as UTF-8, or None when it can.

    A lone surrogate (from a JSON escape such as `\\ud800`, or from undecodable bytes that
    Python kept as `\\udcXX` when it read a command line) has no UTF-8 form."""
    found = _LONE_SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:
        return (
            f"not valid UTF-8: byte 0x{code - 0xDC00:02x} at character {found.start()} "
            "cannot be decoded; send UTF-8 text"
        )
    return (
        f"a lone surrogate (U+{code:04X}) at character {found.start()} is not valid Unicode "
        "text; send the character whole (a surrogate pair) or remove it"
    )


def check_prompt(conversation: Sequence[Message]) -> None:
    """Raise ConfigError when a message is not valid Unicode, or the latest user message is
    blank (a consensus on nothing would spend every model's time for no answer)."""
    for index, message in enumerate(conversation):
        problem = unicode_problem(message.content)
        if problem is not None:
            raise ConfigError(f"message {index} ({message.role}): {problem}")
    users = [message for message in conversation if message.role == "user"]
    if users and not users[-1].content.strip():
        raise ConfigError("the prompt is empty: give a question or instruction")
