"""Handing the receipt from the submitting POST to the receipt page (post/redirect/get).

The POST that sends a concern answers 303 to ``/report/receipt``; the receipt travels in the
cookie ``portal_receipt``, sealed like the practice check's token (``receipt_check.seal``:
XChaCha20-Poly1305 under a subkey of the instance secret key, with its own associated data and
an expiry inside). Nothing is stored on the server. The cookie is HttpOnly, SameSite=Strict,
Secure when ``secure_cookies`` is on, sent only to the receipt page's path, and deleted by the
receipt page in the very response that shows the receipt: reloading that page finds no cookie
and shows "shown once" instead of sending the concern again.
"""

from __future__ import annotations

import datetime as dt

from flask import Request, Response

from portal.web import state
from portal.web.reporter import receipt_check

COOKIE = "portal_receipt"
PATH = "/report/receipt"
#: How long the hand-over lives (cookie Max-Age and the expiry sealed inside it). It only has to
#: outlast the browser following one redirect, even on a slow connection; a cookie left behind
#: when the redirect was never followed must not linger. See docs/limits.md.
MAX_AGE_SECONDS = 5 * 60
_AD = b"portal-receipt-cookie"


def hand_over(response: Response, receipt: str) -> None:
    token = receipt_check.seal(receipt, dt.timedelta(seconds=MAX_AGE_SECONDS), _AD)
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE_SECONDS,
        path=PATH,
        secure=state.settings().secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def take(request: Request) -> str | None:
    """The receipt the cookie carries, if it is ours and still live; None otherwise."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return receipt_check.unseal(token, _AD)


def clear(response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, secure=state.settings().secure_cookies, httponly=True, samesite="Strict"
    )
