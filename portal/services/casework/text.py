"""Cleaning what people type, with limits that are documented in docs/limits.md."""

from __future__ import annotations

import re
import unicodedata

from portal.errors import InvalidInput
from portal.i18n.wording import N_

# C0 and C1 control characters other than tab and newline have no place in a concern and can
# break terminals or logs that show the text later.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    """True for NUL and other control characters, which PostgreSQL text refuses outright."""
    return bool(_CONTROL.search(value))


def clean_text(value: str | None, field: str, max_chars: int, required: bool = True) -> str:
    text = unicodedata.normalize("NFC", (value or "").replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text).strip()
    if required and not text:
        raise InvalidInput(field, N_("This field is required."))
    if len(text) > max_chars:
        raise InvalidInput(
            field,
            N_(
                "This is %(length)s characters long; the limit is %(limit)s.",
                length=format(len(text), ","),
                limit=format(max_chars, ","),
            ),
        )
    return text
