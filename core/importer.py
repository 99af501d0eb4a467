"""Reading card keys from a text or CSV file: streaming, bounded memory, every bad line named.

Lines are read as bytes in blocks with a length cap, so a file with a gigabyte-long "line" costs no more
memory than a normal one; a line ends at LF, CRLF or a lone CR. A UTF-16 file is refused as a whole
(``undecodable``: save it as UTF-8). Each line is decoded strictly as UTF-8, rejected if it holds a control
character (``control``: C0, DEL or C1, as in a binary file) or a bidirectional formatting character
(``bidi``), normalized (see ``core.vault.normalize_key``: a BOM or other invisible character anywhere is
removed) and rejected if blank or longer than ``MAX_KEY_CHARS``. A CSV line must be one well-quoted record
(``malformed`` otherwise).

An ASCII line takes a fast path: ASCII has no invisible, bidi or C1 characters, its C0 controls are found
in the raw bytes, and it is already NFC, so folding whitespace is all its normalization.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from itertools import islice
from typing import BinaryIO, NamedTuple

from core.errors import (
    ImportCsvColumns,
    ImportCsvMalformed,
    ImportFileEmpty,
    ImportFileNotUtf8,
    InvalidInput,
)
from core.vault import fold_key, key_fault

MAX_KEY_CHARS = 1000
MAX_LINE_BYTES = 4096
_BLOCK = 64 * 1024
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # (and UTF-32 LE, which starts like UTF-16 LE)
# In UTF-8 no byte below 0x80 is part of a multi-byte sequence, so searching the raw bytes finds exactly the
# C0 controls and DEL of the decoded text (C1 controls are two bytes: ``key_fault`` finds those).
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # CR too, should one ever get here
# One CSV record on one line (RFC 4180): a quote only opens and closes a whole field, inside which ``""`` is a
# quote. A field quoted across lines (a spreadsheet cell with a line break) makes both lines ``malformed``:
# read line by line, its halves would otherwise become keys.
_CSV_RECORD_RE = re.compile(r'(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*')
_HEADER_NAMES = {"key", "keys", "card", "code", "卡密", "激活码", "兑换码", "cdk", "cdkey"}


class ParsedLine(NamedTuple):  # a tuple: built a million times per import, so it must be cheap
    line: int
    key: str | None  # normalized key, or None when rejected
    reason: str | None = None


def _raw_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | str]]:
    """(line number, bytes without the line break), or a reason (``too_long``, ``undecodable``) for a line
    refused while reading.

    A line ends at LF, CRLF or a lone CR (classic Mac files, some spreadsheet exports): ``bytes.splitlines``
    splits on exactly these three, so no CR is ever left inside a line. The file is read in blocks, so memory
    stays bounded (a block plus one line) however long a "line" is. A UTF-16 file (a UTF-16 BOM, or NUL
    bytes in its first characters, as in UTF-16 text or a binary file) is one ``undecodable`` line 1, not
    a control character on every line."""
    # read1: whatever has arrived (one raw read), so a file that trickles in (a pipe, a slow share) yields its
    # lines as they come and the import keeps its heartbeat, rather than waiting for a whole block
    read = getattr(stream, "read1", stream.read)
    first = read(_BLOCK)
    while 0 < len(first) < 64:  # enough to tell UTF-16 (a trickle may come a few bytes at a time)
        more = read(_BLOCK)
        if not more:
            break
        first += more
    if first.startswith(_UTF16_BOMS) or first.count(b"\x00", 0, 64) * 4 >= min(len(first), 64) > 0:
        yield 1, "undecodable"
        return
    n = 0
    carry = b""  # the start of a line the previous block cut
    skipping = False  # inside an oversized line: drop bytes up to its end
    lf_pending = False  # the previous block ended with CR: an LF starting this one completes a CRLF
    block = first
    while block:
        if lf_pending and block.startswith(b"\n"):
            block = block[1:]
        lf_pending = block.endswith(b"\r")
        lines = block.splitlines()
        tail = None if not block or block.endswith((b"\n", b"\r")) else lines.pop()
        if lines:
            n += 1
            if skipping:  # the end of an oversized line
                skipping = False
                yield n, "too_long"
            else:
                head = carry + lines[0] if carry else lines[0]
                yield n, head if len(head) <= MAX_LINE_BYTES else "too_long"
            carry = b""
            for raw in islice(lines, 1, None):
                n += 1
                yield n, raw if len(raw) <= MAX_LINE_BYTES else "too_long"
        if tail is not None and not skipping:
            carry += tail
            if len(carry) > MAX_LINE_BYTES:
                carry, skipping = b"", True
        block = read(_BLOCK)
    if skipping or carry:
        yield n + 1, "too_long" if skipping else carry


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
        if isinstance(raw, str):
            yield ParsedLine(n, None, raw)
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
    """CSV, one record per line (strict quoting, see ``_CSV_RECORD_RE``). The key is taken from ``column``
    (a header name or 0-based index); by default from a column headed key/code/卡密… if the first row is a
    header, else the first column."""
    index: int | None = column if isinstance(column, int) else None
    for n, raw in _raw_lines(stream):
        if isinstance(raw, str):
            yield ParsedLine(n, None, raw)
            continue
        text = _decode(n, raw)
        if isinstance(text, ParsedLine):
            yield text
            continue
        if '"' not in text:
            row = text.split(",")  # what csv.reader makes of a line without quotes, faster
        elif _CSV_RECORD_RE.fullmatch(text):
            row = next(csv.reader([text], strict=True))
        else:  # an unclosed quote, text after a closing one, a quote in an unquoted field
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


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what ``bytes.splitlines`` splits on, and nothing else


def check_whole(data: bytes, fmt: str) -> None:
    """The checks a file handed over whole (an upload in chat, at most 20 MB) gets before any of it is
    imported: it holds something, it is UTF-8 throughout (a UTF-8 BOM is fine), and as CSV every line is
    one well-quoted record with as many columns as the first. Raises the first fault found, naming its line.

    The CLI streams files of any size instead and reports such lines one by one (``parse``); in chat an
    admin rather hears at once that a spreadsheet was saved in the wrong encoding or shape."""
    if fmt not in ("txt", "csv"):
        raise InvalidInput(f"unknown format {fmt!r}: use txt or csv", field="format")
    if data.startswith(_UTF16_BOMS) or data.count(b"\x00", 0, 64) * 4 >= min(len(data), 64) > 0:
        raise ImportFileNotUtf8(line=1)  # UTF-16 (or binary), as ``_raw_lines`` tells it
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImportFileNotUtf8(line=_line_at(data, e.start)) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ImportFileEmpty()
    if fmt == "csv":
        _check_columns(text)


def _line_at(data: bytes, offset: int) -> int:
    """The number of the line holding byte ``offset`` (lines end at LF, CRLF or a lone CR)."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def _check_columns(text: str) -> None:
    expected: int | None = None
    for n, line in enumerate(_LINE_BREAK.split(text), 1):
        if not line.strip():
            continue
        if '"' not in line:
            found = line.count(",") + 1
        elif _CSV_RECORD_RE.fullmatch(line):
            found = len(next(csv.reader([line], strict=True)))
        else:
            raise ImportCsvMalformed(line=n)
        if expected is None:
            expected = found
        elif found != expected:
            raise ImportCsvColumns(line=n, found=found, expected=expected)
