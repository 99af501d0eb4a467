"""WeChat's texts, from the same gettext catalogs as Telegram's (keys ``wx-*`` and shared ones such as
``status-*``), rendered as plain text: WeChat shows a text message as it is, so nothing is escaped.

The channel does not use aiogram's context-bound i18n: each reply names its language, the buyer's."""

from __future__ import annotations

import gettext
import html
import re
from pathlib import Path
from typing import Any

DOMAIN = "messages"
DEFAULT_LANGUAGE = "zh_CN"  # the official account's buyers read Chinese unless they ask for English
LANGUAGES = ("zh_CN", "en")
TEXT_MAX_BYTES = 2048  # WeChat cuts or refuses a text message longer than this (UTF-8 bytes)
ELLIPSIS = "…"
_TAG = re.compile(r"<[^>]*>")  # markup of the texts written for Telegram's HTML
# characters XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF): one in a reply
# makes it unparsable and WeChat shows the buyer "该公众号暂时无法提供服务"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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

    def tr_from_html(self, language: str | None, key: str, /, **params: Any) -> str:
        """A text the catalogs hold in Telegram's HTML (``<b>``, ``&amp;``), as plain text: the markup is
        taken out before the placeholders are filled, so a value such as ``<月卡>`` stays whole."""
        catalog = self._catalogs.get(language or DEFAULT_LANGUAGE) or self._catalogs[DEFAULT_LANGUAGE]
        text = html.unescape(_TAG.sub("", catalog.gettext(key)))
        return text.format_map(_Params({k: str(v) for k, v in params.items()}))


class _Params(dict[str, str]):
    def __missing__(self, name: str) -> str:  # a placeholder the caller did not fill: show it, never crash
        return "…"


def xml_safe(text: str) -> str:
    """``text`` without the characters an XML reply cannot carry (product data is the admins', but a
    control character pasted into a name must not silence the shop)."""
    return _NOT_XML.sub("", text)


def fit(text: str, max_bytes: int = TEXT_MAX_BYTES) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 on a character boundary, ending in "…" when cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    budget = max(0, max_bytes - len(ELLIPSIS.encode()))
    return data[:budget].decode(errors="ignore") + ELLIPSIS


def fit_lines(head: str, lines: list[str], tail: str, max_bytes: int = TEXT_MAX_BYTES) -> list[str]:
    """The first of ``lines`` that fit between ``head`` and ``tail`` in one message of ``max_bytes``
    (joined by newlines); a list is cut at a whole line so its numbers keep meaning what they show."""
    used = len(head.encode()) + (len(tail.encode()) + 1 if tail else 0)
    kept: list[str] = []
    for line in lines:
        used += len(line.encode()) + 1
        if used > max_bytes:
            break
        kept.append(line)
    return kept
