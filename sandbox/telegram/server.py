"""The emulator as an HTTP server: ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` like
api.telegram.org, so the real aiogram client talks to it over HTTP (``TELEGRAM_API_URL``)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.http import serve_app
from sandbox.telegram.api import BotApi
from sandbox.telegram.errors import ApiError, bad
from sandbox.telegram.limits import DOWNLOAD_MAX_BYTES, UPLOAD_MAX_BYTES, too_large
from sandbox.telegram.players import Players

JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "prices",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
    "reply_parameters",
    "results",
    "button",
}


REQUEST_SLACK = 2**20


class Emulator(BotApi, Players):
    """A local Telegram Bot API: Telegram's validation and flood limits, plus an API to play users."""

    def app(self) -> web.Application:
        # room for a 50 MB file and the request's other fields; the file itself is checked by the method
        # (``check_file``), and anything bigger is answered as Telegram answers it (413, in JSON)
        app = web.Application(client_max_size=UPLOAD_MAX_BYTES + REQUEST_SLACK)
        app.router.add_route("*", "/bot{token}/{method}", self._http_method)
        app.router.add_get("/file/bot{token}/documents/{file_id}", self._http_file)
        return app

    async def _http_method(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json() if request.can_read_body else {}
        elif request.method == "POST":
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                return _error(too_large())
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = (value.filename, value.file.read())
                elif key in JSON_FIELDS:
                    try:
                        params[key] = json.loads(str(value))
                    except ValueError:
                        return _error(bad(f"can't parse {key} JSON object"))
                else:
                    params[key] = str(value)
        params.update({k: v for k, v in request.query.items() if k not in params})
        # attach:// references point at other multipart fields
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = params.get(value.removeprefix("attach://"))
        try:
            result = await self.call(request.match_info["token"], request.match_info["method"], params)
        except ApiError as e:
            return _error(e)
        return web.json_response({"ok": True, "result": result})

    async def _http_file(self, request: web.Request) -> web.Response:
        try:
            self._check_token(request.match_info["token"])
        except ApiError as e:
            return _error(e)
        found = self.files.get(request.match_info["file_id"])
        if found is None or len(found[1]) > DOWNLOAD_MAX_BYTES:  # getFile gives no path to those
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[1], content_type="application/octet-stream")


def _error(e: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": e.code, "description": e.description}
    if e.retry_after is not None:
        body["parameters"] = {"retry_after": e.retry_after}
    return web.json_response(body, status=e.code)


async def serve(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the emulator's HTTP server; returns the runner (to ``cleanup()``) and its base URL."""
    app = emulator.app()

    async def wake_long_polls(_: web.Application) -> None:
        await emulator.shutdown()

    app.on_shutdown.append(wake_long_polls)
    return await serve_app(app, host, port)
