"""WeChat's customer-service window as the shop predicts it (``core.windows``): the same rule as the
emulator's (``sandbox.wechat.limits``), so the sender spends no call it knows WeChat would refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.windows import EVENT, MESSAGE, Spent, WechatWindow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def spend_all(w: WechatWindow, now: datetime, limit: int = 100) -> tuple[WechatWindow, list[Spent | None]]:
    spent: list[Spent | None] = []
    while w.left(now) != 0 and len(spent) < limit:
        w, s = w.spend(now)
        spent.append(s)
    return w, spent


def test_a_user_message_allows_five_messages_for_48_hours() -> None:
    w = WechatWindow(1, message_at=T0)
    assert w.left(T0 + timedelta(hours=47)) == 5
    w, spent = spend_all(w, T0 + timedelta(hours=1))
    assert spent == [Spent(MESSAGE, T0)] * 5
    assert w.left(T0 + timedelta(hours=1)) == 0
    assert WechatWindow(1, message_at=T0).left(T0 + timedelta(hours=48)) == 0


def test_a_menu_tap_follow_or_scan_allows_three_messages_for_a_minute() -> None:
    w = WechatWindow(1, event_at=T0)
    assert w.left(T0 + timedelta(seconds=59)) == 3
    assert w.left(T0 + timedelta(seconds=60)) == 0
    _, spent = spend_all(w, T0)
    assert spent == [Spent(EVENT, T0)] * 3


def test_a_payment_allows_any_number_for_48_hours_and_counts_nothing() -> None:
    w = WechatWindow(1, paid_at=T0, message_at=T0 + timedelta(hours=1))
    assert w.left(T0 + timedelta(hours=47)) is None
    after, spent = w.spend(T0 + timedelta(hours=2))
    assert spent is None and after == w  # the message's five are kept for when the payment's 48 h end
    assert w.left(T0 + timedelta(hours=48)) == 5


def test_openings_add_up_and_the_one_ending_first_is_spent_first() -> None:
    w = WechatWindow(1, message_at=T0, event_at=T0 + timedelta(hours=1))
    now = T0 + timedelta(hours=1)
    assert w.left(now) == 8
    w, spent = spend_all(w, now)
    assert spent == [Spent(EVENT, now)] * 3 + [Spent(MESSAGE, T0)] * 5


def test_a_refusal_closes_the_window_whatever_the_counts_say() -> None:
    w = WechatWindow(1, message_at=T0, paid_at=T0, closed_at=T0 + timedelta(minutes=1))
    assert w.left(T0 + timedelta(minutes=2)) == 0


def test_spending_a_closed_window_is_a_bug_not_a_silent_count() -> None:
    with pytest.raises(ValueError):
        WechatWindow(1).spend(T0)
