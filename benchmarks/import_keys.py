"""Import of 1,000,000 keys: keys per second and peak RSS, beside a bare-driver baseline in the same run.

    python benchmarks/import_keys.py                  # SQLite (a temporary file), 1,000,000 keys
    python benchmarks/import_keys.py --keys 200000 --database-url postgresql://postgres@127.0.0.1/test

keyshop: ``StockService.import_keys`` on a generated file: parse, normalize, reject bad lines, encrypt
(AES-256-GCM) and blind-index (HMAC-SHA256) every key, stage in batches, publish all at once skipping
duplicates. Baseline: what the popular shops do, on the same driver: read lines and insert them as
plaintext in batches into a table with a UNIQUE index on the key. Each side runs in its own process, so
the peak RSS printed is that import's own (targets: >= 50,000 keys/s under 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCH = 10_000


def generate(path: Path, n: int) -> None:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    with path.open("w") as f:
        for _ in range(n // 1000):
            f.write(
                "".join(
                    "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4)) + "\n"
                    for _ in range(1000)
                )
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def child_keyshop(url: str | None, path: Path) -> dict[str, float]:
    from benchmarks.common import fresh_database
    from core.context import Context
    from core.services import Services
    from core.services.catalog import ProductDraft
    from core.vault import Vault, new_key_spec

    db = await fresh_database(url)
    try:
        shop = Services(Context(db, Vault.from_spec(new_key_spec())))
        pid = await shop.catalog.add_product(ProductDraft(name="bench", price_stars=1))
        start = time.perf_counter()
        with path.open("rb") as f:
            rep = await shop.stock.import_keys(pid, f)
        took = time.perf_counter() - start
        return {"keys": rep.added, "seconds": took, "rss": peak_rss_mb()}
    finally:
        await db.dispose()


async def child_baseline(url: str | None, path: Path) -> dict[str, float]:
    from benchmarks.common import driver_dsn, fresh_database

    db = await fresh_database(url)
    dsn = driver_dsn(db)
    sqlite = db.is_sqlite
    await db.dispose()
    ddl = "CREATE TABLE plain_keys (id {pk}, product_id INTEGER NOT NULL, key TEXT NOT NULL, UNIQUE (product_id, key))"
    added = 0
    start = time.perf_counter()
    if sqlite:
        import aiosqlite

        async with aiosqlite.connect(dsn, isolation_level=None) as c:
            await c.execute(ddl.format(pk="INTEGER PRIMARY KEY"))
            await c.execute("PRAGMA synchronous=NORMAL")
            with path.open() as f:
                while batch := [(line.strip(),) for _, line in zip(range(BATCH), f, strict=False)]:
                    await c.execute("BEGIN IMMEDIATE")
                    await c.executemany(
                        "INSERT OR IGNORE INTO plain_keys (product_id, key) VALUES (1, ?)", batch
                    )
                    await c.execute("COMMIT")
            added = (await (await c.execute("SELECT count(*) FROM plain_keys")).fetchone())[0]  # type: ignore[index]
    else:
        import asyncpg

        c = await asyncpg.connect(dsn)
        try:
            await c.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))
            with path.open() as f:
                while batch := [(line.strip(),) for _, line in zip(range(BATCH), f, strict=False)]:
                    await c.executemany(
                        "INSERT INTO plain_keys (product_id, key) VALUES (1, $1) ON CONFLICT DO NOTHING",
                        batch,
                    )
            added = await c.fetchval("SELECT count(*) FROM plain_keys")
        finally:
            await c.close()
    return {"keys": added, "seconds": time.perf_counter() - start, "rss": peak_rss_mb()}


def run_child(which: str, url: str | None, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", which, "--file", str(path)]
    if url:
        cmd += ["--database-url", url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--child", choices=["keyshop", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.child:
        fn = child_keyshop if args.child == "keyshop" else child_baseline
        print(json.dumps(asyncio.run(fn(args.database_url, args.file))))
        return

    kind = "postgresql" if args.database_url and args.database_url.startswith("postgres") else "sqlite"
    with tempfile.TemporaryDirectory(prefix="keyshop-import-") as tmp:
        path = Path(tmp) / "keys.txt"
        generate(path, args.keys)
        print(f"import benchmark: {kind}, {args.keys:,} keys ({path.stat().st_size / 2**20:.1f} MiB file)")
        ours = run_child("keyshop", args.database_url, path)
        base = run_child("baseline", args.database_url, path)
    ours_rate, base_rate = ours["keys"] / ours["seconds"], base["keys"] / base["seconds"]
    print(
        f"  keyshop import (encrypted)        {ours_rate:9,.0f} keys/s  peak RSS {ours['rss']:6.0f} MB  ({ours['seconds']:.1f} s)"
    )
    print(
        f"  plaintext INSERT, same driver     {base_rate:9,.0f} keys/s  peak RSS {base['rss']:6.0f} MB  ({base['seconds']:.1f} s)"
    )
    print(
        f"  ratio                             {ours_rate / base_rate:9.2f}   (targets: >= 50,000 keys/s, < 300 MB)"
    )


if __name__ == "__main__":
    main()
