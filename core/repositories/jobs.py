"""The scheduler's bookkeeping: each job's runs and failures and how its last run went (``job_runs``),
written by whichever scheduler process ran it and read by ``keyshop jobs list`` and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from core import tables as t
from core.repositories._rows import dialect_insert, to_dataclass


@dataclass(frozen=True, slots=True)
class JobRun:
    name: str
    runs: int
    failures: int
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_ok: bool | None
    last_error: str | None
    last_result: int | None


class JobRunRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def started(self, name: str, now: datetime) -> None:
        j = t.job_runs
        self.conn.execute(
            dialect_insert(self.dialect, j).values(name=name, runs=0, failures=0).on_conflict_do_nothing()
        )
        self.conn.execute(update(j).where(j.c.name == name).values(last_started_at=now))

    def finished(self, name: str, now: datetime, *, ok: bool, result: int | None, error: str | None) -> None:
        """Count a run that ended (a failure too). ``started`` wrote the row."""
        j = t.job_runs
        self.conn.execute(
            update(j)
            .where(j.c.name == name)
            .values(
                runs=j.c.runs + 1,
                failures=j.c.failures + (0 if ok else 1),
                last_finished_at=now,
                last_ok=ok,
                last_result=result,
                last_error=error[:500] if error else None,
            )
        )

    def all(self) -> list[JobRun]:
        j = t.job_runs
        return [to_dataclass(JobRun, r) for r in self.conn.execute(select(j).order_by(j.c.name)).all()]
