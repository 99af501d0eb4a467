"""The official account's limits as pure checks: the customer-service window and its quotas, text length,
template fields, menus and parametric QR codes (``../shared/WECHAT.md``, "Outbound")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.wechat import errors as e

WINDOW_SECONDS = 48 * 3600
EVENT_WINDOW_SECONDS = 60
MESSAGE_QUOTA = 5  # after a user message, since 2023
EVENT_QUOTA = 3  # after a menu tap, a follow or a scan, within a minute
TEXT_MAX_BYTES = 2048  # bytes of UTF-8 (WECHAT.md: "about 2048 bytes", bytes vs characters unverified)
TEMPLATE_FIELD_MAX = 20
TEMP_QR_MAX_SECONDS = 2_592_000
TEMP_QR_DEFAULT_SECONDS = 60
SCENE_STR_MAX = 64
MENU_BUTTONS_MAX = 3
SUB_BUTTONS_MAX = 5
BUTTON_NAME_MAX_BYTES = 16
SUB_BUTTON_NAME_MAX_BYTES = 60
BUTTON_KEY_MAX_BYTES = 128
BUTTON_URL_MAX_BYTES = 1024
BUTTON_TYPES = {
    "click",
    "view",
    "miniprogram",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "article_id",
    "article_view_limited",
}
# what each type needs besides its name
BUTTON_NEEDS = {"click": "key", "view": "url", "miniprogram": "url", "media_id": "media_id"}


@dataclass
class Grant:
    """One opening of the customer-service window: until when, and how many messages are left (None:
    no count limit, as after a payment)."""

    kind: str  # "message" | "event" | "payment"
    until: float
    left: int | None


def grant(kind: str, now: float) -> Grant:
    if kind == "message":
        return Grant(kind, now + WINDOW_SECONDS, MESSAGE_QUOTA)
    if kind == "event":
        return Grant(kind, now + EVENT_WINDOW_SECONDS, EVENT_QUOTA)
    return Grant("payment", now + WINDOW_SECONDS, None)


def spend(grants: dict[str, Grant], now: float) -> None:
    """Use one customer-service message from the open grants (unlimited ones first); 45015 when none is
    open, 45047 when the open ones are used up."""
    open_ = [g for g in grants.values() if g.until > now]
    if not open_:
        raise e.WeChatError(e.OUT_OF_WINDOW, "response out of time limit or subscription is canceled")
    for g in sorted(open_, key=lambda g: (g.left is not None, g.until)):
        if g.left is None:
            return
        if g.left > 0:
            g.left -= 1
            return
    raise e.WeChatError(e.QUOTA_USED, "reach max api quota limit of user custom message")


def check_text(content: Any) -> str:
    if not isinstance(content, str) or not content:
        raise e.WeChatError(e.INVALID_ARGS, "invalid args: text.content")
    if len(content.encode()) > TEXT_MAX_BYTES:
        raise e.WeChatError(e.CONTENT_TOO_LONG, "content size out of limit")
    return content


def check_template_data(data: Any) -> dict[str, str]:
    """Each field's value: at most 20 characters, no line break (47003 names the field, as WeChat does)."""
    if not isinstance(data, dict):
        raise e.WeChatError(e.ARGUMENT_INVALID, "argument invalid! data is not an object")
    values: dict[str, str] = {}
    for key, field in data.items():
        value = field.get("value") if isinstance(field, dict) else None
        if not isinstance(value, str) or not value:
            raise e.WeChatError(e.ARGUMENT_INVALID, f"argument invalid! data.{key}.value is empty")
        if len(value) > TEMPLATE_FIELD_MAX or "\n" in value or "\r" in value:
            raise e.WeChatError(e.ARGUMENT_INVALID, f"argument invalid! data.{key}.value invalid")
        values[key] = value
    return values


def check_menu(body: Any) -> list[dict[str, Any]]:
    buttons = body.get("button") if isinstance(body, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MENU_BUTTONS_MAX:
        raise e.WeChatError(e.INVALID_BUTTON_SIZE, "invalid button size")
    for button in buttons:
        if not isinstance(button, dict):
            raise e.WeChatError(e.INVALID_BUTTON_TYPE, "invalid button type")
        _check_name(button, BUTTON_NAME_MAX_BYTES)
        subs = button.get("sub_button")
        if subs is None:
            _check_action(button)
            continue
        if not isinstance(subs, list) or not 1 <= len(subs) <= SUB_BUTTONS_MAX:
            raise e.WeChatError(e.INVALID_SUB_BUTTON_SIZE, "invalid sub button size")
        for sub in subs:
            if not isinstance(sub, dict) or "sub_button" in sub:
                raise e.WeChatError(e.INVALID_BUTTON_TYPE, "invalid button type")
            _check_name(sub, SUB_BUTTON_NAME_MAX_BYTES)
            _check_action(sub)
    return buttons


def _check_name(button: dict[str, Any], max_bytes: int) -> None:
    name = button.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > max_bytes:
        raise e.WeChatError(e.INVALID_BUTTON_NAME_SIZE, "invalid button name size")


def _check_action(button: dict[str, Any]) -> None:
    kind = button.get("type")
    if kind not in BUTTON_TYPES:
        raise e.WeChatError(e.INVALID_BUTTON_TYPE, "invalid button type")
    need = BUTTON_NEEDS.get(kind, "key")
    value = button.get(need)
    if need == "url":
        if not isinstance(value, str) or not value or len(value.encode()) > BUTTON_URL_MAX_BYTES:
            raise e.WeChatError(e.INVALID_BUTTON_URL_SIZE, "invalid button url size")
    elif not isinstance(value, str) or not value or len(value.encode()) > BUTTON_KEY_MAX_BYTES:
        raise e.WeChatError(e.INVALID_BUTTON_KEY_SIZE, "invalid button key size")


def check_qrcode(body: Any) -> tuple[str, str, int | None]:
    """(action, scene, expire seconds or None for a permanent code). String scenes only: the shop's
    ``ref:<code>`` scenes; integer scenes (QR_SCENE, QR_LIMIT_SCENE) are refused with 40097 like any bad
    argument (the emulator's choice: the docs give no code per field)."""
    if not isinstance(body, dict):
        raise e.WeChatError(e.INVALID_ARGS, "invalid args")
    action = body.get("action_name")
    scene_info = body.get("action_info", {})
    scene = scene_info.get("scene", {}).get("scene_str") if isinstance(scene_info, dict) else None
    if action not in ("QR_LIMIT_STR_SCENE", "QR_STR_SCENE"):
        raise e.WeChatError(e.INVALID_ARGS, "invalid args: action_name")
    if not isinstance(scene, str) or not 1 <= len(scene) <= SCENE_STR_MAX:
        raise e.WeChatError(e.INVALID_ARGS, "invalid args: scene_str")
    if action == "QR_LIMIT_STR_SCENE":
        return action, scene, None
    expire = body.get("expire_seconds", TEMP_QR_DEFAULT_SECONDS)
    if not isinstance(expire, int) or not 1 <= expire <= TEMP_QR_MAX_SECONDS:
        raise e.WeChatError(e.INVALID_ARGS, "invalid args: expire_seconds")
    return action, scene, expire
