"""The key vault: card keys are encrypted at rest and found again without decrypting.

Ciphertext layout (version 1)::

    0x01 | len(kid) (1 byte) | kid (ASCII) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The key id travels with every ciphertext so that keys can be rotated one row at a time. The associated
data binds a ciphertext to its product and blind index, so a ciphertext copied onto another row (or another
product) fails to open instead of silently delivering someone else's key.

Duplicates are found through an HMAC-SHA256 blind index over the normalized key, truncated to 128 bits. Its
HMAC key is derived from the *first* configured vault key, which therefore must never be removed; encryption
always uses the *last* configured key (append a new key, then run ``keyshop vault rotate``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import VaultError

VERSION = 1
NONCE_LEN = 12
BLIND_INDEX_LEN = 16
KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


@dataclass(frozen=True, slots=True)
class VaultKey:
    kid: str
    material: bytes  # 32 random bytes

    def __repr__(self) -> str:  # never print key material
        return f"VaultKey(kid={self.kid!r})"


def parse_keys(spec: str) -> list[VaultKey]:
    """Parse ``kid:base64,kid:base64`` (whitespace and newlines allowed between entries).

    Raises ``ValueError`` with a message fit for a settings error.
    """
    keys: list[VaultKey] = []
    for raw in re.split(r"[,\s]+", spec.strip()):
        if not raw:
            continue
        kid, sep, b64 = raw.partition(":")
        if not sep or not KID_RE.match(kid):
            raise ValueError("each entry must be KID:BASE64KEY, KID made of letters, digits, - or _")
        try:
            material = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {kid!r} is not valid base64") from None
        if len(material) != 32:
            raise ValueError(f"key {kid!r} must be 32 bytes (AES-256), got {len(material)}")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"key id {kid!r} appears twice")
        keys.append(VaultKey(kid, material))
    if not keys:
        raise ValueError("no keys given")
    return keys


def new_key_spec(kid: str | None = None) -> str:
    """A fresh ``kid:base64`` entry for a key file or VAULT_KEYS."""
    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def normalize_key(text: str) -> str:
    """The canonical form of a card key: Unicode NFC, outer whitespace stripped, inner runs of
    whitespace folded to one space. Two lines that differ only in this are the same key."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())  # split() and re's \s agree: both follow str.isspace()


def mask(text: str) -> str:
    """What an admin view shows of a key: enough to recognise it, not enough to use it."""
    if len(text) <= 4:
        return "•" * len(text)
    keep = 2 if len(text) < 12 else 4
    return f"{text[:keep]}{'•' * min(8, len(text) - 2 * keep)}{text[-keep:]}"


class Vault:
    def __init__(self, keys: Iterable[VaultKey]) -> None:
        self._keys = list(keys)
        if not self._keys:
            raise ValueError("a vault needs at least one key")
        self._aead = {k.kid: AESGCM(_derive(k.material, b"keyshop/encryption/v1")) for k in self._keys}
        # Keyed once; each blind index copies this state instead of re-deriving HMAC's pads (import speed).
        self._index_mac = hmac.new(
            _derive(self._keys[0].material, b"keyshop/blind-index/v1"), None, hashlib.sha256
        )
        self.current_kid = self._keys[-1].kid
        self._current = self._aead[self.current_kid]

    @classmethod
    def from_spec(cls, spec: str) -> Vault:
        return cls(parse_keys(spec))

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def blind_index(self, product_id: int, normalized: str) -> bytes:
        mac = self._index_mac.copy()
        mac.update(b"%d\x00" % product_id)
        mac.update(normalized.encode("utf-8"))
        return mac.digest()[:BLIND_INDEX_LEN]

    @staticmethod
    def associated_data(product_id: int, blind_index: bytes) -> bytes:
        return b"keyshop/key/v1|%d|" % product_id + blind_index

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        kid = self.current_kid.encode("ascii")
        nonce = os.urandom(NONCE_LEN)
        return (
            bytes((VERSION, len(kid))) + kid + nonce + self._current.encrypt(nonce, plaintext.encode(), aad)
        )

    @staticmethod
    def kid_of(blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != VERSION:
            raise VaultError("unknown ciphertext version")
        return blob[2 : 2 + blob[1]].decode("ascii", "replace")

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        kid = self.kid_of(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise VaultError(f"no vault key with id {kid!r} is configured", kid=kid)
        start = 2 + blob[1]
        nonce = blob[start : start + NONCE_LEN]
        try:
            return aead.decrypt(nonce, blob[start + NONCE_LEN :], aad).decode()
        except InvalidTag:
            raise VaultError(
                "ciphertext does not open: tampered, moved to another row, or wrong key"
            ) from None

    def seal_key(self, product_id: int, normalized: str) -> tuple[bytes, bytes]:
        """(blind_index, ciphertext) for a normalized card key of a product."""
        bidx = self.blind_index(product_id, normalized)
        return bidx, self.encrypt(normalized, self.associated_data(product_id, bidx))

    def open_key(self, product_id: int, blind_index: bytes, blob: bytes) -> str:
        return self.decrypt(blob, self.associated_data(product_id, blind_index))
