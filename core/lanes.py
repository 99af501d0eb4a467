"""Database threads and the event loop's hand-off to them, built for many small jobs.

``concurrent.futures.ThreadPoolExecutor`` with ``run_in_executor`` costs, per job, a concurrent future
chained to an asyncio future and a wake-up of the event loop (a write to its self-pipe) for every result.
Under load a ``Lane`` hands results back in batches instead: a thread that finishes a job while the event
loop has not yet collected the previous results adds to them and does not wake the loop again. Jobs queue in
order; a job whose caller was cancelled before its turn is skipped (one already running finishes).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()
_Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]


class Lane:
    """``threads`` threads taking jobs from one queue (one thread: jobs run strictly one after another)."""

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self._jobs: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._done_lock = threading.Lock()
        self._done: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        ] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(threads)
        ]
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
        """Let the queued jobs finish, then end the threads (blocking: call it off the event loop)."""
        with self._ready:
            self._stopped = True
            started = self._started
            for _ in self._threads:
                self._jobs.append(_STOP)
            self._ready.notify_all()
        if started:
            for t in self._threads:
                t.join()

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
        with self._done_lock:
            batch = self._done.get(loop)
            if batch is not None:  # the loop is already told: it takes this one with the rest
                batch.append((future, result, error))
                return
            self._done[loop] = [(future, result, error)]
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            with self._done_lock:
                self._done.pop(loop, None)

    # ------------------------------------------------------------------ on the event loop

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._done_lock:
            batch = self._done.pop(loop, [])
        for future, result, error in batch:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
