"""Issue 13, finding 7: an admin obtained existing cases through a password reset and one
colleague's click. The admin reset a password without the recovery key, saw the temporary
password, logged in as that person, enrolled their own second factor, and a colleague clicked
"re-grant".

The whole chain is driven here through the web client, and each link must break:

1. Nothing the admin sees (pages, headers, cookies, flash, audit log, mail to the admin) logs in
   as the person: every string of it is tried as their password.
2. A colleague cannot re-grant without the fingerprint of the person's new key, which only the
   person's own account page shows; a wrong one is refused, audited, and seals nothing.
3. With the fingerprint the person reads out, the re-grant works and the person reads the case.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.errors import InvalidCredentials
from portal.models import AuditEvent, CaseAccess, PendingRegrant, Role, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.audit.chain import Action
from tests.support.factories import Portal
from tests.support.pages import csrf_token, login, login_password, next_code
from tests.support.smtp_server import Recorder, app_mailbox

SECRET = "The finance director asked me to backdate the invoices."
NEW_PASSWORD = "dora chooses her own long passphrase"


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Recorder]:
    with app_mailbox(app) as recorder:
        yield recorder


class AdminView:
    """Everything the admin's browser received, and what the admin can read in the console."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.texts: list[str] = []

    def saw(self, response: TestResponse) -> TestResponse:
        self.texts.append(response.get_data(as_text=True))
        self.texts.extend(f"{name}: {value}" for name, value in response.headers.items())
        return response

    def get(self, url: str) -> TestResponse:
        return self.saw(self.client.get(url))

    def post(self, url: str, data: dict[str, str]) -> TestResponse:
        return self.saw(self.client.post(url, data=data))

    def cookies(self) -> None:
        self.texts.extend(cookie.value for cookie in (self.client._cookies or {}).values())

    def candidates(self) -> set[str]:
        """Every string the admin could type as a password: each run of characters between
        spaces, tags and quotes, and each run of letters, digits and dashes, both as written and
        with HTML entities decoded."""
        found: set[str] = set()
        for text in self.texts:
            for variant in (text, html.unescape(text)):
                found.update(re.findall(r"[^\s<>\"'`]+", variant))
                found.update(re.findall(r"[A-Za-z0-9-]+", variant))
                found.update(re.findall(r"[A-Za-z0-9]+", variant))
        return {c for c in found if len(c) >= 8}


def _reset(admin: AdminView, user: StaffUser) -> TestResponse:
    url = f"/staff/admin/staff/{user.id}/reset"
    form = admin.get(url)
    return admin.post(url, {"csrf_token": csrf_token(form.text), "recovery_key": ""})


def _case_page(client: FlaskClient, handle: str) -> str:
    return client.get(f"/staff/cases/{handle}").get_data(as_text=True)


def _regrant(client: FlaskClient, handle: str, colleague: StaffUser, typed: str) -> TestResponse:
    page = _case_page(client, handle)
    return client.post(
        f"/staff/cases/{handle}/regrant",
        data={"csrf_token": csrf_token(page), "colleague": str(colleague.id), "fingerprint": typed},
    )


def _mailed_password(mailbox: Recorder, user: StaffUser) -> str:
    [mail] = mailbox.to(user.email)
    shown = re.search(r"^    (\S+)$", mail.body, re.M)
    assert shown is not None
    return shown.group(1)


