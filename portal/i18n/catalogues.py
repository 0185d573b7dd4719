"""The translation catalogues: extract the strings, update the .po files, compile the .mo files,
and say what is wrong with a catalogue.

One code path for `make messages` (``python -m portal.i18n.catalogues update``) and for the test
that fails when a string of the code or templates has no translation (tests/i18n/test_i18n.py). The
.mo files are committed beside their .po files, so a checkout or an installed wheel serves every
language without a build step; the test also fails when a .mo is older than its .po.

English is the source language (the message ids), so only the other locales have catalogues.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from portal.i18n.locales import LOCALES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
MAPPING = ROOT / "babel.cfg"

#: Babel's own keywords plus the lazy forms the code uses (``lazy_gettext as _l``).
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}

#: Python's %-placeholders: ``%(name)s``, ``%(count)d``, and bare ``%s``/``%d``.
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifr]")

TRANSLATED = tuple(code for code in LOCALES if code != "en")


def extract() -> Catalog:
    """Every translatable string of the code and templates, as babel.cfg maps them."""
    with MAPPING.open() as mapping:
        # Babel's own annotations stop short of this function.
        method_map, options_map = parse_mapping_cfg(mapping)  # type: ignore[no-untyped-call]
    catalog = Catalog(project="portal", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(locale: str) -> Path:
    # Flask-Babel looks a catalogue up by the full name Babel gives the locale ("zh_CN" is
    # "zh_Hans_CN": the script is implied), so the folder carries that name.
    return TRANSLATIONS / str(Locale.parse(locale)) / "LC_MESSAGES" / "messages.po"


def mo_path(locale: str) -> Path:
    return po_path(locale).with_suffix(".mo")


def read(locale: str) -> Catalog:
    with po_path(locale).open("rb") as po:
        return read_po(po, locale=locale)


def compiled(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def update(locale: str, template: Catalog | None = None) -> Catalog:
    """Bring ``locale``'s .po up to date with the source (new strings untranslated, removed
    ones dropped, no fuzzy guesses) and recompile its .mo."""
    template = template or extract()
    path = po_path(locale)
    if path.exists():
        catalog = read(locale)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(
            locale=locale,
            project="portal",
            charset="utf-8",
            header_comment=f"# {locale} translation of the speak-up portal.",
            last_translator="portal developers",
            language_team="portal developers",
        )
    created = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
    catalog.creation_date = created  # the header changes only when a translator changes it
    catalog.fuzzy = False  # a fuzzy header would be left out of the .mo, plural rule and all
    catalog.obsolete.clear()  # git keeps the history; a stale string only misleads translators
    write(locale, catalog)
    return catalog


def write(locale: str, catalog: Catalog) -> None:
    out = io.BytesIO()
    write_po(out, catalog, width=100, include_lineno=False)
    po_path(locale).write_bytes(out.getvalue())
    mo_path(locale).write_bytes(compiled(catalog))


def _placeholders(text: str) -> set[str]:
    return {match.group(0) for match in _PLACEHOLDER.finditer(text)}


def _ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, (list, tuple)) else (str(message.id),)


def _strings(message: Message) -> tuple[str, ...]:
    value = message.string
    if isinstance(value, (list, tuple)):
        return tuple(str(s) for s in value)
    return (str(value or ""),)


def problems(locale: str, template: Catalog | None = None) -> list[str]:
    """What keeps ``locale``'s catalogue from being complete, one line each (empty when none):
    strings missing, untranslated or fuzzy, strings no longer in the source, placeholders
    that differ from the English, and a .mo that is not the .po compiled."""
    template = template or extract()
    if not po_path(locale).exists():
        return [f"{po_path(locale)} does not exist: run `make messages`"]
    catalog = read(locale)
    found: list[str] = []
    for message in template:
        if not message.id:
            continue
        where = ", ".join(sorted({str(loc[0]) for loc in message.locations}))
        have = catalog.get(message.id, message.context)
        if have is None:
            found.append(f"missing ({where}): {_ids(message)[0]!r}")
            continue
        strings = _strings(have)
        if not all(strings):
            found.append(f"untranslated ({where}): {_ids(message)[0]!r}")
        elif have.fuzzy:
            found.append(f"fuzzy ({where}): {_ids(message)[0]!r}")
        else:
            # Plural forms: every form takes the plural id's placeholders (Chinese has one).
            wanted = _placeholders(_ids(message)[-1])
            for text in strings:
                if _placeholders(text) != wanted:
                    found.append(f"placeholders differ ({where}): {_ids(message)[0]!r} -> {text!r}")
    for message in catalog:
        if message.id and template.get(message.id, message.context) is None:
            found.append(f"no longer in the source: {_ids(message)[0]!r}")
    if not mo_path(locale).exists() or mo_path(locale).read_bytes() != compiled(catalog):
        found.append(f"{mo_path(locale).name} is not the .po compiled: run `make messages`")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "update":
        template = extract()
        for locale in TRANSLATED:
            catalog = update(locale, template)
            missing = sum(1 for m in catalog if m.id and not all(_strings(m)))
            where = po_path(locale).relative_to(ROOT)
            print(f"{where}: {len(catalog)} strings, {missing} to translate")
        return 0
    if command == "check":
        template = extract()
        failed = False
        for locale in TRANSLATED:
            for line in problems(locale, template):
                failed = True
                print(f"{locale}: {line}")
        return 1 if failed else 0
    print("usage: python -m portal.i18n.catalogues update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
