"""Ombudsperson pages through the test client: log-in, case list, case page, actions."""

from __future__ import annotations

import datetime as dt
import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Case, Message, Role, StaffSession
from portal.web.auth import COOKIE
from tests.support.factories import PASSWORD, Portal
from tests.support.pages import csrf_token, login, next_code, open_followup, submit_via_web


def _staff_client(app: Flask, user: object) -> FlaskClient:
    client = app.test_client()
    login(client, user)  # type: ignore[arg-type]
    return client


def test_login_sets_a_strict_cookie_and_lands_on_cases(client: FlaskClient, portal: Portal) -> None:
    alice = portal.staff("alice")
    token = csrf_token(client.get("/staff/login").text)
    password_step = client.post(
        "/staff/login", data={"csrf_token": token, "email": alice.email, "password": PASSWORD}
    )
    code_step = client.post(
        "/staff/login/code",
        data={"csrf_token": token, "code": next_code(client.application, alice)},
    )
    assert password_step.headers["Location"] == "/staff/login/code"
    assert code_step.status_code == 302 and code_step.headers["Location"] == "/staff/"
    for response in (password_step, code_step):
        cookie = response.headers["Set-Cookie"]
        assert f"{COOKIE}=" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie


def test_other_roles_land_on_their_account_page(app: Flask, portal: Portal) -> None:
    admin = portal.staff("root", roles=(Role.ADMIN,), queues=())
    client = app.test_client()
    assert login(client, admin) == "/staff/account"
    page = client.get("/staff/account").text
    assert "admin" in page and "does not give access to case content" in page


def test_wrong_password_then_throttle(client: FlaskClient, portal: Portal) -> None:
    alice = portal.staff("alice")
    for _ in range(portal.settings.login_max_failures):
        token = csrf_token(client.get("/staff/login").text)
        response = client.post(
            "/staff/login", data={"csrf_token": token, "email": alice.email, "password": "nope"}
        )
        assert response.status_code == 400 and "Wrong e-mail or password." in response.text
    token = csrf_token(client.get("/staff/login").text)
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": alice.email, "password": PASSWORD}
    )
    assert response.status_code == 429 and "Too many failed log-ins" in response.text


