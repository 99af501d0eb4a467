"""setWebhook: URL and secret-token validation, real delivery with retries, and no getUpdates meanwhile."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.telegram import ApiError, Emulator
from tests.unit.sandbox.telegram.conftest import USER, call, refused


@dataclass
class Receiver:
    """A webhook endpoint that records what it gets and answers with the statuses it is told to."""

    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and self.reply is not None:
            reply, self.reply = self.reply, None
            return web.json_response(reply)
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    r.url = str(server.make_url("/hook"))
    try:
        yield r
    finally:
        await server.close()


@pytest.fixture
async def hooked(emu: Emulator) -> AsyncIterator[Emulator]:
    emu.webhook_retry_delays = (0.01,)
    try:
        yield emu
    finally:
        await emu.shutdown()


async def until(predicate: Any, within: float = 3.0) -> None:
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("has space", "unallowed characters"),
        ("semi;colon", "unallowed characters"),
        ("键", "unallowed characters"),
        ("x" * 257, "secret token is too long"),
    ],
)
async def test_the_secret_token_is_1_to_256_of_letters_digits_underscore_and_dash(
    hooked: Emulator, secret: str, fragment: str
) -> None:
    e = await refused(hooked, "setWebhook", url="https://shop.example.com/hook", secret_token=secret)
    assert e.code == 400 and fragment in e.description


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://shop.example.com/hook", "An HTTPS URL must be provided"),
        ("https://shop.example.com:8080/hook", "ports 80, 88, 443 or 8443"),
        ("ftp://shop.example.com/hook", "invalid webhook URL"),
        ("shop.example.com", "invalid webhook URL"),
    ],
)
async def test_a_webhook_url_is_https_on_telegrams_ports(hooked: Emulator, url: str, fragment: str) -> None:
    assert fragment in (await refused(hooked, "setWebhook", url=url)).description


async def test_https_webhooks_on_allowed_ports_and_plain_http_to_loopback_are_accepted(
    hooked: Emulator,
) -> None:
    for url in ("https://shop.example.com/hook", "https://shop.example.com:8443/h", "http://127.0.0.1:9/h"):
        assert await call(hooked, "setWebhook", url=url, secret_token="A-z_0" * 51) is True
    assert (await call(hooked, "getWebhookInfo"))["url"] == "http://127.0.0.1:9/h"


async def test_updates_are_posted_to_the_webhook_with_the_secret_token(
    hooked: Emulator, receiver: Receiver
) -> None:
    await call(hooked, "setWebhook", url=receiver.url, secret_token="s3cret-token")
    await hooked.send_text(USER, "/start")
    await until(lambda: receiver.got)
    update, secret = receiver.got[0]
    assert secret == "s3cret-token" and update["message"]["text"] == "/start"
    await until(lambda: not hooked._updates)


async def test_a_webhook_that_fails_gets_the_same_update_again_until_it_answers_2xx(
    hooked: Emulator, receiver: Receiver
) -> None:
    receiver.statuses = [500, 502]
    await call(hooked, "setWebhook", url=receiver.url)
    await hooked.send_text(USER, "one")
    await hooked.send_text(USER, "two")
    await until(lambda: len(receiver.got) == 4)
    texts = [u["message"]["text"] for u, _ in receiver.got]
    assert texts == ["one", "one", "one", "two"]  # retried, and in order
    assert receiver.got[0][1] is None  # no secret set: no header
    await until(lambda: not hooked._updates)
    info = await call(hooked, "getWebhookInfo")
    assert info["pending_update_count"] == 0 and "502 Bad Gateway" in info["last_error_message"]


async def test_get_webhook_info_reports_the_url_and_pending_updates(hooked: Emulator) -> None:
    await call(hooked, "setWebhook", url="https://unreachable.example.com/hook")
    await hooked.send_text(USER, "hi")
    info = await call(hooked, "getWebhookInfo")
    assert info["url"] == "https://unreachable.example.com/hook" and info["pending_update_count"] == 1


async def test_get_updates_conflicts_while_a_webhook_is_set_and_works_again_after_delete(
    hooked: Emulator,
) -> None:
    await call(hooked, "setWebhook", url="https://unreachable.example.com/hook")
    e = await refused(hooked, "getUpdates")
    assert e.code == 409 and e.description == (
        "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first"
    )
    await hooked.send_text(USER, "kept")
    assert await call(hooked, "deleteWebhook") is True
    assert [u["message"]["text"] for u in await call(hooked, "getUpdates")] == ["kept"]
    assert (await call(hooked, "getWebhookInfo"))["url"] == ""


async def test_drop_pending_updates_forgets_what_was_waiting(hooked: Emulator) -> None:
    await hooked.send_text(USER, "old")
    await call(hooked, "deleteWebhook", drop_pending_updates=True)
    assert await call(hooked, "getUpdates") == []


async def test_a_method_in_the_webhook_answer_is_executed(hooked: Emulator, receiver: Receiver) -> None:
    receiver.reply = {"method": "sendMessage", "chat_id": USER, "text": "Welcome"}
    await call(hooked, "setWebhook", url=receiver.url)
    await hooked.send_text(USER, "/start")
    await hooked.wait_for(USER, lambda s: s.text == "Welcome")


async def test_only_the_update_types_the_bot_asked_for_are_delivered(hooked: Emulator) -> None:
    channel = hooked.channel(-1002, "News")
    await hooked.channel_post(channel, "ignored")
    await hooked.send_text(USER, "wanted")
    updates = await call(hooked, "getUpdates", allowed_updates=["message", "callback_query"])
    assert [u["message"]["text"] for u in updates] == ["wanted"]
    assert json.dumps(updates)  # plain JSON, as the wire needs


async def test_setting_a_webhook_ends_a_long_poll_under_way_with_a_conflict(hooked: Emulator) -> None:
    poll = asyncio.create_task(call(hooked, "getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    await call(hooked, "setWebhook", url="https://unreachable.example.com/hook")
    with pytest.raises(ApiError) as e:
        await asyncio.wait_for(poll, 1)
    assert e.value.code == 409 and "terminated by setWebhook request" in e.value.description


# ------------------------------------------------------------------ a load balancer in front of instances


@pytest.fixture
async def backends() -> AsyncIterator[list[Receiver]]:
    """Two bot instances behind a load balancer, each serving the webhook URL's path (``/hook``)."""
    receivers, servers = [Receiver(), Receiver()], []
    for r in receivers:
        app = web.Application()
        app.router.add_post("/hook", r.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        r.url = str(server.make_url("")).rstrip("/")
        servers.append(server)
    try:
        yield receivers
    finally:
        for server in servers:
            await server.close()


def _texts(r: Receiver) -> list[str]:
    return [u["message"]["text"] for u, _ in r.got]


async def test_a_balanced_webhook_spreads_updates_over_the_backends_each_delivered_once(
    hooked: Emulator, backends: list[Receiver]
) -> None:
    """The URL given to setWebhook is the balancer's (https, where TLS ends); each call goes to the next
    instance with the URL's path and the secret token."""
    hooked.balance_webhook([r.url for r in backends])
    await call(hooked, "setWebhook", url="https://shop.example.com/hook", secret_token="s3cret")
    for text in ("one", "two", "three", "four"):
        await hooked.send_text(USER, text)
    await until(lambda: not hooked._updates)
    a, b = backends
    assert (_texts(a), _texts(b)) == (["one", "three"], ["two", "four"])
    assert {secret for r in backends for _, secret in r.got} == {"s3cret"}
    assert [url for _, url in hooked.webhook_deliveries] == [f"{r.url}/hook" for r in (a, b, a, b)]


async def test_a_backend_that_is_down_is_passed_over_and_when_all_are_telegram_retries_later(
    hooked: Emulator, backends: list[Receiver]
) -> None:
    up = backends[0]
    hooked.balance_webhook(["http://127.0.0.1:9", up.url])  # port 9 (discard): nobody listens
    await call(hooked, "setWebhook", url="https://shop.example.com/hook")
    for text in ("one", "two", "three"):
        await hooked.send_text(USER, text)
    await until(lambda: not hooked._updates)
    assert _texts(up) == ["one", "two", "three"]  # none lost, none twice
    hooked.balance_webhook(["http://127.0.0.1:9"])
    await hooked.send_text(USER, "four")
    await until(lambda: hooked._webhook is not None and hooked._webhook.deliveries >= 6)
    info = await call(hooked, "getWebhookInfo")
    assert info["pending_update_count"] == 1 and "502 Bad Gateway" in info["last_error_message"]
    hooked.balance_webhook([up.url])  # back: the update Telegram kept is delivered
    await until(lambda: not hooked._updates)
    assert _texts(up) == ["one", "two", "three", "four"]


async def test_a_backends_failure_goes_back_to_telegram_which_retries_on_the_next_backend(
    hooked: Emulator, backends: list[Receiver]
) -> None:
    a, b = backends
    a.statuses = [500]
    hooked.balance_webhook([a.url, b.url])
    await call(hooked, "setWebhook", url="https://shop.example.com/hook")
    await hooked.send_text(USER, "one")
    await until(lambda: not hooked._updates)
    assert (_texts(a), _texts(b)) == (["one"], ["one"])  # a refused it; the retry went to b
    assert hooked.webhook_deliveries[-1][1] == f"{b.url}/hook"


@pytest.mark.parametrize(
    "backend",
    ["http://10.0.0.5:8080", "https://shop.example.com", "http://127.0.0.1:8080/hook", "ftp://127.0.0.1:21"],
)
def test_a_backend_is_a_loopback_host_and_port_without_a_path(backend: str) -> None:
    with pytest.raises(ValueError, match="backend"):
        Emulator(webhook_backends=[backend])
