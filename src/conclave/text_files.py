"""Reading a text file the user named (a config, a data set, a batch's input) as UTF-8, its
lines as JSON objects, and saying which of its lines are bad.

Every way such a file can be wrong (absent, a directory, unreadable, UTF-16, binary, another
encoding) becomes one error of the caller's class, naming the file, what is wrong and the fix,
never an OSError or UnicodeDecodeError traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import JsonValue

_UTF16_BYTE_ORDER_MARKS = (b"\xff\xfe", b"\xfe\xff")
_BINARY_SNIFF_BYTES = 4096


def read_user_text(
    path: Path,
    error: type[Exception],
    *,
    expected: str,
    missing: str = "no such file",
) -> str:
    """The file's text as UTF-8 (a leading byte-order mark allowed), or `error(message)`.

    `expected` says what the file should hold, for the messages ("a JSON config",
    "JSONL batch input"); `missing` is the message for a path that does not exist.
    Every message starts with the path.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory; give the path of {expected}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode_user_text(path, raw, error, expected=expected)


def decode_user_text(path: Path, raw: bytes, error: type[Exception], *, expected: str) -> str:
    """Bytes already read from `path` as UTF-8 text, with the same checks and messages as
    `read_user_text`."""
    return _decode(path, raw, error, expected)


def _decode(path: Path, raw: bytes, error: type[Exception], expected: str) -> str:
    if raw.startswith(_UTF16_BYTE_ORDER_MARKS):
        raise error(
            f"{path}: the file is UTF-16 text; conclave reads {expected} as UTF-8: save it as "
            "UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)"
        )
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        raise error(
            f"{path}: the file is binary (it holds NUL bytes), not {expected}: check the path"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = len(raw) - len(exc.object) + exc.start  # exc.start does not count a BOM
        raise error(
            f"{path}: not UTF-8 text (byte 0x{raw[offset]:02x} at offset {offset}); "
            "save the file as UTF-8"
        ) from None


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines that are not blank, each with its 1-based number (blank lines are counted)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def json_object_line(line: str, *, expected: str = "a JSON object") -> dict[str, JsonValue]:
    """One JSONL line as its object; ValueError saying it is not JSON, or not `expected`."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON at column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected {expected}, found {type(data).__name__}")
    return data


def bad_lines_message(
    path: Path, problems: Sequence[tuple[int, str]], *, counted_as: str = "line", shown: int = 10
) -> str:
    """One message for a file's bad lines: how many, the first `shown` (`line N: problem`), and
    how many more; `counted_as` names what the header counts ("bad row(s)")."""
    lines = [f"{path}: {len(problems)} bad {counted_as}(s)"]
    lines += [f"  line {number}: {problem}" for number, problem in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    return "\n".join(lines)
