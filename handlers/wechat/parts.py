"""Texts cut into WeChat-sized messages (``TEXT_MAX_BYTES`` of UTF-8 each): keys, and anything long.

WeChat shows a customer-service text as it is, except that it reads ``<a href=…>`` as a link, and a line
break, a control character or an invisible direction mark in a key would break the message around it. A
key goes in a text only when WeChat shows it exactly (``shows_as_text``); otherwise the buyer gets the
order page, or, without one, the key with each such character written out as ``[U+XXXX]``.

Where the parts of a message break depends only on the keys, never on the language of the head: a
delivery interrupted after its first parts (the window closed) goes on with the same parts later, even
if the buyer switched language meanwhile. So the head has a fixed room (``HEAD_MAX_BYTES``, the product's
name cut to fit) and each part a fixed room for its ``(2/3)`` label."""

from __future__ import annotations

from handlers.wechat.texts import TEXT_MAX_BYTES, fit

HEAD_MAX_BYTES = 512  # the head of a delivery (order, product, validity, a hint) in its first message
LABEL_MAX_BYTES = 16  # "(12/34)\n" before each part of a message in several
FIRST_ROOM = TEXT_MAX_BYTES - LABEL_MAX_BYTES - HEAD_MAX_BYTES - 2  # 2: the blank line after the head
ROOM = TEXT_MAX_BYTES - LABEL_MAX_BYTES
MIN_PIECE_BYTES = 64  # a key cut over messages starts in the current one only if this much room is left


def shows_as_text(key: str) -> bool:
    """Whether WeChat shows ``key`` exactly in a text message: printable characters only (no line break,
    control, invisible format or direction character, no space but U+0020), and no ``<``."""
    return bool(key) and key.isprintable() and "<" not in key


def marked(key: str) -> str:
    """``key`` with every character ``shows_as_text`` refuses written out as ``[U+XXXX]``."""
    return "".join(c if c.isprintable() and c != "<" else f"[U+{ord(c):04X}]" for c in key)


def keys_as_text(head: str, keys: list[str], max_messages: int) -> list[str] | None:
    """``head``, then the keys one a line, in at most ``max_messages`` messages; None when they do not fit
    (too many, one too long for a message) or WeChat would not show one of them exactly."""
    if not keys or not all(shows_as_text(k) for k in keys):
        return None
    groups = _pack(keys, break_long=False)
    if groups is None or len(groups) > max_messages:
        return None
    return _assemble(head, groups)


def keys_in_parts(head: str, keys: list[str]) -> list[str]:
    """Every key, however many and long: marked (``marked``), a key longer than a message cut over
    several lines, in as many messages as it takes."""
    groups = _pack([marked(k) for k in keys], break_long=True)
    assert groups is not None
    return _assemble(head, groups)


def split_text(text: str, max_bytes: int = TEXT_MAX_BYTES) -> list[str]:
    """``text`` in parts of at most ``max_bytes``, cut at line breaks where it can, inside a line where
    one is longer than a part."""
    if len(text.encode()) <= max_bytes:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in _pieces(line, max_bytes) or [""]:  # a blank line stays
            joined = f"{current}\n{piece}" if current else piece
            if current and len(joined.encode()) > max_bytes:
                parts.append(current)
                joined = piece
            current = joined
    if current:
        parts.append(current)
    return parts


def _pack(lines: list[str], *, break_long: bool) -> list[list[str]] | None:
    """Lines into groups, the first holding ``FIRST_ROOM`` bytes, the others ``ROOM`` (joined by line
    breaks); a line that fits a group is never cut. A line longer than ``ROOM``: cut when ``break_long``
    (filling what is left of the group first), else None."""
    groups: list[list[str]] = [[]]
    used, room = 0, FIRST_ROOM

    def new_group() -> None:
        nonlocal used, room
        groups.append([])
        used, room = 0, ROOM

    for line in lines:
        size = len(line.encode())
        if size > ROOM:
            if not break_long:
                return None
            left = room - used - (1 if groups[-1] else 0)
            if left < MIN_PIECE_BYTES:
                new_group()
                left = room
            first, rest = _cut(line, left)
            groups[-1].append(first)
            for piece in _pieces(rest, ROOM):
                new_group()
                groups[-1].append(piece)
            used = len(groups[-1][-1].encode())
            continue
        sep = 1 if groups[-1] else 0
        if used + sep + size > room:
            new_group()
            sep = 0
        groups[-1].append(line)
        used += sep + size
    return groups


def _assemble(head: str, groups: list[list[str]]) -> list[str]:
    head = fit(head, HEAD_MAX_BYTES)
    n = len(groups)
    out = []
    for i, lines in enumerate(groups):
        body = "\n".join(lines)
        if i == 0:
            body = f"{head}\n\n{body}" if body else head
        text = f"({i + 1}/{n})\n{body}" if n > 1 else body
        assert len(text.encode()) <= TEXT_MAX_BYTES
        out.append(text)
    return out


def _cut(line: str, max_bytes: int) -> tuple[str, str]:
    """The longest start of ``line`` within ``max_bytes`` (on a character boundary), and the rest."""
    used = 0
    for n, c in enumerate(line):
        used += len(c.encode("utf-8", "surrogatepass"))
        if used > max_bytes:
            return line[:n], line[n:]
    return line, ""


def _pieces(line: str, max_bytes: int) -> list[str]:
    """``line`` cut on character boundaries into pieces of at most ``max_bytes`` (none for "")."""
    pieces = []
    while line:
        piece, line = _cut(line, max_bytes)
        pieces.append(piece)
    return pieces
