"""The shop's Prometheus metrics (``GET /metrics``), in a registry of each storefront's own: tests, and
several storefronts in one process, never share a counter.

Counted as things happen (the Telegram side's ``Telemetry`` port):

- ``keyshop_outbox_delivered_total{kind}``: outbox messages Telegram accepted, by message type;
- ``keyshop_telegram_rate_limited_total{source}``: 429 Too Many Requests met by the outbox sender
  (``outbox``) or by replies to updates (``replies``).

Read from the database at each scrape (one read-only transaction, ``MonitoringService.figures``):

- ``keyshop_orders{status}``: orders in each status;
- ``keyshop_outbox_pending``: messages waiting to be sent; ``keyshop_outbox_oldest_due_seconds``: how long
  the longest-waiting due message has waited past its due time (0 when none is due);
- ``keyshop_job_runs_total{job}``, ``keyshop_job_failures_total{job}``, ``keyshop_job_last_ok{job}``
  (1 or 0), ``keyshop_job_last_finished_timestamp_seconds{job}``: the scheduler's record (``job_runs``).

And ``keyshop_dependency_up{dependency}`` (1 or 0; absent until first asked): the database, Telegram and
Redis as this process saw them last. Labels are statuses, kinds, job and dependency names: never a key,
a user or a text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.messages import MESSAGE_TYPES
from core.models import OrderStatus
from core.services import Services
from core.services.monitoring import ShopFigures
from handlers.telegram.health import Health

log = logging.getLogger("keyshop.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RATE_LIMIT_SOURCES = ("outbox", "replies")


class ShopMetrics:
    """The registry, the counters the Telegram side increments, and the figures read at scrape time."""

    def __init__(
        self, services: Services, health: Health, *, read_timeout: float = 2.0, fresh_for: float = 1.0
    ) -> None:
        self.services, self.health, self.read_timeout = services, health, read_timeout
        # Scrapes within ``fresh_for`` of a read share it, and concurrent ones wait for the one in flight:
        # however often /metrics is asked (several Prometheus servers, someone hammering it), the database
        # answers at most one GROUP BY a second.
        self.fresh_for = fresh_for
        self._read_at = -fresh_for
        self._reading = asyncio.Lock()
        # No ``…_created`` series beside every counter: a process-wide switch of the library, and noise
        # (the start of each counter) that no dashboard of ours reads.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)
        self._delivered = Counter(
            "keyshop_outbox_delivered",
            "Outbox messages Telegram accepted, by message type.",
            ["kind"],
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "keyshop_telegram_rate_limited",
            "429 Too Many Requests answers from Telegram, by who met them.",
            ["source"],
            registry=self.registry,
        )
        for kind in MESSAGE_TYPES:  # every series from the start: a rate over a missing series is nothing
            self._delivered.labels(kind=kind)
        for source in RATE_LIMIT_SOURCES:
            self._rate_limited.labels(source=source)
        self._shop = _ShopCollector(health)
        self.registry.register(self._shop)

    def delivered(self, kind: str) -> None:
        self._delivered.labels(kind=kind).inc()

    def rate_limited(self, source: str) -> None:
        self._rate_limited.labels(source=source).inc()

    async def render(self) -> bytes:
        """The exposition text. Without the database (away, or slower than ``read_timeout``) the figures
        read from it are left out and the rest is served."""
        async with self._reading:
            if time.monotonic() - self._read_at >= self.fresh_for:
                await self._read()
                self._read_at = time.monotonic()
        return generate_latest(self.registry)

    async def _read(self) -> None:
        try:
            figures: ShopFigures | None = await asyncio.wait_for(
                self.services.monitoring.figures(), self.read_timeout
            )
        except Exception as e:
            figures = None
            if self.health.owner(e) is self.health.database:  # a timeout included
                self.health.database.failed(e)
            else:
                log.warning("metrics: reading the shop's figures failed", exc_info=True)
        else:
            self.health.database.ok()
        self._shop.figures = figures


class _ShopCollector(Collector):
    def __init__(self, health: Health) -> None:
        self.health = health
        self.figures: ShopFigures | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "keyshop_dependency_up",
            "Whether the dependency answered when last asked (1) or not (0).",
            labels=["dependency"],
        )
        for dep in self.health.dependencies():
            if dep.up is not None:
                up.add_metric([dep.name.lower()], 1.0 if dep.up else 0.0)
        yield up
        f = self.figures
        if f is None:
            return
        orders = GaugeMetricFamily("keyshop_orders", "Orders in each status.", labels=["status"])
        counts = {status.value: 0 for status in OrderStatus} | f.orders_by_status
        for status, n in sorted(counts.items()):
            orders.add_metric([status], n)
        yield orders
        yield GaugeMetricFamily(
            "keyshop_outbox_pending", "Outbox messages waiting to be sent.", value=f.outbox_pending
        )
        yield GaugeMetricFamily(
            "keyshop_outbox_oldest_due_seconds",
            "Seconds the longest-waiting due outbox message has waited past its due time.",
            value=f.outbox_oldest_due_seconds,
        )
        runs = CounterMetricFamily("keyshop_job_runs", "Runs of each scheduled job.", labels=["job"])
        failures = CounterMetricFamily(
            "keyshop_job_failures", "Failed runs of each scheduled job.", labels=["job"]
        )
        last_ok = GaugeMetricFamily(
            "keyshop_job_last_ok", "Whether a job's last run succeeded (1) or failed (0).", labels=["job"]
        )
        finished = GaugeMetricFamily(
            "keyshop_job_last_finished_timestamp_seconds",
            "When a job's last run finished (Unix time).",
            labels=["job"],
        )
        for job in f.jobs:
            runs.add_metric([job.name], job.runs)
            failures.add_metric([job.name], job.failures)
            if job.last_ok is not None:
                last_ok.add_metric([job.name], 1.0 if job.last_ok else 0.0)
            if job.last_finished_at is not None:
                finished.add_metric([job.name], job.last_finished_at.timestamp())
        yield from (runs, failures, last_ok, finished)
