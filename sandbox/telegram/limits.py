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


# ---------------------------------------------------------------- files a bot uploads

# Multipart uploads (Bot API, "Sending files"): 10 MB for photos, 50 MB for other files. Telegram's servers
# answer a bigger request with 413 "Request Entity Too Large" before reading it; the photo limit is tdlib's
# ``check_full_local_location``, whose refusal bots receive as the description below.
UPLOAD_MAX_BYTES = 50 * 2**20
PHOTO_MAX_BYTES = 10 * 2**20
# sendPhoto: "The photo's width and height must not exceed 10000 in total. Width and height ratio must be at
# most 20."
PHOTO_SIDES_MAX = 10000
PHOTO_RATIO_MAX = 20
# The sizes Telegram makes of a photo (thumbnails boxed to 90, 320, 800 and 1280 on the longer side); the
# largest it keeps is boxed to 2560, so that size carries the original's dimensions up to there.
PHOTO_BOXES = (90, 320, 800, 1280)
PHOTO_LARGEST = 2560
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG or GIF header; None for anything else (or a broken header)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The dimensions in a JPEG's start-of-frame segment, walking the segments before it."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _JPEG_SOF:
            if length < 7 or i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        if marker == 0xDA or length < 2:  # image data before any frame header: not a JPEG we can read
            return None
        i += 2 + length
    return None


def check_upload(data: bytes) -> None:
    """Any file a bot uploads by multipart: at most 50 MB."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise too_large()


def check_photo(data: bytes) -> tuple[int, int]:
    """sendPhoto's rules on the uploaded bytes; returns the photo's (width, height)."""
    if len(data) > PHOTO_MAX_BYTES:
        raise bad(
            f"file of size {len(data)} bytes is too big for a photo; "
            f"the maximum size is {PHOTO_MAX_BYTES} bytes"
        )
    size = image_size(data)
    if size is None or not all(size):
        raise bad("IMAGE_PROCESS_FAILED")
    w, h = size
    if w + h > PHOTO_SIDES_MAX or max(w, h) > PHOTO_RATIO_MAX * min(w, h):
        raise bad("PHOTO_INVALID_DIMENSIONS")
    return w, h


def photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The PhotoSize dimensions Telegram returns for a photo, smallest first: a thumbnail per box the photo
    is larger than, then the photo itself (boxed to ``PHOTO_LARGEST``)."""

    def boxed(box: int) -> tuple[int, int]:
        scale = min(1.0, box / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    return [boxed(b) for b in PHOTO_BOXES if max(width, height) > b] + [boxed(PHOTO_LARGEST)]


def check_file(kind: str, data: bytes) -> tuple[int, int] | None:
    """What Telegram checks of a multipart upload before sending it: the size (413 over 50 MB, before
    anything else), and for a photo its own rules; returns a photo's (width, height)."""
    check_upload(data)
    return check_photo(data) if kind == "photo" else None


def photo_entries(file_id: str, size: int, dims: tuple[int, int] | None) -> list[dict[str, Any]]:
    """The ``photo`` array of a sent photo's message: one PhotoSize per size Telegram keeps, the largest
    last with ``file_id`` (thumbnails get ids of their own, ``file_id`` + a suffix; only the largest
    carries ``file_size``, which the Bot API may omit)."""
    assert dims is not None, "check_file gives a photo's dimensions"
    sizes = photo_sizes(*dims)
    entries: list[dict[str, Any]] = []
    for i, (w, h) in enumerate(sizes):
        last = i == len(sizes) - 1
        fid = file_id if last else f"{file_id}_{i}"
        entry: dict[str, Any] = {"file_id": fid, "file_unique_id": fid[3:15] + ("" if last else str(i))}
        entries.append({**entry, "width": w, "height": h, **({"file_size": size} if last else {})})
    return entries
