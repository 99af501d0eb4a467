from __future__ import annotations

import argparse
import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from core.vault import new_key_spec


@pytest.fixture(autouse=True)
def shop_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABASE_URL", "VAULT_KEYS", "BOT_TOKEN", "ADMIN_IDS", "SHOP_CURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_product_add_prints_the_new_id_and_list_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "product", "add", "--name", "Steam 10", "--price", "9.90", "--stars", "50")[:2] == (
        0,
        "1\n",
    )
    code, out, _ = run(capsys, "product", "list", "--json")
    rows = json.loads(out)
    assert (
        code == 0 and rows[0]["price"] == 990 and rows[0]["price_stars"] == 50 and rows[0]["available"] == 0
    )
    code, out, _ = run(capsys, "product", "list")
    assert "Steam 10" in out and "$9.90" in out


def test_categories_are_added_and_products_filed_under_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "category", "add", "游戏点卡", "--position", "1")[:2] == (0, "1\n")
    assert run(capsys, "product", "add", "--name", "Steam", "--stars", "5", "--category", "1")[0] == 0
    assert json.loads(run(capsys, "product", "list", "--json")[1])[0]["category_id"] == 1
    assert json.loads(run(capsys, "category", "list", "--json")[1])[0]["name"] == "游戏点卡"
    code, _, err = run(capsys, "product", "add", "--name", "X", "--stars", "5", "--category", "9")
    assert code == 1 and err.startswith("error:")


def test_keys_import_reports_and_stock_shows_the_new_keys(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "keys.txt").write_bytes(b"A1\nA2\nA1\n\n\xff\n" + "A\u202e3\nA\u200b1\n".encode())
    code, out, _ = run(capsys, "keys", "import", "1", "keys.txt")
    assert code == 0
    assert "added      2" in out and "duplicate  2" in out and "invalid    3" in out
    assert "line 4: blank" in out and "line 5: undecodable" in out
    assert "line 6: bidi (holds a bidirectional formatting character" in out
    code, out, _ = run(capsys, "stock", "--json")
    assert json.loads(out)[0]["available"] == 2


