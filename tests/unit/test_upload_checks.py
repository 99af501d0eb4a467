"""A file handed over whole (an upload in chat) is checked before any of it is imported: it holds something,
it is UTF-8 throughout, and a CSV has one well-quoted record with the same columns on every line."""

from __future__ import annotations

import pytest

from core.errors import (
    ImportCsvColumns,
    ImportCsvMalformed,
    ImportFileEmpty,
    ImportFileNotUtf8,
    InvalidInput,
)
from core.importer import check_whole


@pytest.mark.parametrize(
    "data",
    [b"KEY-1\nKEY-2\n", b"\xef\xbb\xbfKEY-1\r\nKEY-2", "卡密-Ω\n".encode(), b"\n\nKEY-1\n\n"],
)
def test_a_utf8_text_file_with_keys_passes(data: bytes) -> None:
    check_whole(data, "txt")


@pytest.mark.parametrize("data", [b"", b"\n\r\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_a_file_without_any_key_is_empty(data: bytes) -> None:
    with pytest.raises(ImportFileEmpty):
        check_whole(data, "txt")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"KEY-1\nKEY-2\n\xff\xfeKEY-3\n", 3),
        (b"KEY-1\rKEY-2\r\nK\xe9Y-3\n", 3),  # Latin-1: a lone CR ends a line too
        ("KEY-1\n".encode("utf-16"), 1),
        (b"K\x00E\x00Y\x00-\x001\x00", 1),  # UTF-16 without a BOM
    ],
)
def test_a_file_that_is_not_utf8_is_refused_whole_naming_the_line(data: bytes, line: int) -> None:
    with pytest.raises(ImportFileNotUtf8) as e:
        check_whole(data, "txt")
    assert e.value.params == {"line": line}


def test_a_csv_with_the_same_columns_on_every_line_passes() -> None:
    check_whole(b'key,note\nA-1,"first, of two"\n\nA-2,"say ""hi"""\n', "csv")


def test_a_csv_line_with_other_columns_than_the_first_is_refused() -> None:
    with pytest.raises(ImportCsvColumns) as e:
        check_whole(b"key,note\nA-1,x\nA-2,x,extra\n", "csv")
    assert e.value.params == {"line": 3, "found": 3, "expected": 2}


def test_a_csv_line_that_is_no_well_quoted_record_is_refused() -> None:
    with pytest.raises(ImportCsvMalformed) as e:
        check_whole(b'key,note\nA-1,"open\n', "csv")
    assert e.value.params == {"line": 2}


def test_only_text_and_csv_are_checked() -> None:
    with pytest.raises(InvalidInput):
        check_whole(b"KEY\n", "xlsx")
