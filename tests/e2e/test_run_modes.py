"""Run modes: the webhook refuses strangers; `keyshop run` without a token explains; the sandbox works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import webhook_app
from tests.conftest import PROCESSES
from tests.e2e.conftest import Shop

pytestmark = PROCESSES


async def test_the_webhook_refuses_requests_without_the_secret_token(shop: Shop) -> None:
    await shop.front.dp.stop_polling()  # a bot either polls or takes webhooks, never both
    app = webhook_app(shop.front, "s3cret-token", "/tg/hook")
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 501, "type": "private"},
            "from": {"id": 501, "is_bot": False, "first_name": "Ann"},
            "text": "/start",
        },
    }
    shop.emu.user(501, "Ann")
    async with TestClient(TestServer(app)) as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            resp = await client.post("/tg/hook", data=json.dumps(update), headers=headers)
            assert resp.status == 401
        assert shop.emu.messages(501) == []
        ok = await client.post(
            "/tg/hook", data=json.dumps(update), headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
        )
        assert ok.status == 200
        # answered in the background: the app (and the bot's session) stays up until the reply is out
        welcome = await shop.emu.wait_for(501, lambda s: "Welcome" in s.text)
    assert welcome.buttons


def _cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "DATABASE_URL", "VAULT_KEYS")}
    env["DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


def test_run_without_a_token_says_how_to_get_one_or_try_the_sandbox(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "run")
    assert proc.returncode == 2
    assert "BOT_TOKEN" in proc.stderr and "keyshop sandbox" in proc.stderr and "Traceback" not in proc.stderr


def test_keyshop_alone_without_a_token_starts_the_sandbox(tmp_path: Path) -> None:
    proc = _cli(tmp_path, stdin="quit\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "starting the sandbox" in proc.stderr
        and "keyshop sandbox" in proc.stdout
        and "Welcome" in proc.stdout
    )


def test_the_sandbox_lets_someone_without_a_token_buy_a_key_in_the_terminal(tmp_path: Path) -> None:
    # /start is sent for you; then: Catalog, category "Games", product, Buy 1, pay, My orders.
    proc = _cli(tmp_path, "sandbox", stdin="1\n1\n1\n1\npay\n/orders\nquit\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "Welcome" in out and "Steam Wallet 10 USD" in out and "paid / 已支付" in out
    assert "delivered: Steam Wallet 10 USD × 1" in out and "STEAM-DEMO-" in out
    assert "Traceback" not in proc.stderr


REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL is not set: Redis variant skipped (.ci/run sets it)"
)
async def test_with_redis_url_conversation_state_lives_in_redis(tmp_path: Path) -> None:
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.fsm.storage.redis import RedisStorage

    from bot.app import Storefront, make_bot
    from bot.settings import Settings
    from core.context import Context
    from core.services import Services
    from core.vault import Vault, new_key_spec
    from sandbox.telegram import Emulator, serve
    from tests.conftest import make_db
    from tests.e2e.conftest import TOKEN

    db = await make_db("sqlite", tmp_path)
    emu = Emulator(token=TOKEN)
    runner, url = await serve(emu)
    settings = Settings.load(_env_file=None, redis_url=REDIS_URL, data_dir=tmp_path)
    front = Storefront.build(
        Services(Context(db, Vault.from_spec(new_key_spec()))), settings, make_bot(TOKEN, url)
    )
    try:
        from handlers.telegram.storage import FallbackStorage

        # in Redis, and in memory only while Redis is away (tests/e2e/test_outages.py)
        assert isinstance(front.dp.storage, FallbackStorage)
        assert isinstance(front.dp.storage.primary, RedisStorage)
        key = StorageKey(bot_id=1, chat_id=501, user_id=501)
        await front.dp.storage.set_data(key, {"probe": "keyshop"})
        assert await front.dp.storage.get_data(key) == {"probe": "keyshop"}
        await front.dp.storage.set_data(key, {})
        await front.start_polling()
        emu.user(501, "Ann")
        await emu.send_text(501, "/start")
        assert "Welcome" in (await emu.wait_for(501)).text
    finally:
        await emu.shutdown()
        await front.stop()
        await runner.cleanup()
        await db.dispose()


async def test_keyshop_run_serves_buyers_through_any_bot_api_server_and_stops_cleanly(tmp_path: Path) -> None:
    import asyncio
    import signal

    from sandbox.telegram import Emulator, serve
    from tests.e2e.conftest import TOKEN

    emu = Emulator(token=TOKEN)
    runner, url = await serve(emu)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "VAULT_KEYS", "WEBHOOK_URL", "REDIS_URL")
    }
    env.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=url, DATA_DIR=str(tmp_path / "data"), ADMIN_IDS="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        emu.user(501, "Ann", "zh-hans")
        await emu.send_text(501, "/start")
        reply = await emu.wait_for(501, within=30)
        assert "欢迎" in reply.text
        assert "zh" in emu.commands  # the command menu was registered at start-up
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        await emu.shutdown()
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err


async def test_with_scheduler_off_the_bot_serves_buyers_but_runs_no_jobs(shop: Shop) -> None:
    assert shop.front.scheduler.running  # the default: the jobs run inside `keyshop run`
    await shop.rebuild(scheduler=False)
    assert not shop.front.scheduler.running
    shop.emu.user(4242, "Ann")
    assert "Welcome" in (await shop.say(4242, "/start")).text


def test_the_wechat_sandbox_buys_through_a_distributors_qr_and_wechat_pay_in_the_terminal(
    tmp_path: Path,
) -> None:
    # followed through the demo distributor's QR for you; then: catalog, product 2 (Steam), 买 1, pay, keys.
    proc = _cli(tmp_path, "sandbox", "--channel", "wechat", stdin="商品\n2\n买 1\npay\nkeys\n订单\nquit\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "欢迎" in out and "Steam Wallet 10 USD" in out and "¥9.90" in out
    assert "paid with WeChat Pay / 已支付" in out and "推广员佣金: pending ¥0.99" in out  # 10 % of 9.90
    delivered = [line for line in out.splitlines() if "STEAM-DEMO-" in line]
    assert len(delivered) >= 2  # in the chat (a customer-service message) and on the order page
    assert "attributed to user" in proc.stderr and "Traceback" not in proc.stderr


async def test_keyshop_run_without_a_bot_serves_the_wechat_official_account_alone(tmp_path: Path) -> None:
    import asyncio
    import signal

    import aiohttp

    from bot.wechat_sandbox import free_port
    from sandbox.wechat import Emulator

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "DATABASE_URL", "VAULT_KEYS")}
    env |= {
        "DATA_DIR": str(tmp_path / "data"),
        "WECHAT_APP_ID": "wx0123456789abcdef",
        "WECHAT_TOKEN": "keyshopwxtoken",
        "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "SCHEDULER": "false",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):  # a loaded 2-core machine takes its time to import and migrate
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        health = (r.status, await r.json())
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("keyshop run never served /healthz")
        assert health == (200, {"status": "ok", "database": "ok"})
        emu = Emulator(appid="wx0123456789abcdef", token="keyshopwxtoken", mode="plain")
        emu.callback_url = f"http://127.0.0.1:{port}/wechat"
        try:
            welcome = await emu.subscribe("o_only_wechat_buyer_000000001")
            assert welcome.seen is not None and "欢迎" in welcome.seen
        finally:
            await emu.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and b"Traceback" not in err, err[-2000:]
