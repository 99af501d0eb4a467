"""Texts cut into WeChat-sized messages (``handlers.wechat.parts``): never over 2048 bytes of UTF-8, never a
character cut in two, keys shown exactly or not as text at all."""

from __future__ import annotations

import pytest

from handlers.wechat.parts import (
    HEAD_MAX_BYTES,
    keys_as_text,
    keys_in_parts,
    marked,
    shows_as_text,
    split_text,
)
from handlers.wechat.texts import TEXT_MAX_BYTES


@pytest.mark.parametrize(
    "key",
    [
        "AB\u200bCD",  # zero-width space: invisible, copied along
        "RTL\u202eDCBA",  # a direction override turns the rest of the message around
        "tab\there",
        "two\nlines",
        "bell\x07",
        "<a href='x'>y</a>",  # WeChat shows a link instead
        "nbsp\u00a0here",
        "",
    ],
)
def test_a_key_wechat_would_not_show_exactly_is_no_text(key: str) -> None:
    assert not shows_as_text(key)
    assert keys_as_text("head", ["FINE-1", key], 3) is None


@pytest.mark.parametrize("key", ["CDK-ABCD-1234", "账号 user@example.com 密码 x&y>z", "🎮-KEY-✓", "a b"])
def test_printable_keys_show_as_text(key: str) -> None:
    assert shows_as_text(key)
    assert keys_as_text("head", [key], 1) == [f"head\n\n{key}"]


def test_marking_writes_out_what_the_chat_cannot_show() -> None:
    assert marked("AB\u200bCD<x>\n") == "AB[U+200B]CD[U+003C]x>[U+000A]"


def test_keys_as_text_refuse_more_messages_than_allowed() -> None:
    keys = [f"{i:02d}" + "k" * 1000 for i in range(7)]  # one in the first message (after the head), 2 after
    assert keys_as_text("head", keys, 3) is None
    parts = keys_as_text("head", keys[:5], 3)
    assert parts is not None and len(parts) == 3


def test_a_single_key_longer_than_a_message_is_no_text() -> None:
    assert keys_as_text("head", ["k" * TEXT_MAX_BYTES], 10) is None


@pytest.mark.parametrize("unit", ["a", "é", "卡", "🎮"])
def test_parts_stay_within_2048_bytes_and_cut_no_character(unit: str) -> None:
    keys = [unit * n for n in (1, 700, 2100, 5000, 3)]
    head = "头" * 1000  # longer than its room: cut
    parts = keys_in_parts(head, keys)
    assert all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    assert parts[0].startswith(f"(1/{len(parts)})\n")
    assert len(parts[0].split("\n\n")[0].encode()) <= HEAD_MAX_BYTES + 16
    assert sum(p.count(unit) for p in parts) == sum(len(k) for k in keys)


def test_a_long_text_splits_at_line_breaks_first() -> None:
    lines = [f"第 {i} 行 " + "字" * 100 for i in range(40)]
    parts = split_text("\n".join(lines))
    assert len(parts) > 1 and all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    assert "\n".join(parts) == "\n".join(lines)  # every line whole, in order
    assert split_text("short") == ["short"]
