from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
from pydantic import Field

from bot.settings import ConcernSettings, Settings, SettingsError, load_settings
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
        "COMMISSION_RATES",
        "COMMISSION_HOLD_DAYS",
        "LOG_LEVEL",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "WEBHOOK_LISTEN",
        "REDIS_URL",
        "PAYMENT_PROVIDER_TOKEN",
        "SUMMARY_TIME",
        "PAYOUT_SCHEDULE",
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_AES_KEY",
        "WECHAT_CALLBACK_PATH",
        "WECHAT_API_URL",
        "WECHAT_PUBLIC_URL",
        "WECHAT_OAUTH_URL",
        "WECHAT_TEMPLATE_REMINDER",
        "WECHAT_TEMPLATE_REMINDER_FIELDS",
        "WECHATPAY_MCH_ID",
        "WECHATPAY_PRIVATE_KEY_FILE",
        "WECHATPAY_CERT_SERIAL",
        "WECHATPAY_API_V3_KEY",
        "WECHATPAY_PUBLIC_KEY_FILE",
        "WECHATPAY_PUBLIC_KEY_ID",
        "WECHATPAY_PLATFORM_CERT_FILE",
        "WECHATPAY_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_put_a_sqlite_file_in_the_data_dir_and_loading_creates_nothing(tmp_path: Path) -> None:
    s = load_settings()
    assert s.database.url.startswith("sqlite:///")
    assert s.database.url.endswith("data/keyshop.db")
    assert s.telegram.telegram_api_url == "https://api.telegram.org"
    assert s.shop.shop_currency == "USD" and s.telegram.admin_ids == [] and s.telegram.bot_token is None
    assert list(tmp_path.iterdir()) == []  # no data dir, no key file: loading settings has no side effects


def test_settings_come_from_the_environment_and_dot_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SHOP_CURRENCY=cny\nADMIN_IDS=11, 22\n")
    monkeypatch.setenv("SHOP_TIMEZONE", "Asia/Shanghai")
    s = load_settings()
    assert (s.shop.shop_currency, s.telegram.admin_ids, s.shop.shop_timezone) == (
        "CNY",
        [11, 22],
        "Asia/Shanghai",
    )
    assert exponent(s.shop.shop_currency) == 2


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
        ("WEBHOOK_SECRET", "has space"),
        ("RESERVATION_TTL_MINUTES", "1441"),
        ("RESERVATION_TTL_MINUTES", "soon"),
        ("COMMISSION_RATES", "10,5,2"),
        ("COMMISSION_RATES", "10.555"),
        ("COMMISSION_RATES", "-1"),
        ("COMMISSION_RATES", "60,50"),
        ("COMMISSION_RATES", "ten"),
        ("COMMISSION_HOLD_DAYS", "-1"),
        ("SUMMARY_TIME", "9"),
        ("SUMMARY_TIME", "24:00"),
        ("SUMMARY_TIME", "9:00 pm"),
        ("PAYOUT_SCHEDULE", "weekly"),
        ("PAYOUT_SCHEDULE", "0 10 * * 1"),  # APScheduler's 1 is Tuesday, cron's Monday: refused
        ("PAYOUT_SCHEDULE", "0 25 * * mon"),
        ("WECHAT_APP_ID", "not-an-appid"),
        ("WECHAT_TOKEN", "has space"),
        ("WECHAT_AES_KEY", "tooshort"),
        ("WECHAT_CALLBACK_PATH", "wechat"),
        ("WECHAT_API_URL", "api.weixin.qq.com"),
        ("WECHAT_PUBLIC_URL", "shop.example.com"),
        ("WECHAT_TEMPLATE_REMINDER", "会员到期提醒"),  # the template's title, not its id
        ("WECHAT_TEMPLATE_REMINDER", "ngqIpbwh8bUf csSECmog"),
        ("WECHAT_TEMPLATE_REMINDER_FIELDS", "thing1"),
        ("WECHAT_TEMPLATE_REMINDER_FIELDS", "thing1,time2,thing3,thing4"),
        ("WECHAT_TEMPLATE_REMINDER_FIELDS", "thing1,thing1"),
        ("WECHAT_TEMPLATE_REMINDER_FIELDS", "thing1.DATA,time2.DATA"),
        ("WECHATPAY_MCH_ID", "merchant"),
        ("WECHATPAY_CERT_SERIAL", "not hex"),
        ("WECHATPAY_API_V3_KEY", "short"),
        ("WECHATPAY_PUBLIC_KEY_ID", "0114ABC"),
        ("WECHATPAY_PRIVATE_KEY_FILE", "/nonexistent/apiclient_key.pem"),
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