def _enrol_and_choose_password(app: Flask, user: StaffUser, one_time: str) -> FlaskClient:
    """What the person does with the mail: log in, set up their app, choose their password,
    then log in for real. Returns their logged-in client; their TOTP secret is on ``user``."""
    client = app.test_client()
    assert login_password(client, user, one_time) == "/staff/login/enrol"
    page = client.get("/staff/login/enrol").get_data(as_text=True)
    shown = re.search(r'id="totp-secret">([^<]+)<', page)
    assert shown is not None
    secret = crypto.normalise_totp_secret(shown.group(1))
    code = next_code(app, user, secret)
    enrolled = client.post(
        "/staff/login/enrol", data={"csrf_token": csrf_token(page), "code": code}
    )
    assert enrolled.headers["Location"] == "/staff/account/password"
    form = client.get("/staff/account/password").get_data(as_text=True)
    changed = client.post(
        "/staff/account/password",
        data={
            "csrf_token": csrf_token(form),
            "current": one_time,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 200 and 'id="recovery-key"' in changed.text
    login(client, user, NEW_PASSWORD, totp_secret=secret)
    return client


def _fingerprint_on_account_page(client: FlaskClient) -> str:
    shown = re.search(r'id="key-fingerprint">([^<]+)<', client.get("/staff/account").text)
    assert shown is not None
    return shown.group(1).strip()


def _events(db: Session, action: Action) -> list[AuditEvent]:
    db.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    return list(db.scalars(stmt))


def test_a_reset_and_a_colleagues_click_no_longer_hand_an_admin_the_cases(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    dora, eve = portal.staff("dora"), portal.staff("eve")
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    submitted = portal.submit(description=SECRET)  # sealed to Dora and Eve
    old_public_key = dora.public_key
    admin_client = app.test_client()
    login(admin_client, root)
    admin = AdminView(admin_client)

    # -- 1. The reset, and everything the admin can look at afterwards.
    done = _reset(admin, dora)
    assert done.status_code == 200
    for url in (
        "/staff/admin/",
        "/staff/admin/regrants",
        "/staff/admin/password-resets",
        f"/staff/admin/staff/{dora.id}",
        "/staff/admin/staff",
        "/staff/admin/audit",
    ):
        assert admin.get(url).status_code == 200, url
    admin.cookies()
    db.expire_all()
    admin.texts.extend(event.detail for event in db.scalars(select(AuditEvent)))
    not_to_dora = [m for m in mailbox.received if m.rcpt_tos != [dora.email]]
    admin.texts.extend(m.message.as_string() for m in not_to_dora)

    candidates = admin.candidates()
    assert len(candidates) > 50  # the harness did read the admin's pages
    for candidate in candidates:
        with pytest.raises(InvalidCredentials):
            staff.authenticate(db, portal.settings, dora.email, candidate)
    assert 'id="reset-mailed"' in done.text
    assert not_to_dora == [] and len(mailbox.to(dora.email)) == 1
    one_time = _mailed_password(mailbox, dora)
    assert one_time not in candidates
    dora_now = db.get_one(StaffUser, dora.id)
    # ... while the mailed one does log in: the check above would have caught it.
    assert staff.authenticate(db, portal.settings, dora.email, one_time)[0].id == dora.id
    assert dora_now.must_change_password and dora_now.totp_sealed is None

    # -- 2. Eve, who holds the case, is asked to re-grant; neither a click nor a wrong
    # fingerprint seals the key to Dora's new key pair.
    old_fingerprint = crypto.key_fingerprint(old_public_key)
    eves = app.test_client()
    login(eves, eve)
    page = _case_page(eves, submitted.handle)
    waiting = re.search(r'<ul id="awaiting-regrant">(.*?)</ul>', page, re.S)
    assert waiting is not None and "Dora" in waiting.group(1)
    one_click = eves.post(
        f"/staff/cases/{submitted.handle}/grant",
        data={"csrf_token": csrf_token(page), "colleague": str(dora.id)},
    )
    empty = _regrant(eves, submitted.handle, dora, "")
    stale = _regrant(eves, submitted.handle, dora, old_fingerprint)
    made_up = _regrant(eves, submitted.handle, dora, "0000-0000-0000-0000")

    for refused in (one_click, empty, stale, made_up):
        assert refused.status_code == 400 and "not the fingerprint" in refused.text
        assert old_fingerprint not in refused.text
    db.expire_all()
    assert db.get(CaseAccess, (submitted.case_id, dora.id)) is None
    assert db.get(PendingRegrant, (submitted.case_id, dora.id)) is not None
    refusals = _events(db, Action.CASE_REGRANT_REFUSED)
    assert [(e.actor_id, e.target_staff_id, e.case_id) for e in refusals] == [
        (eve.id, dora.id, submitted.case_id)
    ] * 4
    assert [e.detail for e in refusals] == [
        '{"typed":false}',
        '{"typed":false}',
        '{"typed":true}',
        '{"typed":true}',
    ]
    assert _events(db, Action.CASE_REGRANTED) == []

    # -- 3. Dora uses her mail, reads her fingerprint out to Eve; now the re-grant works.
    doras = _enrol_and_choose_password(app, dora, one_time)
    assert doras.get(f"/staff/cases/{submitted.handle}").status_code == 404
    fingerprint = _fingerprint_on_account_page(doras)
    assert fingerprint != old_fingerprint
    db.expire_all()
    assert fingerprint == crypto.key_fingerprint(db.get_one(StaffUser, dora.id).public_key)
    assert db.get_one(StaffUser, dora.id).one_time_password_expires_at is None
    # The admin's console never shows it, so an admin cannot read it out in Dora's place.
    for url in ("/staff/admin/regrants", f"/staff/admin/staff/{dora.id}", "/staff/admin/audit"):
        assert fingerprint not in admin.get(url).text

    read_aloud = fingerprint.lower().replace("-", " ")
    granted = _regrant(eves, submitted.handle, dora, read_aloud)

    assert granted.status_code == 302
    assert "Dora can open this case again." in _case_page(eves, submitted.handle)
    assert SECRET in doras.get(f"/staff/cases/{submitted.handle}").text
    [event] = _events(db, Action.CASE_REGRANTED)
    assert (event.actor_id, event.target_staff_id) == (eve.id, dora.id)
    assert fingerprint not in "".join(e.detail for e in db.scalars(select(AuditEvent)))


def test_a_fingerprint_read_before_another_reset_no_longer_opens_a_regrant(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    dora, eve = portal.staff("dora"), portal.staff("eve")
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    submitted = portal.submit(description=SECRET)
    admin_client = app.test_client()
    login(admin_client, root)
    admin = AdminView(admin_client)
    assert _reset(admin, dora).status_code == 200
    doras = _enrol_and_choose_password(app, dora, _mailed_password(mailbox, dora))
    fingerprint = _fingerprint_on_account_page(doras)

    # The admin resets again after Dora read her fingerprint: the key it named is gone.
    mailbox.received.clear()
    assert _reset(admin, dora).status_code == 200
    eves = app.test_client()
    login(eves, eve)

    refused = _regrant(eves, submitted.handle, dora, fingerprint)

    assert refused.status_code == 400 and "not the fingerprint" in refused.text
    db.expire_all()
    assert db.get(CaseAccess, (submitted.case_id, dora.id)) is None


def test_without_a_mail_server_a_reset_is_refused_and_shows_no_secret(
    app: Flask, portal: Portal, db: Session
) -> None:
    dora = portal.staff("dora")
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    portal.submit()
    before = {c.name: getattr(dora, c.name) for c in StaffUser.__table__.columns}
    admin_client = app.test_client()
    login(admin_client, root)
    admin = AdminView(admin_client)

    form = admin.get(f"/staff/admin/staff/{dora.id}/reset")
    refused = admin.post(
        f"/staff/admin/staff/{dora.id}/reset",
        {"csrf_token": csrf_token(form.text), "recovery_key": ""},
    )

    assert 'id="no-mail"' in form.text
    assert refused.status_code == 400 and "No mail server is configured" in refused.text
    db.expire_all()
    after = db.get_one(StaffUser, dora.id)
    assert {c.name: getattr(after, c.name) for c in StaffUser.__table__.columns} == before
    assert _events(db, Action.STAFF_PASSWORD_RESET) == []


def test_a_reset_whose_mail_the_server_refuses_changes_nothing(
    app: Flask, portal: Portal, db: Session
) -> None:
    dora = portal.staff("dora")
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    portal.submit()
    before = {c.name: getattr(dora, c.name) for c in StaffUser.__table__.columns}
    admin_client = app.test_client()
    login(admin_client, root)
    admin = AdminView(admin_client)

    with app_mailbox(app) as mailbox:
        mailbox.refuse[dora.email] = "550 no such mailbox"
        refused = _reset(admin, dora)

    assert refused.status_code == 503 and "did not take the message" in refused.text
    db.expire_all()
    after = db.get_one(StaffUser, dora.id)
    assert {c.name: getattr(after, c.name) for c in StaffUser.__table__.columns} == before
    assert db.get(CaseAccess, (db.scalars(select(CaseAccess.case_id)).first(), dora.id))
    assert _events(db, Action.STAFF_PASSWORD_RESET) == []


def test_nothing_an_admin_sees_when_making_an_account_logs_in_as_its_owner(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    # The same class: an admin who logged in first to an account they made would own its key
    # pair, and every case routed to it afterwards.
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    admin_client = app.test_client()
    login(admin_client, root)
    admin = AdminView(admin_client)
    form = admin.get("/staff/admin/staff/new")

    created = admin.post(
        "/staff/admin/staff/new",
        {
            "csrf_token": csrf_token(form.text),
            "email": "newcomer@example.org",
            "name": "Newcomer",
            "roles": "ombudsperson",
            "queues": "general",
        },
    )
    for url in ("/staff/admin/staff", "/staff/admin/audit", "/staff/admin/password-resets"):
        admin.get(url)
    admin.cookies()
    db.expire_all()
    admin.texts.extend(event.detail for event in db.scalars(select(AuditEvent)))

    assert created.status_code == 200
    candidates = admin.candidates()
    assert len(candidates) > 50
    for candidate in candidates:
        with pytest.raises(InvalidCredentials):
            staff.authenticate(db, portal.settings, "newcomer@example.org", candidate)
    assert [m.rcpt_tos for m in mailbox.received] == [["newcomer@example.org"]]
    newcomer = db.scalars(select(StaffUser).where(StaffUser.email == "newcomer@example.org")).one()
    assert login_password(app.test_client(), newcomer, _mailed_password(mailbox, newcomer)) == (
        "/staff/login/enrol"
    )


def test_a_mailed_one_time_password_stops_logging_in_after_its_hours(
    app: Flask, portal: Portal, db: Session, mailbox: Recorder
) -> None:
    dora = portal.staff("dora")
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    admin_client = app.test_client()
    login(admin_client, root)
    assert _reset(AdminView(admin_client), dora).status_code == 200
    one_time = _mailed_password(mailbox, dora)
    assert f"after {staff.ONE_TIME_PASSWORD_HOURS} hours" in mailbox.to(dora.email)[0].body
    state = app.extensions["portal"]
    reset_at = state.clock()
    db.expire_all()
    expires = db.get_one(StaffUser, dora.id).one_time_password_expires_at
    assert expires is not None
    lapse = reset_at + dt.timedelta(hours=staff.ONE_TIME_PASSWORD_HOURS) - expires
    assert dt.timedelta(0) <= lapse < dt.timedelta(seconds=5)

    still = app.test_client()
    state.clock = lambda: reset_at + dt.timedelta(hours=staff.ONE_TIME_PASSWORD_HOURS - 1)
    assert login_password(still, dora, one_time) == "/staff/login/enrol"

    state.clock = lambda: reset_at + dt.timedelta(hours=staff.ONE_TIME_PASSWORD_HOURS, seconds=1)
    late = app.test_client()
    page = late.get("/staff/login")
    refused = late.post(
        "/staff/login",
        data={"csrf_token": csrf_token(page.text), "email": dora.email, "password": one_time},
    )

    assert refused.status_code != 302
    wrong = app.test_client()
    typo = wrong.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(wrong.get("/staff/login").text),
            "email": dora.email,
            "password": one_time + "x",
        },
    )
    assert (refused.status_code, _error_of(refused.text)) == (
        typo.status_code,
        _error_of(typo.text),
    )
    failed = _events(db, Action.LOGIN_FAILED)
    assert failed[0].detail == '{"factor":"password","one_time_password_lapsed":true}'
    assert failed[1].detail == '{"factor":"password"}'


def _error_of(page: str) -> str:
    shown = re.search(r'<div class="notice notice-error"[^>]*>(.*?)</div>', page, re.S)
    assert shown is not None, page
    return shown.group(1)