def test_case_list_shows_queue_handle_category_status_day_deadline(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    today = dt.datetime.now(dt.UTC).date()
    old = portal.submit(category_code="harassment", today=today - dt.timedelta(days=10))
    portal.submit(category_code="other")
    page = _staff_client(app, alice).get("/staff/").text
    assert "HR ombuds" in page and "General ombuds office" in page
    assert old.handle in page and "Harassment, bullying or sexual harassment" in page
    assert (today - dt.timedelta(days=10)).isoformat() in page
    assert "Acknowledge by" in page and "overdue" in page and "New" in page


def test_case_page_actions(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice", queues=("hr",))
    reporter = app.test_client()
    receipt = submit_via_web(
        reporter,
        description="The description text.",
        identity="named",
        contact_name="Jo",
        contact_details="jo@example.org",
    )
    handle = db.scalars(select(Case.handle)).one()
    staff = _staff_client(app, alice)

    page = staff.get(f"/staff/cases/{handle}")
    assert page.status_code == 200
    assert "The description text." in page.text and "Jo — jo@example.org" in page.text
    assert "Acknowledge receipt" in page.text

    response = staff.post(
        f"/staff/cases/{handle}/acknowledge", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    page = staff.get(f"/staff/cases/{handle}")
    assert "Acknowledged; the reporter will see it" in page.text
    assert "Acknowledge receipt" not in page.text

    for text, visibility in (("A note for staff.", "internal"), ("A reply for you.", "reporter")):
        response = staff.post(
            f"/staff/cases/{handle}/messages",
            data={"csrf_token": csrf_token(page.text), "text": text, "visibility": visibility},
        )
        assert response.status_code == 302
    page = staff.get(f"/staff/cases/{handle}")
    assert "A note for staff." in page.text and "Internal note" in page.text

    response = staff.post(
        f"/staff/cases/{handle}/status",
        data={"csrf_token": csrf_token(page.text), "status": "awaiting_reporter"},
    )
    assert response.status_code == 302
    assert db.scalars(select(Case.status)).one() == "awaiting_reporter"

    open_followup(reporter, receipt)
    seen = reporter.get("/followup/case").text
    assert "A reply for you." in seen and "A note for staff." not in seen
    assert "Awaiting reporter" in seen


def test_status_change_refusal_is_explained(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    staff = _staff_client(app, alice)
    page = staff.get(f"/staff/cases/{submitted.handle}")
    for status in ("investigating", "investigating"):
        response = staff.post(
            f"/staff/cases/{submitted.handle}/status",
            data={"csrf_token": csrf_token(page.text), "status": status},
        )
    assert response.status_code == 400 and "already has that status" in response.text
    response = staff.post(
        f"/staff/cases/{submitted.handle}/status",
        data={"csrf_token": csrf_token(page.text), "status": "new"},
    )
    assert response.status_code == 400  # not offered, so refused as an invalid choice


def test_empty_staff_message_is_refused_and_nothing_stored(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    staff = _staff_client(app, alice)
    page = staff.get(f"/staff/cases/{submitted.handle}")
    response = staff.post(
        f"/staff/cases/{submitted.handle}/messages",
        data={"csrf_token": csrf_token(page.text), "text": "   ", "visibility": "reporter"},
    )
    assert response.status_code == 400 and "Write a message first." in response.text
    assert db.scalar(select(func.count()).select_from(Message)) == 0


CHOOSE_VISIBILITY = "Choose who sees it: a reply the reporter reads, or an internal note."


def test_the_message_form_makes_staff_choose_who_sees_it(
    app: Flask, portal: Portal, db: Session
) -> None:
    """A reply the reporter reads and a note only colleagues read differ in who learns it: the
    form checks neither choice, and a post without one (or with another value) stores nothing,
    says why next to the choice and keeps the text."""
    alice = portal.staff("alice")
    submitted = portal.submit()
    staff = _staff_client(app, alice)
    page = staff.get(f"/staff/cases/{submitted.handle}")
    radios = re.findall(r'<input[^>]*name="visibility"[^>]*>', page.text)
    assert len(radios) == 2 and not any("checked" in radio for radio in radios), radios
    typed = "Who else was on the night shift? <keep me>"
    for chosen in ({}, {"visibility": ""}, {"visibility": "everyone"}):
        response = staff.post(
            f"/staff/cases/{submitted.handle}/messages",
            data={"csrf_token": csrf_token(page.text), "text": typed, **chosen},
        )
        assert response.status_code == 400, chosen
        assert response.text.count(CHOOSE_VISIBILITY) >= 1, chosen
        assert "Not a valid choice" not in response.text, chosen
        shown = re.search(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', response.text)
        assert shown is not None and html.unescape(shown.group(1)).strip() == typed, chosen
        radios = re.findall(r'<input[^>]*name="visibility"[^>]*>', response.text)
        assert not any("checked" in radio for radio in radios), (chosen, radios)
    assert db.scalar(select(func.count()).select_from(Message)) == 0


def test_logout_ends_the_server_side_session(app: Flask, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    staff = _staff_client(app, alice)
    assert db.scalar(select(func.count()).select_from(StaffSession)) == 1
    page = staff.get("/staff/")
    response = staff.post("/staff/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert db.scalar(select(func.count()).select_from(StaffSession)) == 0
    assert staff.get("/staff/").headers["Location"] == "/staff/login"


def test_idle_session_expires(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    staff = _staff_client(app, alice)
    state = app.extensions["portal"]
    idle = dt.timedelta(minutes=portal.settings.staff_session_idle_minutes + 1)
    state.clock = lambda: dt.datetime.now(dt.UTC) + idle
    assert staff.get("/staff/").headers["Location"] == "/staff/login"


def test_stolen_session_id_without_its_key_is_useless(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    staff = _staff_client(app, alice)
    cookie = staff.get_cookie(COOKIE, path="/staff")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value.split(".")[0] + ".AAAAAAAA", path="/staff")
    assert thief.get("/staff/").status_code == 302


def test_reply_typed_after_the_session_ended_is_shown_back(app: Flask, portal: Portal) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    staff = _staff_client(app, alice)
    page = staff.get(f"/staff/cases/{submitted.handle}")
    idle = dt.timedelta(minutes=portal.settings.staff_session_idle_minutes + 1)
    app.extensions["portal"].clock = lambda: dt.datetime.now(dt.UTC) + idle
    response = staff.post(
        f"/staff/cases/{submitted.handle}/messages",
        data={
            "csrf_token": csrf_token(page.text),
            "text": "my careful reply",
            "visibility": "reporter",
        },
    )
    assert response.status_code == 401 and "my careful reply" in response.text


def test_login_errors_speak_to_staff_not_reporters(client: FlaskClient, portal: Portal) -> None:
    alice = portal.staff("alice")
    token = csrf_token(client.get("/staff/login").text)
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": alice.email, "password": "nope"}
    )
    assert "Wrong e-mail or password." in response.text
    assert "Nothing was sent yet" not in response.text
