"""Issue 5, "Safety features a reporter expects": the quick exit and the receipt practice check.

Both work with JavaScript off (plain links and forms) and record nothing: no database row, no
audit entry, no log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.db import Base
from portal.models import Role
from portal.services.configuration import policy
from portal.settings import Settings
from portal.web.reporter import receipt_check, receipt_cookie
from portal.web.reporter.receipt_cookie import COOKIE as RECEIPT_COOKIE
from portal.web.reporter.session import COOKIE as REPORTER_COOKIE
from tests.support.factories import Portal
from tests.support.pages import (
    csrf_token,
    login,
    open_followup,
    post_concern,
    receipt_of,
    report_form,
    submit_via_web,
)
from tests.support.stored import database_bytes

QUICK_EXIT = 'href="/leave" rel="noreferrer" id="quick-exit">Leave this site quickly</a>'
FORM_COOKIE = "portal_form"
_TOKEN = re.compile(r'id="token" name="token" type="hidden" value="([^"]+)"')


def row_counts(app: Flask) -> dict[str, int]:
    with app.extensions["portal"].sessions() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def receipt_page(client: FlaskClient) -> TestResponse:
    return post_concern(client)


def check_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the receipt page has no practice check"
    return match.group(1)


def check(client: FlaskClient, page: str, typed: str, token: str | None = None) -> TestResponse:
    return client.post(
        "/report/receipt-check",
        data={
            "csrf_token": csrf_token(page),
            "token": check_token(page) if token is None else token,
            "typed": typed,
        },
    )


# --- quick exit: where it appears ----------------------------------------------------------------


def test_quick_exit_is_first_on_every_reporter_page(
    app: Flask, client: FlaskClient, portal: Portal
) -> None:
    closed = {"/": client.get("/"), "/report (closed)": client.get("/report")}
    assert closed["/report (closed)"].status_code == 503
    portal.staff("alice", queues=("general", "hr"))
    reporter_gets = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("reporter.")
        and "GET" in (rule.methods or ())
        and rule.endpoint != "reporter.leave"
    )
    assert {"/", "/report", "/followup", "/followup/case"} <= set(reporter_gets)
    pages = {rule: client.get(rule) for rule in reporter_gets}  # /followup/case: expired (401)
    assert pages["/followup/case"].status_code == 401
    first = receipt_page(client)
    pages["receipt"] = first
    pages["receipt check"] = check(client, first.text, "not it")
    pages["follow-up login, wrong receipt"] = client.post(
        "/followup",
        data={"csrf_token": csrf_token(client.get("/followup").text), "receipt": "x"},
    )
    open_followup(client, receipt_of(first.text))
    pages["follow-up case"] = client.get("/followup/case")
    pages["report, bad input"] = client.post(
        "/report", data={"csrf_token": csrf_token(pages["/report"].text), "description": ""}
    )
    pages["404"] = client.get("/no-such-page")
    pages["405"] = client.post("/")
    pages["expired form"] = client.post("/followup/leave", data={"csrf_token": "stale"})
    for name, response in {**closed, **pages}.items():
        html = response.text
        assert QUICK_EXIT in html, f"no quick exit on {name}"
        # Before anything else one can tab to, and no script needed for it.
        assert html.index(QUICK_EXIT) < html.index('class="skip"'), name
        assert "<script" not in html, name


def test_no_quick_exit_on_staff_pages(app: Flask, portal: Portal) -> None:
    ombudsperson = portal.staff("alice", queues=("general",))
    manager = portal.staff("mona", roles=(Role.MANAGEMENT,), queues=())
    admin = portal.staff("adam", roles=(Role.ADMIN,), queues=())
    outsider = app.test_client()
    pages = {
        "log-in": outsider.get("/staff/login"),
        "staff 404": outsider.get("/staff/no-such-page"),
        "api": outsider.get("/api/v1/openapi.json"),
    }
    for user, paths in (
        (ombudsperson, ("/staff/", "/staff/account", "/staff/cases/ZZZZ-ZZZZ")),
        (manager, ("/insights/", "/staff/")),  # a page and a 403
        (admin, ("/staff/admin/",)),
    ):
        client = app.test_client()
        login(client, user)
        pages.update({f"{path} as {user.email}": client.get(path) for path in paths})
    assert pages["/staff/ as mona@example.org"].status_code == 403
    for name, response in pages.items():
        assert "/leave" not in response.text, f"quick exit on staff page {name}"
        assert "Leave this site quickly" not in response.text, name


# --- quick exit: what it does --------------------------------------------------------------------


def _deleted(response: TestResponse, name: str) -> bool:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}=;") or header.startswith(f'{name}="";'):
            return "Max-Age=0" in header and "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in header
    return False


def test_leave_clears_cookies_and_goes_to_a_neutral_page(
    app: Flask, client: FlaskClient, portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    portal.staff("alice", queues=("general",))
    receipt = submit_via_web(client)
    open_followup(client, receipt)
    assert client.get("/followup/case").status_code == 200
    assert client.get_cookie(FORM_COOKIE) and client.get_cookie(REPORTER_COOKIE, path="/followup")
    before_rows, before_db = row_counts(app), database_bytes(app)
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    response = client.get("/leave")

    assert response.status_code == 303
    assert response.location == Settings().quick_exit_url == "https://www.wikipedia.org/"
    assert response.headers["Clear-Site-Data"] == '"cookies", "storage"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert _deleted(response, FORM_COOKIE)
    assert _deleted(response, REPORTER_COOKIE)
    assert client.get_cookie(FORM_COOKIE) is None
    assert client.get_cookie(REPORTER_COOKIE, path="/followup") is None
    # Nothing recorded: no row, no audit entry, no byte of the database changed, no log line.
    assert caplog.records == []
    assert row_counts(app) == before_rows
    assert database_bytes(app) == before_db
    # The follow-up view has closed.
    assert client.get("/followup/case").status_code == 401


def test_leave_works_without_any_cookie_and_goes_where_configured(app: Flask) -> None:
    app.extensions["portal"].settings = app.extensions["portal"].settings.replace(
        quick_exit_url="https://weather.example/today"
    )
    client = app.test_client()
    page = client.get("/followup").text
    assert QUICK_EXIT in page  # the link is the route's, whatever the configured target
    response = client.get("/leave")
    assert response.status_code == 303
    assert response.location == "https://weather.example/today"
    assert _deleted(response, FORM_COOKIE) and _deleted(response, REPORTER_COOKIE)
    assert client.head("/leave").status_code == 303


# --- receipt practice check ----------------------------------------------------------------------


def test_receipt_page_says_once_and_offers_the_check(client: FlaskClient, portal: Portal) -> None:
    portal.staff("alice", queues=("general",))
    page = receipt_page(client).text
    assert "This receipt is shown only once" in page
    assert "nobody can recover it for you" in page
    assert "Type your receipt again to check you saved it" in page
    assert 'action="/report/receipt-check#check"' in page
    assert receipt_of(page) not in check_token(page)  # the token does not show it
    assert "<script" not in page


def test_check_says_match_or_not_and_keeps_what_was_typed(
    app: Flask, client: FlaskClient, portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    portal.staff("alice", queues=("general",))
    page = receipt_page(client).text
    receipt = receipt_of(page)
    caplog.set_level(logging.DEBUG)
    before_rows, before_db = row_counts(app), database_bytes(app)

    # Spacing, case, dashes and look-alikes forgiven, as at the follow-up log-in.
    sloppy = " " + receipt.replace("-", " ").lower().replace("0", "o").replace("1", "l") + " "
    matches = check(client, page, sloppy)
    assert matches.status_code == 200
    assert "That matches" in matches.text and "does not match" not in matches.text
    assert receipt_of(matches.text) == receipt

    wrong = receipt[:-1] + ("A" if receipt[-1] != "A" else "B")
    for typed in (wrong, "ABCD", "", "<b>not a receipt</b>"):
        answer = check(client, page, typed)
        assert answer.status_code == 400, typed
        assert "That does not match: check the letters" in answer.text
        assert "That matches" not in answer.text
        # What was typed stays in the field, and the receipt is shown to correct the copy.
        kept = typed.replace("<", "&lt;").replace(">", "&gt;")
        field = re.search(r'<input [^>]*name="typed"[^>]*>', answer.text)
        assert field and f'value="{kept}"' in field.group(0), typed
        assert receipt_of(answer.text) == receipt
        assert check_token(answer.text)  # may be tried again

    assert row_counts(app) == before_rows
    assert database_bytes(app) == before_db
    logged = caplog.text
    assert receipt not in logged and wrong not in logged
    assert crypto.normalise_receipt(receipt) not in logged


def test_check_compares_with_this_submission_only(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    """Two concerns sent one after the other: each receipt page's check knows only its own."""
    portal.staff("alice", queues=("general",))
    first = receipt_page(client).text
    second = receipt_page(client).text
    assert receipt_of(first) != receipt_of(second)
    assert check(client, first, receipt_of(first)).status_code == 200
    assert check(client, second, receipt_of(second)).status_code == 200
    assert check(client, first, receipt_of(second)).status_code == 400
    assert check(client, second, receipt_of(first)).status_code == 400


