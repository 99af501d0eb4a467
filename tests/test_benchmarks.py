"""The benchmarks are scripts, not tests (their figures need a quiet machine and minutes). This only checks
that each still runs end to end, emulator process and all, with a handful of buyers."""

from __future__ import annotations

import re

import pytest

from benchmarks import flash_sale, import_keys, orders, reminders, storefront, wechat


async def test_the_storefront_benchmark_measures_keyshop_beside_the_journeys_echo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await storefront.main(["--buyers", "3", "--concurrency", "3", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "keyshop browse" in out and "journey's echo" in out and "ratio keyshop/echo" in out


async def test_the_flash_sale_benchmark_sells_exactly_its_keys_and_reports_the_deadlines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await flash_sale.main(["--buyers", "5", "--keys", "2", "--window", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "missed Telegram's 15 s: 0" in out and "missed Telegram's 10 s: 0" in out
    assert "keys sold                      2" in out


async def test_the_orders_benchmark_runs_its_anchors_on_the_statements_keyshop_executes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The anchors are fair only while they execute what keyshop does: a change to the purchase path's
    statements shows here until benchmarks/orders.py mirrors it."""
    assert await orders.main(["--orders", "20", "--concurrency", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "the hand-written anchors execute the same list" in out, out
    assert "keyshop / physical limit" in out and "keyshop / hand-written on sqlite3" in out


def test_the_import_benchmark_imports_beside_its_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert import_keys.main(["--keys", "2000"]) == 0
    out = capsys.readouterr().out
    assert "keyshop import" in out and "plaintext, same driver (sqlite3 executemany)" in out


async def test_the_reminders_benchmark_sends_each_reminder_once_within_telegrams_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await reminders.main(["--reminders", "40", "--schedulers", "2"]) == 0
    out = capsys.readouterr().out
    assert "theoretical minimum at 30/s" in out and "minimum / keyshop" in out
    for count in ("lost", "duplicated", "unhandled 429"):
        assert re.search(rf"{count}\s+0\s", out), out


async def test_the_wechat_benchmark_answers_every_push_in_time_and_delivers_every_notified_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await wechat.main(["--users", "30", "--rounds", "1", "--notifies", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"keyshop callback\s+30 pushes", out) and "bare aiohttp handler" in out, out
    assert out.count("missed WeChat's 5 s: 0  (late 0, invalid 0") == 2, out
    assert "answered passively 30, success 0" in out
    assert "answered 204: 20 of 20   orders delivered: 20 of 20" in out and "answered 204: 20 of 20\n" in out
