"""``setWebhook`` as Telegram does it: validation, then real delivery of updates by HTTP POST.

While a webhook is set, updates are POSTed one at a time, in order, as JSON, with the secret in
``X-Telegram-Bot-Api-Secret-Token``; an update is confirmed only by a 2xx answer and retried (with growing
pauses) otherwise, and ``getUpdates`` answers 409 Conflict. A 2xx answer may carry a Bot API method call in
its body (``{"method": "sendMessage", ...}``), which Telegram then executes; so does the emulator.

Telegram requires an ``https://`` URL on port 443, 80, 88 or 8443. The emulator also accepts plain ``http://``
to a loopback address (127.0.0.0/8, ``localhost``, ``::1``), and only there: it runs next to the bot in the
same machine (tests, sandbox), where a TLS certificate would prove nothing, and it can reach nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from sandbox.telegram.errors import bad

SECRET_RE = re.compile(r"[A-Za-z0-9_-]*")
HTTPS_PORTS = {443, 80, 88, 8443}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header's name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("invalid webhook URL specified") from None
    host = parts.hostname or ""
    if not host or parts.scheme not in ("http", "https"):
        raise bad("invalid webhook URL specified")
    if parts.scheme == "http" and not is_loopback(host):
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    if parts.scheme == "https" and (port or 443) not in HTTPS_PORTS:
        raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


def check_secret(secret: str) -> None:
    """1-256 characters of ``A-Z a-z 0-9 _ -`` (empty: no header is sent)."""
    if len(secret) > 256:
        raise bad("secret token is too long")
    if not SECRET_RE.fullmatch(secret):
        raise bad("secret token contains unallowed characters")


@dataclass
class Webhook:
    url: str
    secret: str
    token: str
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    deliveries: int = field(default=0)

    def info(self, pending: int, allowed_updates: list[str] | None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.last_error_date is not None:
            d["last_error_date"] = self.last_error_date
            d["last_error_message"] = self.last_error_message
        if allowed_updates is not None:
            d["allowed_updates"] = allowed_updates
        return d

    async def post(
        self, session: aiohttp.ClientSession, update: dict[str, Any], seconds: float
    ) -> tuple[bool, dict[str, Any] | None]:
        """POST one update; (delivered, a method call found in the answer's body)."""
        headers = {SECRET_HEADER: self.secret} if self.secret else {}
        self.deliveries += 1
        try:
            async with session.post(
                self.url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as resp:
                if not 200 <= resp.status < 300:
                    return self._failed(f"Wrong response from the webhook: {resp.status} {resp.reason}")
                body: Any = None
                if resp.content_type == "application/json":
                    try:
                        body = await resp.json()
                    except ValueError:
                        body = None
                call = body if isinstance(body, dict) and isinstance(body.get("method"), str) else None
                return True, call
        except (aiohttp.ClientError, TimeoutError) as e:
            return self._failed(f"Connection failed: {type(e).__name__}")

    def _failed(self, message: str) -> tuple[bool, None]:
        self.last_error_date, self.last_error_message = int(time.time()), message
        return False, None
