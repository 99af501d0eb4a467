"""The ``/start`` payloads of the bot's deep links (``https://t.me/<bot>?start=<payload>``), made and parsed
in one place. Telegram allows up to 64 characters of ``A-Z a-z 0-9 _ -``.

- ``r<code>``: an invite link; ``<code>`` is the distributor's referral code (10 letters or digits).
- ``r<code>_p<product id>``: the same, opening that product's card (a shared product).

Anything else (an invoice's ``order-<REF>``, an old or forged link) is a plain /start. Parsing is strict:
a product id is ASCII digits without a leading zero and fits a BIGINT."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.services.referrals import CODE_LENGTH
from handlers.telegram.ui.callbacks import MAX_ID

PAYLOAD_MAX = 64
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INVITE = re.compile(rf"r([A-Za-z0-9]{{{CODE_LENGTH}}})(?:_p([1-9][0-9]{{0,18}}))?")


@dataclass(frozen=True, slots=True)
class StartLink:
    code: str
    product_id: int | None = None


def parse_start(payload: str | None) -> StartLink | None:
    """The invite a /start payload carries, or None for anything else."""
    if not payload or not _PAYLOAD.fullmatch(payload):
        return None
    m = _INVITE.fullmatch(payload)
    if m is None:
        return None
    product = int(m.group(2)) if m.group(2) else None
    if product is not None and product > MAX_ID:
        return None
    return StartLink(m.group(1), product)


def start_payload(link: StartLink) -> str:
    payload = f"r{link.code}" + (f"_p{link.product_id}" if link.product_id is not None else "")
    assert len(payload) <= PAYLOAD_MAX and _PAYLOAD.fullmatch(payload)
    return payload


def deep_link(bot_username: str, link: StartLink) -> str:
    return f"https://t.me/{bot_username}?start={start_payload(link)}"
