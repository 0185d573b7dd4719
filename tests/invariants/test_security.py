"""Staff security: the TOTP second factor, log-in in steps, sessions, password change, and
password resets by an admin. Security properties are checked in what is stored (rows, bytes of
the database) and in the audit log, not only in the pages."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.app import create_app
from portal.db import Base
from portal.errors import InvalidCredentials, InvalidInput, NoAccess, WrongCode
from portal.models import (
    AuditEvent,
    CaseAccess,
    PendingRegrant,
    Role,
    SessionStage,
    StaffSession,
    StaffUser,
)
from portal.ops.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
from portal.services.accounts import accounts as staff
from portal.services.accounts import login as login_service
from portal.services.accounts import second_factor
from portal.services.accounts import sessions as staff_sessions
from portal.services.audit.chain import Action
from portal.services.casework import cases as case_service
from portal.settings import PROJECT_ROOT, SettingsError, load_settings
from portal.web.auth import COOKIE
from portal.web.security import CSP, HSTS
from tests.support.factories import PASSWORD, TOTP_SECRET, Portal, cheap_settings
from tests.support.pages import csrf_token, login, login_password, next_code
from tests.support.smtp_server import Recorder, app_mailbox

NEW_PASSWORD = "a much better passphrase"


def _events(db: Session, action: Action) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def _fresh(db: Session, user: StaffUser) -> StaffUser:
    db.expire_all()
    return db.get_one(StaffUser, user.id)


def _post_code(client: FlaskClient, code: str, page: str = "/staff/login/code") -> TestResponse:
    token = csrf_token(client.get("/staff/login").text)
    return client.post(page, data={"csrf_token": token, "code": code})


def _code_for(app: Flask, secret: str = TOTP_SECRET, steps_from_now: int = 0) -> str:
    now = app.extensions["portal"].clock()
    return crypto.totp_code(secret, crypto.totp_step(now) + steps_from_now)


def _every_stored_value(db: Session) -> list[object]:
    db.expire_all()
    values: list[object] = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(table.select()):
            values.extend(row)
    return values


def _stored_anywhere(db: Session, app: Flask, needles: list[bytes]) -> bool:
    """Whether any needle occurs in any column of any row, or (SQLite) in the database files."""
    for value in _every_stored_value(db):
        raw = value if isinstance(value, bytes) else str(value).encode()
        if any(needle in raw for needle in needles):
            return True
    url = make_url(app.extensions["portal"].settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for path in (Path(url.database), Path(url.database + "-wal")):
            if path.exists() and any(n in path.read_bytes() for n in needles):
                return True
    return False


# --- the second factor is required -----------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_role_needs_a_code_after_the_password(
    app: Flask, portal: Portal, db: Session, role: Role
) -> None:
    user = portal.staff("someone", roles=(role,), queues=())
    client = app.test_client()

    assert login_password(client, user) == "/staff/login/code"
    stage = db.scalars(select(StaffSession.stage)).one()
    refused = client.get("/staff/account")
    home = client.post(
        "/staff/login/code",
        data={"csrf_token": csrf_token(client.get("/staff/login/code").text), "code": "123 45x"},
    )

    assert stage == SessionStage.TOTP
    assert (refused.status_code, refused.headers["Location"]) == (302, "/staff/login/code")
    assert home.status_code == 400 and "A code has 6 digits." in home.text
    landing = login(app.test_client(), user)
    assert landing in {"/staff/", "/staff/account", "/insights/"}


def test_a_code_is_accepted_once_and_never_again(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    code = _code_for(app)
    first, second = app.test_client(), app.test_client()

    login_password(first, alice)
    accepted = _post_code(first, code)
    login_password(second, alice)
    replayed = _post_code(second, code)

    assert accepted.status_code == 302 and accepted.headers["Location"] == "/staff/"
    assert replayed.status_code == 400 and "used already" in replayed.text
    assert _fresh(db, alice).totp_last_step == crypto.totp_step(app.extensions["portal"].clock())
    assert second.get("/staff/").headers["Location"] == "/staff/login/code"
    failed = _events(db, Action.LOGIN_FAILED)
    assert [(e.target_staff_id, e.detail) for e in failed] == [(alice.id, '{"factor":"totp"}')]


def test_two_requests_racing_with_one_code_let_only_one_in(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    state = app.extensions["portal"]
    key, now, code = portal.private_key(alice), state.clock(), _code_for(app)
    cookies = [
        staff_sessions.start_session(db, alice, key, now, SessionStage.TOTP) for _ in range(2)
    ]
    db.commit()

    with state.sessions() as first:
        slow = staff_sessions.resume(first, portal.settings, cookies[0], now)
        first.commit()  # it has read the account: no step accepted yet
        with state.sessions() as second:
            fast = staff_sessions.resume(second, portal.settings, cookies[1], now)
            login_service.check_code(second, fast, code, now)
            second.commit()
        with pytest.raises(WrongCode):
            login_service.check_code(first, slow, code, now)
        first.commit()

    assert [e.target_staff_id for e in _events(db, Action.LOGIN_FAILED)] == [alice.id]
    assert len(_events(db, Action.LOGIN)) == 1


def test_one_step_of_clock_drift_either_way_and_no_more(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    for offset, accepted in ((-2, False), (2, False), (-1, True)):
        if login_password(client, alice) != "/staff/login/code":
            pytest.fail("not at the code step")
        response = _post_code(client, _code_for(app, steps_from_now=offset))
        assert (response.status_code == 302) is accepted, offset
    # After the step before now was accepted, now's code is still good (it is a later step) ...
    login_password(client, alice)
    assert _post_code(client, _code_for(app)).status_code == 302
    # ... but the one before it, never used, is not: it is older than the last accepted.
    login_password(client, alice)
    assert _post_code(client, _code_for(app, steps_from_now=-1)).status_code == 400


def test_wrong_codes_are_throttled_per_account_across_new_password_steps(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    good = _code_for(app)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(portal.settings.login_max_failures):
        # A fresh password step each time: the password is right, so it must not reset the count.
        client = app.test_client()
        login_password(client, alice)
        response = _post_code(client, wrong)
        assert response.status_code == 400
    client = app.test_client()
    token = csrf_token(client.get("/staff/login").text)
    password_step = client.post(
        "/staff/login", data={"csrf_token": token, "email": alice.email, "password": PASSWORD}
    )

    assert password_step.status_code == 429 and "Too many failed log-ins" in password_step.text
    assert len(_events(db, Action.LOGIN_FAILED)) == portal.settings.login_max_failures
    assert _events(db, Action.LOGIN) == []
    assert _fresh(db, alice).totp_last_step is None  # the good code was never accepted


def test_code_step_is_refused_once_throttled_even_with_the_right_code(
    app: Flask, portal: Portal
) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login_password(client, alice)
    wrong = f"{(int(_code_for(app)) + 1) % 1_000_000:06d}"
    for _ in range(portal.settings.login_max_failures):
        _post_code(client, wrong)

    response = _post_code(client, _code_for(app))

    assert response.status_code == 429 and "Too many failed log-ins" in response.text
    assert client.get("/staff/").headers["Location"] == "/staff/login/code"


def test_a_pending_step_lapses_after_its_minutes(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login_password(client, alice)
    state = app.extensions["portal"]
    start = state.clock()
    state.clock = lambda: start + dt.timedelta(minutes=portal.settings.staff_login_step_minutes + 1)

    response = client.get("/staff/login/code")

    assert response.headers["Location"] == "/staff/login"
    assert db.scalar(select(func.count()).select_from(StaffSession)) == 0


def test_each_step_gets_a_new_session_id(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login_password(client, alice)
    pending = client.get_cookie(COOKIE, path="/staff")
    assert pending is not None
    _post_code(client, next_code(app, alice))
    full = client.get_cookie(COOKIE, path="/staff")

    stale = app.test_client()
    stale.set_cookie(COOKIE, pending.value, path="/staff")

    assert full is not None and full.value != pending.value
    assert client.get("/staff/").status_code == 200
    assert stale.get("/staff/login/code").headers["Location"] == "/staff/login"


# --- enrolment -----------------------------------------------------------------------------


def _enrolment_secret(html: str) -> str:
    shown = re.search(r'id="totp-secret">([^<]+)<', html)
    assert shown, "the enrolment page shows no secret"
    return crypto.normalise_totp_secret(shown.group(1))


def test_enrolment_shows_a_qr_code_and_the_secret_and_stores_neither_in_the_clear(
    app: Flask, portal: Portal, db: Session
) -> None:
    newcomer = portal.staff("newcomer", totp_secret=None)
    client = app.test_client()

    assert login_password(client, newcomer) == "/staff/login/enrol"
    page = client.get("/staff/login/enrol")
    secret = _enrolment_secret(page.text)
    again = _enrolment_secret(client.get("/staff/login/enrol").text)
    needles = [secret.encode(), secret.lower().encode(), base64.b32decode(secret)]
    stored_while_pending = _stored_anywhere(db, app, needles)
    cookie = client.get_cookie(COOKIE, path="/staff")

    assert page.status_code == 200 and again == secret
    assert '<svg class="qr" role="img"' in page.text and "<path d=" in page.text
    assert "<script" not in page.text and "<img" not in page.text
    assert page.headers["Content-Security-Policy"] == CSP
    assert crypto.group_totp_secret(secret) in page.text
    assert _stored_anywhere(db, app, [newcomer.email.encode()])  # the search does find things
    assert not stored_while_pending
    assert cookie is not None and secret not in cookie.value

    wrong_code = "000000" if _code_for(app, secret) != "000000" else "000001"
    wrong = _post_code(client, wrong_code, page="/staff/login/enrol")
    assert wrong.status_code == 400 and _fresh(db, newcomer).totp_sealed is None
    confirmed = _post_code(client, _code_for(app, secret), page="/staff/login/enrol")

    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/staff/"
    user = _fresh(db, newcomer)
    assert user.totp_sealed is not None
    assert second_factor.open_totp_secret(portal.private_key(user), user.totp_sealed) == secret
    assert not _stored_anywhere(db, app, needles)
    assert [e.actor_id for e in _events(db, Action.TOTP_ENROLLED)] == [newcomer.id]
    assert client.get("/staff/").status_code == 200
    # From now on the account logs in with the code of that secret.
    assert login(app.test_client(), user, totp_secret=secret) == "/staff/"


def test_enrolment_pages_are_not_for_an_enrolled_account(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login_password(client, alice)
    assert client.get("/staff/login/enrol").headers["Location"] == "/staff/login/code"


# --- no enumeration, audit of log-ins --------------------------------------------------------


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def test_unknown_email_and_wrong_password_look_the_same_and_store_nothing_typed(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    typed_email = "nobody-by-that-name@example.org"
    typed_password = "a-guess-that-must-not-be-stored"
    answers = []
    for email in (alice.email, typed_email):
        client = app.test_client()
        token = csrf_token(client.get("/staff/login").text)
        answers.append(
            client.post(
                "/staff/login",
                data={"csrf_token": token, "email": email, "password": typed_password},
            )
        )

    assert answers[0].status_code == answers[1].status_code == 400
    assert _without_token(answers[0].text).replace(alice.email, typed_email) == _without_token(
        answers[1].text
    )
    failed = _events(db, Action.LOGIN_FAILED)
    assert [(e.target_staff_id, e.actor_id, e.actor_email) for e in failed] == [
        (alice.id, None, ""),
        (None, None, ""),
    ]
    assert _stored_anywhere(db, app, [alice.email.encode()])  # the search does find things
    assert not _stored_anywhere(
        db, app, [typed_email.encode(), typed_password.encode(), b"nobody-by-that-name"]
    )


def test_log_in_and_log_out_are_audited(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login(client, alice)
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").text)})

    assert [e.actor_id for e in _events(db, Action.LOGIN)] == [alice.id]
    assert [(e.actor_id, e.detail) for e in _events(db, Action.LOGOUT)] == [
        (alice.id, '{"stage":"full"}')
    ]


def test_a_disabled_account_cannot_pass_the_code_step(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login_password(client, alice)
    _fresh(db, alice).active = False
    db.commit()

    response = _post_code(client, next_code(app, alice))

    assert response.status_code == 401
    assert db.scalar(select(func.count()).select_from(StaffSession)) == 0


# --- sessions -----------------------------------------------------------------------------


def test_account_lists_sessions_and_revoking_one_stops_its_cookie(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, alice)
    login(phone, alice)

    page = laptop.get("/staff/account")
    rows = re.findall(r"/staff/account/sessions/([0-9a-f]{32})/revoke", page.text)
    current = db.scalars(select(StaffSession.public_id).order_by(StaffSession.created_at)).all()

    assert page.status_code == 200 and sorted(rows) == sorted(current) and len(rows) == 2
    assert "This session" in page.text and "no address, no browser" in page.text
    this_row = re.search(r'<tr class="current">.*?</tr>', page.text, re.S)
    assert this_row is not None
    (phone_id,) = [public_id for public_id in current if public_id not in this_row.group(0)]

    response = laptop.post(
        f"/staff/account/sessions/{phone_id}/revoke",
        data={"csrf_token": csrf_token(page.text)},
    )

    assert response.status_code == 302 and response.headers["Location"] == "/staff/account"
    assert phone.get("/staff/").headers["Location"] == "/staff/login"
    assert laptop.get("/staff/").status_code == 200
    db.expire_all()
    assert db.scalars(select(StaffSession.public_id)).all() == [p for p in current if p != phone_id]
    revoked = _events(db, Action.SESSION_REVOKED)
    assert [(e.actor_id, e.detail) for e in revoked] == [(alice.id, '{"count":1,"current":false}')]


def test_nobody_can_revoke_someone_elses_session(app: Flask, portal: Portal, db: Session) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    alices, bobs = app.test_client(), app.test_client()
    login(alices, alice)
    login(bobs, bob)
    bob_session = db.scalars(
        select(StaffSession.public_id).where(StaffSession.staff_id == bob.id)
    ).one()

    response = alices.post(
        f"/staff/account/sessions/{bob_session}/revoke",
        data={"csrf_token": csrf_token(alices.get("/staff/account").text)},
    )

    assert response.status_code == 404
    assert bobs.get("/staff/").status_code == 200


def test_revoking_the_current_session_logs_out(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login(client, alice)
    current = db.scalars(select(StaffSession.public_id)).one()

    response = client.post(
        f"/staff/account/sessions/{current}/revoke",
        data={"csrf_token": csrf_token(client.get("/staff/account").text)},
    )

    assert response.headers["Location"] == "/staff/login"
    assert client.get("/staff/").headers["Location"] == "/staff/login"


def test_log_out_all_other_sessions(app: Flask, portal: Portal, db: Session) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    clients = [app.test_client() for _ in range(3)]
    for client in clients:
        login(client, alice)
    bobs = app.test_client()
    login(bobs, bob)
    keeper = clients[0]

    response = keeper.post(
        "/staff/account/sessions/revoke-others",
        data={"csrf_token": csrf_token(keeper.get("/staff/account").text)},
    )

    assert response.headers["Location"] == "/staff/account"
    assert "2 other session(s) logged out." in keeper.get("/staff/account").text
    assert [c.get("/staff/").status_code for c in clients] == [200, 302, 302]
    assert bobs.get("/staff/").status_code == 200
    assert _events(db, Action.SESSION_REVOKED)[-1].detail == '{"count":2,"current":false}'


def test_expired_sessions_of_the_user_are_deleted_at_log_in(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    for user in (alice, bob):
        staff_sessions.start_session(db, user, portal.private_key(user), long_ago)
        staff_sessions.start_session(
            db, user, portal.private_key(user), long_ago, SessionStage.TOTP
        )
    db.commit()

    login(app.test_client(), alice)

    db.expire_all()
    left = db.execute(select(StaffSession.staff_id, StaffSession.created_at)).all()
    assert sorted(staff_id for staff_id, _ in left) == sorted([alice.id, bob.id, bob.id])
    assert all(
        created > long_ago + dt.timedelta(days=1)
        for staff_id, created in left
        if staff_id == alice.id
    )


# --- password change ---------------------------------------------------------------------------


def _change(
    client: FlaskClient, current: str, new: str, confirm: str | None = None
) -> TestResponse:
    token = csrf_token(client.get("/staff/account/password").text)
    return client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current": current,
            "new": new,
            "confirm": new if confirm is None else confirm,
        },
    )


def test_password_change_keeps_access_and_ends_every_session(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit(description="Text only the holder can read.")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, alice)
    login(phone, alice)
    before = _fresh(db, alice)
    old_salt, old_wrapped, old_recovery = (
        before.password_salt,
        before.key_by_password,
        before.key_by_recovery,
    )

    response = _change(laptop, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"
    assert "Every session was logged out" in laptop.get("/staff/login").text
    assert db.scalar(select(func.count()).select_from(StaffSession)) == 0
    assert laptop.get("/staff/").headers["Location"] == "/staff/login"
    assert phone.get("/staff/").headers["Location"] == "/staff/login"
    after = _fresh(db, alice)
    assert after.password_salt != old_salt and after.key_by_password != old_wrapped
    assert after.key_by_recovery == old_recovery  # a voluntary change keeps the recovery key
    with pytest.raises(InvalidCredentials):
        portal.private_key(after, PASSWORD)
    key = portal.private_key(after, NEW_PASSWORD)
    case, _ = case_service.unlock(db, after, key, submitted.handle)
    assert case.handle == submitted.handle
    login(laptop, after, NEW_PASSWORD)
    assert "Text only the holder can read." in laptop.get(f"/staff/cases/{submitted.handle}").text
    changed = _events(db, Action.PASSWORD_CHANGED)
    assert [(e.actor_id, e.detail) for e in changed] == [
        (alice.id, '{"forced":false,"new_recovery_key":false,"sessions_revoked":2}')
    ]


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field_message"),
    [
        (PASSWORD, "short", "short", "at least 15 characters"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "not the same"),
        (PASSWORD, PASSWORD, PASSWORD, "different from the current one"),
        ("not my password", NEW_PASSWORD, NEW_PASSWORD, "That is not your current password."),
        ("", NEW_PASSWORD, NEW_PASSWORD, "Enter your current password."),
    ],
)
def test_refused_password_changes_explain_and_change_nothing(
    app: Flask,
    portal: Portal,
    db: Session,
    current: str,
    new: str,
    confirm: str,
    field_message: str,
) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login(client, alice)
    before = _fresh(db, alice).password_hash

    response = _change(client, current, new, confirm)

    assert response.status_code == 400 and field_message in response.text
    assert "Nothing was changed." in response.text
    assert NEW_PASSWORD not in response.text and "not my password" not in response.text
    assert _fresh(db, alice).password_hash == before
    assert client.get("/staff/").status_code == 200


def test_wrong_current_passwords_count_as_failed_log_ins(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login(client, alice)
    for _ in range(portal.settings.login_max_failures):
        assert _change(client, "guess", NEW_PASSWORD).status_code == 400

    response = _change(client, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 429 and "Too many failed log-ins" in response.text


# --- admin reset, forced change ------------------------------------------------------------------


def _admin_client(app: Flask, portal: Portal) -> FlaskClient:
    admin = portal.staff("root", roles=(Role.ADMIN,), queues=())
    client = app.test_client()
    login(client, admin)
    return client


def _reset(
    admin: FlaskClient, user: StaffUser, recovery_key: str = "", second_factor: bool = False
) -> TestResponse:
    url = f"/staff/admin/staff/{user.id}/reset"
    data = {"csrf_token": csrf_token(admin.get(url).text), "recovery_key": recovery_key}
    if second_factor:
        data["reset_second_factor"] = "y"
    return admin.post(url, data=data)


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Recorder]:
    with app_mailbox(app) as recorder:
        yield recorder


def _temporary_password(mailbox: Recorder, user: StaffUser, admin_saw: str) -> str:
    """The one-time password mailed to ``user``'s own address; the admin's page never shows it."""
    [mail] = mailbox.to(user.email)
    shown = re.search(r"^    (\S+)$", mail.body, re.M)
    assert shown, "the mail carries no one-time password"
    assert shown.group(1) not in admin_saw and 'id="temporary-password"' not in admin_saw
    return shown.group(1)


def _recovery_key_of(portal: Portal, name: str, **kwargs: object) -> tuple[StaffUser, str]:
    created = staff.create_staff(
        portal.session,
        portal.settings,
        email=f"{name}@example.org",
        display_name=name.capitalize(),
        roles=[Role.OMBUDSPERSON],
        queue_slugs=["general"],
        password=PASSWORD,
        now=dt.datetime.now(dt.UTC),
    )
    second_factor.assign_totp_secret(portal.session, created.user, TOTP_SECRET)
    portal.session.commit()
    return created.user, created.recovery_key


def test_reset_with_the_recovery_key_keeps_access_and_the_second_factor(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    carol, recovery = _recovery_key_of(portal, "carol")
    submitted = portal.submit(description="Carol keeps reading this.")
    carols = app.test_client()
    login(carols, carol)
    admin = _admin_client(app, portal)
    before = _fresh(db, carol)
    public_key, sealed_totp = before.public_key, before.totp_sealed

    done = _reset(admin, carol, recovery.lower().replace("-", " "))

    assert done.status_code == 200
    assert "keeps its access to every case" in done.text
    assert "The second factor was kept" in done.text
    temporary = _temporary_password(mailbox, carol, done.text)
    after = _fresh(db, carol)
    assert after.must_change_password and after.public_key == public_key
    assert after.totp_sealed == sealed_totp
    assert carols.get("/staff/").headers["Location"] == "/staff/login"  # sessions revoked
    assert db.scalar(select(func.count()).select_from(PendingRegrant)) == 0
    event = _events(db, Action.STAFF_PASSWORD_RESET)[-1]
    assert event.target_staff_id == carol.id and temporary not in event.detail
    assert '"kept_access":true' in event.detail and '"pending":0' in event.detail

    # The forced change: the temporary password and the same app; only the password page.
    assert login(carols, after, temporary) == "/staff/account/password"
    assert carols.get("/staff/").headers["Location"] == "/staff/account/password"
    assert carols.get(f"/staff/cases/{submitted.handle}").status_code == 302
    page = carols.get("/staff/account/password")
    assert "An admin reset your password" in page.text
    changed = _change(carols, temporary, NEW_PASSWORD)
    new_recovery = re.search(r'id="recovery-key">([^<]+)<', changed.text)

    assert changed.status_code == 200 and new_recovery is not None
    final = _fresh(db, carol)
    assert not final.must_change_password
    key = crypto.unwrap_with_recovery(new_recovery.group(1), final.key_by_recovery)
    assert crypto.public_key_of(key) == public_key
    with pytest.raises(crypto.DecryptionFailed):
        crypto.unwrap_with_recovery(recovery, final.key_by_recovery)
    assert db.scalars(select(StaffSession).where(StaffSession.staff_id == carol.id)).all() == []
    login(carols, final, NEW_PASSWORD)
    assert "Carol keeps reading this." in carols.get(f"/staff/cases/{submitted.handle}").text
    assert '"forced":true' in _events(db, Action.PASSWORD_CHANGED)[-1].detail


def test_reset_with_the_recovery_key_can_clear_the_second_factor(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    carol, recovery = _recovery_key_of(portal, "carol")
    admin = _admin_client(app, portal)

    done = _reset(admin, carol, recovery, second_factor=True)

    assert done.status_code == 200 and "The second factor was cleared" in done.text
    after = _fresh(db, carol)
    assert after.totp_sealed is None
    client = app.test_client()
    temporary = _temporary_password(mailbox, carol, done.text)
    assert login_password(client, after, temporary) == "/staff/login/enrol"


def test_reset_without_the_recovery_key_moves_access_to_pending_regrant(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    dora = portal.staff("dora")
    eve = portal.staff("eve")
    shared = portal.submit(description="Shared between Dora and Eve.")
    only_dora = portal.submit(description="Only Dora holds this.", excluded_staff_ids=(eve.id,))
    admin = _admin_client(app, portal)
    old_public = _fresh(db, dora).public_key

    form = admin.get(f"/staff/admin/staff/{dora.id}/reset")
    done = _reset(admin, dora)

    assert "holds 2 case(s) now" in form.text and "Nobody else holds 1 of them" in form.text
    assert done.status_code == 200 and "2 case(s) now await re-grant" in done.text
    after = _fresh(db, dora)
    assert after.public_key != old_public and after.totp_sealed is None
    assert db.scalars(select(CaseAccess).where(CaseAccess.staff_id == dora.id)).all() == []
    pending = db.execute(select(PendingRegrant.case_id, PendingRegrant.staff_id)).all()
    assert sorted(pending) == sorted([(shared.case_id, dora.id), (only_dora.case_id, dora.id)])
    event = _events(db, Action.STAFF_PASSWORD_RESET)[-1]
    assert '"kept_access":false' in event.detail and '"pending":2' in event.detail

    regrants = admin.get("/staff/admin/regrants")
    assert regrants.status_code == 200
    for handle in (shared.handle, only_dora.handle):
        assert handle in regrants.text
    assert "General ombuds office" in regrants.text and "Dora" in regrants.text
    assert "nobody can re-grant this case" in regrants.text
    assert "Shared between" not in regrants.text and "Only Dora" not in regrants.text

    # Dora sets up a new second factor and password; she cannot read the cases any more.
    client = app.test_client()
    temporary = _temporary_password(mailbox, dora, done.text)
    assert login_password(client, after, temporary) == "/staff/login/enrol"
    secret = _enrolment_secret(client.get("/staff/login/enrol").text)
    assert _post_code(client, _code_for(app, secret), page="/staff/login/enrol").headers[
        "Location"
    ] == ("/staff/account/password")
    changed = _change(client, temporary, NEW_PASSWORD)
    assert changed.status_code == 200
    final = _fresh(db, dora)
    login(client, final, NEW_PASSWORD, totp_secret=secret)
    assert client.get(f"/staff/cases/{shared.handle}").status_code == 404
    with pytest.raises(NoAccess):
        case_service.unlock(db, final, portal.private_key(final, NEW_PASSWORD), shared.handle)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("not a recovery key", "32 letters and digits"),
        ("0000-0000-0000-0000-0000-0000-0000-0000", "does not open this account"),
    ],
)
def test_a_wrong_recovery_key_is_refused_and_changes_nothing(
    app: Flask, portal: Portal, db: Session, typed: str, message: str, mailbox: Recorder
) -> None:
    carol, _ = _recovery_key_of(portal, "carol")
    portal.submit()
    carols = app.test_client()
    login(carols, carol)
    admin = _admin_client(app, portal)
    before = {c.name: getattr(_fresh(db, carol), c.name) for c in StaffUser.__table__.columns}
    access_before = db.scalars(select(CaseAccess.sealed_key)).all()

    response = _reset(admin, carol, typed)

    assert response.status_code == 400 and message in response.text
    assert typed not in response.text
    after = {c.name: getattr(_fresh(db, carol), c.name) for c in StaffUser.__table__.columns}
    assert after == before
    assert db.scalars(select(CaseAccess.sealed_key)).all() == access_before
    assert carols.get("/staff/").status_code == 200
    assert _events(db, Action.STAFF_PASSWORD_RESET) == []
    assert mailbox.received == []


def test_an_admin_cannot_reset_their_own_password_in_the_console(
    app: Flask, portal: Portal, db: Session
) -> None:
    admin = _admin_client(app, portal)
    root = db.scalars(select(StaffUser).where(StaffUser.email == "root@example.org")).one()

    response = _reset(admin, root)

    assert response.status_code == 400 and "change it on your account page" in response.text
    assert not _fresh(db, root).must_change_password


def test_password_resets_page_lists_accounts_and_a_missing_one_is_404(
    app: Flask, portal: Portal
) -> None:
    portal.staff("alice")
    portal.staff("newcomer", totp_secret=None)
    admin = _admin_client(app, portal)

    page = admin.get("/staff/admin/password-resets")
    console = admin.get("/staff/admin/")

    assert page.status_code == 200
    assert "alice@example.org" in page.text and "not set up" in page.text
    assert "/staff/admin/password-resets" in console.text
    assert "/staff/admin/regrants" in console.text
    assert admin.get("/staff/admin/staff/999999/reset").status_code == 404


def test_reset_service_refuses_without_touching_the_database(portal: Portal, db: Session) -> None:
    carol, _ = _recovery_key_of(portal, "carol")
    with pytest.raises(InvalidInput) as error:
        staff.reset_password(
            db,
            portal.settings,
            carol,
            dt.datetime.now(dt.UTC),
            actor=None,
            recovery_key="0" * 32,
        )
    assert error.value.field == "recovery_key"
    assert not db.dirty and not db.new


def test_the_login_step_setting_is_checked() -> None:
    with pytest.raises(SettingsError, match="at least 1"):
        load_settings({"PORTAL_STAFF_LOGIN_STEP_MINUTES": "0"})
    assert load_settings({}).staff_login_step_minutes == 10


# --- commands ----------------------------------------------------------------------------------


def _cli(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args), input=stdin)
    return result.exit_code, result.output


def test_totp_command_prints_the_current_code_without_any_database(tmp_path: Path) -> None:
    # An app whose instance folder does not exist: no secrets, no database file.
    app = create_app(cheap_settings(tmp_path / "nowhere"))
    grouped = crypto.group_totp_secret(TOTP_SECRET).lower()

    code, output = _cli(app, "totp", *grouped.split())
    bad_code, bad_output = _cli(app, "totp", "not-base32!")

    assert code == 0, output
    printed = output.split()[0]
    now = dt.datetime.now(dt.UTC)
    assert printed in {crypto.totp_code(TOTP_SECRET, crypto.totp_step(now) + d) for d in (-1, 0)}
    assert bad_code != 0 and "base32" in bad_output
    assert not (tmp_path / "nowhere").exists()


def test_reset_password_command_with_and_without_the_recovery_key(
    app: Flask, portal: Portal, db: Session
) -> None:
    carol, recovery = _recovery_key_of(portal, "carol")
    dora = portal.staff("dora")
    portal.submit()

    kept_code, kept = _cli(app, "reset-password", "CAROL@example.org", "--recovery-key", recovery)
    lost_code, lost = _cli(app, "reset-password", dora.email)
    stdin_code, stdin = _cli(
        app, "reset-password", carol.email, "--recovery-key", "-", stdin="0" * 32 + "\n"
    )
    unknown_code, unknown = _cli(app, "reset-password", "nobody@example.org")

    assert kept_code == 0 and "keeps its access" in kept and "Second factor kept." in kept
    temporary = re.search(r"^  (\S+)$", kept, re.M)
    assert temporary is not None
    db.expire_all()
    assert staff.authenticate(db, portal.settings, carol.email, temporary.group(1))
    assert lost_code == 0 and "1 case(s) await re-grant" in lost and "cleared" in lost
    assert stdin_code != 0 and "does not open this account" in stdin
    assert unknown_code != 0 and "no staff account" in unknown
    events = _events(db, Action.STAFF_PASSWORD_RESET)
    assert [(e.actor_id, e.target_staff_id) for e in events] == [(None, carol.id), (None, dora.id)]


def test_demo_accounts_are_enrolled_and_their_secret_is_printed(tmp_path: Path) -> None:
    settings = cheap_settings(tmp_path / "instance")
    _cli(create_app(settings), "init")
    app = create_app(settings)

    code, output = _cli(app, "demo")

    assert code == 0, output
    assert f"TOTP secret of every demo account (second factor): {DEMO_TOTP_SECRET}" in output
    assert f"portal totp {DEMO_TOTP_SECRET}" in output
    state = app.extensions["portal"]
    with state.sessions() as session:
        alice = session.scalars(select(StaffUser).where(StaffUser.email.startswith("alice@"))).one()
        assert alice.totp_sealed is not None
        key = staff.authenticate(session, settings, alice.email, DEMO_PASSWORD)[1]
        secret = second_factor.open_totp_secret(key, alice.totp_sealed)
    assert secret == crypto.normalise_totp_secret(DEMO_TOTP_SECRET)
    client = app.test_client()
    assert login(client, alice, DEMO_PASSWORD, totp_secret=DEMO_TOTP_SECRET) == "/staff/"
    # The newcomer's instructions name the same secret.
    for doc in ("Makefile", "README.md"):
        assert f"portal totp {DEMO_TOTP_SECRET}" in (PROJECT_ROOT / doc).read_text()


# --- crypto helpers ----------------------------------------------------------------------------


def test_totp_helpers_follow_rfc_6238_and_refuse_malformed_secrets() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 are the 6-digit code.
    rfc_secret = base64.b32encode(b"12345678901234567890").decode()
    at = dt.datetime.fromtimestamp(59, dt.UTC)
    assert crypto.totp_code(rfc_secret, crypto.totp_step(at)) == "287082"
    assert crypto.totp_matching_step(rfc_secret, "287082", at, None) == 1
    assert crypto.totp_matching_step(rfc_secret, "287082", at, 1) is None  # used already
    later = at + dt.timedelta(seconds=30)
    assert crypto.totp_matching_step(rfc_secret, "287082", later, None) == 1  # drift of one
    assert (
        crypto.totp_matching_step(rfc_secret, "287082", later + dt.timedelta(seconds=30), None)
        is None
    )
    for bad in ("", "ABCDEFGH", "ABCDEFGHABCDEFG1", "ABCDEFGHABCDEFGHA"):
        with pytest.raises(crypto.MalformedSecret):
            crypto.normalise_totp_secret(bad)
    secret = crypto.new_totp_secret()
    assert len(base64.b32decode(secret)) == crypto.TOTP_SECRET_BYTES
    assert crypto.normalise_totp_secret(crypto.group_totp_secret(secret).lower()) == secret
    temporary = crypto.new_temporary_password()
    assert len(temporary) == 24 and temporary != crypto.new_temporary_password()
    assert len(crypto.new_temporary_password(30)) >= 30


def test_hsts_only_on_requests_that_arrived_over_https(client: FlaskClient) -> None:
    # Over HTTPS (gunicorn marks a request so when the TLS proxy says X-Forwarded-Proto: https):
    # pages, static files and error pages all pin the browser to HTTPS for a year.
    for path in ("/", "/report", "/staff/login", "/static/portal.css", "/no-such-page"):
        with client.get(path, base_url="https://localhost") as secure:
            assert secure.headers["Strict-Transport-Security"] == HSTS == "max-age=31536000", path
    # Over plain HTTP browsers ignore it, and on a loopback development server it would pin
    # localhost to HTTPS for every other project: it is not sent.
    for path in ("/", "/static/portal.css", "/no-such-page"):
        with client.get(path) as plain:
            assert "Strict-Transport-Security" not in plain.headers, path
