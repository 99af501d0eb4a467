"""Database threads and the event loop's hand-off to them, built for many small jobs.

``concurrent.futures.ThreadPoolExecutor`` with ``run_in_executor`` costs, per job, a concurrent future
chained to an asyncio future and a wake-up of the event loop (a write to its self-pipe) for every result.
A ``Lane`` hands results back in batches instead:

- a thread that finishes a job while the event loop has not yet collected the previous results adds to
  them and does not wake the loop again;
- while jobs are backed up (``HOLD_BEHIND`` queued), a finished job's result is held for the ones after
  it: up to ``HOLD_MAX`` results, for at most ``HOLD_FOR`` seconds (a timer thread hands them over if the
  jobs after them take longer). Waking an idle event loop for every result costs a system call on each
  side and, worse, a contest for the GIL with the very thread that runs the next job while it holds
  SQLite's write lock: measured on the purchase path, holding results cut CPU per order by a third.

Jobs queue in order; a job whose caller was cancelled before its turn is skipped (one already running
finishes).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()
_Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]


class _Batch:
    """Results for one event loop that it has not collected yet."""

    __slots__ = ("items", "since", "woken")

    def __init__(self, since: float) -> None:
        self.items: list[_Outcome] = []
        self.since = since  # when the first of them was ready
        self.woken = False  # the loop has been told (it takes what is added meanwhile too)


class Lane:
    """``threads`` threads taking jobs from one queue (one thread: jobs run strictly one after another)."""

    HOLD_MAX = 16  # results held back for the jobs queued behind them, at most
    HOLD_FOR = 0.002  # seconds a result may be held back, at most
    HOLD_BEHIND = 2  # jobs that must be queued for results to be held (a backlog, not a lone next job)

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self._jobs: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._done_lock = threading.Lock()
        self._done: dict[asyncio.AbstractEventLoop, _Batch] = {}
        self._timer = threading.Condition(self._done_lock)  # the timer thread waits on it for held results
        self._held_until: float | None = None  # when the timer thread must hand held results over
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(threads)
        ]
        self._threads.append(threading.Thread(target=self._time_out, name=f"{name}_timer", daemon=True))
        self._started = False
        self._stopped = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queue ``fn(*args)``; its result (or exception) comes back on the caller's event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._ready:
            if self._stopped:
                raise RuntimeError(f"{self.name} has stopped")
            if not self._started:
                self._started = True
                for t in self._threads:
                    t.start()
            self._jobs.append((future, loop, fn, args))
            self._ready.notify()
        return future

    def stop(self) -> None:
        """Let the queued jobs finish, hand every result back, then end the threads (blocking: call it off
        the event loop)."""
        workers = self._threads[:-1]
        with self._ready:
            self._stopped = True
            started = self._started
            for _ in workers:
                self._jobs.append(_STOP)
            self._ready.notify_all()
        if started:
            for t in workers:
                t.join()
        with self._timer:
            self._timer.notify()  # the timer thread hands over what is still held, and ends
        if started:
            self._threads[-1].join()
        self._wake_held()

    # ------------------------------------------------------------------ on the lane's threads

    def _work(self) -> None:
        jobs, ready = self._jobs, self._ready
        while True:
            with ready:
                while not jobs:
                    ready.wait()
                item = jobs.popleft()
            if item is _STOP:
                return
            future, loop, fn, args = item
            if future.cancelled():  # its caller gave up before its turn: it never runs
                continue
            try:
                result, error = fn(*args), None
            except BaseException as e:  # handed to the caller, whatever it is
                result, error = None, e
            self._hand_back(loop, future, result, error)

    def _hand_back(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        result: Any,
        error: BaseException | None,
    ) -> None:
        now = time.monotonic()
        with self._done_lock:
            batch = self._done.get(loop)
            if batch is None:
                batch = self._done[loop] = _Batch(now)
            batch.items.append((future, result, error))
            if batch.woken:  # the loop is already told: it takes this one with the rest
                return
            if (
                len(self._jobs) >= self.HOLD_BEHIND
                and len(batch.items) < self.HOLD_MAX
                and now - batch.since < self.HOLD_FOR
            ):
                if self._held_until is None:  # the timer thread hands them over if nobody else does
                    self._held_until = batch.since + self.HOLD_FOR
                    self._timer.notify()
                return
            batch.woken = True
        self._wake(loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            with self._done_lock:
                self._done.pop(loop, None)

    def _time_out(self) -> None:
        """The timer thread: hands over results held back longer than ``HOLD_FOR``."""
        while True:
            with self._timer:
                while self._held_until is None and not self._stopped:
                    self._timer.wait()
                if self._held_until is not None:
                    late = self._held_until - time.monotonic()
                    if late > 0:
                        self._timer.wait(late)
                        continue
                    self._held_until = None
                elif self._stopped:
                    return
            self._wake_held()

    def _wake_held(self) -> None:
        with self._done_lock:
            loops = [loop for loop, batch in self._done.items() if not batch.woken]
            for loop in loops:
                self._done[loop].woken = True
        for loop in loops:
            self._wake(loop)

    # ------------------------------------------------------------------ on the event loop

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._done_lock:
            batch = self._done.pop(loop, None)
        for future, result, error in batch.items if batch is not None else ():
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
