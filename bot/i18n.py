"""Translations: gettext catalogs in ``locales/``, compiled with Babel when the shop starts."""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from pathlib import Path

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import locales

SOURCE = Path(locales.__file__).resolve().parent
DOMAIN = "messages"
DEFAULT_LOCALE = "en"


def compile_catalogs(source: Path = SOURCE, target: Path | None = None) -> Path:
    """Compile every ``<lang>/LC_MESSAGES/messages.po`` to ``.mo`` under ``target`` (by default a cache
    directory named after the catalogs' content, so unchanged catalogs are compiled once)."""
    pos = sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pos)).hexdigest()[:16]
    target = target or Path(tempfile.gettempdir()) / f"keyshop-locales-{digest}"
    for po in pos:
        lang = po.parent.parent.name
        mo = target / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if mo.exists():
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang, domain=DOMAIN)
        # A temporary file of this writer's own, renamed into place (atomic): two shops starting at once
        # never read half a file, nor rename the file the other is writing. Opened as a plain file (0666
        # less the umask, not a temporary file's 0600: the default target is shared by every user's shops)
        # and removed when writing it fails.
        part = mo.with_name(f"{DOMAIN}.{secrets.token_hex(8)}.part")
        try:
            with part.open("xb") as out:
                write_mo(out, catalog)
            part.replace(mo)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return target


def build_i18n() -> I18n:
    return I18n(path=compile_catalogs(), default_locale=DEFAULT_LOCALE, domain=DOMAIN)
