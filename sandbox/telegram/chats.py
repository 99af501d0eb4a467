"""Who talks to the bot and where: users, their private chats, groups, supergroups and channels; and the
messages the bot sends, as those users see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Telegram's stand-in sender for an anonymous group admin: messages come "from" this bot, with
# ``sender_chat`` set to the group itself.
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHAT_TYPES = ("group", "supergroup", "channel")


@dataclass
class EmuUser:
    id: int
    first_name: str
    language_code: str | None = "en"
    username: str | None = None
    blocked_bot: bool = False
    # A user who never wrote to the bot can't be messaged ("bot can't initiate conversation with a user").
    # Users made with ``Emulator.user`` count as having pressed Start unless told otherwise.
    started: bool = True

    def as_tg(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            d["language_code"] = self.language_code
        if self.username:
            d["username"] = self.username
        return d

    def chat(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class EmuChat:
    """A group, supergroup or channel. ``members`` are user ids; ``admins`` may post anonymously.
    ``bot_can_post`` False: the bot is a member that may not send text there (its admins restricted it, or
    every member, in a read-only hour): it still gets the messages, and its sendMessage is refused (400)."""

    id: int
    type: str
    title: str
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    bot_is_member: bool = True
    username: str | None = None
    bot_can_post: bool = True

    def chat(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            d["username"] = self.username
        return d

    @property
    def kind(self) -> str:
        """How Telegram names it in "bot is not a member of the ... chat"."""
        return {"group": "group", "supergroup": "supergroup", "channel": "channel"}[self.type]


@dataclass
class Sent:
    """A message the bot sent (or edited), as a user would see it.

    ``message`` is the Message Telegram returned (plus private ``_html``/``_payload`` keys for tests). A real
    Message carries ``reply_markup`` only for inline keyboards; a reply keyboard, its removal or ForceReply
    sent with it changes the chat's keyboard instead and is kept here as ``reply_keyboard``.
    """

    message: dict[str, Any]
    method: str
    reply_keyboard: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return str(self.message.get("text") or self.message.get("caption") or "")

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.message.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]

    @property
    def keyboard_buttons(self) -> list[dict[str, Any]]:
        """The reply keyboard's buttons (``{"text": ...}`` each) sent with this message, if any."""
        rows = (self.reply_keyboard or {}).get("keyboard", [])
        return [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]

    def button(self, label_part: str) -> dict[str, Any]:
        for b in self.buttons:
            if label_part in b["text"]:
                return b
        raise LookupError(f"no button with {label_part!r} in {[b['text'] for b in self.buttons]}")
