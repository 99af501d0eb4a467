from __future__ import annotations

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import importer
from core.errors import InvalidInput
from core.importer import MAX_LINE_BYTES, parse


def run(
    data: bytes, fmt: str = "txt", column: str | int | None = None
) -> list[tuple[int, str | None, str | None]]:
    return [(p.line, p.key, p.reason) for p in parse(io.BytesIO(data), fmt, column)]


def test_each_bad_line_is_rejected_with_its_line_number_and_reason() -> None:
    data = b"GOOD-1\n\n   \nBAD\xff\xfe\nNUL\x00X\nBELL\x07\n" + b"L" * 1001 + b"\nGOOD-2"
    assert run(data) == [
        (1, "GOOD-1", None),
        (2, None, "blank"),
        (3, None, "blank"),
        (4, None, "undecodable"),
        (5, None, "control"),
        (6, None, "control"),
        (7, None, "too_long"),
        (8, "GOOD-2", None),
    ]


def test_whitespace_is_normalized_and_line_endings_and_bom_ignored() -> None:
    assert run("\ufeff  AB \t CD  \r\nEF\r\n卡密-三\n".encode()) == [
        (1, "AB CD", None),
        (2, "EF", None),
        (3, "卡密-三", None),
    ]


def test_a_gigantic_line_is_rejected_without_holding_it_in_memory() -> None:
    data = io.BytesIO(b"A" * (20 * 1024 * 1024) + b"\nOK\n")
    tracemalloc.start()
    out = [(p.line, p.key, p.reason) for p in parse(data)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out == [(1, None, "too_long"), (2, "OK", None)]
    assert peak < 1024 * 1024


def test_a_line_just_under_the_byte_cap_is_read_whole() -> None:
    line = b"x" * (MAX_LINE_BYTES - 1)
    assert run(line + b"\n")[0][2] == "too_long"  # over MAX_KEY_CHARS, but measured, not truncated
    assert run(b"x" * 999 + b"\n") == [(1, "x" * 999, None)]


def test_csv_takes_the_key_column_named_in_the_header() -> None:
    data = 'id,卡密,note\n1,KEY-A,first\n2,"KEY,B",second\n3,,empty\n'.encode()
    assert run(data, "csv") == [(2, "KEY-A", None), (3, "KEY,B", None), (4, None, "blank")]


def test_csv_without_header_uses_the_first_column_or_the_one_asked_for() -> None:
    assert run(b"K1,x\nK2,y\n", "csv") == [(1, "K1", None), (2, "K2", None)]
    assert run(b"K1,x\nK2\n", "csv", 1) == [(1, "x", None), (2, None, "malformed")]


def test_csv_with_a_named_column_missing_from_the_header_is_refused() -> None:
    with pytest.raises(InvalidInput):
        run(b"a,b\n1,2\n", "csv", "serial")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput):
        run(b"x", "xlsx")


def test_lines_with_control_or_bidi_characters_are_refused_with_their_line_number() -> None:
    data = "OK-1\nC1\u0085X\nCSI\u009b31m\nRLO-\u202eCBA\nLRM\u200e-1\nISO\u2066X\u2069\nOK-2\n".encode()
    expected = [
        (1, "OK-1", None),
        (2, None, "control"),
        (3, None, "control"),
        (4, None, "bidi"),
        (5, None, "bidi"),
        (6, None, "bidi"),
        (7, "OK-2", None),
    ]
    assert run(data) == expected
    csv_data = b"code,note\n" + b"".join(f'"{line.decode()}",x\n'.encode() for line in data.splitlines())
    assert run(csv_data, "csv") == [(n + 1, key, reason) for n, key, reason in expected]


def test_a_bom_or_invisible_character_inside_a_line_is_removed_not_kept() -> None:
    data = "\ufeffKEY-1\n\ufeffKEY-2\nKEY\u200b-3\nKEY-4\u2060\u00ad\ncafe\u0301\n".encode()
    assert run(data) == [
        (1, "KEY-1", None),
        (2, "KEY-2", None),
        (3, "KEY-3", None),
        (4, "KEY-4", None),
        (5, "caf\u00e9", None),
    ]
    assert run(b"\xef\xbb\xbfkey,n\n\xe2\x80\x8bK1,x\n", "csv") == [(2, "K1", None)]


