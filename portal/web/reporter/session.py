"""The reporter's follow-up session: a short-lived encrypted cookie, no database row.

It holds the case id and the receipt-derived private key, never the receipt. It is encrypted
(not merely signed) under a key derived from the instance secret key, so the browser's cookie
store alone does not reveal the key, and it expires on its own.
"""

from __future__ import annotations

import base64
import json
import time

from flask import Request, Response

from portal import crypto
from portal.services.reporting.followup import ReporterKey
from portal.web import state

COOKIE = "portal_reporter"
PATH = "/followup"
_AD = b"portal-reporter-cookie"


def _key() -> bytes:
    return crypto.subkey(state.secrets().secret_key, "reporter-cookie")


def store(response: Response, key: ReporterKey) -> None:
    minutes = state.settings().reporter_session_minutes
    payload = json.dumps(
        {
            "c": key.case_id,
            "k": base64.b64encode(key.private_key).decode(),
            "e": int(time.time()) + minutes * 60,
        }
    ).encode()
    token = base64.urlsafe_b64encode(crypto.encrypt(_key(), payload, _AD)).decode()
    response.set_cookie(
        COOKIE,
        token,
        max_age=minutes * 60,
        path=PATH,
        secure=state.settings().secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def load(request: Request) -> ReporterKey | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        payload = json.loads(crypto.decrypt(_key(), base64.urlsafe_b64decode(token), _AD))
        if int(payload["e"]) < time.time():
            return None
        return ReporterKey(str(payload["c"]), base64.b64decode(payload["k"]))
    except (crypto.DecryptionFailed, ValueError, KeyError, TypeError):
        return None


def clear(response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, secure=state.settings().secure_cookies, httponly=True, samesite="Strict"
    )
