"""Two keys are the same key exactly when a buyer could not tell them apart (issue #6, defect 7)."""

from __future__ import annotations

import io
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import KeyHasBidiControl, KeyHasControlCharacter, KeyRefused
from core.models import STARS, DeliveryKind
from core.services import Services
from core.vault import (
    BIDI_CONTROLS,
    INVISIBLE_RANGES,
    VISIBLE_FORMAT_CHARS,
    Vault,
    clean_text,
    key_fault,
    normalize_key,
)
from tests.conftest import buyer, draft, stocked

INVISIBLE = [chr(c) for a, b, _ in INVISIBLE_RANGES for c in range(a, b + 1)]
CONTROLS = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r"]

# Keys as admins have them: any visible text (no controls, surrogates, bidi or invisible characters).
visible = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Cf", "Co"),
        blacklist_characters="".join(INVISIBLE) + BIDI_CONTROLS,
    ),
    min_size=1,
    max_size=30,
)


@given(visible, st.lists(st.tuples(st.integers(0, 40), st.sampled_from(INVISIBLE)), max_size=5))
def test_an_invisible_character_anywhere_in_a_key_leaves_the_same_key(
    key: str, inserts: list[tuple[int, str]]
) -> None:
    dirty = key
    for pos, ch in inserts:
        pos = min(pos, len(dirty))
        dirty = dirty[:pos] + ch + dirty[pos:]
    assert normalize_key(dirty) == normalize_key(key)


@given(visible, st.integers(0, 40), st.sampled_from(CONTROLS + list(BIDI_CONTROLS)))
def test_a_key_holding_a_control_or_bidi_character_is_refused(key: str, pos: int, bad: str) -> None:
    dirty = key[:pos] + bad + key[pos:]
    with pytest.raises(KeyHasBidiControl if bad in BIDI_CONTROLS else KeyHasControlCharacter):
        normalize_key(dirty)
    assert key_fault(dirty) == ("bidi" if bad in BIDI_CONTROLS else "control")


@given(visible)
def test_normalizing_a_normalized_key_changes_nothing(key: str) -> None:
    once = normalize_key(key)
    assert normalize_key(once) == once


def test_a_bom_or_zero_width_space_inside_a_key_gives_the_same_blind_index(vault: Vault) -> None:
    plain = vault.blind_index(1, normalize_key("ABCD-1234"))
    for dirty in ("AB\ufeffCD-1234", "ABCD\u200b-1234", "\u2060ABCD-1234\u00ad", "ABCD-1234\ufe0f"):
        assert vault.blind_index(1, normalize_key(dirty)) == plain


def test_canonically_equivalent_keys_are_the_same_key() -> None:
    assert normalize_key("cafe\u0301-1") == normalize_key("caf\u00e9-1")
    assert normalize_key("\u212b") == normalize_key("\u00c5")  # ANGSTROM SIGN vs Å
    assert normalize_key("e\u200b\u0301") == "\u00e9"  # an invisible between base and accent
    assert normalize_key("  A \u3000\u00a0 B\t") == "A B"  # every kind of space folds to one


def test_keys_a_buyer_can_tell_apart_stay_different_keys() -> None:
    assert normalize_key("abcd-1234") != normalize_key("ABCD-1234")  # case
    assert normalize_key("ＡＢＣ１２３") != normalize_key("ABC123")  # fullwidth vs ASCII
    assert normalize_key("KEY-\u0430") != normalize_key("KEY-a")  # Cyrillic а vs Latin a
    assert normalize_key("KEY-\u0600") != normalize_key("KEY-")  # a visible format character stays


def test_every_control_and_format_character_has_a_rule() -> None:
    """A Python with a newer Unicode that adds a format character fails here until it is classified."""
    removed = set(INVISIBLE)
    refused = set(BIDI_CONTROLS)
    kept = set(VISIBLE_FORMAT_CHARS)
    assert not (removed & refused) and not (removed & kept) and not (refused & kept)
    unclassified = [
        f"U+{c:04X}"
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Cf" and chr(c) not in removed | refused | kept
    ]
    assert unclassified == []
    for ch in CONTROLS:
        assert key_fault(f"A{ch}B") == "control"
    for ch in "\t\n\r":
        assert normalize_key(f"A{ch}B") == "A B"  # whitespace, folded


def test_a_lone_surrogate_is_refused_not_a_crash() -> None:
    with pytest.raises(KeyRefused):
        normalize_key("AB\ud800")


def test_manual_delivery_content_keeps_its_lines_but_not_invisible_or_bidi_characters() -> None:
    assert clean_text("  user: a\u200bb\npass: x\u0301y \n") == "user: ab\npass: x\u0301y".replace(
        "x\u0301", unicodedata.normalize("NFC", "x\u0301")
    )
    with pytest.raises(KeyHasBidiControl):
        clean_text("pass: \u202eabc")


# ---------------------------------------------------------------- everywhere a key enters


async def test_an_imported_key_hidden_behind_invisible_characters_is_a_duplicate(shop: Services) -> None:
    pid = await stocked(shop, 0)
    data = "KEY-1\n\ufeffKEY-1\nKEY\u200b-1\nK\u00adEY-1\u2060\nKEY-2\nRLO\u202e-1\nC1\u0085-1\n".encode()
    rep = await shop.stock.import_keys(pid, io.BytesIO(data))
    assert (rep.added, rep.duplicates, rep.invalid) == (2, 3, 2)
    assert [(b.line, b.reason) for b in rep.invalid_samples] == [(6, "bidi"), (7, "control")]
    assert await shop.stock.available(pid) == 2


async def test_a_shared_key_is_normalized_like_an_imported_one_and_refused_with_bidi(shop: Services) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.SHARED))
    first = await shop.stock.set_shared_key(pid, "WIFI-2026")
    assert await shop.stock.set_shared_key(pid, "WIFI\u200b-2026\ufeff") == first  # the same key
    with pytest.raises(KeyHasBidiControl):
        await shop.stock.set_shared_key(pid, "WIFI-\u202e6202")
    with pytest.raises(KeyHasControlCharacter):
        await shop.stock.set_shared_key(pid, "WIFI-\x9b2026")


async def test_manual_delivery_content_is_refused_with_bidi_and_stored_without_invisibles(
    shop: Services,
) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    with pytest.raises(KeyHasBidiControl):
        await shop.orders.deliver_manually(o.ref, "pass: \u202eterces", actor="admin:1")
    await shop.orders.deliver_manually(o.ref, "user: a\u200bb\npass: x\ufeff", actor="admin:1")
    got = (await shop.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys
    assert got == ["user: ab\npass: x"]
