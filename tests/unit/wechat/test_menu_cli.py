"""``keyshop wechat menu`` against the WeChat emulator: the menu the dialogue answers (商品 / 我的订单 /
推广 as CLICK buttons keyed ``catalog``, ``orders``, ``invite``), ``--dry-run`` printing it only, and
one-line errors with a non-zero exit when the settings are missing or WeChat refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import main
from handlers.wechat.dialogue import MENU_KEYS
from sandbox.wechat import Emulator, serve

APP_ID = "wx0123456789abcdef"
SECRET = "menu-cli-app-secret-000000000000"
MENU = [
    {"type": "click", "name": "商品", "key": "catalog"},
    {"type": "click", "name": "我的订单", "key": "orders"},
    {"type": "click", "name": "推广", "key": "invite"},
]


@pytest.fixture(autouse=True)
def shop_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "DATABASE_URL",
        "VAULT_KEYS",
        "BOT_TOKEN",
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
async def emu(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    e = Emulator(appid=APP_ID, secret=SECRET)
    runner, url = await serve(e)
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", SECRET)
    monkeypatch.setenv("WECHAT_API_URL", url)
    yield e
    await runner.cleanup()


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command in a thread of its own (it runs its own event loop), the emulator serving on this one."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_menu_is_created_with_the_keys_the_dialogue_answers(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run(capsys, "wechat", "menu")
    assert (code, err) == (0, "")
    assert out.startswith("menu created: 商品 / 我的订单 / 推广")
    assert emu.menu == MENU
    assert {b["key"] for b in emu.menu} == MENU_KEYS


async def test_dry_run_prints_the_json_and_calls_nothing(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run(capsys, "wechat", "menu", "--dry-run")
    assert code == 0 and json.loads(out) == {"button": MENU}
    assert emu.menu is None and not emu.calls


async def test_dry_run_needs_no_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run(capsys, "wechat", "menu", "--dry-run")
    assert code == 0 and json.loads(out) == {"button": MENU}


async def test_without_the_apps_credentials_it_says_which_settings_in_one_line(
    capsys: pytest.CaptureFixture[str], shop_dir: Path
) -> None:
    code, _, err = await run(capsys, "wechat", "menu")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: set WECHAT_APP_ID and WECHAT_APP_SECRET")
    assert not (shop_dir / "data").exists()  # nothing opened


async def test_wechats_refusal_is_one_line_without_the_secret(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECHAT_APP_SECRET", "a-wrong-secret-0000000000000000")
    code, _, err = await run(capsys, "wechat", "menu")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: WeChat refused the menu:") and "40125" in err
    assert "a-wrong-secret" not in err and emu.menu is None


async def test_an_unreachable_api_is_one_line_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", SECRET)
    monkeypatch.setenv("WECHAT_API_URL", "http://127.0.0.1:9")
    code, _, err = await run(capsys, "wechat", "menu")
    assert code == 1 and err.count("\n") == 1 and "unreachable" in err and SECRET not in err
