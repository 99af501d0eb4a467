"""Parallel test workers (pytest-xdist): each worker gets its own PostgreSQL database and Redis database.

The PostgreSQL tests drop and recreate the ``public`` schema of ``TEST_DATABASE_URL`` and the Redis tests
flush the database of ``TEST_REDIS_URL``, so two workers sharing them would wipe each other's data. Before
any test module is imported (they read both variables at import), :func:`isolate` rewrites the two
variables of worker ``gwN``: the database ``<name>_gwN`` on the same server (created when missing) and the
Redis database ``<db> - N`` (wrapping below 0 within Redis's 16; a 17th worker is refused, and
tests/conftest.py runs at most 16). Outside xdist, or on the controller,
nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import re
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16
PG_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts longer names


def worker_number(worker: str | None) -> int | None:
    """``gw3`` -> 3; ``None`` (not an xdist worker) or anything else -> ``None``."""
    m = re.fullmatch(r"gw(\d+)", worker or "")
    return int(m.group(1)) if m else None


def postgres_url_for(url: str, n: int) -> str:
    """The same server, the database ``<name>_gwN``."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_gw{n}"
    if len(name.encode()) > PG_NAME_BYTES:  # PostgreSQL would cut it: two workers, one database
        raise ValueError(f"TEST_DATABASE_URL: database name {name!r} is over {PG_NAME_BYTES} bytes")
    return urlunsplit(parts._replace(path=f"/{name}"))


def redis_url_for(url: str, n: int) -> str:
    """The same server, the database ``(<db> - N) mod 16`` (``<db>`` is 0 when the URL names none); no
    worker past the 16th, which would share another's."""
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    base = int(path) if path.isdigit() else 0
    if n >= REDIS_DATABASES:  # it would wrap onto worker gw(N - 16)'s database, each flushing the other's
        raise ValueError(f"worker gw{n}: Redis has {REDIS_DATABASES} databases, one a worker; use fewer")
    return urlunsplit(parts._replace(path=f"/{(base - n) % REDIS_DATABASES}"))


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    url = re.sub(r"^postgresql\+\w+://", "postgresql://", admin_url)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another run created it meanwhile
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def isolate(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Point this worker's TEST_DATABASE_URL and TEST_REDIS_URL at its own databases."""
    n = worker_number(environ.get("PYTEST_XDIST_WORKER"))
    if n is None:
        return
    pg = environ.get("TEST_DATABASE_URL")
    if pg:
        mine = postgres_url_for(pg, n)
        _ensure_database(pg, urlsplit(mine).path.lstrip("/"))
        environ["TEST_DATABASE_URL"] = mine
    redis = environ.get("TEST_REDIS_URL")
    if redis:
        environ["TEST_REDIS_URL"] = redis_url_for(redis, n)
