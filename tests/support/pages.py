"""Pages as a browser uses them: CSRF tokens, the log-in steps, the report form and follow-up."""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import crypto
from portal.models import StaffUser
from tests.support.factories import PASSWORD, TOTP_SECRET

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def receipt_of(html: str) -> str:
    match = re.search(r'id="receipt">([^<]+)<', html)
    assert match, "page shows no receipt"
    return match.group(1).strip()


def next_code(app: Flask, user: StaffUser, secret: str = TOTP_SECRET) -> str:
    """A code the portal will accept for ``user`` now: the current step's, or, when that step
    was used already (the same account logged in twice within 30 seconds), the next step's,
    which the allowed clock drift admits. Beyond that the app's clock is moved on, so tests
    never wait for real time and replay protection stays on."""
    state = app.extensions["portal"]
    with state.sessions() as session:
        last = session.get_one(StaffUser, user.id).totp_last_step
    current = crypto.totp_step(state.clock())
    step = current if last is None or last < current else last + 1
    if step > current + crypto.TOTP_DRIFT_STEPS:
        shift = dt.timedelta(seconds=(step - current) * crypto.TOTP_STEP_SECONDS)
        previous = state.clock
        state.clock = lambda: previous() + shift
    return crypto.totp_code(crypto.normalise_totp_secret(secret), step)


def login_password(client: FlaskClient, user: StaffUser, password: str = PASSWORD) -> str:
    """The first log-in step only; returns where it leads (the code or enrolment page)."""
    token = csrf_token(client.get("/staff/login").text)
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": user.email, "password": password}
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def login(
    client: FlaskClient, user: StaffUser, password: str = PASSWORD, totp_secret: str = TOTP_SECRET
) -> str:
    """Both log-in steps (password, then a fresh code); returns where the log-in lands."""
    assert login_password(client, user, password) == "/staff/login/code"
    token = csrf_token(client.get("/staff/login/code").text)
    code = next_code(client.application, user, totp_secret)
    response = client.post("/staff/login/code", data={"csrf_token": token, "code": code})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def report_form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "category": "harassment",
        "description": "My manager shouts at me in front of the team.",
        "happened": "ongoing",
        "identity": "anonymous",
        "site": "",
        "department": "",
    }
    data.update(overrides)
    return data


def receipt_page_after(client: FlaskClient, posted: TestResponse) -> TestResponse:
    """Follow a successful submission's 303 to the receipt page (post/redirect/get), as a
    browser does; the receipt page is where the receipt is shown."""
    assert posted.status_code == 303, posted.text
    assert posted.location == "/report/receipt", posted.location
    shown = client.get(posted.location)
    assert shown.status_code == 200, shown.text
    return shown


def post_concern(client: FlaskClient, **overrides: object) -> TestResponse:
    """Send the report form as a browser does and return the receipt page it leads to."""
    token = csrf_token(client.get("/report").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form(**overrides)})
    return receipt_page_after(client, posted)


def submit_via_web(client: FlaskClient, **overrides: object) -> str:
    return receipt_of(post_concern(client, **overrides).text)


def open_followup(client: FlaskClient, receipt: str) -> None:
    token = csrf_token(client.get("/followup").text)
    response = client.post("/followup", data={"csrf_token": token, "receipt": receipt})
    assert response.status_code == 302, response.text
