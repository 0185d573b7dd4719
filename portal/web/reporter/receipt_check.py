"""The receipt practice check: "type your receipt again" on the receipt page.

The receipt page carries, in a hidden field of its check form, the receipt of *that* submission
encrypted (XChaCha20-Poly1305, key derived from the instance secret key for this purpose only)
together with an expiry. Nothing is stored on the server or in a cookie: the token lives only in
the page, which already shows the receipt in the clear and is sent ``no-store``. Checking needs no
database lookup, so the check is no oracle for other receipts and needs no throttle. While the
token lives, the page can show the receipt again next to a typed copy that does not match, so a
mistake in writing it down can still be corrected; once it has expired, nobody can show it.

The same sealing (``seal``/``unseal``, with its own associated data per use) carries the receipt
from the POST that submits a concern to the receipt page it redirects to
(``portal.web.reporter.receipt_cookie``), so there is one way of sealing a receipt, not two.
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


def seal(receipt: str, lifetime: dt.timedelta, ad: bytes) -> str:
    """The receipt and its expiry, encrypted and authenticated; ``ad`` names the use, so a
    token made for one use is refused by another."""
    expires = state.now() + lifetime
    payload = json.dumps(
        {"r": crypto.normalise_receipt(receipt), "e": int(expires.timestamp())}
    ).encode()
    return base64.urlsafe_b64encode(crypto.encrypt(_key(), payload, ad)).decode()


def unseal(token: str, ad: bytes) -> str | None:
    """The (displayable) receipt a live token was sealed for this use; None if expired, made
    for another use, or not ours."""
    try:
        payload = json.loads(crypto.decrypt(_key(), base64.urlsafe_b64decode(token), ad))
        if int(payload["e"]) < state.now().timestamp():
            return None
        return crypto.format_receipt(str(payload["r"]))
    except (crypto.DecryptionFailed, ValueError, KeyError, TypeError):
        return None


def token_for(receipt: str) -> str:
    """The hidden value the receipt page's check form posts back."""
    minutes = state.settings().reporter_session_minutes
    return seal(receipt, dt.timedelta(minutes=minutes), _AD)


def receipt_in(token: str) -> str | None:
    """The (displayable) receipt a live token was made for; None if expired or not ours."""
    return unseal(token, _AD)


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
