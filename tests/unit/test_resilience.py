"""Outages are waited out with capped exponential backoff and logged once when they start and once when
they end, however many tries lie between; a wrong setting is not retried."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import psycopg
import pytest
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import GetMe, SendMessage
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.i18n import build_i18n
from bot.logs import formatter
from core.resilience import Backoff, Dependency, describe, is_db_outage, retry_until_up
from core.services import Services
from handlers.telegram.health import Health, OutageLogFilter
from handlers.telegram.storage import FallbackStorage
from handlers.telegram.workers import outbox as outbox_module
from handlers.telegram.workers.messages import Outgoing
from handlers.telegram.workers.outbox import OutboxSender

REFUSED = OperationalError(
    "SELECT 1",
    {},
    psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5999 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?"
    ),
)
WRONG_PASSWORD = OperationalError(
    "SELECT 1",
    {},
    psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
        'authentication failed for user "shop"'
    ),
)
UNREACHABLE_TELEGRAM = TelegramNetworkError(method=GetMe(), message="Cannot connect to host")


def health_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "keyshop.health" and r.levelno >= logging.INFO
    ]


async def no_sleep(_: float) -> None:
    return None


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_from_the_first_pause_up_to_the_cap() -> None:
    b = Backoff(first=1.0, cap=10.0, jitter=0.0)
    assert [b.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert b.delay(10_000) == 10.0  # no overflow after a very long outage


def test_backoff_jitter_spreads_each_pause_within_its_share() -> None:
    b = Backoff(first=4.0, cap=4.0, jitter=0.25)
    pauses = {b.delay(0) for _ in range(200)}
    assert all(3.0 <= p <= 5.0 for p in pauses) and len(pauses) > 100


# ---------------------------------------------------------------- one line per change


def test_a_dependency_logs_when_it_goes_away_and_when_it_is_back_not_every_try(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "keyshop.health")
    db = Dependency("database")
    db.ok()  # first success: nothing to say
    for _ in range(50):
        db.failed(REFUSED)
    db.ok()
    db.ok()
    assert health_lines(caplog) == [
        "database unreachable (OperationalError: connection failed: connection to server at "
        '"127.0.0.1", port 5999 failed: Connection refused); retrying',
        "database reachable again",
    ]
    assert db.up is True and db.failures == 0


async def test_a_step_is_retried_through_an_outage_with_growing_pauses_and_two_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "keyshop.health")
    db = Dependency("database")
    calls, pauses = 0, []

    async def step() -> str:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise REFUSED
        return "open"

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    owner = lambda e: db if is_db_outage(e) else None  # noqa: E731
    backoff = Backoff(first=0.5, cap=3.0, jitter=0.0)
    assert await retry_until_up(step, owner, backoff, sleep=sleep) == "open"
    assert pauses == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [line.split(" (")[0] for line in health_lines(caplog)] == [
        "database unreachable",
        "database reachable again",
    ]


async def test_a_wrong_setting_is_raised_at_once_not_retried() -> None:
    db = Dependency("database")
    tries = 0

    async def step() -> None:
        nonlocal tries
        tries += 1
        raise WRONG_PASSWORD

    with pytest.raises(OperationalError):
        await retry_until_up(step, lambda e: db if is_db_outage(e) else None, Backoff(), sleep=no_sleep)
    assert tries == 1 and db.up is None


async def test_telegram_asking_to_wait_is_waited_as_long_as_it_asks() -> None:
    from aiogram.exceptions import TelegramRetryAfter

    from handlers.telegram.health import telegram_wait

    health, pauses, tries = Health(), [], 0

    async def step() -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise TelegramRetryAfter(method=GetMe(), message="Too Many Requests", retry_after=7)

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    await retry_until_up(step, health.owner, Backoff(first=1, jitter=0), wait_hint=telegram_wait, sleep=sleep)
    assert pauses == [7.0] and health.telegram.up is True


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (REFUSED, True),
        (OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")), True),
        (WRONG_PASSWORD, False),
        (
            OperationalError("x", {}, psycopg.OperationalError('FATAL:  database "shop" does not exist')),
            False,
        ),
        (OperationalError("x", {}, sqlite3.OperationalError("unable to open database file")), False),
        (ProgrammingError("SELECT nope", {}, sqlite3.ProgrammingError("no such table")), False),
        # sqlite3 raises these as OperationalError: a schema that does not match (a missing migration, a
        # table created by hand) is to fix, not to wait for
        (OperationalError("SELECT nope", {}, sqlite3.OperationalError("no such table: job_runs")), False),
        (OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: orders.x")), False),
        (OperationalError("CREATE", {}, sqlite3.OperationalError("table audit_log already exists")), False),
        (OperationalError("SELEC", {}, sqlite3.OperationalError('near "SELEC": syntax error')), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ValueError("a bug"), False),
    ],
)
def test_a_database_outage_is_told_from_a_wrong_setting_or_a_bug(error: Exception, outage: bool) -> None:
    assert is_db_outage(error) is outage


def test_what_an_outage_line_says_carries_no_token_password_or_statement() -> None:
    text = describe(
        OperationalError(
            "UPDATE users SET phone = '+8613800000000'",
            {},
            psycopg.OperationalError("could not reach postgresql://shop:hunter2@db/shop"),
        )
    )
    assert "hunter2" not in text and "+8613800000000" not in text and "shop:***@db" in text
    network = describe(
        RuntimeError("GET https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe")
    )
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in network and "<token>" in network


# ---------------------------------------------------------------- what libraries log on every retry


def test_aiogram_polling_retries_become_one_line_when_telegram_goes_and_one_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    health = Health()
    polling = logging.getLogger("aiogram.dispatcher")
    logs = OutageLogFilter(health)
    logs.install()
    try:
        for n in range(5):  # what aiogram's _listen_updates logs on each failed getUpdates
            polling.error("Failed to fetch updates - %s: %s", "TelegramNetworkError", UNREACHABLE_TELEGRAM)
            polling.warning("Sleep for %f seconds and try again... (tryings = %d, bot id = %d)", 1.0, n, 42)
        polling.info("Connection established (tryings = %d, bot id = %d)", 5, 42)
        polling.info("Start polling")  # anything else passes
    finally:
        logs.uninstall()
    lines = [(r.name, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert lines == [
        ("keyshop.health", "Telegram unreachable"),
        ("keyshop.health", "Telegram reachable again"),
        ("aiogram.dispatcher", "Start polling"),
    ]


def test_a_job_failing_while_the_database_is_away_logs_no_traceback_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    health = Health()
    executor = logging.getLogger("apscheduler.executors.default")
    logs = OutageLogFilter(health)
    logs.install()
    try:
        for _ in range(3):
            try:
                raise REFUSED
            except OperationalError:
                executor.exception('Job "expire_reservations" raised an exception')
        try:
            raise ValueError("a bug in a job")
        except ValueError:
            executor.exception('Job "settle_commissions" raised an exception')
    finally:
        logs.uninstall()
    messages = [r.getMessage().split(" (")[0] for r in caplog.records]
    assert messages == ["database unreachable", 'Job "settle_commissions" raised an exception']


# ---------------------------------------------------------------- the outbox sender's rounds


async def test_outbox_rounds_failing_while_the_database_is_away_log_one_line_each_way(
    shop: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    claim = shop.outbox.claim
    rounds = 0
    back = asyncio.Event()

    async def flaky_claim(*args: object, **kwargs: object) -> object:
        nonlocal rounds
        rounds += 1
        if rounds <= 8:
            raise REFUSED
        if rounds >= 10:
            back.set()
        return await claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shop.outbox, "claim", flaky_claim)
    health = Health()
    sender = OutboxSender(
        None,  # type: ignore[arg-type]
        shop,
        build_i18n(),
        health=health,
        idle_poll=0.01,
        outage_backoff=Backoff(first=0.001, cap=0.002),
    )
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.wait_for(back.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = [r.getMessage().split(" (")[0] for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == ["database unreachable", "database reachable again"]


async def test_the_outbox_stops_sending_while_telegram_is_unreachable_and_resumes_when_it_answers(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message met an unreachable Telegram: no more are claimed (each would spend an attempt for
    nothing) until a getMe goes through; then it goes out."""
    from core.models import STARS
    from tests.conftest import buyer, stocked

    pid = await stocked(shop, 1)
    order = await shop.checkout.checkout(await buyer(shop, "91"), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", order.ref, order.amount, STARS)
    sends: list[str] = []
    probes = 0
    delivered = asyncio.Event()

    async def deliver(out: Outgoing) -> None:
        sends.append(out.item.message.order_ref)
        if len(sends) == 1:
            raise TelegramNetworkError(method=SendMessage(chat_id=91, text="x"), message="unreachable")
        delivered.set()

    class Bot:
        async def get_me(self) -> None:
            nonlocal probes
            probes += 1
            if probes < 3:
                raise UNREACHABLE_TELEGRAM

    claims = 0
    claim = shop.outbox.claim

    async def counted_claim(*args: object, **kwargs: object) -> object:
        nonlocal claims
        claims += 1
        return await claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox_module, "deliver", deliver)
    monkeypatch.setattr(outbox_module, "backoff", lambda attempts: __import__("datetime").timedelta(0))
    monkeypatch.setattr(shop.outbox, "claim", counted_claim)
    health = Health()
    sender = OutboxSender(
        Bot(),  # type: ignore[arg-type]
        shop,
        build_i18n(),
        health=health,
        idle_poll=0.01,
        private_interval=0.0,
        outage_backoff=Backoff(first=0.001, cap=0.002),
    )
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.wait_for(delivered.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sends == [order.ref, order.ref] and probes == 3
    assert claims == 2  # one round before Telegram went away, the next only once it answered
    assert health.telegram.up is True


async def test_a_token_telegram_refuses_while_probing_ends_the_pause_to_be_handled_per_message() -> None:
    class Bot:
        async def get_me(self) -> None:
            raise TelegramUnauthorizedError(method=GetMe(), message="Unauthorized")

    health = Health()
    health.telegram.failed(UNREACHABLE_TELEGRAM)
    sender = OutboxSender(Bot(), None, None, health=health, outage_backoff=Backoff(first=0.001, cap=0.001))  # type: ignore[arg-type]
    await asyncio.wait_for(sender._until_telegram_answers(), 5)


# ---------------------------------------------------------------- conversation state while Redis is away


class _FlakyRedis(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.away = False
        self.asked = 0

    async def get_state(self, key: StorageKey) -> str | None:
        self.asked += 1
        if self.away:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().get_state(key)

    async def set_state(self, key: StorageKey, state: object = None) -> None:
        self.asked += 1
        if self.away:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await super().set_state(key, state)  # type: ignore[arg-type]


async def test_conversation_state_lives_in_memory_while_redis_is_away_and_in_redis_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "keyshop.health")
    redis = _FlakyRedis()
    storage = FallbackStorage(redis, Dependency("Redis"), backoff=Backoff(first=60, cap=60, jitter=0))
    key = StorageKey(bot_id=1, chat_id=501, user_id=501)
    await storage.set_state(key, "form:price")
    assert await redis.get_state(key) == "form:price"
    redis.away = True
    asked = redis.asked
    await storage.set_state(key, "form:name")  # Redis refuses: kept in memory
    for _ in range(20):  # within the backoff, Redis is not even asked
        assert await storage.get_state(key) == "form:name"
    assert redis.asked == asked + 1
    redis.away = False
    storage._retry_at = 0.0  # the backoff has run out
    assert await storage.get_state(key) == "form:price"  # Redis again: what it held
    assert [line.split(" (")[0] for line in health_lines(caplog)] == [
        "Redis unreachable",
        "Redis reachable again",
    ]
    await storage.close()


# ---------------------------------------------------------------- JSON logs


def test_json_log_lines_carry_time_level_logger_message_and_the_exception() -> None:
    fmt = formatter("json")
    record = logging.LogRecord("keyshop", logging.ERROR, __file__, 1, "order %s failed", ("K-1",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(fmt.format(record))
    assert {"time", "level", "logger", "message", "exception"} <= line.keys()
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "keyshop", "order K-1 failed")
    assert "ValueError: boom" in line["exception"]


# ---------------------------------------------------------------- scheduled jobs


async def test_jobs_failing_while_the_database_is_away_log_one_line_for_all_of_them(
    shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    from scheduler.runner import Runs
    from scheduler.spec import Job, JobContext

    away = True

    async def needs_the_database(ctx: JobContext) -> int:
        if away:
            raise REFUSED
        return 0

    jobs = [
        Job(name, needs_the_database, lambda _: IntervalTrigger(seconds=30), "probe")
        for name in ("expire_reservations", "settle_commissions", "purge_sent_messages")
    ]
    runs = Runs(JobContext(shop))
    caplog.set_level(logging.INFO)
    for _ in range(4):
        for job in jobs:
            assert await runs.run(job) is None
    away = False
    for job in jobs:
        assert await runs.run(job) == 0
    lines = [r.getMessage().split(" (")[0] for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == ["database unreachable", "database reachable again"]
