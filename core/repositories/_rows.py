"""What every repository shares: the dialect's INSERT (for ON CONFLICT) and turning rows into dataclasses.

Rows never leave a repository; these build the dataclasses they return instead."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite

from core.models import DeliveryKind, Order, OrderStatus, Product, User

_T = TypeVar("_T")


def dialect_insert(dialect: str, table: Any) -> Any:
    """INSERT with the dialect's ``on_conflict_do_*``."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class _Part:
    """One table's columns within a prebuilt statement's joined row (see ``part``)."""

    __slots__ = ("row", "table")

    def __init__(self, row: Any, table: Any) -> None:
        self.row, self.table = row, table

    def __getattr__(self, name: str) -> Any:
        try:
            column = self.table.c[name]
        except KeyError:
            raise AttributeError(name) from None
        return self.row[self.row._objects[column]]


def part(row: Any, table: Any) -> Any:
    """The columns of one table out of a joined row, as the mappers below read them."""
    if getattr(row, "_objects", None) is not None:  # a prebuilt statement's row (core.sql): by position
        return _Part(row, table)
    m = row._mapping
    return SimpleNamespace(**{c.name: m[c] for c in table.c})


_FIELDS: dict[type, tuple[str, ...]] = {}
# (dataclass, row type, table or None, conversions) -> the row positions of the fields, and which to convert
_PLANS: dict[tuple[Any, ...], tuple[tuple[int, ...], tuple[tuple[int, Any], ...]]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return names


def to_dataclass(cls: type[_T], r: Any, **convert: Any) -> _T:
    """A dataclass from a row (or ``part``): same field names; ``convert`` maps a field to the type that
    rebuilds it (enums).

    A prebuilt statement's row (core.sql) is read by position: which position holds which field is worked
    out once per statement, dataclass and table, as it is the same for every row."""
    table = None
    if isinstance(r, _Part):
        r, table = r.row, r.table
    elif getattr(r, "_names", None) is None:  # a SQLAlchemy row or a namespace: by attribute
        values = {n: getattr(r, n) for n in _fields(cls)}
        for name, typ in convert.items():
            values[name] = typ(values[name])
        return cls(**values)
    key = (cls, type(r), table, *convert.items())
    plan = _PLANS.get(key)
    if plan is None:
        names = _fields(cls)
        if table is None:
            positions = tuple(r._names[n] for n in names)
        else:
            positions = tuple(r._objects[table.c[n]] for n in names)
        plan = _PLANS[key] = (positions, tuple((names.index(n), typ) for n, typ in convert.items()))
    positions, conversions = plan
    values_ = [r[i] for i in positions]
    for i, typ in conversions:
        values_[i] = typ(values_[i])
    return cls(*values_)


def to_user(r: Any) -> User:
    return to_dataclass(User, r)


def to_product(r: Any) -> Product:
    return to_dataclass(Product, r, delivery_kind=DeliveryKind)


def to_order(r: Any) -> Order:
    return to_dataclass(Order, r, status=OrderStatus)
