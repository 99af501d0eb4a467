"""Documents the bot sends stay within what Telegram takes: a bot uploads files of up to 50 MB (Bot API,
sendDocument); a bigger request is refused with 413 "Request Entity Too Large". Every document the bot builds
is measured against ``DOCUMENT_MAX_BYTES`` before it is sent, and either refused up front with a reason (a
key export: ``core.services.keys``) or cut with a note saying how much was left out (``capped_lines``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

# 50 MB less room for the multipart request around the file (Telegram counts the whole request)
DOCUMENT_MAX_BYTES = 49 * 2**20


def capped_lines(
    rows: Sequence[str],
    more: Callable[[int], str],
    *,
    omitted: int = 0,
    limit: int = DOCUMENT_MAX_BYTES,
) -> bytes:
    """``rows`` as a UTF-8 text file, one a line, of at most ``limit`` bytes. When rows were left out
    (``omitted`` already, or those that do not fit) a last line, ``more(count)``, says how many."""
    lines = [(row + "\n").encode() for row in rows]
    if not omitted and sum(map(len, lines)) <= limit:
        return b"".join(lines)
    room = len((more(len(rows) + omitted) + "\n").encode())  # the longest that note can be
    out: list[bytes] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + room > limit:
            omitted += len(rows) - i
            break
        out.append(line)
        size += len(line)
    out.append((more(omitted) + "\n").encode())
    return b"".join(out)
