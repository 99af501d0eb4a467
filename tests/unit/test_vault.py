from __future__ import annotations

import pytest

from core.errors import VaultError
from core.vault import Vault, mask, new_key_spec, normalize_key, parse_keys


def test_a_sealed_key_opens_only_with_its_product_and_blind_index(vault: Vault) -> None:
    bidx, blob = vault.seal_key(1, "ABCD-1234")
    assert vault.open_key(1, bidx, blob) == "ABCD-1234"
    with pytest.raises(VaultError):
        vault.open_key(2, bidx, blob)  # moved to another product
    other_bidx, _ = vault.seal_key(1, "ZZZZ-9999")
    with pytest.raises(VaultError):
        vault.open_key(1, other_bidx, blob)  # moved onto another row


def test_a_tampered_ciphertext_does_not_open(vault: Vault) -> None:
    bidx, blob = vault.seal_key(1, "ABCD-1234")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(VaultError):
        vault.open_key(1, bidx, tampered)


def test_the_ciphertext_names_its_key_id_and_never_holds_the_plaintext(vault: Vault) -> None:
    _, blob = vault.seal_key(1, "SECRET-KEY-123")
    assert Vault.kid_of(blob) == "k1"
    assert b"SECRET" not in blob


def test_encrypting_twice_gives_different_ciphertexts(vault: Vault) -> None:
    assert vault.seal_key(1, "A")[1] != vault.seal_key(1, "A")[1]


def test_the_newest_key_encrypts_and_older_keys_still_decrypt() -> None:
    spec_old = new_key_spec("old")
    old = Vault.from_spec(spec_old)
    bidx, blob = old.seal_key(1, "K")
    with pytest.raises(VaultError):  # an unrelated vault cannot open it
        Vault.from_spec(new_key_spec("x")).open_key(1, bidx, blob)
    rotated = Vault.from_spec(f"{spec_old},{new_key_spec('new')}")
    assert rotated.current_kid == "new"
    assert rotated.open_key(1, bidx, blob) == "K"
    # the blind index is derived from the first key, so it survives adding keys
    assert rotated.blind_index(1, "K") == old.blind_index(1, "K")


def test_blind_index_is_per_product_and_ignores_whitespace_differences(vault: Vault) -> None:
    assert vault.blind_index(1, normalize_key("  AB  CD ")) == vault.blind_index(1, normalize_key("AB CD"))
    assert vault.blind_index(1, "AB") != vault.blind_index(2, "AB")
    assert len(vault.blind_index(1, "AB")) == 16


def test_an_unknown_key_id_is_a_clear_vault_error(vault: Vault) -> None:
    bidx, blob = Vault.from_spec(new_key_spec("zz")).seal_key(1, "K")
    with pytest.raises(VaultError, match="zz"):
        vault.open_key(1, bidx, blob)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nokey",
        "a:notbase64!!",
        "a:" + "QUJD",
        "bad id:" + "A" * 44,
        # the same id twice (fixed keys: a random one would name the test differently in each xdist worker)
        "a:" + "A" * 43 + "=,a:" + "B" * 43 + "=",
    ],
)
def test_malformed_vault_key_settings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_keys(spec)


def test_masking_hides_the_middle_of_a_key() -> None:
    assert mask("ABCD-EFGH-IJKL-MNOP") == "ABCD••••••••MNOP"
    assert "EFGH" not in mask("ABCD-EFGH-IJKL-MNOP")
    assert mask("abc") == "•••"


def test_vault_keys_never_show_their_material_in_repr() -> None:
    key = parse_keys(new_key_spec("k"))[0]
    assert "material" not in repr(key) and key.material.hex() not in repr(key)
