"""What every emulator's server does the same way: serve an aiohttp app on a local port (0: any free one)
and say where."""

from __future__ import annotations

from aiohttp import web


async def serve_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 128
) -> tuple[web.AppRunner, str]:
    """Start ``app``; the runner (to ``cleanup()``) and its base URL, with the port it was bound to.
    ``backlog``: connections the kernel holds until the loop accepts them (aiohttp's default; a burst
    beyond it has its SYNs dropped and retried a second later: the WeChat benchmark raises it)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{host}:{bound}"
