"""Repositories return dataclasses, never rows: every public method's return annotation is checked."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import types
from collections.abc import Callable, Iterator
from typing import Any, Union, get_args, get_origin, get_type_hints

from sqlalchemy import Row, RowMapping
from sqlalchemy.engine import Result

import core.repositories
from core.repositories import Repositories

RAW = (Row, RowMapping, Result, types.SimpleNamespace)


def repository_classes() -> set[type]:
    """What ``UnitOfWork.repo`` holds, and every ``*Repo`` class of the package (aggregated or not)."""
    found = {cls for name, cls in get_type_hints(Repositories).items() if name != "conn"}
    for info in pkgutil.iter_modules(core.repositories.__path__):
        module = importlib.import_module(f"core.repositories.{info.name}")
        found |= {
            cls
            for name, cls in vars(module).items()
            if inspect.isclass(cls) and name.endswith("Repo") and cls.__module__ == module.__name__
        }
    return found


def public_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            yield name, fn


def _members(tp: Any) -> list[Any]:
    """The types a union stands for (``X | None`` is X), else the type itself."""
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)]
    return [tp]


def raw_parts(tp: Any) -> list[str]:
    """What in a return type is not a named shape: rows, namespaces, ``Any``, tuples of columns, mutable
    dataclasses. Empty when the type is fine."""
    if tp is Any:
        return ["Any"]
    origin = get_origin(tp)
    bare = origin or tp
    if inspect.isclass(bare) and issubclass(bare, RAW):
        return [getattr(bare, "__name__", repr(bare))]
    if dataclasses.is_dataclass(tp) and inspect.isclass(tp):
        return [] if tp.__dataclass_params__.frozen else [f"{tp.__name__} (not frozen)"]  # type: ignore[attr-defined]
    problems: list[str] = []
    args = get_args(tp)
    if bare is tuple:
        # A pair of domain objects is fine; a tuple of columns is a row by another name.
        items = [a for a in args if a is not Ellipsis]
        if not items or not all(
            dataclasses.is_dataclass(m) and inspect.isclass(m) for a in items for m in _members(a)
        ):
            problems.append(f"tuple of columns {tp}")
    for a in args:
        if a is not Ellipsis:
            problems += raw_parts(a)
    return problems


def shape_problems(classes: set[type]) -> list[str]:
    problems = []
    for cls in sorted(classes, key=lambda c: c.__name__):
        for name, fn in public_methods(cls):
            hints = get_type_hints(fn)
            if "return" not in hints:
                problems.append(f"{cls.__name__}.{name}: no return annotation")
                continue
            problems += [f"{cls.__name__}.{name} returns {p}" for p in raw_parts(hints["return"])]
    return problems


def test_every_repository_is_reachable_from_the_unit_of_work() -> None:
    aggregated = {cls for name, cls in get_type_hints(Repositories).items() if name != "conn"}
    assert repository_classes() == aggregated
    assert len(aggregated) == 28


def test_no_repository_method_returns_a_raw_row() -> None:
    assert shape_problems(repository_classes()) == []


# ---------------------------------------------------------------- the check itself catches raw shapes


@dataclasses.dataclass
class _Mutable:
    id: int


@dataclasses.dataclass(frozen=True)
class _Frozen:
    id: int


class _BadRepo:
    async def row(self) -> Row[Any] | None:
        raise NotImplementedError

    async def rows(self) -> list[Row[Any]]:
        raise NotImplementedError

    async def columns(self) -> list[tuple[int, str]]:
        raise NotImplementedError

    async def keyed_by_columns(self) -> dict[tuple[int, str], int]:
        raise NotImplementedError

    async def anything(self) -> Any:
        raise NotImplementedError

    async def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    async def namespace(self) -> types.SimpleNamespace:
        raise NotImplementedError

    async def mutable(self) -> list[_Mutable]:
        raise NotImplementedError

    async def bare_tuple(self) -> tuple:  # type: ignore[type-arg]
        raise NotImplementedError

    async def unannotated(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class _GoodRepo:
    async def one(self, x: Any) -> _Frozen | None:
        raise NotImplementedError

    async def many(self) -> list[_Frozen]:
        raise NotImplementedError

    async def pair(self) -> tuple[_Frozen, _Frozen | None] | None:
        raise NotImplementedError

    async def ids(self) -> list[int]:
        raise NotImplementedError

    async def counts(self) -> dict[int, int]:
        raise NotImplementedError

    async def nothing(self, **values: Any) -> None:
        raise NotImplementedError

    def _private(self) -> Row[Any]:
        raise NotImplementedError


def test_the_check_refuses_rows_columns_any_and_mutable_shapes() -> None:
    flagged = {p.split(" ", 1)[0].split(":")[0] for p in shape_problems({_BadRepo})}
    assert flagged == {f"_BadRepo.{name}" for name, _ in public_methods(_BadRepo)}


def test_the_check_accepts_dataclasses_scalars_and_pairs_of_dataclasses() -> None:
    assert shape_problems({_GoodRepo}) == []
