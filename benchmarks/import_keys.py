"""Import of 1,000,000 keys: keys per second and peak RSS, beside a bare-driver baseline in the same run.

    python benchmarks/import_keys.py                  # SQLite (a temporary file), 1,000,000 keys
    python benchmarks/import_keys.py --keys 200000 --database-url postgresql://postgres@127.0.0.1/test

keyshop: ``StockService.import_keys`` on a generated file: parse, normalize, reject bad lines, encrypt
(AES-256-GCM) and blind-index (HMAC-SHA256) every key, stage in batches, publish all at once skipping
duplicates. Baseline: what the popular shops do, on the same driver keyshop uses: read lines and store
them as plaintext in a table with a UNIQUE index on the key, skipping duplicates (sqlite3: executemany of
INSERT OR IGNORE in batches; psycopg: COPY in batches to a staging table, then one INSERT … ON CONFLICT
DO NOTHING). Each side runs in its own process, so
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
    """Plaintext keys into a table with a UNIQUE index, duplicates skipped, on keyshop's own driver in
    its fastest bulk form: sqlite3 ``executemany`` of ``INSERT OR IGNORE`` in transactions of BATCH keys;
    psycopg ``COPY`` in batches into a staging table, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING``."""
    from benchmarks.common import driver_dsn, fresh_database

    db = await fresh_database(url)
    dsn = driver_dsn(db)
    sqlite = db.is_sqlite
    await db.dispose()
    ddl = "CREATE TABLE plain_keys (id {pk}, product_id INTEGER NOT NULL, key TEXT NOT NULL, UNIQUE (product_id, key))"
    start = time.perf_counter()
    if sqlite:
        import sqlite3

        c = sqlite3.connect(dsn, isolation_level=None)
        try:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute(ddl.format(pk="INTEGER PRIMARY KEY"))
            with path.open() as f:
                while batch := [(line.strip(),) for _, line in zip(range(BATCH), f, strict=False)]:
                    c.execute("BEGIN IMMEDIATE")
                    c.executemany("INSERT OR IGNORE INTO plain_keys (product_id, key) VALUES (1, ?)", batch)
                    c.execute("COMMIT")
            added = c.execute("SELECT count(*) FROM plain_keys").fetchone()[0]
        finally:
            c.close()
    else:
        import psycopg

        with psycopg.connect(dsn) as pg:
            pg.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))
            pg.execute("CREATE TABLE plain_staging (key TEXT NOT NULL)")
            pg.commit()
            with path.open() as f:
                while keys := [line.strip() for _, line in zip(range(BATCH), f, strict=False)]:
                    with pg.cursor() as cur, cur.copy("COPY plain_staging (key) FROM STDIN") as copy:
                        for key in keys:
                            copy.write_row((key,))
                    pg.commit()
            pg.execute(
                "INSERT INTO plain_keys (product_id, key) SELECT 1, key FROM plain_staging ORDER BY key "
                "ON CONFLICT DO NOTHING"
            )
            pg.execute("DROP TABLE plain_staging")
            pg.commit()
            row = pg.execute("SELECT count(*) FROM plain_keys").fetchone()
            added = row[0] if row else 0
    return {"keys": added, "seconds": time.perf_counter() - start, "rss": peak_rss_mb()}


def run_child(which: str, url: str | None, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", which, "--file", str(path)]
    if url:
        cmd += ["--database-url", url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--child", choices=["keyshop", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.child:
        fn = child_keyshop if args.child == "keyshop" else child_baseline
        print(json.dumps(asyncio.run(fn(args.database_url, args.file))))
        return 0

    kind = "postgresql" if args.database_url and args.database_url.startswith("postgres") else "sqlite"
    how = "psycopg COPY" if kind == "postgresql" else "sqlite3 executemany"
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="keyshop-import-") as tmp:
        path = Path(tmp) / "keys.txt"
        generate(path, args.keys)
        print(
            f"import benchmark: {kind}, {args.keys:,} keys ({path.stat().st_size / 2**20:.1f} MiB file), "
            f"best of {args.rounds} alternating round(s)"
        )
        for _ in range(args.rounds):
            for side in ("keyshop", "baseline"):
                got = run_child(side, args.database_url, path)
                if (
                    side not in best
                    or got["keys"] / got["seconds"] > best[side]["keys"] / best[side]["seconds"]
                ):
                    best[side] = got
    ours, base = best["keyshop"], best["baseline"]
    ours_rate, base_rate = ours["keys"] / ours["seconds"], base["keys"] / base["seconds"]
    rows = [
        ("keyshop import (encrypted, staged, published)", ours, ours_rate),
        (f"plaintext, same driver ({how})", base, base_rate),
    ]
    for label, m, rate in rows:
        print(f"  {label:<48} {rate:9,.0f} keys/s  peak RSS {m['rss']:5.0f} MB  ({m['seconds']:.1f} s)")
    print(f"  {'ratio':<48} {ours_rate / base_rate:9.2f}   (targets: >= 50,000 keys/s, < 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
