"""What goes into a template message's fields (``handlers.wechat.templates``): one line, no emoji, at most
20 characters however WeChat counts them, cut where no character is broken; the notes of both catalogs
fit as they are; the end as WeChat's ``time`` fields show it, in the shop's time zone."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import compile_catalogs
from handlers.wechat.templates import (
    TEMPLATE_FIELD_MAX,
    ReminderTemplate,
    template_time,
    template_value,
)
from handlers.wechat.texts import LANGUAGES, Texts


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("腾讯视频 VIP 月卡", "腾讯视频 VIP 月卡"),
        ("月卡\n年卡\r\n季卡\u2028周卡", "月卡 年卡 季卡 周卡"),  # line breaks of every kind: one space
        ("  月卡\t\x00\x1b 年卡  ", "月卡 年卡"),  # controls, runs of spaces
        ("VIP🎬会员👨\u200d👩\u200d👧卡★1️⃣", "VIP会员卡1"),  # emoji, ZWJ sequences, keycaps: WeChat drops them
        ("\u202eVIP\u202c\u200b会员\ufeff", "VIP会员"),  # invisible direction and format characters
        ("🎮🎮🎮", ""),  # nothing left: the caller picks another value
    ],
)
def test_a_field_is_one_line_without_emoji_or_invisible_characters(text: str, field: str) -> None:
    assert template_value(text) == field


def test_a_name_of_forty_characters_is_cut_to_twenty_ending_in_an_ellipsis() -> None:
    name = "腾讯视频超级影视会员年卡尊享版多端通用4K杜比全景声官方直充秒到账正品保障包售后"
    assert len(name) == 40
    assert template_value(name) == name[:19] + "…"


def test_characters_outside_the_bmp_count_twice_and_are_never_halved() -> None:
    field = template_value("𠀀" * 15)  # CJK Extension B: two UTF-16 units each
    assert field == "𠀀" * 9 + "…" and units(field) == 19


def test_a_cut_never_leaves_a_combining_mark_or_its_letter_half() -> None:
    field = template_value("e\u0301" * 30)
    assert field == "e\u0301" * 9 + "…"
    assert template_value("a" * 18 + "e\u0301\u0301x") == "a" * 18 + "…"


@given(st.text(max_size=80))
def test_any_text_makes_a_field_wechat_takes(text: str) -> None:
    field = template_value(text)
    assert units(field) <= TEMPLATE_FIELD_MAX
    assert "\n" not in field and "\r" not in field and field == field.strip()
    assert all(unicodedata.category(c)[0] != "C" for c in field)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ["wx-tpl-reminder-soon", "wx-tpl-reminder-expired"])
def test_the_notes_fit_a_field_as_they_are_written(language: str, key: str) -> None:
    note = Texts(compile_catalogs()).tr(language, key)
    assert note != key and template_value(note) == note


def test_the_end_is_shown_in_the_shops_time_zone_as_wechats_time_fields_document() -> None:
    at = datetime(2026, 3, 31, 16, 5, tzinfo=UTC)
    assert template_time(at, ZoneInfo("Asia/Shanghai")) == "2026年4月1日 00:05"
    assert template_time(at, ZoneInfo("UTC")) == "2026年3月31日 16:05"


def test_a_reminder_template_has_two_or_three_fields() -> None:
    assert ReminderTemplate.with_keys("T", ["keyword1", "keyword2"]) == ReminderTemplate(
        "T", "keyword1", "keyword2", None
    )
    assert ReminderTemplate.with_keys("T", ["thing1", "time2", "thing3"]) == ReminderTemplate("T")
    with pytest.raises(ValueError):
        ReminderTemplate.with_keys("T", ["thing1"])
