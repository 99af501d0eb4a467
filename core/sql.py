"""Prebuilt statements: compiled once per dialect (and set of parameters), then executed straight on the
driver's cursor of the unit of work's connection.

SQLAlchemy's per-execution machinery (cache-key lookup, execution context, result metadata) costs as much
as SQLite running the statement; on the purchase path, which holds SQLite's write lock while it runs, that
halves what the shop can sell. A ``Prebuilt`` keeps what SQLAlchemy is good at (the statement written once
for both dialects, its compiled SQL, the types' bind and result processing: UTC datetimes, booleans, JSON)
and does the execution itself: processed parameters in, processed rows out.

Only plain statements qualify (no expanding ``IN`` lists); anything else runs through
``Connection.execute`` as usual. Driver errors come out as SQLAlchemy's exceptions, like any other
statement's, and a connection the server dropped is invalidated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect


class Row(tuple[Any, ...]):
    """A result row: by position, by column name (``row.id``), or through ``_mapping`` by name or by
    the Column object it came from (for joined rows whose tables share column names)."""

    __slots__ = ()
    _names: ClassVar[dict[str, int]] = {}  # set on each statement's own subclass
    _objects: ClassVar[dict[Any, int]] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._names[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> _RowMapping:
        return _RowMapping(self)


class _RowMapping(Mapping[Any, Any]):
    __slots__ = ("_row",)

    def __init__(self, row: Row) -> None:
        self._row = row

    def __getitem__(self, key: Any) -> Any:
        names, objects = self._row._names, self._row._objects
        index = names[key] if isinstance(key, str) else objects[key]
        return self._row[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._row._names)

    def __len__(self) -> int:
        return len(self._row)


class Rows:
    """What a prebuilt statement returned: the parts of SQLAlchemy's Result the repositories use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def all(self) -> list[Row]:
        return self._rows

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Row:
        if len(self._rows) != 1:
            raise exc.NoResultFound("expected one row") if not self._rows else exc.MultipleResultsFound()
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> _Scalars:
        return _Scalars([r[0] for r in self._rows])

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


class _Scalars(list[Any]):
    def all(self) -> list[Any]:
        return list(self)

    def first(self) -> Any:
        return self[0] if self else None


class _Plan:
    """One statement compiled for one dialect and one set of parameter names."""

    __slots__ = ("_procs", "fixed", "names", "positional", "processors", "result", "row_type", "sql")

    def __init__(self, stmt: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        # An INSERT without RETURNING of its own gets no implicit "RETURNING id" nobody would read.
        plain_insert = getattr(stmt, "is_insert", False) and not stmt._returning
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=plain_insert)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a prebuilt statement cannot take expanding parameters")
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors: dict[str, Any] = dict(compiled._bind_processors)
        if dialect.name == "sqlite":  # the types' one-step conversions, where they have them
            for name, bind in compiled.binds.items():
                fast = getattr(bind.type, "sqlite_fast_bind", None)
                if fast is not None and name in processors:
                    processors[name] = fast
        given = set(keys)
        # What the statement itself holds (literal values), processed once; what each execution gives,
        # processed as it comes.
        self.fixed: dict[str, Any] = {
            name: processors[name](value) if name in processors and value is not None else value
            for name, value in compiled.construct_params(_check=False).items()
            if name not in given
        }
        self.processors: dict[str, Any] = {k: p for k, p in processors.items() if k in given}
        self.result: list[tuple[str, Any, Any]] | None = (
            [(c[0], c[2], c[3]) for c in compiled._result_columns] if compiled._result_columns else None
        )
        self.row_type: type[Row] | None = None
        self._procs: list[Any] = []

    def params(self, given: Mapping[str, Any]) -> Any:
        values = {**self.fixed, **given}
        for name, process in self.processors.items():
            value = values[name]
            if value is not None:
                values[name] = process(value)
        return tuple([values[n] for n in self.names]) if self.positional else values

    def rows(self, dialect: Dialect, cursor: Any, raw: list[tuple[Any, ...]]) -> list[Row]:
        if self.row_type is None:
            description = cursor.description  # read once: psycopg builds it anew on every access
            assert self.result is not None
            names: dict[str, int] = {}
            objects: dict[Any, int] = {}
            for i, (key, objs, _type) in enumerate(self.result):
                names.setdefault(key, i)
                for o in objs:
                    objects.setdefault(o, i)
            # The processors first: another thread seeing row_type set takes them as ready.
            self._procs = [
                (
                    typ.sqlite_fast_result
                    if dialect.name == "sqlite" and hasattr(typ, "sqlite_fast_result")
                    else typ._cached_result_processor(dialect, d[1])
                )
                for (_k, _o, typ), d in zip(self.result, description, strict=True)
            ]
            self.row_type = type("Row", (Row,), {"__slots__": (), "_names": names, "_objects": objects})
        procs, make = self._procs, self.row_type
        if not any(procs):
            return [make(r) for r in raw]
        return [
            make([p(v) if p is not None and v is not None else v for p, v in zip(procs, r, strict=True)])
            for r in raw
        ]