# ---------------------------------------------------------------- line breaks, CSV quoting, encodings


def test_a_file_with_classic_mac_line_breaks_is_three_keys_not_one() -> None:
    # Old Mac / some spreadsheet exports end lines with a bare CR: splitting only on LF and folding the CRs
    # to spaces made the three keys ONE key "KEY-1 KEY-2 KEY-3", sold to one buyer.
    assert run(b"KEY-1\rKEY-2\rKEY-3\r") == [(1, "KEY-1", None), (2, "KEY-2", None), (3, "KEY-3", None)]


def test_a_carriage_return_inside_a_line_is_a_line_break_not_folded_into_a_space() -> None:
    assert run(b"AAAA\rBBBB\nCC\r\nDD\r\rEE") == [
        (1, "AAAA", None),
        (2, "BBBB", None),
        (3, "CC", None),
        (4, "DD", None),
        (5, None, "blank"),
        (6, "EE", None),
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=14).map(lambda b: bytes(c for c in b if c not in b"\r\n\0\xfe\xff")),
            st.sampled_from([b"\n", b"\r\n", b"\r"]),
        ),
        max_size=12,
    ),
    st.booleans(),
    st.integers(min_value=1, max_value=9),
)
def test_lines_end_at_lf_crlf_or_cr_whatever_the_read_blocks(
    lines: list[tuple[bytes, bytes]], last_break: bool, block: int
) -> None:
    data = b"".join(text + brk for text, brk in lines)
    if lines and not last_break:
        data = data[: -len(lines[-1][1])]
    expected = [(n, raw if len(raw) <= 10 else "too_long") for n, raw in enumerate(data.splitlines(), 1)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importer, "_BLOCK", block)
        mp.setattr(importer, "MAX_LINE_BYTES", 10)
        assert list(importer._raw_lines(io.BytesIO(data))) == expected


def test_a_csv_record_with_an_unclosed_quote_is_malformed_not_a_key() -> None:
    # csv.reader (strict=False) read '"KEY-1,KEY-2' as the single value 'KEY-1,KEY-2'
    assert run(b'"KEY-1,KEY-2\n', "csv") == [(1, None, "malformed")]


def test_a_csv_field_quoted_across_two_lines_is_malformed_not_split_into_two_keys() -> None:
    # A spreadsheet cell with a line break is one quoted field over two lines; read line by line it became
    # the keys 'PART-A' and 'PART-B"' (with a stray quote).
    assert run(b'"PART-A\nPART-B"\n', "csv") == [(1, None, "malformed"), (2, None, "malformed")]


def test_a_csv_with_text_after_a_closing_quote_or_a_quote_in_a_bare_field_is_malformed() -> None:
    assert run(b'"AB"CD,x\nA"B,x\nA,"B\n', "csv") == [(n, None, "malformed") for n in (1, 2, 3)]


def test_csv_quoting_done_right_is_read() -> None:
    assert run(b'"A""B",x\n"C,D",""\nE,"F"\n', "csv") == [(1, 'A"B', None), (2, "C,D", None), (3, "E", None)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_file_says_once_it_is_not_utf8_rather_than_control_characters(encoding: str) -> None:
    for fmt in ("txt", "csv"):
        assert run("KEY-1\nKEY-2\nKEY-3\n".encode(encoding), fmt) == [(1, None, "undecodable")]


class Trickle(io.RawIOBase):
    """A file arriving a line at a time (a pipe, a slow share): ``read1`` returns what has arrived."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines, self.reads = lines, 0

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.lines.pop(0) if self.lines else b""


def test_lines_of_a_file_that_trickles_in_are_parsed_as_they_arrive() -> None:
    # the import's heartbeat is written between lines: a reader waiting for a whole block would starve it
    stream = Trickle([b"KEY-%03d-%s\n" % (i, b"x" * 30) for i in range(100)])
    lines = parse(stream)
    assert next(lines).key == "KEY-000-" + "x" * 30
    assert stream.reads <= 3