def test_check_can_be_reloaded_and_repeated(client: FlaskClient, portal: Portal) -> None:
    """Reloading the check's answer posts the same check again: same answer, nothing saved."""
    portal.staff("alice", queues=("general",))
    page = receipt_page(client).text
    receipt = receipt_of(page)
    once = check(client, page, receipt)
    again = check(client, page, receipt)
    assert once.status_code == again.status_code == 200
    # A check from the answer page (its own form) works too.
    assert check(client, once.text, "wrong").status_code == 400
    assert check(client, once.text, receipt).status_code == 200


def test_an_expired_or_forged_check_loses_nothing(app: Flask, portal: Portal) -> None:
    portal.staff("alice", queues=("general",))
    client = app.test_client()
    page = receipt_page(client).text
    receipt = receipt_of(page)
    for token in ("", "forged", check_token(page)[:-4] + "AAAA"):
        answer = check(client, page, receipt, token=token)
        assert answer.status_code == 400
        assert "This receipt check has expired" in answer.text
        assert receipt not in answer.text.replace(f'value="{receipt}"', "")  # only the typed copy
        assert f'value="{receipt}"' in answer.text  # what was typed is still there

    state = app.extensions["portal"]
    previous = state.clock
    minutes = state.settings.reporter_session_minutes
    state.clock = lambda: previous() + dt.timedelta(minutes=minutes, seconds=1)
    answer = check(client, page, receipt)
    assert answer.status_code == 400
    assert "This receipt check has expired" in answer.text
    assert 'id="receipt"' not in answer.text


