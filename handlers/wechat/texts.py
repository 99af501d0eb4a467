"""WeChat's texts, from the same gettext catalogs as Telegram's (keys ``wx-*`` and shared ones such as
``status-*``), rendered as plain text: WeChat shows a text message as it is, so nothing is escaped.

The channel does not use aiogram's context-bound i18n: each reply names its language, the buyer's."""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import Any

DOMAIN = "messages"
DEFAULT_LANGUAGE = "zh_CN"  # the official account's buyers read Chinese unless they ask for English
LANGUAGES = ("zh_CN", "en")


class Texts:
    """Translations by language from compiled catalogs (``<dir>/<lang>/LC_MESSAGES/messages.mo``)."""

    def __init__(self, locale_dir: Path) -> None:
        self._catalogs = {
            lang: gettext.translation(DOMAIN, localedir=str(locale_dir), languages=[lang], fallback=True)
            for lang in LANGUAGES
        }

    def tr(self, language: str | None, key: str, /, **params: Any) -> str:
        """``key`` in ``language`` (the default for an unknown one), placeholders filled as they are."""
        catalog = self._catalogs.get(language or DEFAULT_LANGUAGE) or self._catalogs[DEFAULT_LANGUAGE]
        text = catalog.gettext(key)
        if "{" not in text:
            return text
        return text.format_map(_Params({k: str(v) for k, v in params.items()}))


class _Params(dict[str, str]):
    def __missing__(self, name: str) -> str:  # a placeholder the caller did not fill: show it, never crash
        return "…"
