"""Every message exists in English and Simplified Chinese, with the same placeholders."""

from __future__ import annotations

import os
import re
import stat
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import core.errors
from bot.i18n import SOURCE, build_i18n, compile_catalogs
from handlers.telegram.ui.text import pick_locale

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en", "zh_CN")


def catalog(lang: str) -> dict[str, str]:
    with (SOURCE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_exactly_the_same_messages_all_translated() -> None:
    en, zh = catalog("en"), catalog("zh_CN")
    assert set(en) == set(zh)
    assert [k for k, v in {**en, **zh}.items() if not v.strip()] == []
    assert [k for k in en if en[k] == zh[k] and re.search(r"[A-Za-z]{4}", en[k]) and "{" not in en[k]] == []


def test_placeholders_match_between_languages() -> None:
    en, zh = catalog("en"), catalog("zh_CN")
    assert {k: placeholders(en[k]) for k in en} == {k: placeholders(zh[k]) for k in zh}


def test_every_refusal_the_core_can_raise_has_a_message() -> None:
    keys = {
        cls.key
        for cls in vars(core.errors).values()
        if isinstance(cls, type) and issubclass(cls, core.errors.ShopError)
    }
    missing = keys - set(catalog("en"))
    assert not missing


def test_every_message_key_the_telegram_handlers_use_exists() -> None:
    used: set[str] = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        used |= set(re.findall(r"""\btr(?:_plain)?\(\s*["']([a-z0-9_-]+)["']""", path.read_text()))
    used |= {
        f"status-{s}"
        for s in ("pending", "paid", "delivered", "expired", "cancelled", "refund_due", "refunded")
    }
    used |= {
        f"cmd-{c}" for c in ("start", "catalog", "orders", "invite", "share", "withdraw", "language", "help")
    }
    used |= {f"menu-{a}" for a in ("catalog", "orders", "language", "help")}
    used |= {
        f"refund-reason-{r}"
        for r in (
            "out_of_stock",
            "already_paid",
            "amount_mismatch",
            "unknown_order",
            "admin",
            "not_owner",
            "blocklisted",
            "product_unavailable",
            "user_limit",
            "daily_limit",
            "bad_payload",
            "unconfirmable",
            "refused",
        )
    }
    assert used - set(catalog("en")) == set()


def test_catalogs_compile_without_a_manual_step(tmp_path: Path) -> None:
    out = compile_catalogs(target=tmp_path)
    assert sorted(p.parent.parent.name for p in out.glob("*/LC_MESSAGES/messages.mo")) == list(LANGS)
    i18n = build_i18n()
    assert i18n.gettext("menu-catalog", locale="zh_CN") == "🛍 商品"


def test_telegram_language_codes_map_to_our_locales() -> None:
    assert [pick_locale(c) for c in ("zh-hans", "zh", "zh-CN", "en-US", "ru", None, "")] == [
        "zh_CN",
        "zh_CN",
        "zh_CN",
        "en",
        "en",
        "en",
        "en",
    ]


def test_shops_compiling_the_catalogs_at_once_never_trip_over_each_others_temporary_file(
    tmp_path: Path,
) -> None:
    """Each writer has a temporary file of its own: a fixed name ('messages.tmp') let one process rename
    the file another was about to rename (FileNotFoundError at start, seen with parallel test workers).
    Here another writer's leftover stands where a shared temporary name would be, and eight threads
    compile into one directory at once."""
    for lang in ("en", "zh_CN"):
        (tmp_path / lang / "LC_MESSAGES" / "messages.tmp").mkdir(parents=True)
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: compile_catalogs(target=tmp_path), range(8)))
    assert outs == [tmp_path] * 8
    for lang in ("en", "zh_CN"):
        mo = tmp_path / lang / "LC_MESSAGES" / "messages.mo"
        assert mo.stat().st_size > 0
        assert not list(mo.parent.glob("*.part"))


def test_compiled_catalogs_are_readable_by_every_user_as_before(tmp_path: Path) -> None:
    """The default target is shared (the system's temporary directory, named after the catalogs): a shop
    run as another user than the one that compiled them first must still read them, as with a plain
    ``open`` (0666 less the umask), not a temporary file's private 0600."""
    old = os.umask(0o022)
    try:
        compile_catalogs(target=tmp_path)
    finally:
        os.umask(old)
    for lang in ("en", "zh_CN"):
        mo = tmp_path / lang / "LC_MESSAGES" / "messages.mo"
        assert stat.S_IMODE(mo.stat().st_mode) == 0o644


def test_a_compile_that_fails_leaves_no_temporary_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("bot.i18n.write_mo", broken)
    with pytest.raises(OSError, match="disk full"):
        compile_catalogs(target=tmp_path)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