def test_check_with_an_expired_form_token_still_answers(
    client: FlaskClient, portal: Portal
) -> None:
    """The check changes nothing, so a stale CSRF token is no reason to refuse it."""
    portal.staff("alice", queues=("general",))
    page = receipt_page(client).text
    response = client.post(
        "/report/receipt-check",
        data={"csrf_token": "stale", "token": check_token(page), "typed": receipt_of(page)},
    )
    assert response.status_code == 200
    assert "That matches" in response.text


# --- the receipt page: post/redirect/get ---------------------------------------------------------


def cases(app: Flask) -> int:
    return row_counts(app)["cases"]


def _set_cookie(response: TestResponse, name: str) -> str:
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.getlist("Set-Cookie")
    return found[0]


def test_sending_redirects_to_the_receipt_page_with_a_sealed_cookie(
    app: Flask, client: FlaskClient, portal: Portal
) -> None:
    portal.staff("alice", queues=("general",))
    token = csrf_token(client.get("/report").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form()})
    assert posted.status_code == 303
    assert posted.location == "/report/receipt"
    header = _set_cookie(posted, RECEIPT_COOKIE)
    attributes = [part.strip() for part in header.split(";")]
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes
    assert f"Path={receipt_cookie.PATH}" in attributes
    assert f"Max-Age={receipt_cookie.MAX_AGE_SECONDS}" in attributes
    assert receipt_cookie.MAX_AGE_SECONDS <= 10 * 60  # a few minutes, no more
    assert "Secure" not in attributes  # secure_cookies is off in the tests
    receipt = receipt_of(client.get(posted.location).text)
    every_cookie = "\n".join(posted.headers.getlist("Set-Cookie"))
    for form in (receipt, crypto.normalise_receipt(receipt), receipt.lower()):
        assert form not in every_cookie, "the cookie must not show the receipt"
    assert receipt not in posted.text


