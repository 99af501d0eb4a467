"""Telegram's limits on what a bot sends: text lengths, keyboards, buttons, commands, flood control.

Sources: the Bot API documentation, telegram-bot-api's Client.cpp and tdlib (ReplyMarkup.cpp,
MessageContent.cpp, BotCommand.cpp, LinkManager.cpp). Lengths of texts are counted after parsing, in Unicode
code points (tdlib checks ``utf8_length`` against ``message_text_length_max``/``message_caption_length_max``).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any
from urllib.parse import urlsplit

from sandbox.telegram.errors import ApiError, bad

TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_ANSWER_MAX = 200
CALLBACK_DATA_MAX_BYTES = 64
# Bots download files up to 20 MB through getFile (bots FAQ; the Bot API server answers a larger one with
# "Bad Request: file is too big" and gives no file_path).
DOWNLOAD_MAX_BYTES = 20 * 2**20
# Undocumented but enforced by Telegram's servers (REPLY_MARKUP_TOO_LONG): 100 inline buttons in all, and the
# documented 8 per row. tdlib itself silently cuts reply keyboards at 12 a row and 300 in all; Telegram's
# servers refuse what is bigger, so the emulator refuses it too.
INLINE_BUTTONS_MAX = 100
INLINE_ROW_MAX = 8
REPLY_BUTTONS_MAX = 300
REPLY_ROW_MAX = 12
INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
LANGUAGE_RE = re.compile(r"[a-z]{2}")
DEEP_LINK_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOO_LONG = "reply markup is too long"


def check_text(shown: str) -> None:
    """sendMessage/editMessageText: 1-4096 characters after parsing (whitespace alone is empty)."""
    if not shown.strip():
        raise bad("message text is empty")
    if len(shown) > TEXT_MAX:
        raise bad("message is too long")


def check_caption(shown: str) -> None:
    if len(shown) > CAPTION_MAX:
        raise bad("message caption is too long")


def check_url(url: str) -> None:
    """tdlib's ``LinkManager::check_link``: ``http(s)://``, ``tg://`` (or ``tg:``) links, or a bare host with
    a dot (read as http). Anything else — another scheme, no host, a host without a dot — is refused."""
    low = url.lower()
    if low.startswith(("tg:", "ton:")):
        rest = url.split(":", 1)[1].removeprefix("//")
        host = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if not host or not re.fullmatch(r"[A-Za-z0-9_-]+", host):
            raise bad("inline keyboard button Wrong tg URL")
        return
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise bad("inline keyboard button Unsupported URL protocol")
    host = parts.hostname or ""
    if "." not in host or " " in url:
        raise bad("inline keyboard button Wrong HTTP URL")


def _inline_button(b: Any) -> None:
    if not isinstance(b, dict):
        raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    if not isinstance(b.get("text"), str) or not b["text"]:
        raise bad("can't parse inline keyboard button: Inline keyboard button text must be non-empty")
    actions = [k for k in INLINE_ACTIONS if k in b and b[k] is not None]
    if len(actions) != 1:
        # The Bot API documents "exactly one of the optional fields must be used"; with none the server
        # answers this, with several it silently picks one (a bug in waiting), so the emulator refuses both.
        raise bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
            if not actions
            else f"can't parse inline keyboard button: exactly one action field expected, got {actions}"
        )
    if "callback_data" in b and not 1 <= len(str(b["callback_data"]).encode()) <= CALLBACK_DATA_MAX_BYTES:
        raise bad("BUTTON_DATA_INVALID")
    if "url" in b:
        check_url(str(b["url"]))


def kind_of(markup: dict[str, Any]) -> str:
    if markup.get("inline_keyboard"):
        return "inline"
    if markup.get("keyboard"):
        return "keyboard"
    if markup.get("remove_keyboard") or markup.get("hide_keyboard"):
        return "remove"
    if markup.get("force_reply"):
        return "force_reply"
    return "none"


def check_markup(markup: Any, *, inline_only: bool = False, private: bool = True) -> str:
    """Validate ``reply_markup``; returns its kind (inline, keyboard, remove, force_reply, none)."""
    if markup is None:
        return "none"
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    kind = kind_of(markup)
    if inline_only and kind not in ("inline", "none"):
        raise bad("inline keyboard expected")
    if kind == "inline":
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad('Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for b in row:
                _inline_button(b)
        if sum(map(len, rows)) > INLINE_BUTTONS_MAX or any(len(r) > INLINE_ROW_MAX for r in rows):
            raise bad(_TOO_LONG)
    elif kind == "keyboard":
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad('Field "keyboard" must be an Array of Arrays')
        for row in rows:
            for b in row:
                text = b if isinstance(b, str) else b.get("text") if isinstance(b, dict) else None
                if not isinstance(text, str) or not text:
                    raise bad("can't parse keyboard button: Keyboard button text must be non-empty")
                asks = isinstance(b, dict) and (b.get("request_contact") or b.get("request_location"))
                if asks and not private:
                    raise bad("Phone number can be requested in private chats only")
        if sum(map(len, rows)) > REPLY_BUTTONS_MAX or any(len(r) > REPLY_ROW_MAX for r in rows):
            raise bad(_TOO_LONG)
    return kind


def check_commands(commands: Any, language_code: Any) -> list[dict[str, Any]]:
    """setMyCommands: at most 100 commands of 1-32 ``[a-z0-9_]``, descriptions 1-256 characters, and a
    ``language_code`` that is empty or two lowercase letters (tdlib's ``validate_bot_language_code``)."""
    check_language(language_code)
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad("commands must be an Array of at most 100 BotCommand")
    for c in commands:
        if not isinstance(c, dict):
            raise bad("can't parse BotCommand: Object expected")
        command = str(c.get("command", "")).strip().removeprefix("/")
        description = str(c.get("description", "")).strip()
        if not COMMAND_RE.fullmatch(command):
            raise bad("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
    return commands


# BotCommandScope types, and the fields each needs besides ``type``.
SCOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}


def check_scope(scope: Any) -> dict[str, Any]:
    """A BotCommandScope (absent: the default scope): a known ``type`` with the fields it needs. Whether
    its chat exists is the caller's to check."""
    if scope is None or scope == "":
        return {"type": "default"}
    if not isinstance(scope, dict):
        raise bad("can't parse BotCommandScope: Object expected")
    kind = scope.get("type")
    if kind not in SCOPE_FIELDS:
        raise bad("can't parse BotCommandScope: unsupported scope type")  # wording undocumented
    for name in SCOPE_FIELDS[kind]:
        value = scope.get(name)
        if value is None or value == "":
            raise bad(f'can\'t parse BotCommandScope: field "{name}" must be specified')
        if name == "user_id" and not (isinstance(value, int) or str(value).lstrip("-").isdigit()):
            raise bad('can\'t parse BotCommandScope: field "user_id" must be an Integer')
    return scope


def check_language(language_code: Any) -> str:
    """setMyCommands / deleteMyCommands ``language_code``: empty or two lowercase letters (tdlib's
    ``validate_bot_language_code``)."""
    code = "" if language_code is None else str(language_code)
    if code and not LANGUAGE_RE.fullmatch(code):
        raise bad("invalid language code specified")
    return code


class Bucket:
    """Token bucket: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def wait(self) -> float:
        """0 if a message may go now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


def too_many(wait: float) -> ApiError:
    retry = max(1, math.ceil(wait))
    return ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
