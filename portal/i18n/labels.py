"""The portal's languages, and configured labels (taxonomy rows) in the language being shown.

The user interface is translated with Flask-Babel's catalogues; the labels an organisation
configures (queue names, categories, sites, departments, statuses, outcomes) are translated in
the taxonomy file instead, next to the English text (``label_zh_CN = "..."``), and stored per row
as ``translations``: ``{locale: {field: text}}``. The English field itself stays the source:
it is what is exported, compared, audited and stored in releases; a translation is only ever
*shown*, falling back to the English text.

Services do not import Flask, so they cannot ask Flask-Babel which language a request wants.
The web layer binds a *locale source* for each request (``bind_locale_source``), a function that
is asked only when a label is shown, so a locale chosen later in the request, or forced with
``flask_babel.force_locale``, is respected. Outside a request (the CLI, mails sent by a job) the
default language is shown unless the caller binds one with ``use_locale``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Final, Protocol

from portal.i18n.locales import LOCALES as LOCALES  # re-exported: the one list of locales
from portal.i18n.locales import NAMES

#: The source language first (portal/i18n/locales.py holds the one list).
DEFAULT_LOCALE: Final = LOCALES[0]
#: The languages a configured label can be translated into (the default is the label itself).
TRANSLATED_LOCALES: Final = LOCALES[1:]
#: Each language in its own words (for forms and menus).
LANGUAGE_NAMES: Final[Mapping[str, str]] = NAMES

#: locale -> field -> text, as stored in a taxonomy row's ``translations`` column.
Translations = dict[str, dict[str, str]]

_source: ContextVar[Callable[[], str | None] | None] = ContextVar(
    "portal_locale_source", default=None
)


class Translatable(Protocol):
    """A taxonomy row with translatable fields (Queue, Category, OrgUnit, WorkflowStatus,
    Outcome)."""

    translations: Translations


def match_locale(tag: str | None) -> str | None:
    """The one of LOCALES that ``tag`` means, or None: ``zh_CN``, ``zh-CN`` and Babel's
    ``zh_Hans_CN`` are zh_CN; ``en_GB`` is en (a locale without a territory takes all of its
    language's); ``zh_TW`` is none of them."""
    if not tag:
        return None
    if tag in LOCALES:
        return tag
    parts = tag.replace("-", "_").split("_")
    language, territory = parts[0].lower(), parts[-1].upper() if len(parts) > 1 else None
    for locale in LOCALES:
        lang, _, terr = locale.partition("_")
        if lang == language and (terr == territory or not terr):
            return locale
    return None


def current_locale() -> str:
    """The language being shown: the bound source's answer if it is one of LOCALES."""
    source = _source.get()
    return match_locale(source() if source is not None else None) or DEFAULT_LOCALE


LocaleSource = Callable[[], str | None]


def set_locale_source(source: LocaleSource) -> Token[LocaleSource | None]:
    """Ask ``source`` for the language whenever a label is shown, until ``reset_locale_source``
    (the web layer does this around each request)."""
    return _source.set(source)


def reset_locale_source(token: Token[LocaleSource | None]) -> None:
    _source.reset(token)


@contextmanager
def bind_locale_source(source: LocaleSource) -> Iterator[None]:
    """Ask ``source`` for the language whenever a label is shown inside the block."""
    token = set_locale_source(source)
    try:
        yield
    finally:
        reset_locale_source(token)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Show labels in ``locale`` inside the block (the CLI, tests)."""
    with bind_locale_source(lambda: locale):
        yield


def shown(obj: Translatable, field: str = "label", locale: str | None = None) -> str:
    """``obj.<field>`` in the language being shown (or ``locale``), falling back to the
    English text when it has no translation. Only for display: never store, compare or export
    what this returns."""
    text: str = getattr(obj, field)
    locale = match_locale(locale) or current_locale()
    if locale == DEFAULT_LOCALE:
        return text
    return (obj.translations or {}).get(locale, {}).get(field) or text


def key(field: str, locale: str) -> str:
    """The taxonomy file's (and the console form's) key of a translation: ``label_zh_CN``."""
    return f"{field}_{locale}"


def flat(
    translations: Mapping[str, Mapping[str, str]] | None, fields: tuple[str, ...]
) -> dict[str, str]:
    """``{"label_zh_CN": "..."}`` for each translated field, in the order of ``fields`` then
    LOCALES (the order the export writes them)."""
    out: dict[str, str] = {}
    for field in fields:
        for locale in TRANSLATED_LOCALES:
            text = (translations or {}).get(locale, {}).get(field)
            if text:
                out[key(field, locale)] = text
    return out


def nested(values: Mapping[str, str], fields: tuple[str, ...]) -> Translations:
    """The inverse of :func:`flat`: empty texts are left out (no translation)."""
    out: Translations = {}
    for field in fields:
        for locale in TRANSLATED_LOCALES:
            text = values.get(key(field, locale), "")
            if text:
                out.setdefault(locale, {})[field] = text
    return out


def split_key(name: str, fields: tuple[str, ...]) -> tuple[str, str] | None:
    """``("label", "zh_CN")`` for ``label_zh_CN`` when ``label`` is a translatable field;
    the locale part is returned whatever it is (the caller refuses unknown ones); None when the
    key is not a translation key at all."""
    for field in fields:
        prefix = f"{field}_"
        if name.startswith(prefix) and len(name) > len(prefix):
            return field, name[len(prefix) :]
    return None
