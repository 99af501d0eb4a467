"""What every emulator's server does the same way: serve an aiohttp app on a local port (0: any free one)
and say where."""

from __future__ import annotations

from aiohttp import web


async def serve_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start ``app``; the runner (to ``cleanup()``) and its base URL, with the port it was bound to."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{host}:{bound}"
