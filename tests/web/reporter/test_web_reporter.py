"""Reporter pages through the test client: front page, concern form, receipt, follow-up."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Case, CaseAccess
from portal.services.casework import cases
from portal.services.configuration import policy
from portal.web.reporter import session as reporter_session
from tests.support.factories import Portal
from tests.support.pages import csrf_token, open_followup, submit_via_web

RECEIPT_SHAPE = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$")


def test_front_page_explains_promise_and_limits(client: FlaskClient, portal: Portal) -> None:
    portal.staff("alice")
    page = client.get("/").text
    for phrase in (
        "personal device",
        "writing style",
        "does not store your network address",
        "The day your concern arrived, not the time",
        'href="/report"',
        'href="/followup"',
    ):
        assert phrase in page


def test_front_page_names_other_ways_to_report(app: Flask, portal: Portal) -> None:
    """EU 2019/1937 art. 9(1)(g) and 9(2): external reporting and an in-person meeting."""
    portal.staff("alice")
    page = app.test_client().get("/").text
    assert "competent authority outside the organisation" in page
    assert "meet an ombudsperson in person" in page
    assert 'id="external-reporting"' not in page
    app.extensions["portal"].settings = app.extensions["portal"].settings.replace(
        external_reporting_url="https://authority.example/report"
    )
    page = app.test_client().get("/").text
    assert 'id="external-reporting" href="https://authority.example/report"' in page


def test_front_page_says_when_channel_is_not_open(client: FlaskClient) -> None:
    assert "not open yet" in client.get("/").text


def test_report_form_offers_every_choice(client: FlaskClient, portal: Portal, db: Session) -> None:
    portal.staff("alice", queues=("general",))
    portal.staff("bob", queues=("hr",))
    page = client.get("/report")
    assert page.status_code == 200
    html = page.text
    for code in ("harassment", "dismissal", "safety", "fraud", "feedback", "other"):
        assert f'value="{code}"' in html
    assert html.count("Prefer not to say") == 2  # site and department
    assert 'value="ongoing"' in html and 'name="description"' in html
    assert 'value="anonymous"' in html and 'value="named"' in html
    assert 'name="contact_name"' in html and 'name="contact_details"' in html
    assert "Alice" in html and "Bob" in html and 'name="excluded"' in html
    assert "20,000" in html  # the documented limit is stated
    assert "<script" not in html


def test_anonymous_submission_shows_receipt_once(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    portal.staff("alice", queues=("hr",))
    portal.staff("gen", queues=("general",))
    token = csrf_token(client.get("/report").text)
    response = client.post(
        "/report",
        data={
            "csrf_token": token,
            "category": "harassment",
            "description": "It keeps happening.",
            "happened": "ongoing",
            "identity": "anonymous",
            "site": "hq",
            "department": "",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303]
    receipt = re.search(r'id="receipt">([^<]+)<', response.text)
    assert receipt and RECEIPT_SHAPE.match(receipt.group(1))
    assert "shown only once" in response.text and "write it down" in response.text.lower()
    assert response.headers["Cache-Control"] == "no-store"
    case = db.scalars(select(Case)).one()
    assert case.is_anonymous and case.site_id is not None and case.department_id is None
    assert receipt.group(1) not in client.get("/report").text


def test_named_submission_reaches_the_ombudsperson(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice", queues=("hr",))
    submit_via_web(client, identity="named", contact_name="Jo Bloggs", contact_details="+44 1234")
    case = db.scalars(select(Case)).one()
    assert not case.is_anonymous
    detail = cases.open_case(
        db, portal.settings, alice, portal.private_key(alice), case.handle, case.received_on
    )
    assert detail.contact is not None and detail.contact.name == "Jo Bloggs"


def test_contact_fields_are_ignored_when_anonymous(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    portal.staff("alice", queues=("hr",))
    submit_via_web(client, identity="anonymous", contact_name="Should Not Keep")
    case = db.scalars(select(Case)).one()
    assert case.is_anonymous and case.contact_ciphertext is None


def test_exclusion_through_the_form(client: FlaskClient, portal: Portal, db: Session) -> None:
    alice = portal.staff("alice", queues=("hr",))
    bob = portal.staff("bob", queues=("hr", "general"))
    submit_via_web(client, excluded=[str(bob.id)])
    holders = list(db.scalars(select(CaseAccess.staff_id)))
    assert holders == [alice.id]


def test_followup_shows_case_and_accepts_a_message(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice", queues=("hr",))
    receipt = submit_via_web(client, description="What I saw on Monday.")
    case = db.scalars(select(Case)).one()
    key = portal.private_key(alice)
    cases.acknowledge(db, alice, key, case.handle, dt.datetime.now(dt.UTC))
    db.commit()

    form = client.get("/followup")
    assert form.status_code == 200 and 'autocomplete="off"' in form.text
    open_followup(client, receipt.lower().replace("-", " "))
    page = client.get("/followup/case")
    assert page.status_code == 200
    assert "What I saw on Monday." in page.text
    assert "Acknowledged" in page.text and cases.ACKNOWLEDGEMENT_TEXT in page.text
    response = client.post(
        "/followup/case", data={"csrf_token": csrf_token(page.text), "text": "One more thing."}
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Your message was added." in page.text and "One more thing." in page.text


def test_followup_case_needs_the_session(client: FlaskClient, portal: Portal) -> None:
    response = client.get("/followup/case")
    assert response.status_code == 401 and "enter your receipt again" in response.text.lower()
    response = client.post("/followup/case", data={"text": "x"})
    assert response.status_code in (400, 401)


def test_leaving_clears_the_followup_session(client: FlaskClient, portal: Portal) -> None:
    portal.staff("alice")
    open_followup(client, submit_via_web(client))
    page = client.get("/followup/case")
    response = client.post("/followup/leave", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert client.get_cookie(reporter_session.COOKIE, path=reporter_session.PATH) is None
    assert client.get("/followup/case").status_code == 401


def test_followup_session_expires(
    client: FlaskClient, portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal.staff("alice")
    open_followup(client, submit_via_web(client))
    assert client.get("/followup/case").status_code == 200
    later = time.time() + portal.settings.reporter_session_minutes * 60 + 1
    monkeypatch.setattr("portal.web.reporter.session.time.time", lambda: later)
    assert client.get("/followup/case").status_code == 401


def test_forged_followup_cookie_is_refused(client: FlaskClient, portal: Portal) -> None:
    portal.staff("alice")
    client.set_cookie(reporter_session.COOKIE, "AAAA" * 20, path=reporter_session.PATH)
    assert client.get("/followup/case").status_code == 401


@pytest.mark.parametrize("path", ["/", "/report", "/followup", "/staff/login"])
def test_security_headers(client: FlaskClient, portal: Portal, path: str) -> None:
    portal.staff("alice")
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script" not in response.text
    assert not re.search(r'(src|href)="(https?:)?//', response.text), "no third-party origin"


def test_stylesheet_is_served_locally(client: FlaskClient, app: Flask) -> None:
    with client.get("/static/portal.css") as response:
        assert response.status_code == 200 and b".receipt" in response.data


def test_message_typed_after_the_view_closed_is_shown_back(
    client: FlaskClient, portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal.staff("alice")
    open_followup(client, submit_via_web(client))
    page = client.get("/followup/case")
    later = time.time() + portal.settings.reporter_session_minutes * 60 + 1
    monkeypatch.setattr("portal.web.reporter.session.time.time", lambda: later)
    response = client.post(
        "/followup/case", data={"csrf_token": csrf_token(page.text), "text": "my long reply <b>"}
    )
    assert response.status_code == 401
    assert "was not sent" in response.text and "my long reply &lt;b&gt;" in response.text


def test_deadlines_come_from_policy_and_name_from_settings(
    app: Flask, portal: Portal, db: Session
) -> None:
    portal.staff("alice")
    page = app.test_client().get("/").text
    assert "within 7 days" in page and "within 3 months" in page
    assert portal.settings.organisation_name in page
    policy.update(db, acknowledge_days=5, feedback_months=2)
    db.commit()
    page = app.test_client().get("/").text
    assert "within 5 days" in page and "within 2 months" in page
    receipt_page = app.test_client()
    token = csrf_token(receipt_page.get("/report").text)
    shown = receipt_page.post(
        "/report",
        data={
            "csrf_token": token,
            "category": "other",
            "description": "Policy test.",
            "happened": "ongoing",
            "identity": "anonymous",
            "site": "",
            "department": "",
        },
        follow_redirects=True,
    ).text
    assert "within 5 days" in shown and "within 2 months" in shown
    stored = db.scalars(select(Case)).one()
    assert stored.acknowledge_due_on == stored.received_on + dt.timedelta(days=5)


def test_no_form_attribute_renders_as_none(client: FlaskClient, portal: Portal) -> None:
    """A missing aria-describedby must be left out, not written as the word None."""
    portal.staff("alice")
    for path in ("/report", "/followup", "/staff/login"):
        page = client.get(path).text
        assert '="None"' not in page, path
