"""Users are channel identities: (channel, external id)."""

from __future__ import annotations

import re

from core.context import Context
from core.errors import InvalidInput, NotFound
from core.models import User
from core.services.transient import retry_transient

_PHONE_RE = re.compile(r"^\+?[0-9]{5,20}$")


class UserService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def ensure(
        self, channel: str, external_id: str, *, language: str | None = None, referrer_id: int | None = None
    ) -> User:
        """The user for this identity, created on first sight. Safe to call concurrently. Every update
        needs its user first (a payment needs its payer), so a briefly locked database is retried."""

        async def find_or_create() -> User:
            async with self.ctx.uow(write=False) as uow:
                found = await uow.repo.users.get_by_external(channel, external_id)
            if found is not None:
                return found
            async with self.ctx.uow() as uow:
                await uow.repo.users.insert_if_absent(
                    channel, external_id, language, referrer_id, self.ctx.clock.now()
                )
                user = await uow.repo.users.get_by_external(channel, external_id)
                await uow.commit()
            assert user is not None
            return user

        return await retry_transient(find_or_create, f"finding user {channel}/{external_id}")

    async def get(self, user_id: int) -> User:
        async with self.ctx.uow(write=False) as uow:
            user = await uow.repo.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    async def set_language(self, user_id: int, language: str) -> None:
        """The user picked a language (``/language``): it sticks, whatever their app's language."""
        await self._update(user_id, language=language[:16], language_chosen=True)

    async def follow_language(self, user_id: int, language: str) -> bool:
        """The channel reports the user's current app language: a user who never picked one follows it,
        so messages sent later (deliveries, refunds) use it too. True if the stored language changed."""
        async with self.ctx.uow() as uow:
            user = await uow.repo.users.get(user_id, lock=True)
            if user is None or user.language_chosen or user.language == language[:16]:
                return False
            await uow.repo.users.update(user_id, language=language[:16])
            await uow.commit()
        return True

    async def set_phone(self, user_id: int, phone: str) -> None:
        phone = re.sub(r"[\s()-]", "", phone)
        if not _PHONE_RE.match(phone):
            raise InvalidInput("not a phone number", field="phone")
        await self._update(user_id, phone=phone)

    async def set_referrer_once(self, user_id: int, referrer_id: int) -> bool:
        """Record who referred a user, once, and never the user themself. True if recorded."""
        if referrer_id == user_id:
            return False
        async with self.ctx.uow() as uow:
            referrer = await uow.repo.users.get(referrer_id)
            user = await uow.repo.users.get(user_id, lock=True)
            if referrer is None or user is None or user.referrer_id is not None:
                return False
            await uow.repo.users.update(user_id, referrer_id=referrer_id)
            await uow.commit()
        return True

    async def set_blocklisted(self, user_id: int, blocklisted: bool) -> None:
        await self._update(user_id, blocklisted=blocklisted)

    async def set_bot_blocked(self, user_id: int, blocked: bool) -> None:
        await self._update(user_id, bot_blocked=blocked)

    async def _update(self, user_id: int, **values: object) -> None:
        async with self.ctx.uow() as uow:
            if await uow.repo.users.update(user_id, **values) != 1:
                raise NotFound(f"no user {user_id}")
            await uow.commit()
