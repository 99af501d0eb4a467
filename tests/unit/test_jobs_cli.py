"""``keyshop jobs list``, ``keyshop jobs run NAME`` and ``keyshop scheduler``, as a cron user or an
operator calls them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROCESSES
from tests.unit.test_cli import run, shop_dir  # noqa: F401 - shop_dir: the autouse fixture

pytestmark = PROCESSES


def test_jobs_run_runs_one_job_once_and_jobs_list_shows_its_last_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "jobs", "list", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and rows["expire_reservations"]["last_run"] is None
    assert rows["reconcile_stars"]["needs_bot"] is True
    assert "interval[0:00:30]" in rows["expire_reservations"]["schedule"]

    assert run(capsys, "jobs", "run", "expire_reservations")[:2] == (0, "expire_reservations: 0\n")
    code, out, _ = run(capsys, "jobs", "list", "--json")
    row = {r["name"]: r for r in map(json.loads, out.splitlines())}["expire_reservations"]
    assert (row["runs"], row["failures"], row["last_ok"], row["last_result"]) == (1, 0, True, 0)
    assert row["next_run"] is not None and row["last_run"] is not None

    code, out, _ = run(capsys, "jobs", "list")
    assert code == 0 and "expire_reservations" in out and "runs 1, failures 0" in out and "never ran" in out


def test_jobs_list_shows_the_last_and_the_next_run_both_in_the_shops_time_zone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TIMEZONE", "Asia/Shanghai")
    assert run(capsys, "jobs", "run", "expire_reservations")[0] == 0
    code, out, _ = run(capsys, "jobs", "list", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and rows["expire_reservations"]["last_run"].endswith("+08:00")
    assert rows["payout_run"]["next_run"].endswith("T10:00:00+08:00")  # Mondays 10:00 in Shanghai


def test_jobs_run_refuses_an_unknown_job_and_one_that_needs_the_bot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "jobs", "run", "make_coffee")
    assert code == 2 and "no job named 'make_coffee'" in out
    code, out, _ = run(capsys, "jobs", "run", "reconcile_stars")
    assert code == 2 and "BOT_TOKEN" in out


def test_keyshop_scheduler_runs_the_jobs_at_start_and_stops_cleanly_on_sigterm(shop_dir: Path) -> None:  # noqa: F811
    env = {**os.environ, "DATA_DIR": str(shop_dir / "data"), "LOG_LEVEL": "INFO"}
    env.pop("BOT_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "scheduler"],
        cwd=shop_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        ran = False
        while time.monotonic() < deadline and not ran:
            time.sleep(0.2)
            listed = subprocess.run(
                [sys.executable, "-m", "bot", "jobs", "list", "--json"],
                cwd=shop_dir,
                env=env,
                capture_output=True,
                text=True,
            )
            rows = [json.loads(line) for line in listed.stdout.splitlines()]
            ran = any(r["name"] == "clear_abandoned_imports" and r["runs"] >= 1 for r in rows)
        assert ran, "the scheduler never ran its at-start job"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "scheduler running" in out and "scheduler stopped" in out
    assert "Traceback" not in err
