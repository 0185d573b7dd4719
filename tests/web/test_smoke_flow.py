"""The main journey through the test client: submit, follow up, triage, reply, read the reply."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.factories import Portal
from tests.support.pages import csrf_token, login, open_followup, submit_via_web


def test_reporter_and_ombudsperson_journey(client: FlaskClient, portal: Portal) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    receipt = submit_via_web(client, description="The forklift brakes are failing.")

    staff_client = client.application.test_client()
    login(staff_client, alice)
    listing = staff_client.get("/staff/")
    assert listing.status_code == 200
    handle = listing.text.split("/staff/cases/")[1].split('"')[0]
    page = staff_client.get(f"/staff/cases/{handle}")
    assert "The forklift brakes are failing." in page.text

    token = csrf_token(page.text)
    response = staff_client.post(
        f"/staff/cases/{handle}/messages",
        data={"csrf_token": token, "text": "Which hall is it in?", "visibility": "reporter"},
    )
    assert response.status_code == 302

    open_followup(client, receipt)
    case_page = client.get("/followup/case")
    assert "Which hall is it in?" in case_page.text
    assert "The forklift brakes are failing." in case_page.text
