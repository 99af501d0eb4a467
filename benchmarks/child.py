"""A benchmark's helper process: a fresh interpreter running ``<module>.child(address, authkey, *args)``,
talking to this one over an authenticated local connection (``multiprocessing.connection``). The
emulator (``benchmarks.emulated``) and the WeChat pusher (``benchmarks.pusher``) run in one, so that
the side being measured has the cores' share the real platform would leave it. Standard library only: the
child imports nothing it does not need."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def start_child(module: str, *args: str, what: str) -> tuple[asyncio.subprocess.Process, Connection]:
    """Start ``module.child`` in a new process and wait until it has connected back; the process and the
    connection. ``what`` names the child in the error raised when it exits before connecting."""
    loop = asyncio.get_running_loop()
    authkey = secrets.token_bytes(16)
    with Listener(("127.0.0.1", 0), authkey=authkey) as listener:
        host, port = listener.address
        code = f"import sys; from {module} import child; child(*sys.argv[1:])"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, f"{host}:{port}", authkey.hex(), *args, cwd=ROOT
        )
        accepting: asyncio.Future[Connection] = loop.run_in_executor(None, listener.accept)
        exited: asyncio.Future[Any] = asyncio.ensure_future(proc.wait())
        await asyncio.wait([accepting, exited], return_when=asyncio.FIRST_COMPLETED)
        if not accepting.done():
            listener.close()  # the child died before it connected: stop waiting for it
            with contextlib.suppress(OSError):
                await accepting
            raise RuntimeError(f"{what}'s process exited with {proc.returncode}")
        exited.cancel()
        return proc, accepting.result()


def connect(address: str, authkey: str) -> Connection:
    """In the child: the connection back to the process that started it."""
    host, _, port = address.rpartition(":")
    return Client((host, int(port)), authkey=bytes.fromhex(authkey))


async def stop_child(proc: asyncio.subprocess.Process | None, conn: Connection | None) -> None:
    """Tell the child to stop (``None``), then wait for it up to 10 s before killing it."""
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.send(None)
        conn.close()
    if proc is not None and proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
