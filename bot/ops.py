"""The operations endpoints, on the webhook server and (with OPS_LISTEN) on a server of their own:

- ``GET /healthz``: 200 ``{"status": "ok", "database": "ok", "redis": "ok"}`` when the database answers a
  trivial query and Redis (only with REDIS_URL) answers PING, each within ``HEALTH_TIMEOUT`` seconds; else
  503 naming what did not (``"database": "unreachable"``). For load balancers and orchestrators: fast,
  no secrets, nothing else checked (Telegram's reachability is no reason to take an instance out);
- ``GET /metrics``: the Prometheus exposition of ``bot.metrics``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from bot.app import Storefront

log = logging.getLogger("keyshop")

HEALTH_TIMEOUT = 1.5  # seconds each check may take


async def check_health(front: Storefront, within: float = HEALTH_TIMEOUT) -> dict[str, str]:
    """Each check's outcome, ``ok``, ``unreachable`` or ``timeout``, asked at the same time."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": front.services.monitoring.ping}
    ping = getattr(front.dp.storage, "ping", None)  # FallbackStorage over Redis: only with REDIS_URL
    if ping is not None:
        checks["redis"] = ping
    outcomes = await asyncio.gather(*(_check(fn, within) for fn in checks.values()))
    results: dict[str, str] = {}
    for name, error in zip(checks, outcomes, strict=True):
        if error is None:
            results[name] = "ok"
        else:
            results[name] = "timeout" if isinstance(error, TimeoutError) else "unreachable"
    db_error = outcomes[0]
    if db_error is None:
        front.health.database.ok()
    else:
        front.health.database.failed(db_error)
    return results


async def _check(fn: Callable[[], Awaitable[None]], within: float) -> Exception | None:
    """None when ``fn`` answered in time, else why not."""
    try:
        await asyncio.wait_for(fn(), within)
    except Exception as e:
        log.debug("health check failed", exc_info=True)
        return e
    return None


def add_ops_routes(app: web.Application, front: Storefront) -> None:
    async def healthz(_: web.Request) -> web.Response:
        results = await check_health(front)
        healthy = all(v == "ok" for v in results.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", **results}
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = await front.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


def ops_app(front: Storefront) -> web.Application:
    """An application serving only the operations endpoints (OPS_LISTEN)."""
    app = web.Application()
    add_ops_routes(app, front)
    return app


async def serve(app: web.Application, listen: str) -> web.AppRunner:
    """Start ``app`` on ``HOST:PORT``; the caller cleans the runner up."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, int(port)).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