def test_the_receipt_cookie_is_secure_when_cookies_are(app: Flask, portal: Portal) -> None:
    portal.staff("alice", queues=("general",))
    state = app.extensions["portal"]
    state.settings = state.settings.replace(secure_cookies=True)
    client = app.test_client()
    token = csrf_token(client.get("/report").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form()})
    assert posted.status_code == 303
    assert "Secure" in [p.strip() for p in _set_cookie(posted, RECEIPT_COOKIE).split(";")]


def test_the_receipt_page_shows_it_once_and_deletes_the_cookie(
    app: Flask, client: FlaskClient, portal: Portal
) -> None:
    portal.staff("alice", queues=("general",))
    shown = post_concern(client)
    receipt = receipt_of(shown.text)
    assert "This receipt is shown only once" in shown.text
    assert check_token(shown.text)  # the practice check, as before
    assert shown.headers["Cache-Control"] == "no-store"
    assert _deleted(shown, RECEIPT_COOKIE)
    assert client.get_cookie(RECEIPT_COOKIE, path=receipt_cookie.PATH) is None
    assert cases(app) == 1

    reloaded = client.get("/report/receipt")
    assert reloaded.status_code == 410
    assert "This receipt is not shown again" in reloaded.text
    assert "raise your concern again" in reloaded.text and "in person" in reloaded.text
    assert receipt not in reloaded.text and 'id="receipt"' not in reloaded.text
    assert reloaded.headers["Cache-Control"] == "no-store"
    assert cases(app) == 1  # nothing was sent again


@pytest.mark.parametrize("spoil", ["expired", "tampered", "a check token", "garbage"])
def test_a_spoiled_receipt_cookie_shows_the_once_page(
    app: Flask, client: FlaskClient, portal: Portal, spoil: str
) -> None:
    portal.staff("alice", queues=("general",))
    token = csrf_token(client.get("/report").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form()})
    assert posted.status_code == 303
    value = _set_cookie(posted, RECEIPT_COOKIE).split(";")[0].split("=", 1)[1]
    if spoil == "expired":
        state = app.extensions["portal"]
        previous = state.clock
        later = dt.timedelta(seconds=receipt_cookie.MAX_AGE_SECONDS + 1)
        state.clock = lambda: previous() + later
    else:
        if spoil == "tampered":
            value = value[:-6] + ("AAAA" if value[-6:-2] != "AAAA" else "BBBB") + value[-2:]
        elif spoil == "a check token":  # sealed the same way, for another use
            with app.test_request_context():
                value = receipt_check.token_for(crypto.new_receipt())
        else:
            value = "not-a-token"
        client.set_cookie(RECEIPT_COOKIE, value, path=receipt_cookie.PATH)
    page = client.get("/report/receipt")
    assert page.status_code == 410
    assert "This receipt is not shown again" in page.text
    assert 'id="receipt"' not in page.text
    assert _deleted(page, RECEIPT_COOKIE)
    assert cases(app) == 1


def test_the_practice_check_works_after_the_redirect(client: FlaskClient, portal: Portal) -> None:
    portal.staff("alice", queues=("general",))
    page = post_concern(client).text
    receipt = receipt_of(page)
    client.get("/report/receipt")  # a reload in between changes nothing for the check
    assert check(client, page, receipt.lower()).status_code == 200
    assert check(client, page, "wrong").status_code == 400


def test_leave_deletes_the_receipt_cookie_too(client: FlaskClient) -> None:
    assert _deleted(client.get("/leave"), RECEIPT_COOKIE)


def test_small_units_carry_a_warning_before_sending(portal: Portal, client: FlaskClient) -> None:
    """A site or department below the policy's smallest unit (headcount from configuration) is
    labelled as a small team in the form itself, so the warning is there with JavaScript off."""
    portal.staff("olivia")
    page = client.get("/report").text
    options = dict(re.findall(r'<option value="([a-z-]+)">([^<]*)</option>', page))
    assert options["remote"] == (
        "Remote or travelling (a small team: choosing it may point at you)"
    )  # 12 employees, below the default minimum of 20
    assert options["hq"] == "Head office"  # 420 employees
    assert options["finance"] == "Finance"  # 45 employees

    policy.update(portal.session, insights_min_headcount=50)
    portal.session.commit()
    page = client.get("/report").text
    assert "Finance (a small team: choosing it may point at you)" in page
