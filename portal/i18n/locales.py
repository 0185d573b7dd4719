"""The languages the portal speaks, in one place.

English is the source language: its texts are the message ids in the code and templates, so it
needs no catalogue of its own. Every other locale has a complete catalogue (a test fails on any
missing string) under ``portal/translations/<Babel's name>/LC_MESSAGES/messages.po``; Babel's
name for zh_CN is zh_Hans_CN.
"""

from __future__ import annotations

LOCALES: tuple[str, ...] = ("en", "zh_CN")
"""Every supported locale, the source language first."""

NAMES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
"""Each language named in itself, as a language switch shows it."""

HTML_LANG: dict[str, str] = {"en": "en", "zh_CN": "zh-CN"}
"""The BCP 47 tag for ``<html lang>`` and ``hreflang``: gettext's ``zh_CN`` is not one."""


def from_accept_language(tags: list[str]) -> str | None:
    """The first supported locale among a browser's languages, in its order of preference.

    Any Chinese (``zh``, ``zh-CN``, ``zh-Hans-CN``, ``zh-TW``, ``zh-Hant``...) gets the
    Simplified Chinese catalogue: it is the only Chinese one, and a reader of Traditional
    characters reads it more easily than a language they did not ask for. Any English gets
    English.
    """
    for tag in tags:
        primary = tag.strip().replace("_", "-").split("-")[0].lower()
        if primary == "zh":
            return "zh_CN"
        if primary == "en":
            return "en"
    return None
