"""The shared form macros: accessible attributes are either meaningful or absent."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import Portal, csrf_token, report_form


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
