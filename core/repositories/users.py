"""Users of every channel."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, select, update

from core import tables as t
from core.models import Product, User
from core.repositories._rows import dialect_insert, part, to_product, to_user
from core.sql import Prebuilt, run


class UserRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_USER = Prebuilt(select(t.users).where(t.users.c.id == bindparam("b_id")))
    _Q_USER_LOCK = Prebuilt(_Q_USER.stmt.with_for_update())

    def get(self, user_id: int, *, lock: bool = False) -> User | None:
        r = (run(self.conn, self._Q_USER_LOCK if lock else self._Q_USER, {"b_id": user_id})).first()
        return to_user(r) if r else None

    def many(self, user_ids: Iterable[int]) -> list[User]:
        q = select(t.users).where(t.users.c.id.in_(list(user_ids)))
        return [to_user(r) for r in self.conn.execute(q).all()]

    # Checkout: the buyer (locked, so one buyer's checkouts queue behind each other) and the product, in
    # one trip.
    _Q_BUYER_AND_PRODUCT = Prebuilt(
        select(t.users, t.products)
        .select_from(t.users.outerjoin(t.products, t.products.c.id == bindparam("b_pid")))
        .where(t.users.c.id == bindparam("b_uid"))
        .with_for_update(of=t.users)
    )

    def with_product(self, user_id: int, product_id: int) -> tuple[User | None, Product | None]:
        """The buyer, locked for this transaction, and the product (None for either that does not exist)."""
        r = (run(self.conn, self._Q_BUYER_AND_PRODUCT, {"b_uid": user_id, "b_pid": product_id})).first()
        if r is None:
            return None, None
        product = part(r, t.products)
        return to_user(part(r, t.users)), (to_product(product) if product.id is not None else None)

    _Q_BY_EXTERNAL = Prebuilt(
        select(t.users).where(
            t.users.c.channel == bindparam("b_channel"), t.users.c.external_id == bindparam("b_ext")
        )
    )

    def get_by_external(self, channel: str, external_id: str) -> User | None:
        r = run(self.conn, self._Q_BY_EXTERNAL, {"b_channel": channel, "b_ext": external_id}).first()
        return to_user(r) if r else None

    _Q_USER_INSERT_ONCE: ClassVar[dict[str, Prebuilt]] = {
        d: Prebuilt(
            dialect_insert(d, t.users).on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )
        for d in ("sqlite", "postgresql")
    }

    def insert_if_absent(
        self,
        channel: str,
        external_id: str,
        language: str | None,
        referrer_id: int | None,
        now: datetime,
        username: str | None = None,
    ) -> None:
        values = _new_user(channel, external_id, language, referrer_id, now, username)
        run(self.conn, self._Q_USER_INSERT_ONCE[self.dialect], values)

    def insert_new(
        self,
        channel: str,
        external_id: str,
        language: str | None,
        referrer_id: int | None,
        now: datetime,
        username: str | None = None,
    ) -> int | None:
        """The new user's id, or None when the identity has a row already (this transaction did not make
        it: a concurrent one waits for the other to end, then finds it taken)."""
        values = _new_user(channel, external_id, language, referrer_id, now, username)
        stmt = (
            dialect_insert(self.dialect, t.users)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
            .returning(t.users.c.id)
        )
        return self.conn.execute(stmt).scalar()

    def get_by_username(self, channel: str, username: str) -> User | None:
        """Who last showed this handle on the channel (a handle changes hands: the newest row that
        still carries it; the previous holder's row is corrected at their next update)."""
        q = (
            select(t.users)
            .where(t.users.c.channel == channel, t.users.c.username == username.lower())
            .order_by(t.users.c.id.desc())
            .limit(1)
        )
        r = self.conn.execute(q).first()
        return to_user(r) if r else None

    def release_username(self, channel: str, username: str, *, keep: int) -> None:
        """No other user of the channel carries this handle any more."""
        self.conn.execute(
            update(t.users)
            .where(t.users.c.channel == channel, t.users.c.username == username, t.users.c.id != keep)
            .values(username=None)
        )

    def update(self, user_id: int, **values: Any) -> int:
        res = self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(**values))
        return res.rowcount


def _new_user(
    channel: str,
    external_id: str,
    language: str | None,
    referrer_id: int | None,
    now: datetime,
    username: str | None,
) -> dict[str, object]:
    """The row of a user seen for the first time."""
    return {
        "channel": channel,
        "external_id": external_id,
        "language": language,
        "referrer_id": referrer_id,
        "created_at": now,
        "username": username,
    }
