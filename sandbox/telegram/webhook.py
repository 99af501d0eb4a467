"""``setWebhook`` as Telegram does it: validation, then real delivery of updates by HTTP POST.

While a webhook is set, updates are POSTed one at a time, in order, as JSON, with the secret in
``X-Telegram-Bot-Api-Secret-Token``; an update is confirmed only by a 2xx answer and retried (with growing
pauses) otherwise, and ``getUpdates`` answers 409 Conflict. A 2xx answer may carry a Bot API method call in
its body (``{"method": "sendMessage", ...}``), which Telegram then executes; so does the emulator.

Telegram requires an ``https://`` URL on port 443, 80, 88 or 8443. The emulator also accepts plain ``http://``
to a loopback address (127.0.0.0/8, ``localhost``, ``::1``), and only there: it runs next to the bot in the
same machine (tests, sandbox), where a TLS certificate would prove nothing, and it can reach nothing else.

Several bot instances behind a load balancer share one webhook URL (Telegram keeps one per bot). The
emulator plays that balancer too (``Balancer``, ``Emulator(webhook_backends=[...])`` or
``balance_webhook``): Telegram's call to the URL is passed to one backend after another.
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


def check_backend(url: str) -> str:
    """A backend behind the balancer, as ``http(s)://host:port`` on a loopback address (the emulator
    reaches nothing else): the balancer passes each call on with the webhook URL's path."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise ValueError(f"not a backend URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
        raise ValueError(f"a backend is http(s)://HOST:PORT on a loopback address, not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a backend has no path (the webhook URL's is passed on): {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Balancer:
    """What a load balancer in front of several bot instances does with Telegram's calls to the one
    webhook URL (TLS ends there): each call goes to the next backend in turn (round-robin), with the URL's
    path and the headers as they came (the secret token too). A backend that cannot be connected to is
    passed over for the next (as nginx's ``proxy_next_upstream error``); when none can, or a backend took
    the call and then failed to answer in time, Telegram is answered 502 or 504 and retries the update
    later, by its own rules. A backend's own answer, 2xx or not, goes back to Telegram unchanged."""

    backends: list[str]
    _turn: int = 0

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = [check_backend(b) for b in self.backends]

    def targets(self, url: str) -> list[str]:
        """Where this call may go, in the order tried: the next backend first, then the others."""
        parts = urlsplit(url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        start = self._turn % len(self.backends)
        self._turn += 1
        return [b + tail for b in self.backends[start:] + self.backends[:start]]


@dataclass(frozen=True)
class Answer:
    """How one delivery went: taken (2xx) or not, a method call found in the answer's body, and the URL
    that took it (a backend's, behind a balancer)."""

    delivered: bool
    call: dict[str, Any] | None = None
    taken_by: str | None = None


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
        self,
        session: aiohttp.ClientSession,
        update: dict[str, Any],
        seconds: float,
        balancer: Balancer | None = None,
    ) -> Answer:
        """POST one update, to the URL or through ``balancer`` to one of its backends."""
        headers = {SECRET_HEADER: self.secret} if self.secret else {}
        self.deliveries += 1
        for target in balancer.targets(self.url) if balancer is not None else [self.url]:
            try:
                async with session.post(
                    target, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
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
                    return Answer(True, call, target)
            except aiohttp.ClientConnectorError as e:
                if balancer is None:
                    return self._failed(f"Connection failed: {type(e).__name__}")
                # the balancer tries the next backend: nothing was sent to this one
            except (aiohttp.ClientError, TimeoutError) as e:
                if balancer is None:
                    return self._failed(f"Connection failed: {type(e).__name__}")
                gateway = "504 Gateway Timeout" if isinstance(e, TimeoutError) else "502 Bad Gateway"
                return self._failed(f"Wrong response from the webhook: {gateway}")
        return self._failed("Wrong response from the webhook: 502 Bad Gateway")

    def _failed(self, message: str) -> Answer:
        self.last_error_date, self.last_error_message = int(time.time()), message
        return Answer(False)
