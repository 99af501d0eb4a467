"""Careless-admin key files (issue #6 review): each test names the rule it shows broken; expected to FAIL."""

from __future__ import annotations

import io

from core.importer import parse


def keys(data: bytes, fmt: str = "txt") -> list[tuple[int, str | None, str | None]]:
    return [tuple(p) for p in parse(io.BytesIO(data), fmt)]  # type: ignore[misc]


def test_a_file_with_classic_mac_line_breaks_is_three_keys_not_one() -> None:
    # Old Mac / some spreadsheet exports end lines with a bare CR: the importer only splits on LF, and the
    # CRs are folded to spaces, so the three keys become ONE key "KEY-1 KEY-2 KEY-3", sold to one buyer.
    parsed = keys(b"KEY-1\rKEY-2\rKEY-3\r")
    assert [k for _, k, _ in parsed] == ["KEY-1", "KEY-2", "KEY-3"], parsed


def test_a_line_with_a_carriage_return_inside_is_refused_not_folded_into_a_space() -> None:
    parsed = keys(b"AAAA\rBBBB\n")
    assert parsed[0][1] != "AAAA BBBB", parsed


def test_a_csv_record_with_an_unclosed_quote_is_malformed_not_a_key() -> None:
    # csv.reader (strict=False) accepts '"KEY-1,KEY-2' as the single value 'KEY-1,KEY-2'
    parsed = keys(b'"KEY-1,KEY-2\n', "csv")
    assert parsed[0][1] is None and parsed[0][2] == "malformed", parsed


def test_a_csv_field_quoted_across_two_lines_is_not_split_into_two_keys() -> None:
    # A spreadsheet cell with a line break is written as one quoted field over two lines; read line by
    # line it becomes the keys 'PART-A' and 'PART-B"' (with a stray quote).
    parsed = keys(b'"PART-A\nPART-B"\n', "csv")
    assert not any(k in ("PART-A", 'PART-B"') for _, k, _ in parsed), parsed


def test_a_csv_with_text_after_a_closing_quote_is_malformed() -> None:
    parsed = keys(b'"AB"CD,x\n', "csv")
    assert parsed[0][2] == "malformed", parsed


def test_a_utf16_file_says_it_is_not_utf8_rather_than_control_characters() -> None:
    parsed = keys("KEY-1\nKEY-2\n".encode("utf-16"))
    assert {r for _, _, r in parsed} == {"undecodable"}, parsed
