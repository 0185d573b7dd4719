"""The organisation's optional access code for the concern form.

A speed bump against strangers and robots, not a secret that protects anyone: every employee
knows it. Only an Argon2id hash of it is kept (setting ``report_access_code_hash``), so a copy of
the configuration does not hand it out; guesses are slowed by the per-client submission limit.
"""

from __future__ import annotations

import unicodedata

from portal import crypto
from portal.crypto import Argon2Cost
from portal.errors import InvalidInput
from portal.i18n.wording import N_

MIN_CHARS = 8
MAX_CHARS = 200


def normalise(code: str) -> str:
    """The same code however it was typed: NFC, outer white space removed; case is kept."""
    return unicodedata.normalize("NFC", code).strip()


def hash_code(code: str, cost: Argon2Cost) -> str:
    """The value for ``report_access_code_hash``; InvalidInput for a code too short or long."""
    code = normalise(code)
    if not MIN_CHARS <= len(code) <= MAX_CHARS:
        raise InvalidInput(
            "code",
            N_(
                "An access code has %(low)d to %(high)d characters.",
                low=MIN_CHARS,
                high=MAX_CHARS,
            ),
        )
    return crypto.hash_password(code, cost)


def matches(code_hash: str, typed: str, cost: Argon2Cost) -> bool:
    typed = normalise(typed)
    if not typed or len(typed) > MAX_CHARS:
        return False
    return crypto.verify_password(code_hash, typed, cost)
