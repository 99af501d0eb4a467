"""Users are channel identities: (channel, external id)."""

from __future__ import annotations

import re
from datetime import datetime

from core.context import Context, UnitOfWork
from core.errors import InvalidInput, NotFound
from core.models import User, UserIdentity
from core.services.transient import retry_transient

_PHONE_RE = re.compile(r"^\+?[0-9]{5,20}$")


class UserService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def ensure(
        self,
        channel: str,
        external_id: str,
        *,
        language: str | None = None,
        referrer_id: int | None = None,
        username: str | None = None,
    ) -> User:
        """The user for this identity, created on first sight. Safe to call concurrently. Every update
        needs its user first (a payment needs its payer), so a briefly locked database is retried."""

        async def find_or_create() -> User:
            found = await self.ctx.read(_by_external, channel, external_id)
            if found is not None:
                return found
            return await self.ctx.write(
                _create, channel, external_id, language, referrer_id, self.ctx.clock.now(), username
            )

        return await retry_transient(find_or_create, f"finding user {channel}/{external_id}")

    async def find(self, channel: str, external_id: str) -> User | None:
        """The user for this identity, or None if they never did anything that needed a row (a read).
        Every update looks its user up first (a payment, its payer), so a database hiccup is retried."""
        return await retry_transient(
            lambda: self.ctx.read(_by_external, channel, external_id), f"finding user {channel}/{external_id}"
        )

    async def stored(self, who: User | UserIdentity) -> User:
        """``who`` as a stored user, created now if it was only an identity."""
        if isinstance(who, User):
            return who
        return await self.ensure(who.channel, who.external_id, language=who.language, username=who.username)

    async def find_by_username(self, channel: str, username: str) -> User | None:
        """Who last showed this handle (without "@", any case) on the channel, or None."""
        return await self.ctx.read(_by_username, channel, username.lower())

    async def follow_username(self, user_id: int, username: str | None) -> None:
        """The user's handle as the channel shows it now (None: they have none). Whoever else still
        carries it in the shop (they gave it up, this user took it) loses it in the same transaction."""
        await self.ctx.write(_follow_username, user_id, username.lower() if username else None)

    async def get(self, user_id: int) -> User:
        user = await self.ctx.read(_get, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    async def set_language(self, user_id: int, language: str) -> None:
        """The user picked a language (``/language``): it sticks, whatever their app's language."""
        await self._update(user_id, language=language[:16], language_chosen=True)

    async def follow_language(self, user_id: int, language: str) -> bool:
        """The channel reports the user's current app language: a user who never picked one follows it,
        so messages sent later (deliveries, refunds) use it too. True if the stored language changed."""
        return await self.ctx.write(_follow_language, user_id, language[:16])

    async def set_phone(self, user_id: int, phone: str) -> None:
        phone = re.sub(r"[\s()-]", "", phone)
        if not _PHONE_RE.match(phone):
            raise InvalidInput("not a phone number", field="phone")
        await self._update(user_id, phone=phone)

    async def set_blocklisted(self, user_id: int, blocklisted: bool) -> None:
        await self._update(user_id, blocklisted=blocklisted)

    async def set_bot_blocked(self, user_id: int, blocked: bool) -> None:
        await self._update(user_id, bot_blocked=blocked)

    async def _update(self, user_id: int, **values: object) -> None:
        await self.ctx.write(_update, user_id, values)


# ---------------------------------------------------------------- transactions (on the database thread)


def _by_external(uow: UnitOfWork, channel: str, external_id: str) -> User | None:
    return uow.repo.users.get_by_external(channel, external_id)


def _by_username(uow: UnitOfWork, channel: str, username: str) -> User | None:
    return uow.repo.users.get_by_username(channel, username)


def _follow_username(uow: UnitOfWork, user_id: int, username: str | None) -> None:
    r = uow.repo
    user = r.users.get(user_id, lock=True)
    if user is None or user.username == username:
        return
    if username is not None:
        r.users.release_username(user.channel, username, keep=user_id)
    r.users.update(user_id, username=username)
    uow.commit()


def _get(uow: UnitOfWork, user_id: int) -> User | None:
    return uow.repo.users.get(user_id)


def _create(
    uow: UnitOfWork,
    channel: str,
    external_id: str,
    language: str | None,
    referrer_id: int | None,
    now: datetime,
    username: str | None = None,
) -> User:
    uow.repo.users.insert_if_absent(channel, external_id, language, referrer_id, now, username)
    user = uow.repo.users.get_by_external(channel, external_id)
    uow.commit()
    assert user is not None
    return user


def _follow_language(uow: UnitOfWork, user_id: int, language: str) -> bool:
    user = uow.repo.users.get(user_id, lock=True)
    if user is None or user.language_chosen or user.language == language:
        return False
    uow.repo.users.update(user_id, language=language)
    uow.commit()
    return True


def _update(uow: UnitOfWork, user_id: int, values: dict[str, object]) -> None:
    if uow.repo.users.update(user_id, **values) != 1:
        raise NotFound(f"no user {user_id}")
    uow.commit()