def test_keys_import_reads_csv_by_extension(capsys: pytest.CaptureFixture[str], shop_dir: Path) -> None:
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "keys.csv").write_text("serial,卡密\n1,X-1\n2,X-2\n", encoding="utf-8")
    code, out, _ = run(capsys, "keys", "import", "1", "keys.csv")
    assert code == 0 and "added      2" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("keys", "import", "99", "nofile.txt"),
        ("stock", "42"),
        ("product", "add", "--name", "X", "--price", "1.234"),
        ("product", "add", "--name", "X", "--stars", "5", "--min-qty", "5", "--max-qty", "2"),
        ("product", "add", "--name", "", "--stars", "5"),
    ],
)
def test_errors_are_one_line_and_a_nonzero_exit(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_setting_is_reported_by_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_CURRENCY", "NOPE")
    code, _, err = run(capsys, "stock")
    assert code == 1 and err.startswith("error: setting SHOP_CURRENCY:")


def test_first_run_generates_a_private_vault_key_file_and_warns(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, shop_dir: Path
) -> None:
    code, _, _ = run(capsys, "stock")
    key_file = shop_dir / "data" / "vault.keys"
    assert code == 0 and key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "BACK IT UP" in caplog.text


def test_a_database_with_keys_but_no_vault_key_refuses_to_start(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "k.txt").write_text("SECRET\n")
    run(capsys, "keys", "import", "1", "k.txt")
    (shop_dir / "data" / "vault.keys").unlink()
    code, _, err = run(capsys, "stock")
    assert code == 1 and "no vault key was found" in err
    assert not (shop_dir / "data" / "vault.keys").exists()  # no new key silently generated


def test_vault_rotate_moves_every_key_to_the_newest_vault_key(
    capsys: pytest.CaptureFixture[str], shop_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = new_key_spec("one")
    monkeypatch.setenv("VAULT_KEYS", first)
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "k.txt").write_text("K1\nK2\nK3\n")
    run(capsys, "keys", "import", "1", "k.txt")
    monkeypatch.setenv("VAULT_KEYS", f"{first},{new_key_spec('two')}")
    code, out, _ = run(capsys, "vault", "rotate")
    assert code == 0 and out.startswith("3 keys re-encrypted under vault key 'two'")
    assert run(capsys, "vault", "rotate")[1].startswith("0 keys")


def test_db_upgrade_reports_the_revision(capsys: pytest.CaptureFixture[str]) -> None:
    from alembic.script import ScriptDirectory

    from core.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and out == f"database at revision {head}\n"


def test_python_dash_m_bot_is_the_same_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "keys" in proc.stdout and "vault" in proc.stdout


def test_product_set_kind_is_refused_while_the_product_has_open_orders(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    import asyncio

    from bot.runtime import close_shop, open_shop
    from bot.settings import load_settings
    from core.models import STARS

    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "keys.txt").write_bytes(b"A1\nA2\n")
    run(capsys, "keys", "import", "1", "keys.txt")

    async def checkout() -> None:
        s = await open_shop(load_settings())
        try:
            user = await s.users.ensure("telegram", "42", language="en")
            await s.checkout.checkout(user.id, 1, 1, STARS)
        finally:
            await close_shop(s)

    asyncio.run(checkout())
    code, _, err = run(capsys, "product", "set-kind", "1", "manual")
    assert code == 1 and "VPN has 1 open orders" in err and "Traceback" not in err
    assert json.loads(run(capsys, "product", "list", "--json")[1])[0]["delivery_kind"] == "unique"
    run(capsys, "product", "add", "--name", "Idle", "--stars", "5")
    assert run(capsys, "product", "set-kind", "2", "shared")[:2] == (0, "")
    assert json.loads(run(capsys, "product", "list", "--json")[1])[1]["delivery_kind"] == "shared"


def test_a_products_own_commission_rates_are_set_when_added_then_changed_or_given_back_to_the_shops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    add = ("product", "add", "--name", "VPN", "--stars", "20", "--commission-rates", "12.5, 2")
    assert run(capsys, *add)[:2] == (0, "1\n")
    assert run(capsys, "product", "add", "--name", "Plain", "--stars", "5")[0] == 0

    def rates() -> list[object]:
        return [row["commission_rates"] for row in json.loads(run(capsys, "product", "list", "--json")[1])]

    assert rates() == ["12.5,2", None]
    assert run(capsys, "product", "set-commission", "2", "0")[:2] == (0, "")
    assert run(capsys, "product", "set-commission", "1", "none")[0] == 0
    assert rates() == [None, "0"]
    for bad in ("60,50", "10,5,1", "-1", "ten"):
        with pytest.raises(SystemExit):
            run(capsys, "product", "set-commission", "1", bad)
    assert rates() == [None, "0"]
    code, _, err = run(capsys, "product", "set-commission", "9", "10")
    assert code == 1 and err.startswith("error:")
    audit = [json.loads(line) for line in run(capsys, "audit", "--json")[1].splitlines()]
    updated = [r["detail"] for r in audit if r["action"] == "product_updated"]
    assert updated == [{"fields": ["commission_rates"]}] * 2


def test_the_commands_are_the_documented_ones_and_a_group_without_an_action_shows_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import entry_points

    from bot.cli import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    groups = {name: sorted(subcommands(cmd)) for name, cmd in subcommands(build_parser()).items()}
    assert groups == {
        "run": [],
        "sandbox": [],
        "scheduler": [],
        "jobs": ["list", "run"],
        "db": ["upgrade"],
        "product": ["add", "list", "set-commission", "set-kind"],
        "category": ["add", "list"],
        "keys": ["export", "import"],
        "stock": [],
        "vault": ["new-key", "rotate"],
        "audit": [],
        "distributors": [],
        "ledger": ["check"],
        "wechat": ["menu"],
    }
    assert list(groups) == [
        "run",
        "sandbox",
        "scheduler",
        "jobs",
        "db",
        "product",
        "category",
        "keys",
        "stock",
        "vault",
        "audit",
        "distributors",
        "ledger",
        "wechat",
    ]
    for group in ("db", "product", "category", "keys", "vault", "ledger", "wechat"):
        code, out, _ = run(capsys, group)
        assert code == 2 and out.startswith("usage: keyshop")
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "keyshop"]
    assert script.value == "bot.cli:main" and script.load() is main


