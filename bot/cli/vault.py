"""``keyshop vault rotate`` and ``keyshop vault new-key``: the keys that encrypt card keys."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from bot.cli.common import Subparsers, out, with_shop
from bot.settings import Settings
from core.services import Services


async def cmd_vault_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async def go(s: Services) -> int:
        bar = tqdm(unit="key", desc="re-encrypting", disable=not sys.stderr.isatty(), file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            n = await s.stock.rotate_vault(progress=progress)
        finally:
            bar.close()
        out(f"{n} keys re-encrypted under vault key {s.ctx.vault.current_kid!r}")
        return 0

    return await with_shop(settings, go)


async def cmd_vault_new_key(args: argparse.Namespace, settings: Settings) -> int:
    from core.vault import new_key_spec

    out(new_key_spec(args.kid))
    return 0


def register(sub: Subparsers) -> None:
    vault = sub.add_parser("vault", help="encryption keys").add_subparsers(
        dest="vault_command", metavar="ACTION"
    )
    rot = vault.add_parser("rotate", help="re-encrypt all keys under the newest vault key (resumable)")
    rot.set_defaults(handler=cmd_vault_rotate)
    nk = vault.add_parser("new-key", help="print a new KID:BASE64 entry to append to VAULT_KEYS")
    nk.add_argument("--kid")
    nk.set_defaults(handler=cmd_vault_new_key)
