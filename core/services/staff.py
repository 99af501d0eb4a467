"""The shop's staff: who is an admin or an operator (and of which products), kept in the database and
known to every process within a second of a change.

Owners are not stored: a channel knows its owners from the shop's settings (``ADMIN_IDS``) and says so when
it asks for a grant. Staff changes bump the ``staff_version`` cursor in their own transaction; a process
re-reads the (small) staff table when that version moved, checking it at most every ``poll`` seconds, and
at once after a change it made itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import datetime

from core.admins import OWNER_CHANNEL
from core.context import Context, UnitOfWork
from core.errors import CategoryNotFound, InvalidInput, OwnerIsNotStaff, ProductNotFound
from core.models import Product
from core.repositories.staff import StaffMember
from core.roles import GRANTABLE, Grant, Power, Role

STAFF_VERSION = "staff_version"
MAX_SCOPE = 50  # products plus categories in one operator's scope


class StaffService:
    def __init__(
        self, ctx: Context, *, poll: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx = ctx
        self.poll, self._clock = poll, clock
        self._grants: dict[tuple[str, str], Grant] = {}
        self._version = -1
        self._checked_at = float("-inf")
        # Moved by every change made here: a read that began before one may hold what is no longer so.
        self._generation = 0

    async def still_reads(
        self, channel: str, external_id: str, power: Power, product: Product | None = None
    ) -> bool:
        """Whether the recipient of a staff message queued earlier still holds ``power`` now (and, for a
        product's message, a scope covering that product): an owner always does; a revoked or narrowed
        admin no longer reads what their old grant entitled them to."""
        owner = channel == OWNER_CHANNEL and external_id in self.ctx.config.owner_ids
        grant = await self.grant_for(channel, external_id, owner=owner)
        if grant is None or not grant.may(power):
            return False
        return product is None or grant.covers(product.id, product.category_id)

    async def grant_for(self, channel: str, external_id: str, *, owner: bool) -> Grant | None:
        """What this person may do in the back office: an owner's grant, their staff grant, or None."""
        if owner:
            return Grant(Role.OWNER)
        if self._clock() - self._checked_at >= self.poll:
            generation = self._generation
            version, grants = await self.ctx.read(_directory, self._version)
            if generation == self._generation:  # else read again next time: a change came meanwhile
                self._checked_at = self._clock()
                if grants is not None:
                    self._version, self._grants = version, grants
        return self._grants.get((channel, external_id))

    async def members(self) -> list[StaffMember]:
        return await self.ctx.read(_members)

    async def put(
        self,
        channel: str,
        external_id: str,
        role: Role,
        *,
        actor: str,
        owners: Collection[str],
        products: Collection[int] = (),
        categories: Collection[int] = (),
    ) -> StaffMember:
        """Make someone an admin or an operator (scoped to ``products`` / ``categories``; none: all), or
        change their role and scope. Audited."""
        if external_id in owners:
            raise OwnerIsNotStaff(who=external_id)
        if role not in GRANTABLE:
            raise InvalidInput("staff are admins or operators")
        if role is not Role.OPERATOR and (products or categories):
            raise InvalidInput("only operators have a scope")
        if len(set(products)) + len(set(categories)) > MAX_SCOPE:
            raise InvalidInput(f"a scope lists at most {MAX_SCOPE} products and categories")
        member = await self.ctx.write(
            _put, channel, external_id, role, actor, set(products), set(categories), self.ctx.clock.now()
        )
        self._changed()
        return member

    async def remove(self, channel: str, external_id: str, *, actor: str) -> bool:
        """Take someone off the staff (False: they were not on it). Audited."""
        removed = await self.ctx.write(_remove, channel, external_id, actor, self.ctx.clock.now())
        self._changed()
        return removed

    def _changed(self) -> None:
        self._generation += 1
        self._checked_at = float("-inf")

    async def record_refusal(self, channel: str, external_id: str, what: str) -> None:
        """An admin command, button or upload refused to someone without the right: audited (no alert)."""
        await self.ctx.write(_refused, channel, external_id, what[:64], self.ctx.clock.now())


def _directory(uow: UnitOfWork, known: int) -> tuple[int, dict[tuple[str, str], Grant] | None]:
    version = uow.repo.cursors.get(STAFF_VERSION) or 0
    if version == known:
        return version, None
    return version, {(m.channel, m.external_id): m.grant for m in uow.repo.staff.all()}


def _members(uow: UnitOfWork) -> list[StaffMember]:
    return uow.repo.staff.all()


def _put(
    uow: UnitOfWork,
    channel: str,
    external_id: str,
    role: Role,
    actor: str,
    products: set[int],
    categories: set[int],
    now: datetime,
) -> StaffMember:
    r = uow.repo
    for pid in sorted(products):
        if r.catalog.product(pid) is None:
            raise ProductNotFound(product_id=pid)
    for cid in sorted(categories):
        if not r.catalog.category_exists(cid):
            raise CategoryNotFound(category_id=cid)
    staff_id = r.staff.put(channel, external_id, role, actor, now)
    r.staff.set_scope(staff_id, products, categories)
    r.cursors.bump(STAFF_VERSION, now)
    r.audit.add(
        now,
        actor,
        "staff_set",
        who=f"{channel}:{external_id}",
        role=role.value,
        products=sorted(products),
        categories=sorted(categories),
    )
    member = next(m for m in r.staff.all() if m.id == staff_id)
    uow.commit()
    return member


def _remove(uow: UnitOfWork, channel: str, external_id: str, actor: str, now: datetime) -> bool:
    r = uow.repo
    staff_id = r.staff.find(channel, external_id)
    if staff_id is None:
        return False
    r.staff.remove(staff_id)
    r.cursors.bump(STAFF_VERSION, now)
    r.audit.add(now, actor, "staff_removed", who=f"{channel}:{external_id}")
    uow.commit()
    return True


def _refused(uow: UnitOfWork, channel: str, external_id: str, what: str, now: datetime) -> None:
    uow.repo.audit.add(now, f"{channel}:{external_id}", "admin_refused", what=what)
    uow.commit()