class Prebuilt:
    """A statement built once (a class attribute beside the repository method that runs it)."""

    __slots__ = ("_plans", "stmt")

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        key = (dialect.name, keys)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(self.stmt, dialect, keys)
        return plan


def run(conn: Connection, q: Prebuilt, params: Mapping[str, Any] | None = None) -> Rows:
    """Execute ``q`` on the unit of work's connection, in its transaction."""
    given = params or {}
    dialect = conn.dialect
    plan = q.plan(dialect, tuple(given))
    args = plan.params(given)
    cur = _cursor(conn)
    try:
        cur.execute(plan.sql, args)
        if plan.result is not None:
            raw = cur.fetchall()
            return Rows(plan.rows(dialect, cur, raw), cur.rowcount)
        return Rows([], cur.rowcount)
    except dialect.loaded_dbapi.Error as e:
        raise _translate(conn, plan.sql, args, e, cur) from e


def run_many(conn: Connection, q: Prebuilt, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``q`` once per parameter set (no results), in one driver call."""
    if not rows:
        return
    dialect = conn.dialect
    plan = q.plan(dialect, tuple(rows[0]))
    args = [plan.params(r) for r in rows]
    cur = _cursor(conn)
    try:
        if len(args) == 1:  # psycopg's executemany opens a pipeline: one row is cheaper as itself
            cur.execute(plan.sql, args[0])
        else:
            cur.executemany(plan.sql, args)
    except dialect.loaded_dbapi.Error as e:
        raise _translate(conn, plan.sql, args, e, cur) from e


def _cursor(conn: Connection) -> Any:
    """The driver cursor prebuilt statements run on, one per driver connection for good. A connection is
    used by one thread, one statement at a time, and every statement's rows are fetched before the next
    runs, so one cursor serves them all; psycopg builds a cursor, its adapters and its result state on
    every ``cursor()``. A connection opened anew (the old one dropped) gets a cursor of its own."""
    dbapi_conn: Any = conn.connection.dbapi_connection
    held: tuple[Any, Any] | None = getattr(conn, "_keyshop_cursor", None)
    if held is not None and held[0] is dbapi_conn:
        return held[1]
    cur = dbapi_conn.cursor()
    conn._keyshop_cursor = (dbapi_conn, cur)  # type: ignore[attr-defined]
    return cur


def _translate(conn: Connection, sql: str, args: Any, error: Exception, cursor: Any) -> Exception:
    """The driver's error as SQLAlchemy raises it (OperationalError, IntegrityError, ...); a dropped
    connection is invalidated so the thread opens a new one."""
    dialect = conn.dialect
    if dialect.is_disconnect(error, conn.connection.dbapi_connection, cursor):  # type: ignore[arg-type]
        conn.invalidate(error)
    return exc.DBAPIError.instance(sql, args, error, dialect.loaded_dbapi.Error)
