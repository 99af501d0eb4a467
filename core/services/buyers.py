"""The back office's buyers: one buyer's profile (orders, spend, phone, ban), and banning and unbanning.

A banned buyer (``users.blocklisted``) cannot check out, and a payment for an order they still hold is
refused and given back (``core.services.checkout``); the orders they have stay theirs to see. A ban is for
buyers: the shop's owners are never banned and staff are taken off the staff first."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from core.context import Context, UnitOfWork
from core.errors import BuyerNotFound, InvalidInput, NotBannable
from core.models import User
from core.repositories.desk import DeskLine, Scope
from core.vault import clean_text

RECENT = 5
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class BuyerProfile:
    user: User
    orders: int
    spent: dict[str, int]  # currency -> minor units, paid and delivered orders
    recent: list[DeskLine]


class BuyerDesk:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def profile(self, channel: str, external_id: str) -> BuyerProfile:
        return await self.ctx.read(_profile, channel, external_id)

    async def ban(
        self, channel: str, external_id: str, reason: str, *, actor: str, owners: Collection[str]
    ) -> bool:
        """Ban a buyer (a row is made for someone the shop has not met yet). False: already banned.
        Audited with the reason."""
        return await self._set(channel, external_id, True, reason, actor, owners)

    async def unban(
        self, channel: str, external_id: str, reason: str, *, actor: str, owners: Collection[str]
    ) -> bool:
        """Lift a ban. False: they were not banned. Audited with the reason."""
        return await self._set(channel, external_id, False, reason, actor, owners)

    async def _set(
        self,
        channel: str,
        external_id: str,
        banned: bool,
        reason: str,
        actor: str,
        owners: Collection[str],
    ) -> bool:
        reason = " ".join(clean_text(reason).split())
        if not 1 <= len(reason) <= MAX_REASON:
            raise InvalidInput(f"a reason of 1 to {MAX_REASON} characters is required", field="reason")
        if external_id in owners:
            raise NotBannable(who=external_id)
        now = self.ctx.clock.now()
        return await self.ctx.write(_set_ban, channel, external_id, banned, reason, actor, now)


def _profile(uow: UnitOfWork, channel: str, external_id: str) -> BuyerProfile:
    r = uow.repo
    user = r.users.get_by_external(channel, external_id)
    if user is None:
        raise BuyerNotFound(who=external_id)
    totals = r.desk.buyer_totals(user.id)
    return BuyerProfile(user, totals.orders, totals.spent, r.desk.by_buyer(user.id, Scope(), RECENT))


def _set_ban(
    uow: UnitOfWork, channel: str, external_id: str, banned: bool, reason: str, actor: str, now: datetime
) -> bool:
    r = uow.repo
    if r.staff.find(channel, external_id) is not None:
        raise NotBannable(who=external_id)
    if banned:
        r.users.insert_if_absent(channel, external_id, None, None, now)
    user = r.users.get_by_external(channel, external_id)
    if user is None:
        raise BuyerNotFound(who=external_id)
    user = r.users.get(user.id, lock=True)  # one ban or unban at a time per buyer
    assert user is not None
    if user.blocklisted is banned:
        return False
    r.users.update(user.id, blocklisted=banned)
    r.audit.add(
        now,
        actor,
        "user_banned" if banned else "user_unbanned",
        user_id=user.id,
        who=f"{channel}:{external_id}",
        reason=reason,
    )
    uow.commit()
    return True
