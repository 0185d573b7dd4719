"""The receipt practice check: "type your receipt again" on the receipt page.

The receipt page carries, in a hidden field of its check form, the receipt of *that* submission
encrypted (XChaCha20-Poly1305, key derived from the instance secret key for this purpose only)
together with an expiry. Nothing is stored on the server or in a cookie: the token lives only in
the page, which already shows the receipt in the clear and is sent ``no-store``. Checking needs no
database lookup, so the check is no oracle for other receipts and needs no throttle. While the
token lives, the page can show the receipt again next to a typed copy that does not match, so a
mistake in writing it down can still be corrected; once it has expired, nobody can show it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from enum import StrEnum

from portal import crypto
from portal.web import state

_AD = b"portal-receipt-check"


class Outcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    EXPIRED = "expired"


def _key() -> bytes:
    return crypto.subkey(state.secrets().secret_key, "receipt-check")


def token_for(receipt: str) -> str:
    """The hidden value the receipt page's check form posts back."""
    minutes = state.settings().reporter_session_minutes
    expires = state.now() + dt.timedelta(minutes=minutes)
    payload = json.dumps(
        {"r": crypto.normalise_receipt(receipt), "e": int(expires.timestamp())}
    ).encode()
    return base64.urlsafe_b64encode(crypto.encrypt(_key(), payload, _AD)).decode()


def receipt_in(token: str) -> str | None:
    """The (displayable) receipt a live token was made for; None if expired or not ours."""
    try:
        payload = json.loads(crypto.decrypt(_key(), base64.urlsafe_b64decode(token), _AD))
        if int(payload["e"]) < state.now().timestamp():
            return None
        return crypto.format_receipt(str(payload["r"]))
    except (crypto.DecryptionFailed, ValueError, KeyError, TypeError):
        return None


def check(receipt: str, typed: str) -> Outcome:
    """Compare what was typed with the receipt, forgiving case, spaces, dashes and look-alike
    letters exactly as the follow-up log-in does."""
    try:
        normalised = crypto.normalise_receipt(typed)
    except crypto.MalformedSecret:
        return Outcome.MISMATCH
    expected = crypto.normalise_receipt(receipt)
    if crypto.constant_time_equal(normalised.encode(), expected.encode()):
        return Outcome.MATCH
    return Outcome.MISMATCH