def test_audit_json_prints_one_object_per_line_newest_first_and_filters_by_actor_and_order(
    capsys: pytest.CaptureFixture[str], shop_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TIMEZONE", "Asia/Shanghai")
    run(capsys, "product", "add", "--name", "网飞 <VIP>", "--stars", "20")
    (shop_dir / "keys.txt").write_bytes(b"SECRET-1\nSECRET-2\n")
    run(capsys, "keys", "import", "1", "keys.txt")
    run(capsys, "product", "set-kind", "1", "manual")
    code, out, _ = run(capsys, "audit", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows and [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[0]["action"] == "product_updated" and rows[0]["product_name"] == "网飞 <VIP>"
    assert rows[0]["actor"] == "cli" and rows[0]["at"].endswith("+08:00")
    assert "SECRET" not in out
    code, out, _ = run(capsys, "audit", "--json", "--actor", "cli", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 1
    assert run(capsys, "audit", "--json", "--actor", "nobody")[1] == ""
    code, out, _ = run(capsys, "audit")
    assert code == 0 and "product_updated" in out and "product #1 网飞 <VIP>" in out
    code, _, err = run(capsys, "audit", "--order", "NOPE")
    assert code == 1 and err.startswith("error:")
    with pytest.raises(SystemExit):
        run(capsys, "audit", "--limit", "0")


def test_keys_export_without_yes_only_counts_and_with_yes_writes_a_private_file_and_audits_it(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "keys.txt").write_text("A-1\nB-2\n卡密-3\n", encoding="utf-8")
    assert run(capsys, "keys", "import", "1", "keys.txt")[0] == 0
    code, out, _ = run(capsys, "keys", "export", "1", "out.txt")
    assert code == 2 and "3 unsold keys" in out and "--yes" in out and not (shop_dir / "out.txt").exists()
    assert '"keys_exported"' not in run(capsys, "audit", "--json")[1]
    code, out, _ = run(capsys, "keys", "export", "1", "out.txt", "--yes")
    assert code == 0 and "exported 3 keys" in out
    written = (shop_dir / "out.txt").read_text(encoding="utf-8")
    assert written.endswith("\n") and sorted(written.splitlines()) == ["A-1", "B-2", "卡密-3"]
    assert stat.S_IMODE((shop_dir / "out.txt").stat().st_mode) == 0o600
    (row,) = [json.loads(r) for r in run(capsys, "audit", "--json")[1].splitlines() if "keys_exported" in r]
    assert row["actor"] == "cli" and row["detail"]["count"] == 3


def test_keys_export_never_overwrites_a_file_and_then_reveals_nothing(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    run(capsys, "product", "add", "--name", "VPN", "--stars", "20")
    (shop_dir / "keys.txt").write_text("A-1\n", encoding="utf-8")
    run(capsys, "keys", "import", "1", "keys.txt")
    code, _, err = run(capsys, "keys", "export", "1", "keys.txt", "--yes")
    assert code == 1 and "exists" in err and (shop_dir / "keys.txt").read_text() == "A-1\n"
    assert "keys_exported" not in run(capsys, "audit", "--json")[1]
    code, _, err = run(capsys, "keys", "export", "9", "new.txt", "--yes")
    assert code == 1 and err.startswith("error:") and not (shop_dir / "new.txt").exists()


def _seed_distributors() -> tuple[int, int]:
    """Through the services: A brings B, B brings C; C buys a $9.90 key and a 50-Star key; A's rates are
    overridden, B is blocked afterwards. (A's id, B's id)"""
    from sqlalchemy import update

    from bot.runtime import close_shop, open_shop
    from bot.settings import load_settings
    from core import tables as t
    from tests.conftest import in_write, pay, stocked

    async def go() -> tuple[int, int]:
        s = await open_shop(load_settings())
        try:
            ids = [(await s.users.ensure("telegram", ext)).id for ext in ("701", "702", "703")]
            for uid, referrer in ((ids[1], ids[0]), (ids[2], ids[1])):
                stmt = update(t.users).where(t.users.c.id == uid).values(referrer_id=referrer)
                await in_write(s, lambda uow, stmt=stmt: uow.repo.conn.execute(stmt))
            await s.distributors.set_rates(ids[0], "0,8", actor="cli")
            pid = await stocked(s, 2)
            for n, currency in enumerate(("USD", "XTR")):
                order = await s.checkout.checkout(ids[2], pid, 1, currency)
                await pay(s, order, charge=f"ch-{n}")
            await s.distributors.set_blocked(ids[1], True, actor="cli")
            return ids[0], ids[1]
        finally:
            await close_shop(s)

    return asyncio.run(go())


def test_distributors_lists_each_distributor_and_currency_as_a_table_or_json_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "distributors")[:2] == (0, "no distributors yet\n")
    assert run(capsys, "distributors", "--json")[:2] == (0, "")
    a, b = _seed_distributors()
    code, out, _ = run(capsys, "distributors", "--json")
    rows = {(r["user_id"], r["currency"]): r for r in map(json.loads, out.splitlines())}
    assert code == 0 and set(rows) == {(a, "USD"), (a, "XTR"), (b, "USD"), (b, "XTR")}
    assert rows[(b, "USD")] | {"spent": 0} == rows[(b, "USD")]  # every kind a distributor holds
    assert {k: rows[(b, "USD")][k] for k in ("earned", "pending", "available", "paid_out")} == {
        "earned": 99,
        "pending": 99,
        "available": 0,
        "paid_out": 0,
    }
    assert rows[(b, "USD")]["blocked"] is True and rows[(b, "USD")]["rates"] is None
    assert (rows[(b, "XTR")]["earned"], rows[(b, "XTR")]["buyers"], rows[(b, "XTR")]["orders"]) == (5, 1, 2)
    # A earns at level 2 at their own 8 % (the shop's is 5 %)
    assert (rows[(a, "USD")]["earned"], rows[(a, "USD")]["rates"], rows[(a, "USD")]["rates_bp"]) == (
        79,
        "0,8",
        [0, 800],
    )
    assert rows[(a, "XTR")]["external_id"] == "701" and rows[(a, "XTR")]["earned"] == 4
    code, out, _ = run(capsys, "distributors")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "user", "who", "cur", "earned", "pending", "available", "paid_out", "rates", "blocked"
    ]  # fmt: skip
    a_usd = [ln for ln in lines if ln.split()[:3] == [str(a), "telegram:701", "USD"]]
    assert len(a_usd) == 1 and "$0.79" in a_usd[0] and "0,8" in a_usd[0]
    assert any(ln.split()[:3] == [str(b), "telegram:702", "XTR"] and ln.endswith("yes") for ln in lines)
