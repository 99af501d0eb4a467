"""The shop's staff (admins and operators) and operators' scopes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from core import tables as t
from core.repositories._rows import dialect_insert
from core.roles import Grant, Role

SCOPE_PRODUCT = "product"
SCOPE_CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    channel: str
    external_id: str
    grant: Grant
    added_by: str
    added_at: datetime


class StaffRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def all(self) -> list[StaffMember]:
        """Every staff member with their scope, oldest first (a small table: read whole)."""
        s, sc = t.staff, t.staff_scopes
        scopes: dict[int, tuple[set[int], set[int]]] = {}
        for staff_id, kind, target in self.conn.execute(select(sc.c.staff_id, sc.c.kind, sc.c.target_id)):
            products, categories = scopes.setdefault(staff_id, (set(), set()))
            (products if kind == SCOPE_PRODUCT else categories).add(target)
        out = []
        for r in self.conn.execute(select(s).order_by(s.c.id)):
            products, categories = scopes.get(r.id, (set(), set()))
            grant = Grant(Role(r.role), frozenset(products), frozenset(categories))
            out.append(StaffMember(r.id, r.channel, r.external_id, grant, r.added_by, r.added_at))
        return out

    def find(self, channel: str, external_id: str) -> int | None:
        s = t.staff
        q = select(s.c.id).where(s.c.channel == channel, s.c.external_id == external_id)
        return self.conn.execute(q).scalar()

    def put(self, channel: str, external_id: str, role: Role, added_by: str, now: datetime) -> int:
        """The member's row with ``role`` (made, or its role changed); their id."""
        s = t.staff
        stmt = dialect_insert(self.dialect, s).values(
            channel=channel, external_id=external_id, role=role.value, added_by=added_by, added_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "external_id"], set_={"role": role.value}
        )
        return int(self.conn.execute(stmt.returning(s.c.id)).scalar_one())

    def set_scope(self, staff_id: int, products: Iterable[int], categories: Iterable[int]) -> None:
        sc = t.staff_scopes
        self.conn.execute(delete(sc).where(sc.c.staff_id == staff_id))
        rows = [{"staff_id": staff_id, "kind": SCOPE_PRODUCT, "target_id": p} for p in sorted(set(products))]
        rows += [
            {"staff_id": staff_id, "kind": SCOPE_CATEGORY, "target_id": c} for c in sorted(set(categories))
        ]
        if rows:
            self.conn.execute(insert(sc), rows)

    def remove(self, staff_id: int) -> None:
        self.conn.execute(delete(t.staff_scopes).where(t.staff_scopes.c.staff_id == staff_id))
        self.conn.execute(delete(t.staff).where(t.staff.c.id == staff_id))