# Every variable, the attribute it sets, a value and what the attribute then holds. The names are the
# shop's public interface: a rename breaks every deployed .env.
VARIABLES = [
    ("DATA_DIR", "database", "data_dir", "/srv/shop", Path("/srv/shop")),
    ("DATABASE_URL", "database", "database_url", "postgresql://u@h/db", "postgresql://u@h/db"),
    ("VAULT_KEYS", "vault", "vault_keys", None, None),  # a SecretStr: checked below
    ("BOT_TOKEN", "telegram", "bot_token", None, None),
    ("TELEGRAM_API_URL", "telegram", "telegram_api_url", "http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
    ("ADMIN_IDS", "telegram", "admin_ids", "1;2 3", [1, 2, 3]),
    ("PAYMENT_PROVIDER_TOKEN", "telegram", "payment_provider_token", None, None),
    ("WEBHOOK_URL", "webhook", "webhook_url", "https://shop.example/hook", "https://shop.example/hook"),
    ("WEBHOOK_SECRET", "webhook", "webhook_secret", None, None),
    ("WEBHOOK_LISTEN", "webhook", "webhook_listen", "127.0.0.1:9000", "127.0.0.1:9000"),
    ("REDIS_URL", "redis", "redis_url", "redis://127.0.0.1/3", "redis://127.0.0.1/3"),
    ("SHOP_CURRENCY", "shop", "shop_currency", "eur", "EUR"),
    ("SHOP_TIMEZONE", "shop", "shop_timezone", "Europe/Berlin", "Europe/Berlin"),
    ("RESERVATION_TTL_MINUTES", "shop", "reservation_ttl_minutes", "30", 30),
    ("COMMISSION_RATES", "shop", "commission_rates", " 7.5, 2.25 ", "7.5, 2.25"),
    ("COMMISSION_HOLD_DAYS", "shop", "commission_hold_days", "14", 14),
    ("PAYOUT_MINIMUM", "shop", "payout_minimum", "5000", 5000),
    ("STARS_PAYOUT_RATE", "shop", "stars_payout_rate", "2", 2),
    ("SUMMARY_TIME", "scheduler", "summary_time", "21:30", time(21, 30)),
    ("PAYOUT_SCHEDULE", "scheduler", "payout_schedule", "30  8 1 * *", "30 8 1 * *"),
    ("REMINDER_DAYS", "shop", "reminder_days", " 7, 3,1 ", "7, 3,1"),
    ("INVOICE_REMINDER_MINUTES", "shop", "invoice_reminder_minutes", "3", 3),
    ("SCHEDULER", "scheduler", "scheduler", "false", False),
    ("OUTBOX_RETENTION_DAYS", "scheduler", "outbox_retention_days", "90", 90),
    ("LOG_LEVEL", "log", "log_level", "debug", "DEBUG"),
    ("LOG_FORMAT", "log", "log_format", "JSON", "json"),
    ("OPS_LISTEN", "ops", "listen", "127.0.0.1:9090", "127.0.0.1:9090"),
    ("OPS_RETRY_FIRST_SECONDS", "ops", "retry_first_seconds", "0.5", 0.5),
    ("OPS_RETRY_MAX_SECONDS", "ops", "retry_max_seconds", "120", 120.0),
    ("WECHAT_APP_ID", "wechat", "app_id", "wx0123456789abcdef", "wx0123456789abcdef"),
    ("WECHAT_APP_SECRET", "wechat", "app_secret", None, None),  # SecretStr
    ("WECHAT_TOKEN", "wechat", "token", None, None),  # SecretStr
    ("WECHAT_AES_KEY", "wechat", "aes_key", None, None),  # SecretStr
    ("WECHAT_CALLBACK_PATH", "wechat", "callback_path", "/wx/push", "/wx/push"),
    ("WECHAT_API_URL", "wechat", "api_url", "http://127.0.0.1:8090/", "http://127.0.0.1:8090"),
    ("WECHAT_PUBLIC_URL", "wechat", "public_url", "https://shop.example/", "https://shop.example"),
    ("WECHAT_OAUTH_URL", "wechat", "oauth_url", "http://127.0.0.1:8090/", "http://127.0.0.1:8090"),
    ("WECHAT_TEMPLATE_REMINDER", "wechat", "template_reminder", " ngqIpbwh8bUf-cs_E ", "ngqIpbwh8bUf-cs_E"),
    (
        "WECHAT_TEMPLATE_REMINDER_FIELDS",
        "wechat",
        "template_reminder_fields",
        "keyword1, keyword2",
        "keyword1,keyword2",
    ),
    ("WECHATPAY_MCH_ID", "wechatpay", "mch_id", "1900000109", "1900000109"),
    ("WECHATPAY_PRIVATE_KEY_FILE", "wechatpay", "private_key_file", None, None),  # must exist
    ("WECHATPAY_CERT_SERIAL", "wechatpay", "cert_serial", "5157f09efdc096de", "5157F09EFDC096DE"),
    ("WECHATPAY_API_V3_KEY", "wechatpay", "api_v3_key", None, None),  # SecretStr
    ("WECHATPAY_PUBLIC_KEY_FILE", "wechatpay", "public_key_file", None, None),  # must exist
    ("WECHATPAY_PUBLIC_KEY_ID", "wechatpay", "public_key_id", "PUB_KEY_ID_0114", "PUB_KEY_ID_0114"),
    ("WECHATPAY_PLATFORM_CERT_FILE", "wechatpay", "platform_cert_file", None, None),  # must exist
    ("WECHATPAY_API_URL", "wechatpay", "api_url", "http://127.0.0.1:8091/", "http://127.0.0.1:8091"),
]


def test_the_variable_names_are_unchanged_and_each_belongs_to_one_concern() -> None:
    names = [
        concern.env_name(field)
        for concern in (type(getattr(load_settings(), name)) for name in Settings.model_fields)
        for field in concern.model_fields
    ]
    assert sorted(names) == sorted(name for name, *_ in VARIABLES)


@pytest.mark.parametrize(("name", "concern", "field", "raw", "value"), [v for v in VARIABLES if v[3]])
def test_each_variable_sets_its_concern_from_the_environment_or_dot_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    concern: str,
    field: str,
    raw: str,
    value: object,
) -> None:
    monkeypatch.setenv(name, raw)
    assert getattr(getattr(load_settings(), concern), field) == value
    monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(f"{name}={raw}\n")
    assert getattr(getattr(load_settings(), concern), field) == value
    assert getattr(getattr(load_settings(_env_file=None), concern), field) != value  # .env not read


