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

from core.errors import KeyRefused, VaultError

VERSION = 1
NONCE_LEN = 12
GCM_TAG_LEN = 16
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


# ---------------------------------------------------------------- what makes two keys the same key
#
# Two keys are the same key exactly when a buyer could not tell them apart on screen. Wrongly merging two
# keys costs one key refused as a duplicate at import (the report counts it); wrongly keeping them apart
# sells one key to two buyers. So whatever is invisible is removed, and whatever could make the visible
# text lie about the key it stands for is refused. Visible differences stay: case, fullwidth vs ASCII
# ("Ａ" vs "A"), letters of different scripts that look alike (the redeeming service sees different
# characters too). The README has the table.

# Removed wherever they appear: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode
# 15.1; the bidi controls among them are refused instead, see below), plus the interlinear annotation
# characters (format characters no plain-text renderer shows). Reserved code points in these ranges are
# reserved *as* default-ignorable, so they go too.
INVISIBLE_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x00AD, 0x00AD, "soft hyphen"),
    (0x034F, 0x034F, "combining grapheme joiner"),
    (0x115F, 0x1160, "Hangul choseong/jungseong fillers"),
    (0x17B4, 0x17B5, "Khmer inherent vowels"),
    (0x180B, 0x180F, "Mongolian free variation selectors, vowel separator"),
    (0x200B, 0x200D, "zero width space, non-joiner, joiner"),
    (0x2060, 0x2065, "word joiner, invisible operators"),
    (0x206A, 0x206F, "deprecated format characters"),
    (0x3164, 0x3164, "Hangul filler"),
    (0xFE00, 0xFE0F, "variation selectors 1-16"),
    (0xFEFF, 0xFEFF, "zero width no-break space (BOM), anywhere in a line"),
    (0xFFA0, 0xFFA0, "halfwidth Hangul filler"),
    (0xFFF0, 0xFFF8, "reserved default-ignorable"),
    (0xFFF9, 0xFFFB, "interlinear annotation anchor, separator, terminator"),
    (0x1BCA0, 0x1BCA3, "shorthand format controls"),
    (0x1D173, 0x1D17A, "musical symbol format controls"),
    (0xE0000, 0xE0FFF, "tags, variation selectors 17-256, reserved default-ignorable"),
)
# Refused: bidirectional formatting characters. Embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) reorder what is shown, so the key on screen is not the key to type ("Trojan Source").
# The marks (U+200E, U+200F, U+061C) are invisible but move neighbouring punctuation and digits about in
# the same way; a key file has no business holding them, so they are refused too rather than silently
# dropped.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Refused: control characters (Unicode category Cc: C0, DEL and C1), except tab, CR and LF, which are
# whitespace and folded like it. Lone surrogates (only possible in text that did not come from a file)
# are refused the same way.
# Kept: the visible format characters (Arabic and Kaithi number signs, Syriac abbreviation mark, Egyptian
# hieroglyph format controls), which show.
VISIBLE_FORMAT_CHARS = (
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd"
    + "".join(chr(c) for c in range(0x13430, 0x13440))
)


def _class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )


_INVISIBLE_RE = re.compile(f"[{_class((a, b) for a, b, _ in INVISIBLE_RANGES)}]+")
_REFUSED_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff" + re.escape(BIDI_CONTROLS) + "]")


def key_fault(text: str) -> str | None:
    """Why ``text`` cannot be a key (``control`` or ``bidi``, see above), or None if it can."""
    m = _REFUSED_RE.search(text)
    if m is None:
        return None
    return "bidi" if m.group() in BIDI_CONTROLS else "control"


def fold_key(text: str) -> str:
    """``normalize_key`` without the check, for text ``key_fault`` passed (the importer's per-line path)."""
    if text.isascii():  # nothing to remove or compose
        return " ".join(text.split())
    return " ".join(unicodedata.normalize("NFC", _INVISIBLE_RE.sub("", text)).split())


def normalize_key(text: str) -> str:
    """The canonical form of a card key: two keys are the same key exactly when these are equal.

    Invisible characters removed, Unicode NFC (so ``e`` + U+0301 equals ``é``), outer whitespace stripped
    and inner runs of whitespace (``str.isspace``) folded to one space. Raises ``KeyRefused`` if the text
    holds a control or bidi character.
    """
    fault = key_fault(text)
    if fault is not None:
        raise KeyRefused.for_reason(fault)
    return fold_key(text)


def clean_text(text: str) -> str:
    """Free text stored like a key (manual delivery content): the same characters removed and refused as
    in a key, NFC, outer whitespace stripped, but its lines and spacing kept."""
    fault = key_fault(text)
    if fault is not None:
        raise KeyRefused.for_reason(fault)
    if not text.isascii():
        text = unicodedata.normalize("NFC", _INVISIBLE_RE.sub("", text))
    return text.strip()


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

    @staticmethod
    def plaintext_size(blob: bytes) -> int:
        """The UTF-8 length of what ``blob`` holds, without opening it: AES-GCM adds only its 16-byte tag
        to the plaintext, after the version, key id and nonce."""
        return len(blob) - 2 - blob[1] - NONCE_LEN - GCM_TAG_LEN

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
