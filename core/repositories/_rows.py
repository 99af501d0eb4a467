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


def part(row: Any, table: Any) -> Any:
    """The columns of one table out of a joined row, by attribute, as the mappers below read them."""
    objects = getattr(row, "_objects", None)
    if objects is not None:  # a prebuilt statement's row (core.sql): straight by position
        return SimpleNamespace(**{c.name: row[objects[c]] for c in table.c})
    m = row._mapping
    return SimpleNamespace(**{c.name: m[c] for c in table.c})


_FIELDS: dict[type, tuple[str, ...]] = {}


def to_dataclass(cls: type[_T], r: Any, **convert: Any) -> _T:
    """A dataclass from a row (or ``part``): same field names; ``convert`` maps a field to the type that
    rebuilds it (enums)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    index = getattr(r, "_names", None)
    # a prebuilt statement's row (core.sql) is read straight by position
    values = {n: r[index[n]] for n in names} if index is not None else {n: getattr(r, n) for n in names}
    for name, typ in convert.items():
        values[name] = typ(values[name])
    return cls(**values)


def to_user(r: Any) -> User:
    return to_dataclass(User, r)


def to_product(r: Any) -> Product:
    return to_dataclass(Product, r, delivery_kind=DeliveryKind)


def to_order(r: Any) -> Order:
    return to_dataclass(Order, r, status=OrderStatus)
