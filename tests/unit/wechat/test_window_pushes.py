"""Which pushes open a user's customer-service window (``handlers.wechat.callback.window_opened_by``): a
message opens the 48-hour one; a menu tap that pushes an event, a follow or a scan the one-minute one;
an unfollow, a menu link (VIEW) or a location report none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.windows import EVENT, MESSAGE
from handlers.wechat.callback import window_opened_by


@pytest.mark.parametrize("kind", ["text", "image", "voice", "video", "location", "link"])
def test_any_user_message_opens_the_48_hour_window(kind: str) -> None:
    assert window_opened_by(SimpleNamespace(type=kind)) == MESSAGE


@pytest.mark.parametrize("event", ["subscribe", "subscribe_scan", "scan", "click", "scancode_push"])
def test_a_follow_a_scan_or_a_menu_tap_opens_the_one_minute_window(event: str) -> None:
    assert window_opened_by(SimpleNamespace(type="event", event=event)) == EVENT


@pytest.mark.parametrize("event", ["unsubscribe", "view", "location", "templatesendjobfinish"])
def test_other_events_open_nothing(event: str) -> None:
    assert window_opened_by(SimpleNamespace(type="event", event=event)) is None
