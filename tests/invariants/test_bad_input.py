"""Bad input from reporters and staff: a clear message, nothing lost, never a 500.

DESIGN.md invariant 8: invalid input gets a message next to the field and the reporter's text
stays in the form; a submission is either committed and its receipt shown, or not committed and
the reporter told so.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.models import Case, Message, StaffUser
from portal.services.casework import content
from portal.services.casework.text import clean_text
from portal.services.reporting import followup
from portal.services.reporting.throttle import MemoryThrottle
from portal.settings import Settings
from tests.support.factories import PASSWORD, Portal, utc_today
from tests.support.html import field_errors, form_problems, textarea
from tests.support.pages import (
    csrf_token,
    login,
    open_followup,
    receipt_of,
    receipt_page_after,
    report_form,
)

TYPED = "My team lead takes credit for my work and shouts when I object."
EXPIRED_FORM = "had been open too long"


# --- helpers ----------------------------------------------------------------------------------


def count(db: Session, model: type[Case] | type[Message]) -> int:
    db.rollback()  # end any open read transaction so the count sees what the app committed
    return db.scalar(select(func.count()).select_from(model)) or 0


def post_report(client: FlaskClient, **overrides: object) -> TestResponse:
    token = csrf_token(client.get("/report").text)
    return client.post("/report", data={"csrf_token": token, **report_form(**overrides)})


def next_month(today: dt.date) -> str:
    year, month = (today.year, today.month + 1) if today.month < 12 else (today.year + 1, 1)
    return f"{year:04d}-{month:02d}"


def unknown_receipt() -> str:
    return crypto.new_receipt()


def try_receipt(client: FlaskClient, receipt: str) -> TestResponse:
    token = csrf_token(client.get("/followup").text)
    return client.post("/followup", data={"csrf_token": token, "receipt": receipt})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def expire_form_tokens(monkeypatch: pytest.MonkeyPatch, app: Flask) -> None:
    """Move the clock of the CSRF token signer past the form-token lifetime."""
    later = int(time.time()) + app.config["WTF_CSRF_TIME_LIMIT"] + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: later)


def spoil_token(
    kind: str, token: str, monkeypatch: pytest.MonkeyPatch, app: Flask
) -> dict[str, str]:
    """The csrf_token part of a form body, for a token that is missing or has expired."""
    if kind == "missing":
        return {}
    expire_form_tokens(monkeypatch, app)
    return {"csrf_token": token}


STALE_KINDS = ["missing", "expired"]


@pytest.fixture
def ombudsperson(portal: Portal) -> StaffUser:
    return portal.staff("olga", queues=("general", "hr"))


# --- the concern form -------------------------------------------------------------------------


@pytest.mark.usefixtures("ombudsperson")
def test_oversize_description_says_the_limit_and_keeps_the_text(
    client: FlaskClient, db: Session, settings: Settings
) -> None:
    limit = settings.description_max_chars
    typed = (TYPED + " ") * (limit // len(TYPED) + 1)
    assert len(typed.strip()) > limit

    response = post_report(client, description=typed)

    assert response.status_code == 400
    assert any(f"{limit:,}" in e for e in field_errors(response.text, "description"))
    assert textarea(response.text, "description") == typed
    assert count(db, Case) == 0


MISSING_FIELD_MESSAGES = {
    "category": "Choose what your concern is about.",
    "description": "Please describe your concern.",
    "happened": "Choose a month, or “ongoing”.",
}


@pytest.mark.usefixtures("ombudsperson")
@pytest.mark.parametrize("field", sorted(MISSING_FIELD_MESSAGES))
def test_a_missing_field_gets_a_message_next_to_it(
    client: FlaskClient, db: Session, field: str
) -> None:
    response = post_report(client, **{field: ""})

    assert response.status_code == 400
    assert field_errors(response.text, field) == [MISSING_FIELD_MESSAGES[field]]
    if field != "description":
        assert textarea(response.text, "description") == report_form()["description"]
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
def test_all_missing_fields_are_marked_at_once(client: FlaskClient, db: Session) -> None:
    token = csrf_token(client.get("/report").text)

    # An unticked radio group is absent from the body, not empty.
    response = client.post(
        "/report",
        data={"csrf_token": token, "description": "   ", "happened": "", "identity": "anonymous"},
    )

    assert response.status_code == 400
    for field, message in MISSING_FIELD_MESSAGES.items():
        assert field_errors(response.text, field) == [message], field
    assert "Nothing was sent yet" in form_problems(response.text)
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("category", "no-such-category"),
        ("site", "atlantis"),
        ("department", "time-travel"),
    ],
)
def test_an_unknown_code_is_refused_with_a_message(
    client: FlaskClient, db: Session, field: str, code: str
) -> None:
    response = post_report(client, **{field: code}, description=TYPED)

    assert response.status_code == 400
    assert field_errors(response.text, field), f"no message next to {field}"
    assert textarea(response.text, "description") == TYPED
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
@pytest.mark.parametrize(
    ("name", "details", "empty_fields"),
    [
        ("", "", ["contact_name", "contact_details"]),
        ("Jo Doe", "", ["contact_details"]),
        ("", "jo@example.org", ["contact_name"]),
    ],
)
def test_a_named_report_needs_name_and_contact_details(
    client: FlaskClient, db: Session, name: str, details: str, empty_fields: list[str]
) -> None:
    response = post_report(
        client, identity="named", contact_name=name, contact_details=details, description=TYPED
    )

    assert response.status_code == 400
    # The service checks one field at a time, so only the first empty one may be marked.
    assert any(field_errors(response.text, field) for field in empty_fields)
    assert textarea(response.text, "description") == TYPED
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
@pytest.mark.parametrize("month", [next_month(utc_today()), "2999-01"])
def test_a_month_in_the_future_is_refused(client: FlaskClient, db: Session, month: str) -> None:
    response = post_report(client, happened=month, description=TYPED)

    assert response.status_code == 400
    assert field_errors(response.text, "happened")
    assert textarea(response.text, "description") == TYPED
    assert count(db, Case) == 0


def test_excluding_everyone_who_could_receive_it_asks_to_change_exclusions(
    client: FlaskClient, db: Session, portal: Portal
) -> None:
    # Harassment goes to "hr", which falls back to "general": these two are everyone.
    olga = portal.staff("olga", queues=("hr",))
    gus = portal.staff("gus", queues=("general",))

    response = post_report(client, description=TYPED, excluded=[str(olga.id), str(gus.id)])

    assert response.status_code == 400
    assert "untick at least one name" in form_problems(response.text)
    assert textarea(response.text, "description") == TYPED
    assert count(db, Case) == 0


def test_excluding_some_ombudspersons_still_sends(
    client: FlaskClient, db: Session, portal: Portal
) -> None:
    """The control for the test above: the exclusion list itself is accepted."""
    olga = portal.staff("olga", queues=("hr",))
    portal.staff("gus", queues=("general",))

    response = post_report(client, description=TYPED, excluded=[str(olga.id)])

    assert response.status_code == 303, form_problems(response.text)
    assert receipt_of(receipt_page_after(client, response).text)
    assert count(db, Case) == 1


def test_without_any_ombudsperson_the_form_is_not_open(client: FlaskClient, db: Session) -> None:
    page = client.get("/report")
    token = csrf_token(client.get("/followup").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form()})

    assert page.status_code == 503
    assert "not open yet" in page.text
    assert posted.status_code == 503
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
@pytest.mark.parametrize("kind", STALE_KINDS)
def test_an_expired_report_form_comes_back_with_the_text(
    client: FlaskClient, db: Session, app: Flask, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    token = csrf_token(client.get("/report").text)
    body = report_form(description=TYPED)

    response = client.post("/report", data={**spoil_token(kind, token, monkeypatch, app), **body})

    assert response.status_code == 400
    assert EXPIRED_FORM in form_problems(response.text)
    assert 'name="category"' in response.text  # the form itself, not a generic error page
    assert textarea(response.text, "description") == TYPED
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
def test_a_body_larger_than_the_limit_gets_413_not_500(
    client: FlaskClient, db: Session, app: Flask
) -> None:
    token = csrf_token(client.get("/report").text)
    too_long = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)

    response = client.post(
        "/report", data={"csrf_token": token, **report_form(description=too_long)}
    )

    assert response.status_code == 413
    assert "Too much was sent" in response.text
    assert count(db, Case) == 0


@pytest.mark.usefixtures("ombudsperson")
def test_control_characters_are_stripped_from_the_description(
    client: FlaskClient, db: Session
) -> None:
    response = post_report(client, description="Bell\x07 and \x00null and \x1b[31mred\x1b[0m.")

    assert response.status_code == 303, form_problems(response.text)
    open_followup(client, receipt_of(receipt_page_after(client, response).text))
    case_page = client.get("/followup/case").text
    assert "Bell and null and [31mred[0m." in case_page
    assert not re.search(r"[\x00\x07\x1b]", case_page)
    assert count(db, Case) == 1


#: Each field of the concern form: a valid choice or anything at all.
_ANY_TEXT = st.text(max_size=300)
_FORM = st.fixed_dictionaries(
    {
        "category": st.one_of(st.sampled_from(["harassment", "other"]), _ANY_TEXT),
        "description": st.text(),
        "happened": st.one_of(st.sampled_from(["ongoing", "2024-05"]), _ANY_TEXT),
        "identity": st.one_of(st.sampled_from(["anonymous", "named"]), _ANY_TEXT),
        "contact_name": _ANY_TEXT,
        "contact_details": _ANY_TEXT,
        "site": st.one_of(st.just(""), _ANY_TEXT),
        "department": st.one_of(st.just(""), _ANY_TEXT),
    }
)


@pytest.mark.usefixtures("ombudsperson")
@hsettings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(form=_FORM)
def test_any_concern_form_gets_a_receipt_stored_exactly_or_a_message(
    client: FlaskClient, app: Flask, settings: Settings, form: dict[str, str]
) -> None:
    """Arbitrary text in every field: either a receipt, and the case holds exactly what was
    typed (after the documented cleaning: NFC, line endings, control characters, outer
    spaces), or 400 with the description kept in the form. Never a 500."""
    token = csrf_token(client.get("/report").text)

    response = client.post("/report", data={"csrf_token": token, **form})

    assert response.status_code in (303, 400), response.status_code
    if response.status_code == 400:
        assert textarea(response.text, "description") == form["description"]
        return
    receipt = receipt_of(receipt_page_after(client, response).text)
    state = app.extensions["portal"]
    with state.sessions() as session:
        key = followup.unlock(session, settings, state.secrets.pepper, receipt)
        case = followup.view(session, key)
    assert case.description == clean_text(form["description"], "d", 10**6)
    if form["identity"] == "named":
        assert case.contact == content.Contact(
            clean_text(form["contact_name"], "n", 10**6),
            clean_text(form["contact_details"], "d", 10**6),
        )
    else:
        assert case.contact is None and case.is_anonymous


# --- follow-up ---------------------------------------------------------------------------------


def test_a_malformed_receipt_gets_a_format_message(client: FlaskClient) -> None:
    response = try_receipt(client, "abc")

    assert response.status_code == 400
    assert field_errors(response.text, "receipt") == [
        "A receipt has 20 letters and digits, in five groups of four."
    ]


def test_an_unknown_receipt_does_not_tell_whether_a_case_exists(
    client: FlaskClient, portal: Portal
) -> None:
    portal.staff("olga")
    before = try_receipt(client, unknown_receipt())
    portal.submit()  # a case now exists; an unknown receipt must read the same
    after = try_receipt(client, unknown_receipt())

    assert before.status_code == after.status_code == 400
    message = field_errors(before.text, "receipt")
    assert message == field_errors(after.text, "receipt")
    assert message and "receipt" in message[0]
    assert not re.search(r"exist|no case|not found|unknown", message[0], re.I)


def test_too_many_wrong_receipts_are_throttled_then_allowed_again(
    client: FlaskClient, app: Flask, portal: Portal, settings: Settings
) -> None:
    portal.staff("olga")
    receipt = portal.submit().receipt
    clock = FakeClock()
    app.extensions["portal"].followup_throttle = MemoryThrottle(
        settings.followup_window_seconds, clock=clock
    )
    wrong = [try_receipt(client, unknown_receipt()) for _ in range(settings.followup_max_failures)]

    refused = try_receipt(client, receipt)
    clock.now += settings.followup_window_seconds
    accepted = try_receipt(client, receipt)

    assert [r.status_code for r in wrong] == [400] * settings.followup_max_failures
    assert refused.status_code == 429
    assert "wait" in refused.text.lower()
    assert "portal_reporter" not in refused.headers.get("Set-Cookie", "")
    assert accepted.status_code == 302
    assert accepted.location.endswith("/followup/case")


@pytest.fixture
def reporter(client: FlaskClient, portal: Portal, ombudsperson: StaffUser) -> FlaskClient:
    """A client with an open follow-up session on a fresh case."""
    open_followup(client, portal.submit().receipt)
    return client


def test_a_long_reporter_message_is_refused_and_kept(
    reporter: FlaskClient, db: Session, settings: Settings
) -> None:
    typed = "y" * (settings.message_max_chars + 1)
    token = csrf_token(reporter.get("/followup/case").text)

    response = reporter.post("/followup/case", data={"csrf_token": token, "text": typed})

    assert response.status_code == 400
    assert any(f"{settings.message_max_chars:,}" in e for e in field_errors(response.text, "text"))
    assert textarea(response.text, "text") == typed
    assert count(db, Message) == 0


@pytest.mark.parametrize("kind", STALE_KINDS)
def test_an_expired_reporter_message_form_comes_back_with_the_text(
    reporter: FlaskClient,
    db: Session,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    token = csrf_token(reporter.get("/followup/case").text)

    response = reporter.post(
        "/followup/case", data={**spoil_token(kind, token, monkeypatch, app), "text": TYPED}
    )

    assert response.status_code == 400
    assert EXPIRED_FORM in form_problems(response.text)
    assert textarea(response.text, "text") == TYPED
    assert count(db, Message) == 0


# --- staff -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STALE_KINDS)
def test_an_expired_staff_message_form_comes_back_with_the_text(
    client: FlaskClient,
    db: Session,
    app: Flask,
    portal: Portal,
    ombudsperson: StaffUser,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    handle = portal.submit().handle
    login(client, ombudsperson)
    token = csrf_token(client.get(f"/staff/cases/{handle}").text)
    body = {"text": "Please tell me which floor.", "visibility": "reporter"}

    response = client.post(
        f"/staff/cases/{handle}/messages",
        data={**spoil_token(kind, token, monkeypatch, app), **body},
    )

    assert response.status_code == 400
    assert EXPIRED_FORM in form_problems(response.text)
    assert textarea(response.text, "text") == body["text"]
    assert count(db, Message) == 0


def test_a_wrong_password_and_an_unknown_email_read_the_same(
    client: FlaskClient, ombudsperson: StaffUser
) -> None:
    def attempt(email: str, password: str) -> TestResponse:
        token = csrf_token(client.get("/staff/login").text)
        return client.post(
            "/staff/login", data={"csrf_token": token, "email": email, "password": password}
        )

    wrong_password = attempt(ombudsperson.email, PASSWORD + "!")
    unknown_email = attempt("nobody@example.org", PASSWORD)

    assert wrong_password.status_code == unknown_email.status_code == 400
    assert "Wrong e-mail or password." in form_problems(wrong_password.text)
    assert form_problems(wrong_password.text) == form_problems(unknown_email.text)
    assert "portal_staff" not in wrong_password.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("email", ["olga\x00@example.org", "olga@example.org\x1b[0m"])
def test_control_characters_in_the_login_email_are_a_wrong_login(
    client: FlaskClient, ombudsperson: StaffUser, email: str
) -> None:
    token = csrf_token(client.get("/staff/login").text)

    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )

    assert response.status_code == 400
    assert "Wrong e-mail or password." in form_problems(response.text)


@pytest.mark.parametrize(
    "handle",
    ["XXXX-0000", "%00", "AB%00CD", "%1B%5B31m", "%C3%A9t%C3%A9", "x" * 2000, "'%20OR%201=1%20--"],
    ids=["made-up", "nul", "nul-inside", "escape", "accents", "very-long", "sql-ish"],
)
def test_an_odd_case_handle_is_not_found(
    client: FlaskClient, ombudsperson: StaffUser, handle: str
) -> None:
    login(client, ombudsperson)

    response = client.get(f"/staff/cases/{handle}")

    assert response.status_code == 404
    assert "Not found" in response.text
