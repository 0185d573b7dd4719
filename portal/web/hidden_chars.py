"""Characters that change how text reads without being seen, shown to staff as what they are.

A reporter (or anyone who writes into a case) can put a right-to-left override into a message
so that ``txt.exe`` reads as ``exe.txt``, turn a sentence around with bidi isolates, or hide
words between zero-width characters. Staff pages that show case text pass it through the
``reveal`` filter: each format character (Unicode category Cf: the bidi controls U+202A-U+202E,
U+2066-U+2069, U+200E, U+200F, U+061C, the zero-width U+200B-U+200D, U+2060, U+FEFF, the tag
characters U+E0000-U+E007F, the soft hyphen...) becomes a visible marker such as
``⟦U+202E⟧`` in a ``<span class="hidden-char">`` whose title names the character, so it no
longer acts on the text around it. What is stored, and the reporter's own pages and downloads,
keep the text exactly as written: it is evidence.
"""

from __future__ import annotations

import re
import sys
import unicodedata

from flask import Flask
from markupsafe import Markup, escape

#: Every format character (category Cf) of the Unicode version Python ships.
_HIDDEN = re.compile(
    "["
    + "".join(
        re.escape(chr(c)) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
    )
    + "]"
)


def marker(char: str) -> str:
    """The visible form of one hidden character, e.g. ``⟦U+202E⟧``."""
    return f"⟦U+{ord(char):04X}⟧"


def reveal(text: object) -> Markup:
    """``text`` escaped, with each format character replaced by its marker."""
    escaped = str(escape("" if text is None else text))

    def visible(match: re.Match[str]) -> str:
        char = match.group(0)
        name = unicodedata.name(char, "FORMAT CHARACTER")
        return f'<span class="hidden-char" title="{name}">{marker(char)}</span>'

    return Markup(_HIDDEN.sub(visible, escaped))  # noqa: S704  # nosec B704  # escaped above


def init_app(app: Flask) -> None:
    app.jinja_env.filters["reveal"] = reveal