def test_secret_settings_are_secret_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = new_key_spec("k")
    monkeypatch.setenv("VAULT_KEYS", spec)
    monkeypatch.setenv("BOT_TOKEN", " 123:SECRET-TOKEN-abcdefghijklmnop ")
    monkeypatch.setenv("PAYMENT_PROVIDER_TOKEN", "284685063:TEST:abc")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret_-")
    s = load_settings()
    assert s.vault.vault_keys and s.vault.vault_keys.get_secret_value() == spec
    assert (
        s.telegram.bot_token
        and s.telegram.bot_token.get_secret_value() == "123:SECRET-TOKEN-abcdefghijklmnop"
    )
    assert s.telegram.payment_provider_token
    assert s.telegram.payment_provider_token.get_secret_value() == "284685063:TEST:abc"
    assert s.webhook.webhook_secret and s.webhook.webhook_secret.get_secret_value() == "s3cret_-"


def test_wechat_secrets_are_secret_strings_and_the_channel_needs_an_app_id_and_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not load_settings().wechat.configured
    monkeypatch.setenv("WECHAT_TOKEN", "tok3n")
    monkeypatch.setenv("WECHAT_APP_SECRET", "app-secret")
    monkeypatch.setenv("WECHAT_AES_KEY", "A" * 43)
    s = load_settings().wechat
    assert not s.configured  # no AppID yet
    assert s.token and s.token.get_secret_value() == "tok3n" and "tok3n" not in repr(s)
    assert s.app_secret and s.app_secret.get_secret_value() == "app-secret"
    assert s.aes_key and s.aes_key.get_secret_value() == "A" * 43
    monkeypatch.setenv("WECHAT_APP_ID", "wx0123456789abcdef")
    assert load_settings().wechat.configured


