"""A text file the user names (config, data set, batch input) that is not UTF-8 text, or not a
readable file at all, is one clear error of the reader's class naming the file and the fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.batch.rows import BatchInputError, read_rows
from conclave.config import load_config
from conclave.errors import ConfigError
from conclave.evaluation.dataset import load_dataset
from conclave.text_files import read_user_text

runner = CliRunner()

A_ROW = '{"id": "q1", "question": "2 + 2?", "answers": ["4"], "prompt": "2 + 2?"}'
NOT_UTF8 = [
    pytest.param(A_ROW.encode("utf-16"), "the file is UTF-16 text", id="utf-16"),
    pytest.param(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "the file is binary", id="binary"),
    pytest.param('{"q": "caf\u00e9"}'.encode("latin-1"), "byte 0xe9 at offset 10", id="latin-1"),
]


class LoadError(Exception):
    """The caller's own error class."""


def read(path: Path) -> str:
    return read_user_text(path, LoadError, expected="a JSON thing")


def error_of(path: Path) -> str:
    with pytest.raises(LoadError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message


def test_utf8_text_is_read_with_a_byte_order_mark_dropped(tmp_path: Path) -> None:
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text('{"q": "caf\u00e9"}\n', encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert read(plain) == read(marked) == '{"q": "caf\u00e9"}\n'


@pytest.mark.parametrize(("content", "expected"), NOT_UTF8)
def test_text_that_is_not_utf8_says_what_the_file_is(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    assert expected in error_of(path)


def test_the_offset_of_a_bad_byte_counts_the_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(b"\xef\xbb\xbfab\xe9")
    assert "byte 0xe9 at offset 5" in error_of(path)


def test_utf16_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(b"\xfe\xff" + "{}".encode("utf-16-be"))  # big-endian, with its mark
    message = error_of(path)
    assert "conclave reads a JSON thing as UTF-8" in message
    assert "iconv -f UTF-16 -t UTF-8" in message


def test_a_path_that_is_not_a_readable_file_is_named(tmp_path: Path) -> None:
    assert error_of(tmp_path / "absent.json").endswith(": no such file")
    assert "is a directory; give the path of a JSON thing" in error_of(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert "cannot be read (Not a directory)" in error_of(a_file / "below.json")


def test_the_caller_words_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(LoadError) as caught:
        read_user_text(path, LoadError, expected="x", missing="no such data set file")
    assert str(caught.value) == f"{path}: no such data set file"


READERS: list[tuple[Callable[[Path], object], type[Exception]]] = [
    (read_rows, BatchInputError),
    (load_dataset, ConfigError),
    (load_config, ConfigError),
]


@pytest.mark.parametrize(("reader", "error"), READERS)
@pytest.mark.parametrize(("content", "expected"), NOT_UTF8)
def test_each_reader_raises_its_own_error_for_a_file_that_is_not_utf8(
    tmp_path: Path,
    reader: Callable[[Path], object],
    error: type[Exception],
    content: bytes,
    expected: str,
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    with pytest.raises(error) as caught:
        reader(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


@pytest.mark.parametrize(("reader", "error"), READERS)
def test_each_reader_raises_its_own_error_for_a_directory(
    tmp_path: Path, reader: Callable[[Path], object], error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        reader(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: is a directory")


def test_a_batch_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + A_ROW.encode() + b"\n")
    assert [row.fields["id"] for row in read_rows(path)] == ["q1"]


def test_a_data_set_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    row = json.loads(A_ROW)
    del row["prompt"]
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    assert [row.id for row in load_dataset(path).rows] == ["q1"]


@pytest.mark.parametrize(
    "command",
    [["batch", "{path}", "--out", "{out}"], ["eval", "{path}", "--out", "{out}"]],
)
def test_a_utf16_input_file_on_the_command_line_is_one_clear_error(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(A_ROW.encode("utf-16"))
    out = tmp_path / "out"
    args = [part.format(path=path, out=out) for part in command]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 1
    assert "UTF-16" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("reader", "header", "shown"),
    [(read_rows, "bad line(s)", 10), (load_dataset, "bad row(s)", 20)],
)
def test_many_bad_lines_are_counted_and_the_first_ones_named(
    tmp_path: Path, reader: Callable[[Path], object], header: str, shown: int
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text("\n" + "not json\n" * 25)  # the blank first line still counts
    with pytest.raises(ConfigError) as caught:
        reader(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 25 {header}"
    assert [line.split(":")[0] for line in lines[1:-1]] == [
        f"  line {number}" for number in range(2, 2 + shown)
    ]
    assert lines[-1] == f"  ... and {25 - shown} more"
