"""The shop's admins as the recipients of outbox messages: the owners (``ADMIN_IDS``, not stored:
``ShopConfig.owner_ids``) and the staff (``staff`` table) holding a given power.

Run inside the transaction that writes the messages: each admin gets their own outbox row, addressed to
their ``users`` row, so the channel renders it in their language. The row is made here when they have
none (an owner set in the settings, staff added by id, who never did anything that needed one); its
language is then unknown (the channel's default) until they next write to the bot. An admin who blocked
the bot is left out, as a buyer would be (the channel marks them again when they write). An owner who is
also on the staff (``ADMIN_IDS`` changed since) is one recipient, with the owner's grant."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from core.roles import Grant, Power, Role
from core.uow import UnitOfWork

OWNER_CHANNEL = "telegram"  # ADMIN_IDS are Telegram user ids


@dataclass(frozen=True, slots=True)
class Recipient:
    """An admin to tell something, and what they may do (an operator's scope narrows what they hear)."""

    user_id: int
    grant: Grant


def admin_recipients(
    uow: UnitOfWork, owners: Collection[str], power: Power, now: datetime
) -> list[Recipient]:
    """The owners, then the staff whose role holds ``power``, oldest first; each once, none who blocked
    the bot. Their ``users`` rows are made in this transaction where missing."""
    r = uow.repo
    wanted: list[tuple[str, str, Grant]] = [(OWNER_CHANNEL, o, Grant(Role.OWNER)) for o in owners]
    wanted += [(m.channel, m.external_id, m.grant) for m in r.staff.all() if m.grant.may(power)]
    out: list[Recipient] = []
    seen: set[int] = set()
    for channel, external_id, grant in wanted:
        user = r.users.get_by_external(channel, external_id)
        if user is None:
            r.users.insert_if_absent(channel, external_id, None, None, now)
            user = r.users.get_by_external(channel, external_id)
        if user is None or user.id in seen or user.bot_blocked:
            continue
        seen.add(user.id)
        out.append(Recipient(user.id, grant))
    return out
