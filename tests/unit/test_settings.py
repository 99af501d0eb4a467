from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from core.vault import new_key_spec
from handlers.money import exponent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "DATA_DIR",
        "DATABASE_URL",
        "VAULT_KEYS",
        "BOT_TOKEN",
        "TELEGRAM_API_URL",
        "ADMIN_IDS",
        "SHOP_CURRENCY",
        "SHOP_TIMEZONE",
        "RESERVATION_TTL_MINUTES",
        "LOG_LEVEL",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "WEBHOOK_LISTEN",
        "REDIS_URL",
        "PAYMENT_PROVIDER_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_put_a_sqlite_file_in_the_data_dir_and_loading_creates_nothing(tmp_path: Path) -> None:
    s = load_settings()
    assert s.database_url_resolved.startswith("sqlite+aiosqlite:///")
    assert s.database_url_resolved.endswith("data/keyshop.db")
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.shop_currency == "USD" and s.admin_ids == [] and s.bot_token is None
    assert list(tmp_path.iterdir()) == []  # no data dir, no key file: loading settings has no side effects


def test_settings_come_from_the_environment_and_dot_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SHOP_CURRENCY=cny\nADMIN_IDS=11, 22\n")
    monkeypatch.setenv("SHOP_TIMEZONE", "Asia/Shanghai")
    s = load_settings()
    assert (s.shop_currency, s.admin_ids, s.shop_timezone) == ("CNY", [11, 22], "Asia/Shanghai")
    assert exponent(s.shop_currency) == 2


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = new_key_spec("k")
    monkeypatch.setenv("VAULT_KEYS", spec)
    monkeypatch.setenv("BOT_TOKEN", "123:SECRET-TOKEN-abcdefghijklmnop")
    shown = repr(load_settings())
    assert "SECRET-TOKEN" not in shown and spec.split(":")[1] not in shown


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADMIN_IDS", "alice,bob"),
        ("SHOP_CURRENCY", "DOGE"),
        ("SHOP_CURRENCY", "XTR"),
        ("SHOP_TIMEZONE", "Mars/Olympus"),
        ("VAULT_KEYS", "k1:short"),
        ("TELEGRAM_API_URL", "ftp://x"),
        ("RESERVATION_TTL_MINUTES", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("BOT_TOKEN", "not-a-token"),
        ("WEBHOOK_URL", "http://insecure.example/hook"),
        ("WEBHOOK_LISTEN", "8080"),
        ("REDIS_URL", "localhost:6379"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    msg = str(e.value)
    assert msg.startswith(f"setting {name}:") and "\n" not in msg
