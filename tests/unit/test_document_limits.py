"""Every document the bot sends fits in what Telegram takes from a bot (50 MB): lists are cut with a note of
how many rows were left out; a buyer's keys fit by construction."""

from __future__ import annotations

from core.importer import MAX_KEY_CHARS
from core.services.catalog import MAX_QTY_PER_ORDER
from handlers.telegram.ui.files import DOCUMENT_MAX_BYTES, capped_lines
from sandbox.telegram.limits import UPLOAD_MAX_BYTES


def _more(n: int) -> str:
    return f"... and {n:,} more"


def test_rows_that_fit_are_written_whole_one_a_line() -> None:
    assert capped_lines(["a", "行"], _more, limit=100) == "a\n行\n".encode()
    assert capped_lines(["a", "b"], _more, limit=4) == b"a\nb\n"  # exactly the limit


def test_rows_beyond_the_limit_are_cut_and_counted_on_a_last_line_within_the_limit() -> None:
    rows = [f"line {i}: blank" for i in range(1000)]
    body = capped_lines(rows, _more, limit=200)
    assert len(body) <= 200
    kept = body.decode().splitlines()
    assert kept[:-1] == rows[: len(kept) - 1] and kept[-1] == _more(1000 - (len(kept) - 1))


def test_rows_already_left_out_are_counted_with_those_cut() -> None:
    assert capped_lines(["a"], _more, omitted=5, limit=100) == b"a\n... and 5 more\n"
    body = capped_lines(["a" * 10, "b" * 10], _more, omitted=5, limit=30)
    assert body == b"a" * 10 + b"\n... and 6 more\n"


def test_the_bot_keeps_room_for_the_request_under_telegrams_50_mb() -> None:
    assert DOCUMENT_MAX_BYTES < UPLOAD_MAX_BYTES


def test_a_buyers_keys_document_fits_in_one_file_by_construction() -> None:
    # the largest order's keys, each of the longest key of 4-byte characters, one a line
    assert MAX_QTY_PER_ORDER * (MAX_KEY_CHARS * 4 + 1) <= DOCUMENT_MAX_BYTES
