"""Template messages (模板消息): what the WeChat sender sends instead of a customer-service text when the
buyer's 48-hour window is closed, for the message types where waiting would defeat the message.

Only a membership reminder goes this way (``WECHAT_TEMPLATE_REMINDER``): "your membership ends in three
days" parked until the buyer next writes arrives after the end. Inside the window the reminder stays the
richer text (``handlers.wechat.messages``); everything else waits for the window as before.

A template is one the owner picked from WeChat's library; the shop fills its fields (``ReminderTemplate``,
keys ``thing1``, ``time2``, ``thing3`` unless WECHAT_TEMPLATE_REMINDER_FIELDS says otherwise):

- the product's name, on one line and cut to 20 characters (``template_value``; WeChat's rule since May
  2023: each field at most 20 characters, no line break, and emoji are dropped);
- the membership's end in SHOP_TIMEZONE, as WeChat's ``time`` fields document it (``2026年11月25日 14:00``);
- a short note in the buyer's language (``wx-tpl-*``): how to renew, by replying 商品 (which also opens a
  new window). The template's own words (title, labels) are the template's, in the language it was made in.

No link: renewing is buying again in the chat, and the shop has no page for a purchase not yet made. Never
a key, nor anything read from one: the fields are the product, a date and a fixed note."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from core.messages import MembershipReminder, Message
from core.services.reminders import EXPIRED
from handlers.wechat.messages import WxOutgoing, due_membership
from handlers.wechat.texts import ELLIPSIS

log = logging.getLogger(__name__)

TEMPLATE_FIELD_MAX = 20  # characters in one field (WeChat, since 4 May 2023)
DEFAULT_REMINDER_KEYS = ("thing1", "time2", "thing3")  # a 会员到期提醒 template's usual keys
_VARIATION_SELECTORS = frozenset({0xFE0E, 0xFE0F, 0x20E3})  # text/emoji presentation, the keycap's frame


class TemplateApi(Protocol):
    """What sending a template takes of the official-account API (``handlers.wechat.api.WechatApi``):
    raises ``handlers.wechat.errors`` for WeChat's refusals."""

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ReminderTemplate:
    """WECHAT_TEMPLATE_REMINDER: the template's id and the keys of its fields for the product, the end and
    (optionally) the note."""

    template_id: str
    product: str = DEFAULT_REMINDER_KEYS[0]
    ends: str = DEFAULT_REMINDER_KEYS[1]
    note: str | None = DEFAULT_REMINDER_KEYS[2]

    @classmethod
    def with_keys(cls, template_id: str, keys: Sequence[str]) -> ReminderTemplate:
        """From WECHAT_TEMPLATE_REMINDER_FIELDS's keys in order: product, end, then the note if there is
        a third."""
        if not 2 <= len(keys) <= 3:
            raise ValueError("a reminder template has two or three fields: product, end, note")
        return cls(template_id, keys[0], keys[1], keys[2] if len(keys) == 3 else None)


def template_value(text: str, limit: int = TEMPLATE_FIELD_MAX) -> str:
    """``text`` as WeChat takes one template field: on one line (line breaks, tabs and other control
    characters become a space, runs of spaces one), without emoji (WeChat drops them) or invisible format
    characters, and at most ``limit`` characters, ending in "…" when cut. Characters are counted as UTF-16
    units, the strictest count WeChat could use (one outside the BMP counts twice), and a cut never leaves a
    combining mark without its letter. May be empty (a name of emoji only): the caller picks another."""
    kept: list[str] = []
    for c in text:
        category = unicodedata.category(c)
        if c.isspace() or category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category[0] != "C" and not _emoji(c):  # Cf, Cs, Co, Cn: invisible, halves, private, unknown
            kept.append(c)
    line = " ".join("".join(kept).split())
    if _units(line) <= limit:
        return line
    room, used, n = limit - len(ELLIPSIS), 0, 0
    while n < len(line) and used + _units(line[n]) <= room:
        used += _units(line[n])
        n += 1
    while n > 0 and unicodedata.category(line[n])[0] == "M":  # a mark belongs to the letter before: both go
        n -= 1
    return line[:n].rstrip() + ELLIPSIS


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _emoji(c: str) -> bool:
    """Emoji and pictographs (the symbol blocks where they live, their skin tones, flags and presentation
    selectors): WeChat removes them from template fields, so they would only waste the 20 characters."""
    cp = ord(c)
    if cp in _VARIATION_SELECTORS or 0x1F000 <= cp <= 0x1FAFF:
        return True
    return 0x2190 <= cp <= 0x2BFF and unicodedata.category(c) == "So"


def template_time(at: datetime, timezone: ZoneInfo) -> str:
    """A moment in the shop's time zone as WeChat's ``time`` fields show one: ``2026年11月25日 14:00``."""
    local = at.astimezone(timezone)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


async def reminder_fields(
    out: WxOutgoing, m: MembershipReminder, template: ReminderTemplate
) -> dict[str, str] | None:
    """The template's fields for a membership reminder, read as it is now; None when there is nothing to
    remind of any more (as for the text: refunded, renewed, a days-left stage after the end)."""
    due = await due_membership(out, m)
    if due is None:
        return None
    # a name of emoji only would leave the field empty, which WeChat refuses: the order's reference then
    product = template_value(due.product_name) or template_value(due.order_ref)
    fields = {
        template.product: product,
        template.ends: template_value(template_time(due.ends_at, out.services.ctx.config.timezone)),
    }
    if template.note is not None:
        note = "wx-tpl-reminder-expired" if m.stage == EXPIRED else "wx-tpl-reminder-soon"
        fields[template.note] = template_value(out.tr(note))
    return fields


class Templates:
    """The messages that go as a template message when the buyer's window is closed (the sender asks
    ``covers``, then ``send``)."""

    def __init__(self, api: TemplateApi, reminder: ReminderTemplate) -> None:
        self.api, self.reminder = api, reminder

    def covers(self, message: Message) -> bool:
        return isinstance(message, MembershipReminder)

    async def send(self, out: WxOutgoing) -> bool:
        """Send ``out``'s message as a template message; False when there was nothing to say any more
        (nothing sent). Raises what the API raised."""
        message = out.item.message
        assert isinstance(message, MembershipReminder)
        fields = await reminder_fields(out, message, self.reminder)
        if fields is None:
            return False
        await self.api.send_template(out.item.external_id, self.reminder.template_id, fields)
        return True