def test_the_environment_wins_over_dot_env_and_overrides_win_over_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SHOP_CURRENCY=CNY\nLOG_LEVEL=ERROR\n")
    monkeypatch.setenv("SHOP_CURRENCY", "EUR")
    assert load_settings().shop.shop_currency == "EUR"
    s = load_settings(shop_currency="JPY", log_level="warning", admin_ids=[7])
    assert (s.shop.shop_currency, s.log.log_level, s.telegram.admin_ids) == ("JPY", "WARNING", [7])


def test_an_override_is_validated_like_the_variable_and_an_unknown_one_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^setting SHOP_CURRENCY: must be an ISO 4217"):
        load_settings(shop_currency="DOGE")
    with pytest.raises(TypeError, match="shop_curency"):
        load_settings(shop_curency="EUR")


def test_replace_changes_a_copy_and_the_vault_key_file_follows_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(redis_url="redis://h/1", admin_ids=[5])
    sandbox = s.replace(data_dir=tmp_path / "sandbox", redis_url=None)
    assert sandbox.redis.redis_url is None and sandbox.telegram.admin_ids == [5]
    assert sandbox.vault_key_file == tmp_path / "sandbox" / "vault.keys"
    assert sandbox.database.url.endswith("sandbox/keyshop.db")
    assert s.redis.redis_url == "redis://h/1" and s.vault_key_file == Path("data/vault.keys")
    with pytest.raises(TypeError):
        s.replace(nope=1)


class _WechatSettings(ConcernSettings, env_prefix="WECHAT_"):
    app_id: str | None = Field(None, pattern=r"^wx[0-9a-f]{16}$")


class _SettingsWithWechat(Settings):
    wechat: _WechatSettings


def test_a_new_concern_is_one_class_with_a_prefix_and_one_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WECHAT_APP_ID", raising=False)
    monkeypatch.setenv("APP_ID", "wxffffffffffffffff")  # another program's: not ours without the prefix
    assert _SettingsWithWechat.load().wechat.app_id is None
    (tmp_path / ".env").write_text("WECHAT_APP_ID=wx0123456789abcdef\n")
    s = _SettingsWithWechat.load(shop_currency="CNY")
    assert s.wechat.app_id == "wx0123456789abcdef" and s.shop.shop_currency == "CNY"
    assert _SettingsWithWechat.load(wechat_app_id="wxaaaaaaaaaaaaaaaa").wechat.app_id == "wxaaaaaaaaaaaaaaaa"
    monkeypatch.setenv("WECHAT_APP_ID", "not-an-app-id")
    with pytest.raises(SettingsError) as e:
        _SettingsWithWechat.load()
    assert str(e.value).startswith("setting WECHAT_APP_ID:") and "\n" not in str(e.value)


def test_env_example_and_the_readme_document_every_setting_in_its_group() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    for name, concern, *_ in VARIABLES:
        assert re.search(rf"^#?{name}=", example, re.MULTILINE), name
        assert f"| `{concern}` | `{name}` |" in readme, name
    example_groups = re.findall(r"^# --- (\w+) \(bot/settings/(\w+)\.py\)", example, re.MULTILINE)
    assert [g for g, _ in example_groups] == list(Settings.model_fields)
    assert all(g == module for g, module in example_groups)


def test_env_example_loads_as_it_is() -> None:
    s = load_settings(_env_file=Path(__file__).resolve().parents[2] / ".env.example")
    assert (s.shop.shop_currency, s.log.log_level, s.telegram.bot_token) == ("USD", "INFO", None)


@pytest.mark.parametrize("value", ["١٢٣", "1_000", "0", "-1001234567890", "9" * 30])
def test_admin_ids_accept_only_telegram_user_ids_in_ascii_digits(value: str) -> None:
    # unicode digits, digit separators, 0, a group's chat id (admin alerts would go to a group) and numbers
    # no Telegram id reaches are all taken silently today
    with pytest.raises(SettingsError, match="ADMIN_IDS"):
        load_settings(None, admin_ids=value)


def test_commission_rates_are_basis_points_per_level() -> None:
    from bot.settings.shop import commission_rates_bp

    assert load_settings().shop.commission_rates_bp == (1000, 500)
    assert commission_rates_bp("7.5, 2.25") == (750, 225)
    assert commission_rates_bp("12") == (1200,)
    assert commission_rates_bp("0,0") == (0, 0)
