"""Firing prepared HTTP requests from a process of their own, as WeChat's servers fire pushes and
notifies from theirs: the shop under test (in the benchmark's process) is charged only for serving them,
and each answer is timed where it is sent, on the other core.

``async with PusherProcess() as pusher: wall, answers = await pusher.fire(url, requests, concurrency)``.
The child is a fresh interpreter that imports this module only (not keyshop, nor whatever the
benchmark's main module imports), talking over an authenticated local connection; requests and answers are
plain data. Python's asyncio only: an HTTP client library would cost the pusher more per request than
the bare handlers cost the server."""

from __future__ import annotations

import asyncio
import time
import traceback
from multiprocessing.connection import Connection
from types import TracebackType
from urllib.parse import urlencode, urlsplit

from benchmarks.child import connect, start_child, stop_child

PATIENCE = 60.0  # seconds a request waits for its answer at all

Request = tuple[dict[str, str], dict[str, str], bytes]  # query, headers, body
Answered = tuple[float, int, str]  # seconds from sending, HTTP status (0: none), body (or the error)


async def fire(url: str, requests: list[Request], concurrency: int = 0) -> tuple[float, list[Answered]]:
    """POST every request to ``url``, ``concurrency`` at a time (0: all at once), each on a connection
    of its own: the wall time from the first sent to the last answered, and each request's answer in
    order. The requests are written as prepared bytes on bare asyncio streams: the pusher spends
    little of its core per request, so the answers' times are the server's."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    prepared = [_http(target.netloc, target.path, query, headers, body) for query, headers, body in requests]
    answers: list[Answered] = [(0.0, 0, "")] * len(requests)

    async def one(i: int) -> None:
        sent = time.perf_counter()
        writer = None
        try:
            async with asyncio.timeout(PATIENCE):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(prepared[i])
                raw = await reader.read()  # to the end: the request asked the server to close
            answers[i] = (time.perf_counter() - sent, *_parsed(raw))
        except (TimeoutError, OSError, ValueError) as e:
            answers[i] = (time.perf_counter() - sent, 0, type(e).__name__)
        finally:
            if writer is not None:
                writer.close()

    began = time.perf_counter()
    if concurrency:
        indices = iter(range(len(requests)))

        async def worker() -> None:
            for i in indices:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        await asyncio.gather(*(one(i) for i in range(len(requests))))
    return time.perf_counter() - began, answers


def _http(netloc: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> bytes:
    target = f"{path or '/'}?{urlencode(query)}" if query else path or "/"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {netloc}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _parsed(raw: bytes) -> tuple[int, str]:
    """Status and body of a whole HTTP/1.1 response with a Content-Length (what aiohttp's server sends
    for these answers); ValueError for anything else."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    if not sep or not status_line.startswith("HTTP/1."):
        raise ValueError("not an HTTP response")
    if any(f.lower().startswith("transfer-encoding:") for f in fields):
        raise ValueError("a chunked answer: the pusher reads Content-Length bodies only")
    return int(status_line.split()[1]), body.decode()


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    while True:
        request = await loop.run_in_executor(None, conn.recv)
        if request is None:
            return
        try:
            result = await fire(*request)
        except Exception:
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("ok", result))


def child(address: str, authkey: str) -> None:
    """The pusher process's entry point (``PusherProcess`` starts it with ``python -c``)."""
    with connect(address, authkey) as conn:
        asyncio.run(_serve(conn))


class PusherProcess:
    def __init__(self) -> None:
        self._conn: Connection | None = None
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> PusherProcess:
        self._proc, self._conn = await start_child("benchmarks.pusher", what="the pusher")
        return self

    async def fire(
        self, url: str, requests: list[Request], concurrency: int = 0
    ) -> tuple[float, list[Answered], float]:
        """``fire`` in the pusher's process; also this process's CPU seconds meanwhile (the server's)."""
        assert self._conn is not None
        loop = asyncio.get_running_loop()
        cpu = time.process_time()
        self._conn.send((url, requests, concurrency))
        status, result = await loop.run_in_executor(None, self._conn.recv)
        used = time.process_time() - cpu
        if status == "error":
            raise RuntimeError(f"the pusher failed:\n{result}")
        wall, answers = result
        return wall, answers, used

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await stop_child(self._proc, self._conn)
