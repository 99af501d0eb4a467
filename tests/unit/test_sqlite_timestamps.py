"""Prebuilt statements write and read SQLite timestamps with their own one-step conversions
(``UTCDateTime.sqlite_fast_bind`` / ``sqlite_fast_result``): they must store exactly the text SQLAlchemy's
own processing stores (rows written either way compare and sort alike) and read back the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from core.tables import UTCDateTime

_DIALECT = sqlite.dialect()
_TYPE = UTCDateTime()
_STORED = _TYPE.dialect_impl(_DIALECT).impl_instance.bind_processor(_DIALECT)  # type: ignore[attr-defined]

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC) | offsets
)


def _sqlalchemy_text(value: datetime) -> str:
    return _STORED(_TYPE.process_bind_param(value, _DIALECT))  # type: ignore[no-any-return]


@given(instants)
def test_a_timestamp_is_stored_as_the_text_sqlalchemy_stores(value: datetime) -> None:
    assert UTCDateTime.sqlite_fast_bind(value) == _sqlalchemy_text(value)


@given(instants)
def test_a_stored_timestamp_reads_back_as_the_same_instant_in_utc(value: datetime) -> None:
    read = UTCDateTime.sqlite_fast_result(UTCDateTime.sqlite_fast_bind(value))
    assert read == value and read.tzinfo is UTC


def test_a_timestamp_written_without_microseconds_reads_as_utc() -> None:
    assert UTCDateTime.sqlite_fast_result("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime.sqlite_fast_bind(datetime(2026, 1, 2, 3, 4, 5))
