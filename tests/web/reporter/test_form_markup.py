"""The shared form macros: accessible attributes are either meaningful or absent."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from portal.services.reporting import access_code
from portal.settings import TEST_ARGON2, Settings
from tests.support.factories import Portal
from tests.support.pages import (
    csrf_token,
    open_followup,
    receipt_of,
    receipt_page_after,
    report_form,
)


def test_fields_without_errors_carry_no_aria_attributes_named_none(client: FlaskClient) -> None:
    page = client.get("/staff/login").text

    assert '="None"' not in page
    assert 'aria-invalid="' not in page


def test_a_field_with_an_error_points_at_its_message(client: FlaskClient, portal: Portal) -> None:
    portal.staff("olga")  # the channel is open
    token = csrf_token(client.get("/report").text)

    page = client.post("/report", data={"csrf_token": token, **report_form(description="")}).text

    assert 'aria-describedby="description-error description-hint"' in page
    assert 'aria-invalid="true"' in page
    assert '="None"' not in page


#: Input types a person types into (and a browser would remember).
_TYPED = {"text", "email", "tel", "password", "search", "url", ""}


def _typed_controls(page: str) -> list[str]:
    controls = re.findall(r"<textarea\b[^>]*>", page)
    for tag in re.findall(r"<input\b[^>]*>", page):
        kind = re.search(r'\btype="([^"]*)"', tag)
        if (kind.group(1) if kind else "") in _TYPED:
            controls.append(tag)
    return controls


def test_every_reporter_field_a_person_types_into_keeps_no_autofill(
    app: Flask, client: FlaskClient, portal: Portal, settings: Settings
) -> None:
    """Issue 13, finding 14: the contact fields lacked ``autocomplete="off"``, so a shared
    computer's browser offered a reporter's name to the next person. Every typed field of every
    reporter page (the form with the access code asked, the receipt page, the follow-up log-in,
    the case page) says ``autocomplete="off"``."""
    portal.staff("olga")
    app.extensions["portal"].settings = settings.replace(
        report_access_code_hash=access_code.hash_code("blue-heron-42", TEST_ARGON2)
    )
    pages = {"report": client.get("/report").text}
    app.extensions["portal"].settings = settings
    posted = client.post(
        "/report", data={"csrf_token": csrf_token(client.get("/report").text), **report_form()}
    )
    receipt_page = receipt_page_after(client, posted)
    pages["receipt"] = receipt_page.text
    pages["follow-up log-in"] = client.get("/followup").text
    open_followup(client, receipt_of(receipt_page.text))
    pages["case"] = client.get("/followup/case").text

    seen = {name: _typed_controls(page) for name, page in pages.items()}
    assert all(seen.values()), seen  # each page has typed fields: the parser finds them
    assert any('name="contact_name"' in tag for tag in seen["report"])
    assert any('name="access_code"' in tag for tag in seen["report"])
    missing = {
        name: [tag for tag in tags if 'autocomplete="off"' not in tag]
        for name, tags in seen.items()
    }
    assert missing == {name: [] for name in pages}
