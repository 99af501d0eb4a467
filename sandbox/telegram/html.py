"""Telegram's HTML parse mode, as tdlib's ``parse_html`` (td/telegram/MessageEntity.cpp) implements it.

What the Bot API server does with ``parse_mode``, reproduced here:

* ``parse_mode`` is compared case-insensitively (telegram-bot-api lowercases it): ``HTML``, ``Markdown``,
  ``MarkdownV2``; empty or ``none`` mean plain text; anything else is 400 "unsupported parse_mode".
* Every ``<`` opens a tag. The tag name runs to the next space or ``>`` and must be one of tdlib's tags, so
  ``I <3 you`` ("3"), ``a < b`` ("") and ``Gift <Card>`` ("card") are refused: *Unsupported start tag*.
  A bare ``>`` is ordinary text.
* Attributes: unknown ones are ignored; ``a href``, ``code class="language-…"``, ``span class="tg-spoiler"``
  (a ``span`` without it is refused), ``tg-emoji emoji-id`` (must be a non-zero integer),
  ``blockquote expandable``, ``tg-time unix``/``format``. Values are quoted (with entities decoded) or a name
  token of letters, digits, ``.`` and ``-``.
* ``&lt; &gt; &amp; &quot;`` and numeric references (``&#60;`` ``&#x3C;``, the ``;`` optional) are decoded;
  any other ``&name;`` is kept literally (tdlib does not know ``&nbsp;`` and leaves it as typed).
* Tags nest strictly: a mismatched end tag, an end tag with nothing open and an unclosed tag are refused.
* Entity offsets and lengths are in UTF-16 code units. The message *length* limits (4096 text, 1024 caption)
  are checked by tdlib with ``utf8_length`` — Unicode code points — after parsing; see ``limits.py``.

Markdown and MarkdownV2 are accepted as parse modes but not parsed (keyshop sends HTML only).
"""

from __future__ import annotations

from typing import Any

from sandbox.telegram.errors import ApiError, bad

TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins"}
    | {"tg-spoiler", "tg-emoji", "tg-time", "span", "pre", "code", "blockquote"}
)
PARSE_MODES = {"html", "markdown", "markdownv2"}
_SPACE = " \t\r\n\v"
_KIND = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "a": "text_link",
    "pre": "pre",
    "code": "code",
    "blockquote": "blockquote",
}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fail(message: str) -> ApiError:
    return bad(f"can't parse entities: {message}")


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """tdlib's ``decode_html_entity``: the character at ``text[pos] == '&'`` and where parsing resumes."""
    end = pos + 1
    if text[end : end + 1] == "#":
        end += 1
        hexa = text[end : end + 1] == "x"
        end += hexa
        digits = "0123456789abcdefABCDEF" if hexa else "0123456789"
        start = end
        while end < len(text) and text[end] in digits:
            end += 1
        code = int(text[start:end], 16 if hexa else 10) if end > start else 0
        # tdlib measures ``end - pos`` in bytes; everything in a numeric reference is ASCII
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
        char = chr(code)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    return char, end + 1 if text[end : end + 1] == ";" else end


class _Open:
    def __init__(self, tag: str, argument: str, offset: int, text_pos: int) -> None:
        self.tag, self.argument, self.offset, self.text_pos = tag, argument, offset, text_pos


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The visible text and its entities, or the ApiError Telegram answers with."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    offset = 0  # UTF-16 offset in the output
    i, n = 0, len(text)

    def byte_at(pos: int) -> int:
        return len(text[:pos].encode())

    def at(pos: int) -> str:
        return text[pos] if pos < n else "\0"

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                char, i = decoded
                out.append(char)
                offset += utf16_len(char)
                continue
        if c != "<":
            out.append(c)
            offset += utf16_len(c)
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != "/":
            while at(i) not in _SPACE + "\0>":
                i += 1
            if i >= n:
                raise _fail(f"Unclosed start tag at byte offset {byte_at(begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in TAGS:
                raise _fail(f'Unsupported start tag "{tag}" at byte offset {byte_at(begin)}')
            argument = ""
            while at(i) != ">":
                while i < n and at(i) in _SPACE:
                    i += 1
                if at(i) == ">":
                    break
                attr_begin = i
                while at(i) not in _SPACE + "\0=>/\"'":
                    i += 1
                name = text[attr_begin:i]
                if not name:
                    raise _fail(f'Empty attribute name in the tag "{tag}" at byte offset {byte_at(begin)}')
                while i < n and at(i) in _SPACE:
                    i += 1
                if at(i) != "=":
                    if i >= n:
                        raise _fail(f'Unclosed start tag "{tag}" at byte offset {byte_at(begin)}')
                    if tag == "blockquote" and name == "expandable":
                        argument = "1"
                    continue
                i += 1
                while i < n and at(i) in _SPACE:
                    i += 1
                if i >= n:
                    raise _fail(f'Unclosed start tag "{tag}" at byte offset {byte_at(begin)}')
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if at(i) not in _SPACE + "\0>":
                        raise _fail(f"Unexpected end of name token at byte offset {byte_at(token_begin)}")
                else:
                    quote = text[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise _fail(f"Unclosed start tag at byte offset {byte_at(begin)}")
                if tag == "a" and name == "href":
                    argument = value
                elif tag == "code" and name == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif (tag == "tg-emoji" and name == "emoji-id") or (tag == "tg-time" and name == "format"):
                    argument = value
                elif tag == "blockquote" and name == "expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise _fail(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_at(begin)}')
            stack.append(_Open(tag, argument, offset, len(out)))
            i += 1  # past '>'
            continue
        # an end tag
        if not stack:
            raise _fail(f"Unexpected end tag at byte offset {byte_at(begin)}")
        while at(i) not in _SPACE + "\0>":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while i < n and at(i) in _SPACE:
            i += 1
        if at(i) != ">":
            raise _fail(f"Unclosed end tag at byte offset {byte_at(begin)}")
        top = stack.pop()
        if end_tag and end_tag != top.tag:
            raise _fail(
                f'Unmatched end tag at byte offset {byte_at(begin)}, expected "</{top.tag}>", '
                f'found "</{end_tag}>"'
            )
        i += 1
        if offset > top.offset:
            entity: dict[str, Any] = {"type": _KIND.get(top.tag, top.tag), "offset": top.offset}
            entity["length"] = offset - top.offset
            if top.tag == "tg-emoji":
                if not top.argument.isdigit() or int(top.argument) == 0:
                    raise bad("Invalid custom emoji identifier specified")
                entity["custom_emoji_id"] = top.argument
            elif top.tag == "a":
                entity["url"] = top.argument or "".join(out[top.text_pos :])
            elif top.tag == "code" and top.argument:
                entity["language"] = top.argument
            elif top.tag == "blockquote" and top.argument:
                entity["type"] = "expandable_blockquote"
            if top.tag != "tg-time":
                entities.append(entity)
    if stack:
        raise _fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    plain = "".join(out)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return plain, entities


def check_parse_mode(parse_mode: str | None) -> str:
    """The parse mode as the Bot API understands it ('' for plain text)."""
    mode = (parse_mode or "").lower()
    if mode in ("", "none"):
        return ""
    if mode not in PARSE_MODES:
        raise bad("unsupported parse_mode")
    return mode


def formatted(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Text as a client shows it, and its entities."""
    if len(text.encode()) > 1 << 15:
        raise bad("text is too long")
    mode = check_parse_mode(parse_mode)
    if mode == "html" and text:
        return parse_html(text)
    return text, []


def visible_text(text: str, parse_mode: str | None) -> str:
    return formatted(text, parse_mode)[0]
