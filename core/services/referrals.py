"""Referral attribution: each user's random referral code (their invite link), and who a new user came with.

A new user's first referrer is kept for good. Refused silently (logged at INFO, never an error): an unknown
code, a user whose row existed before the link (they already used the shop), a self-referral, a cycle (the
referrer's chain of referrers leads back to the user) and any later re-attribution. Every /start with a
known code counts as an *open*; a new user it attributed counts as a *start*."""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.context import Context, UnitOfWork
from core.models import User, UserIdentity
from core.repositories.referrals import ReferralCode

log = logging.getLogger(__name__)

CODE_LENGTH = 10
# letters and digits only: "_" and "-" stay free to separate parts of a link's payload
_ALPHABET = string.ascii_letters + string.digits
CODE_RE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
_CHAIN_MAX = 10_000  # referrer chains are acyclic by construction; this only bounds a corrupted one


def new_code() -> str:
    """A random referral code (~59 bits): URL-safe, unrelated to anyone's id."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


class Outcome(StrEnum):
    ATTRIBUTED = "attributed"
    UNKNOWN_CODE = "unknown code"
    SELF = "self-referral"
    ALREADY_REFERRED = "re-attribution"
    CYCLE = "cycle"
    EXISTING_USER = "existing user"


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a /start with a referral code did: ``user`` is the stored user (created now when attributed;
    None when the code is unknown and the identity has no row)."""

    outcome: Outcome
    user: User | None
    referrer_id: int | None = None

    @property
    def attributed(self) -> bool:
        return self.outcome is Outcome.ATTRIBUTED


class ReferralService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def invite(self, user_id: int) -> ReferralCode:
        """The user's referral code and its counts, made on first use."""
        found = await self.ctx.read(_of_user, user_id)
        if found is not None:
            return found
        return await self.ctx.write(_make_code, user_id, self.ctx.clock.now())

    async def arrive(self, who: User | UserIdentity, code: str) -> Arrival:
        """Someone opened an invite link with ``code``: count the open and attribute them if they are new."""
        if not CODE_RE.fullmatch(code):
            arrival = Arrival(Outcome.UNKNOWN_CODE, who if isinstance(who, User) else None)
        else:
            arrival = await self.ctx.write(_arrive, who, code, self.ctx.clock.now())
        if arrival.attributed:
            log.info("%s/%s attributed to user %s", who.channel, who.external_id, arrival.referrer_id)
        else:
            log.info("referral of %s/%s refused: %s", who.channel, who.external_id, arrival.outcome.value)
        return arrival


# ---------------------------------------------------------------- transactions (on the database thread)


def _of_user(uow: UnitOfWork, user_id: int) -> ReferralCode | None:
    return uow.repo.referrals.of_user(user_id)


def _make_code(uow: UnitOfWork, user_id: int, now: datetime) -> ReferralCode:
    r = uow.repo.referrals
    for _ in range(8):  # a clash of two random codes is rare; eight in a row is impossible in practice
        if r.insert_once(user_id, new_code(), now) or r.of_user(user_id) is not None:
            break
    made = r.of_user(user_id)
    if made is None:
        raise RuntimeError("no free referral code found")
    uow.commit()
    return made


def _arrive(uow: UnitOfWork, who: User | UserIdentity, code: str, now: datetime) -> Arrival:
    r = uow.repo
    owner = r.referrals.by_code(code)
    if owner is None:
        return Arrival(Outcome.UNKNOWN_CODE, who if isinstance(who, User) else None)
    referrer = owner.user_id
    r.referrals.count(code, opens=1)
    new_id = None
    if not isinstance(who, User):
        new_id = r.users.insert_new(who.channel, who.external_id, who.language, referrer, now, who.username)
    if new_id is not None:
        r.referrals.count(code, starts=1)
        user = r.users.get(new_id)
        uow.commit()
        return Arrival(Outcome.ATTRIBUTED, user, referrer)
    user = r.users.get_by_external(who.channel, who.external_id)
    assert user is not None  # it had a row, or insert_new found one
    outcome = _refusal(uow, user, referrer)
    uow.commit()  # the open is counted whatever the outcome
    return Arrival(outcome, user)


def _refusal(uow: UnitOfWork, user: User, referrer: int) -> Outcome:
    """Why an existing user is not attributed to ``referrer`` (the first rule that applies, for the log)."""
    if referrer == user.id:
        return Outcome.SELF
    if user.referrer_id is not None:
        return Outcome.ALREADY_REFERRED
    up: int | None = uow.repo.referrals.referrer_of(referrer)
    for _ in range(_CHAIN_MAX):
        if up is None:
            break
        if up == user.id:
            return Outcome.CYCLE
        up = uow.repo.referrals.referrer_of(up)
    return Outcome.EXISTING_USER
