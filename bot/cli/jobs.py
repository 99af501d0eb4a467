"""``keyshop scheduler`` and ``keyshop jobs``: the scheduled jobs without the storefront.

    keyshop scheduler            run every job on its schedule until stopped (Ctrl+C, SIGTERM)
    keyshop jobs list [--json]   each job, its schedule, its last run and its next
    keyshop jobs run NAME        run one job once, now, and exit (for cron, and tests)

Any number of schedulers may run against one database (jobs claim their rows and record what they sent):
`keyshop run` starts one unless SCHEDULER is off. Without BOT_TOKEN the Stars reconciliation is left out
(it asks Telegram); every other job only reads and writes the database (messages go to the outbox, which the
bot processes send)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from datetime import UTC, datetime
from typing import Any

from bot.cli.common import Subparsers, out
from bot.runtime import close_shop, open_shop, open_shop_when_up
from bot.settings import Settings
from core.repositories.jobs import JobRun
from scheduler.jobs import JOBS
from scheduler.runner import Runs, UnknownJob, build_scheduler, find, scheduled
from scheduler.spec import NEEDS, Job, Schedule


async def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import job_context

    services = await open_shop_when_up(settings)  # a long-running process: waits for the database
    ctx, close_clients = job_context(services, settings)
    sched = build_scheduler(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        sched.start()
        names = ", ".join(j.name for j in scheduled(ctx))
        out(f"scheduler running {len(scheduled(ctx))} jobs: {names}; Ctrl+C stops")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if sched.running:
            sched.shutdown(wait=False)
        await close_clients()
        await close_shop(services)
    out("scheduler stopped")
    return 0


async def cmd_jobs_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import job_context

    services = await open_shop(settings)
    ctx, close_clients = job_context(services, settings)
    try:
        try:
            job = find(args.name, ctx)
        except UnknownJob as e:
            out(f"error: {e}")
            return 2
        result = await Runs(ctx).run(job)
    finally:
        await close_clients()
        await close_shop(services)
    if result is None:
        out(f"{job.name}: failed (see the log; `keyshop jobs list` shows the error)")
        return 1
    out(f"{job.name}: {result}")
    return 0


def _row(job: Job, run: JobRun | None, schedule: Schedule, now: datetime) -> dict[str, Any]:
    trigger = job.trigger(schedule)
    last = run.last_started_at if run else None
    tz = schedule.timezone  # both times as the next one is reckoned: in SHOP_TIMEZONE, shown side by side
    nxt = trigger.get_next_fire_time(last, now)
    if nxt is not None and nxt < now:
        nxt = now  # overdue: any running scheduler runs it at its next tick (coalesced into one run)
    return {
        "name": job.name,
        "schedule": str(trigger),
        "about": job.about,
        "needs_bot": job.needs == "reconciler",
        "needs": NEEDS[job.needs] if job.needs else None,
        "runs": run.runs if run else 0,
        "failures": run.failures if run else 0,
        "last_run": last.astimezone(tz).isoformat() if last else None,
        "last_ok": run.last_ok if run else None,
        "last_result": run.last_result if run else None,
        "last_error": run.last_error if run else None,
        "next_run": nxt.astimezone(tz).isoformat() if nxt else None,
    }


async def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime import job_schedule

    services = await open_shop(settings)
    try:
        runs = {r.name: r for r in await services.jobs.runs()}
    finally:
        await close_shop(services)
    schedule = job_schedule(settings)
    now = datetime.now(UTC)
    rows = [_row(j, runs.get(j.name), schedule, now) for j in JOBS]
    if args.json:
        for r in rows:
            out(json.dumps(r, ensure_ascii=False))
        return 0
    for r in rows:
        if r["last_run"] is None:
            last = "never ran"
        else:
            state = "ok" if r["last_ok"] else f"FAILED: {r['last_error']}"
            last = f"last {_short(r['last_run'])} {state} ({r['last_result'] or 0})"
        nxt = _short(r["next_run"]) if r["next_run"] else "-"
        bot = f" [needs {r['needs']}]" if r["needs"] else ""
        out(f"{r['name']:<26} {r['schedule']}{bot}")
        out(f"{'':<26} {r['about']}")
        out(f"{'':<26} {last}; runs {r['runs']}, failures {r['failures']}; next {nxt}")
    return 0


def _short(iso: str) -> str:
    return iso[:19].replace("T", " ")


def register(sub: Subparsers) -> None:
    s = sub.add_parser("scheduler", help="run the scheduled jobs alone (no bot), until stopped")
    s.set_defaults(handler=cmd_scheduler)
    jobs = sub.add_parser("jobs", help="the scheduled jobs: list them, or run one now")
    jsub = jobs.add_subparsers(dest="action", metavar="ACTION")
    ls = jsub.add_parser("list", help="each job, its schedule, its last run and its next")
    ls.add_argument("--json", action="store_true", help="one JSON object per job")
    ls.set_defaults(handler=cmd_jobs_list)
    run = jsub.add_parser("run", help="run one job once, now, and exit (1 if it failed)")
    run.add_argument("name", help="the job's name, as `keyshop jobs list` shows it")
    run.set_defaults(handler=cmd_jobs_run)
