"""Nobody can lock a staff member out, and guessing stays bounded (issue 13, finding 12).

Before: five wrong passwords from one address made the account answer 429 to everyone, the right
password and code from another address included. Now failures per account only make the password
count together with a current code (every failure of that form looks alike), a client is refused
after its own failures, and an account refuses to check any password after
``login_account_max_failures`` in a window, except from a browser that logged in to it before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db import Base
from portal.models import AuditEvent, StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.web.staff.auth import DEVICE_COOKIE
from tests.support.factories import PASSWORD, Portal
from tests.support.pages import csrf_token, login, next_code

LOGIN_FAILED = Action.LOGIN_FAILED.value


def _client(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _post_login(client: FlaskClient, email: str, password: str, code: str | None = None) -> Any:
    token = csrf_token(client.get("/staff/login").text)
    data = {"csrf_token": token, "email": email, "password": password}
    if code is not None:
        data["code"] = code
    return client.post("/staff/login", data=data)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every password verification (the Argon2id check of a login hash)."""
    calls: list[int] = []
    real: Callable[..., bool] = crypto.verify_password

    def counting(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(crypto, "verify_password", counting)
    return calls


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_wrong_passwords_from_one_client_do_not_lock_out_a_fresh_client(
    app: Flask, portal: Portal, db: Session, checks: list[int]
) -> None:
    alice = portal.staff("alice")
    limit = portal.settings.login_max_failures
    attacker = _client(app, "198.51.100.7")
    statuses = [_post_login(attacker, alice.email, "guess").status_code for _ in range(limit + 2)]
    assert statuses[:limit] == [400] * limit
    assert statuses[limit:] == [429, 429]  # the attacker's own client is refused

    colleague = _client(app, "203.0.113.20")
    # The password alone is not checked now; the page asks for the code with it.
    before = len(checks)
    asked = _post_login(colleague, alice.email, PASSWORD)
    assert asked.status_code == 400
    assert "Enter your password and the current code" in asked.text
    assert 'name="code"' in asked.text
    assert len(checks) == before
    assert "portal_staff=" not in asked.headers.get("Set-Cookie", "")
    # The right password and code together get in, straight to the staff pages.
    response = _post_login(colleague, alice.email, PASSWORD, next_code(app, alice))
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/staff/"
    assert colleague.get("/staff/").status_code == 200
    [event] = [
        e
        for e in db.scalars(select(AuditEvent).where(AuditEvent.action == Action.LOGIN.value))
        if e.actor_id == alice.id
    ]
    assert audit.detail_of(event) == {"must_change_password": False, "together": True}


def test_under_guessing_a_right_password_with_a_wrong_code_looks_like_a_wrong_password(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    for i in range(portal.settings.login_max_failures):
        _post_login(_client(app, f"198.51.100.{i + 1}"), alice.email, "guess")
    code = next_code(app, alice)
    right_password = _post_login(_client(app, "192.0.2.1"), alice.email, PASSWORD, _wrong(code))
    wrong_password = _post_login(_client(app, "192.0.2.2"), alice.email, "guess", code)
    for response in (right_password, wrong_password):
        assert response.status_code == 400
        assert "Wrong e-mail, password or code." in response.text
        assert "portal_staff=" not in response.headers.get("Set-Cookie", "")
    assert right_password.text.replace(csrf_token(right_password.text), "") == (
        wrong_password.text.replace(csrf_token(wrong_password.text), "")
    )
    db.expire_all()
    assert db.get_one(StaffUser, alice.id).totp_last_step is None  # no code was accepted


def test_guessing_from_many_clients_is_bounded_and_a_known_browser_still_gets_in(
    app: Flask, portal: Portal, db: Session, checks: list[int]
) -> None:
    state = app.extensions["portal"]
    bound = 12
    state.settings = state.settings.replace(login_account_max_failures=bound)
    limit = state.settings.login_max_failures
    alice = portal.staff("alice")
    # Alice's own browser logged in last week: it holds a device cookie for her account.
    own = _client(app, "203.0.113.5")
    assert login(own, alice) == "/staff/"
    device = own.get_cookie(DEVICE_COOKIE, path="/staff")
    assert device is not None and "203.0.113" not in device.value
    own.post("/staff/logout", data={"csrf_token": csrf_token(own.get("/staff/account").text)})

    start = len(checks)
    refused = 0
    for i in range(40):  # 40 addresses, each guessing until its answer is 429
        attacker = _client(app, f"198.51.{i // 200}.{i % 200 + 1}")
        for _ in range(limit + 1):
            answer = _post_login(attacker, alice.email, f"guess-{i}", "123456")
            if answer.status_code == 429:
                refused += 1
                break
            assert answer.status_code == 400
    guesses = len(checks) - start
    assert guesses == bound, guesses  # every guess after the bound was refused unchecked
    assert refused == 40
    failed = [e for e in db.scalars(select(AuditEvent).where(AuditEvent.action == LOGIN_FAILED))]
    assert len(failed) == guesses

    # Beyond the bound, even the right password with the right code is not checked from a new
    # browser: checking it is what the bound limits.
    before = len(checks)
    fresh = _client(app, "192.0.2.99")
    beyond = _post_login(fresh, alice.email, PASSWORD, next_code(app, alice))
    assert beyond.status_code == 429
    assert "log in from a browser you have used for this account before" in beyond.text
    assert len(checks) == before
    # A made-up or another account's device cookie does not help.
    bob = portal.staff("bob")
    bobs = _client(app, "203.0.113.6")
    login(bobs, bob)
    bob_cookie = bobs.get_cookie(DEVICE_COOKIE, path="/staff")
    assert bob_cookie is not None
    for value in (bob_cookie.value, f"{alice.id}.{'0' * 32}.{'0' * 32}"):
        forged = _client(app, "192.0.2.98")
        forged.set_cookie(DEVICE_COOKIE, value, path="/staff")
        assert _post_login(forged, alice.email, PASSWORD, next_code(app, alice)).status_code == 429
    # Alice's own browser still gets in, with password and code together.
    back = _post_login(own, alice.email, PASSWORD, next_code(app, alice))
    assert back.status_code == 302 and back.headers["Location"] == "/staff/"
    # No address, in any form, was stored anywhere.
    db.expire_all()
    stored = " ".join(
        str(value)
        for table in Base.metadata.sorted_tables
        for row in db.execute(table.select())
        for value in row
    )
    for prefix in ("198.51.", "192.0.2.", "203.0.113."):
        assert prefix not in stored


def test_a_logged_in_colleague_can_still_change_their_password_while_others_guess(
    app: Flask, portal: Portal
) -> None:
    alice = portal.staff("alice")
    own = _client(app, "203.0.113.5")
    login(own, alice)
    for i in range(portal.settings.login_max_failures + 1):
        _post_login(_client(app, f"198.51.100.{i + 1}"), alice.email, "guess")
    page = own.get("/staff/account/password")
    token = csrf_token(page.text)
    new = "a much longer passphrase for alice 2026"
    response = own.post(
        "/staff/account/password",
        data={"csrf_token": token, "current": PASSWORD, "new": new, "confirm": new},
    )
    assert response.status_code != 429, response.text


def test_someone_with_the_password_gets_few_codes_from_many_clients(
    app: Flask, portal: Portal, db: Session
) -> None:
    """Wrong codes after a right password are bounded per account, not only per client: the
    password holder cannot spread code guesses over many addresses. Alice's own browser still
    gets in."""
    alice = portal.staff("alice")
    limit = portal.settings.login_max_failures
    own = _client(app, "203.0.113.5")
    login(own, alice)
    own.post("/staff/logout", data={"csrf_token": csrf_token(own.get("/staff/account").text)})
    wrong = _wrong(next_code(app, alice))
    answers = []
    for i in range(limit + 3):
        thief = _client(app, f"198.51.100.{i + 1}")
        step = _post_login(thief, alice.email, PASSWORD)
        if step.status_code == 302:
            token = csrf_token(thief.get("/staff/login/code").text)
            answers.append(
                thief.post(
                    "/staff/login/code", data={"csrf_token": token, "code": wrong}
                ).status_code
            )
        else:
            answers.append(step.status_code)
    tried = [
        e
        for e in db.scalars(select(AuditEvent).where(AuditEvent.action == LOGIN_FAILED))
        if audit.detail_of(e).get("factor") == "totp"
    ]
    assert len(tried) == limit
    assert answers[-1] == 429
    back = _post_login(own, alice.email, PASSWORD, next_code(app, alice))
    assert back.status_code == 302 and back.headers["Location"] == "/staff/"
