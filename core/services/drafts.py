"""Products drafted in a conversation (the admins' chat editor) and saved at once.

A conversation keeps its draft in the dispatcher's state, which may live in Redis: a shared key typed
into it is kept there only sealed (encrypted under the vault, bound to the draft's token). Saving is one
transaction, and idempotent: the product a draft became is recorded under the draft's token (a cursor
``product_draft:<token>``), so the same draft saved twice (a double tap, two bot instances) is one
product."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import datetime
from typing import Any

from core.context import Context, UnitOfWork
from core.errors import InvalidInput, ProductNotFound
from core.importer import MAX_KEY_CHARS
from core.models import Product
from core.services.catalog import (
    ProductDraft,
    apply_update,
    category_fields,
    insert_category,
    insert_product,
)
from core.services.stock import put_shared_key
from core.vault import mask, normalize_key

DRAFT_CURSOR = "product_draft:"
CATEGORY_DRAFT_CURSOR = "category_draft:"
_TOKEN = re.compile(r"[0-9a-f]{32}")


def new_token() -> str:
    """A fresh draft token (32 hex digits)."""
    return secrets.token_hex(16)


class DraftService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def seal_key(self, token: str, key: str) -> tuple[str, str]:
        """A shared key typed into a draft, normalized and checked like any key, as (sealed, masked): the
        sealed form is what the conversation keeps; the masked form is what an admin is shown."""
        _check_token(token)
        key = normalize_key(key)
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise InvalidInput(f"a key must be 1 to {MAX_KEY_CHARS} characters", field="key")
        blob = self.ctx.vault.encrypt(key, _aad(token))
        return base64.b64encode(blob).decode("ascii"), mask(key)

    def _open_key(self, token: str, sealed: str) -> str:
        try:
            blob = base64.b64decode(sealed.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise InvalidInput("not a sealed key", field="key") from None
        return self.ctx.vault.decrypt(blob, _aad(token))

    async def create_product(
        self, draft: ProductDraft, *, token: str, sealed_key: str | None = None, actor: str = "system"
    ) -> tuple[int, bool]:
        """Add the product a draft describes, with its shared key, in one transaction: (its id, whether
        this call created it; False: the draft was saved before, and that product's id is returned)."""
        _check_token(token)
        draft = draft.validate(self.ctx.config.currency, self.ctx.config.currency_exponent)
        key = self._open_key(token, sealed_key) if sealed_key is not None else None
        now = self.ctx.clock.now()
        pid, created = await self.ctx.write(self._create, draft, key, token, actor, now)
        if created:
            self.ctx.catalog.catalog_changed()
        return pid, created

    def _create(
        self, uow: UnitOfWork, draft: ProductDraft, key: str | None, token: str, actor: str, now: datetime
    ) -> tuple[int, bool]:
        r = uow.repo
        name = DRAFT_CURSOR + token
        if not r.cursors.create_once(name, now):
            return int(r.cursors.get(name) or 0), False
        pid = insert_product(uow, draft, actor, now)
        if key is not None:
            put_shared_key(uow, self.ctx.vault, pid, key, actor, now)
        r.cursors.put(name, pid, now)
        uow.commit()
        return pid, True

    async def create_category(
        self, name: str, description: str = "", position: int = 0, *, token: str, actor: str = "system"
    ) -> tuple[int, bool]:
        """``CatalogService.add_category``, once per draft ``token``: (its id, whether this call made it)."""
        _check_token(token)
        name, description, position = category_fields(name, description, position)
        now = self.ctx.clock.now()
        cid, created = await self.ctx.write(
            _create_category, (name, description, position), token, actor, now
        )
        if created:
            self.ctx.catalog.catalog_changed()
        return cid, created

    async def edit_product(
        self,
        product_id: int,
        changes: dict[str, Any],
        *,
        token: str,
        sealed_key: str | None = None,
        actor: str = "system",
    ) -> Product:
        """``CatalogService.update_product`` and a new shared key, in one transaction (both audited)."""
        _check_token(token)
        key = self._open_key(token, sealed_key) if sealed_key is not None else None
        now = self.ctx.clock.now()
        product = await self.ctx.write(self._edit, product_id, changes, key, actor, now)
        self.ctx.catalog.catalog_changed()
        return product

    def _edit(
        self,
        uow: UnitOfWork,
        product_id: int,
        changes: dict[str, Any],
        key: str | None,
        actor: str,
        now: datetime,
    ) -> Product:
        product = (
            apply_update(uow, self.ctx.config, product_id, actor, changes, now)
            if changes
            else uow.repo.catalog.product(product_id, lock=True)
        )
        if product is None:
            raise ProductNotFound(f"no product {product_id}", product_id=product_id)
        if key is not None:
            put_shared_key(uow, self.ctx.vault, product_id, key, actor, now)
        uow.commit()
        return product


def _create_category(
    uow: UnitOfWork, fields: tuple[str, str, int], token: str, actor: str, now: datetime
) -> tuple[int, bool]:
    r = uow.repo
    name = CATEGORY_DRAFT_CURSOR + token
    if not r.cursors.create_once(name, now):
        return int(r.cursors.get(name) or 0), False
    cid = insert_category(uow, *fields, actor, now)
    r.cursors.put(name, cid, now)
    uow.commit()
    return cid, True


def _check_token(token: str) -> None:
    if not _TOKEN.fullmatch(token):
        raise InvalidInput("a draft token is 32 hex digits", field="token")


def _aad(token: str) -> bytes:
    return b"keyshop/draft-key/v1|" + token.encode("ascii")
