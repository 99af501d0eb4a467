"""Reading card keys from a text or CSV file: streaming, bounded memory, every bad line named.

Lines are read as bytes with a length cap, so a file with a gigabyte-long "line" costs no more memory than
a normal one. Each line is decoded strictly as UTF-8, rejected if it holds a control character (``control``:
C0, DEL or C1, as in a binary file) or a bidirectional formatting character (``bidi``), normalized (see
``core.vault.normalize_key``: a BOM or other invisible character anywhere is removed) and rejected if blank
or longer than ``MAX_KEY_CHARS``.

An ASCII line takes a fast path: ASCII has no invisible, bidi or C1 characters, its C0 controls are found
in the raw bytes, and it is already NFC, so folding whitespace is all its normalization.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from core.errors import InvalidInput
from core.vault import fold_key, key_fault

MAX_KEY_CHARS = 1000
MAX_LINE_BYTES = 4096
# In UTF-8 no byte below 0x80 is part of a multi-byte sequence, so searching the raw bytes finds exactly the
# C0 controls and DEL of the decoded text (C1 controls are two bytes: ``key_fault`` finds those).
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_NAMES = {"key", "keys", "card", "code", "卡密", "激活码", "兑换码", "cdk", "cdkey"}


class ParsedLine(NamedTuple):  # a tuple: built a million times per import, so it must be cheap
    line: int
    key: str | None  # normalized key, or None when rejected
    reason: str | None = None


def _raw_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line break), or None for a line longer than MAX_LINE_BYTES."""
    n = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 2)
        if not chunk:
            return
        n += 1
        if not chunk.endswith(b"\n") and len(chunk) >= MAX_LINE_BYTES + 2:
            while True:  # skip the rest of the oversized line without holding it
                more = stream.readline(64 * 1024)
                if not more or more.endswith(b"\n"):
                    break
            yield n, None
            continue
        yield n, chunk.rstrip(b"\r\n")


def _decode(n: int, raw: bytes) -> str | ParsedLine:
    if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if _CONTROL_RE.search(raw):
        return ParsedLine(n, None, "control")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return ParsedLine(n, None, "undecodable")


def _check(n: int, value: str) -> ParsedLine:
    fault = None if value.isascii() else key_fault(value)
    if fault is not None:
        return ParsedLine(n, None, fault)
    key = fold_key(value)
    if not key:
        return ParsedLine(n, None, "blank")
    if len(key) > MAX_KEY_CHARS:
        return ParsedLine(n, None, "too_long")
    return ParsedLine(n, key)


def parse_text(stream: BinaryIO) -> Iterator[ParsedLine]:
    """One key per line. (The steps of ``_decode`` and ``_check``, inlined: this loop runs per key.)"""
    control = _CONTROL_RE.search
    for n, raw in _raw_lines(stream):
        if raw is None:
            yield ParsedLine(n, None, "too_long")
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if control(raw):
            yield ParsedLine(n, None, "control")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield ParsedLine(n, None, "undecodable")
            continue
        if text.isascii():
            key = " ".join(text.split())
        else:
            fault = key_fault(text)
            if fault is not None:
                yield ParsedLine(n, None, fault)
                continue
            key = fold_key(text)
        if not key:
            yield ParsedLine(n, None, "blank")
        elif len(key) > MAX_KEY_CHARS:
            yield ParsedLine(n, None, "too_long")
        else:
            yield ParsedLine(n, key)


def parse_csv(stream: BinaryIO, column: str | int | None = None) -> Iterator[ParsedLine]:
    """CSV, one record per line. The key is taken from ``column`` (a header name or 0-based index); by
    default from a column headed key/code/卡密… if the first row is a header, else the first column."""
    index: int | None = column if isinstance(column, int) else None
    for n, raw in _raw_lines(stream):
        if raw is None:
            yield ParsedLine(n, None, "too_long")
            continue
        text = _decode(n, raw)
        if isinstance(text, ParsedLine):
            yield text
            continue
        try:
            row = next(csv.reader([text]), [])
        except csv.Error:
            yield ParsedLine(n, None, "malformed")
            continue
        if n == 1 and index is None:
            names = [fold_key(c).lower() for c in row]
            wanted = {column.lower()} if isinstance(column, str) else _HEADER_NAMES
            hit = next((i for i, name in enumerate(names) if name in wanted), None)
            if hit is not None:
                index = hit
                continue  # a header row
            if isinstance(column, str):
                raise InvalidInput(f"no column named {column!r} in the header", field="column")
            index = 0
        if index is None or index >= len(row):
            yield ParsedLine(n, None, "blank" if not any(c.strip() for c in row) else "malformed")
            continue
        yield _check(n, row[index])


def parse(stream: BinaryIO, fmt: str = "txt", column: str | int | None = None) -> Iterator[ParsedLine]:
    if fmt == "txt":
        return parse_text(stream)
    if fmt == "csv":
        return parse_csv(stream, column)
    raise InvalidInput(f"unknown format {fmt!r}: use txt or csv", field="format")
