"""DESIGN.md invariants 1-4, tested on what is stored and logged, not on what is shown."""

from __future__ import annotations

import base64
import http.client
import logging
import re
import threading
from typing import cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Date, DateTime, LargeBinary, Table, inspect, select, text
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from portal import crypto
from portal.db import Base
from portal.instance import InstanceSecrets
from portal.models import Case, CaseAccess, Message, StaffUser
from portal.services.casework import content
from portal.web.reporter import session as reporter_session
from portal.web.reporter.receipt_cookie import COOKIE as RECEIPT_COOKIE
from tests.support.factories import Portal
from tests.support.pages import csrf_token, open_followup, receipt_of, report_form, submit_via_web
from tests.support.stored import database_bytes

ADDRESS = "198.51.100.77"
AGENT = "MarkerAgent/9.9 (agent-marker-3141)"
REFERER = "https://referer-marker.example/secret-path"
LANGUAGE = "xx-LANGMARKER"
DESCRIPTION = "plaintext-marker-2718 my supervisor took my severance papers"
MESSAGE = "follow-up-marker-1618 here is more detail"
NAME = "Namemarker Person"


def _markers() -> list[str]:
    return [ADDRESS, AGENT, "agent-marker-3141", REFERER, "referer-marker", LANGUAGE, "LANGMARKER"]


def _reporter_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update(
        {
            "REMOTE_ADDR": ADDRESS,
            "REMOTE_PORT": "54321",
            "HTTP_USER_AGENT": AGENT,
            "HTTP_REFERER": REFERER,
            "HTTP_ACCEPT_LANGUAGE": LANGUAGE,
            "HTTP_X_FORWARDED_FOR": ADDRESS,
        }
    )
    return client


def test_no_client_metadata_or_plaintext_in_database_or_logs(
    app: Flask, portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    portal.staff("alice", queues=("general", "hr"))
    client = _reporter_client(app)
    receipt = submit_via_web(
        client,
        description=DESCRIPTION,
        identity="named",
        contact_name=NAME,
        contact_details="namemarker@example.org",
    )
    open_followup(client, receipt)
    page = client.get("/followup/case")
    assert DESCRIPTION in page.text  # the reporter does see it
    response = client.post(
        "/followup/case", data={"csrf_token": csrf_token(page.text), "text": MESSAGE}
    )
    assert response.status_code == 302
    client.get("/no-such-page")  # an error path too
    client.post("/followup", data={"csrf_token": "stale", "receipt": crypto.new_receipt()})

    stored = database_bytes(app)
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for marker in [*_markers(), DESCRIPTION, MESSAGE, NAME, "namemarker@example.org"]:
        assert marker.encode() not in stored, f"{marker!r} stored in the database"
        assert marker not in logged, f"{marker!r} written to a log"
    for form in (receipt, crypto.normalise_receipt(receipt)):
        assert form.encode() not in stored, "the receipt must never be stored"
        assert form not in logged


def test_the_receipt_hand_over_leaves_no_trace(
    app: Flask, portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """Post/redirect/get carries the receipt in a cookie: across the whole flow (send, receipt
    page, reload, practice check, follow-up, quick exit) neither the receipt nor the cookie's
    value reaches the database (the audit log included) or a log."""
    caplog.set_level(logging.DEBUG)
    portal.staff("alice", queues=("general", "hr"))
    client = _reporter_client(app)
    token = csrf_token(client.get("/report").text)
    posted = client.post(
        "/report", data={"csrf_token": token, **report_form(description=DESCRIPTION)}
    )
    assert posted.status_code == 303
    handed_over = next(
        h for h in posted.headers.getlist("Set-Cookie") if h.startswith(f"{RECEIPT_COOKIE}=")
    )
    cookie_value = handed_over.split(";")[0].split("=", 1)[1]
    page = client.get("/report/receipt")
    receipt = receipt_of(page.text)
    assert client.get("/report/receipt").status_code == 410  # the reload
    check_token = re.search(r'name="token" type="hidden" value="([^"]+)"', page.text)
    assert check_token
    checked = client.post(
        "/report/receipt-check",
        data={"csrf_token": csrf_token(page.text), "token": check_token[1], "typed": receipt},
    )
    assert checked.status_code == 200
    open_followup(client, receipt)
    client.get("/leave")

    stored = database_bytes(app)
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for form in (receipt, crypto.normalise_receipt(receipt), cookie_value):
        assert form.encode() not in stored, "the receipt must never be stored"
        assert form not in logged, "the receipt must never be logged"
    for marker in _markers():
        assert marker not in logged


def test_reporter_rows_carry_days_only(portal: Portal, db: Session, app: Flask) -> None:
    portal.staff("alice")
    client = app.test_client()
    receipt = submit_via_web(client)
    open_followup(client, receipt)
    page = client.get("/followup/case")
    client.post("/followup/case", data={"csrf_token": csrf_token(page.text), "text": "more"})
    case_columns = inspect(Case).columns
    assert not [c.name for c in case_columns if isinstance(c.type, DateTime)], (
        "a case row must have no column finer than a day"
    )
    assert all(isinstance(case_columns[c].type, Date) for c in ("received_on", "reporter_wrote_on"))
    message = db.scalars(select(Message)).one()
    assert message.author == "reporter" and message.created_at is None


def test_ids_are_random_and_nothing_numbers_cases(portal: Portal, db: Session, app: Flask) -> None:
    portal.staff("alice")
    order = [portal.submit().case_id for _ in range(12)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in order)
    assert sorted(order) != order
    rows = list(db.execute(select(Case.id, Case.sort_key)))
    by_key = [i for i, _ in sorted(rows, key=lambda r: r[1])]
    assert by_key != order
    integer_pk = [
        t.name
        for t in (cast(Table, m.__table__) for m in (Case, Message, CaseAccess))
        if any(c.autoincrement is True for c in t.primary_key.columns)
    ]
    assert integer_pk == []
    if app.extensions["portal"].engine.dialect.name == "sqlite":
        for table in ("cases", "messages", "case_access"):
            sql = db.scalar(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": table})
            assert sql is not None and "WITHOUT ROWID" in sql, table


def test_excluded_ombudsperson_cannot_decrypt(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice", queues=("general",))
    bob = portal.staff("bob", queues=("general",))
    submitted = portal.submit(description="about bob", excluded_staff_ids=[bob.id])
    rows = list(db.scalars(select(CaseAccess).where(CaseAccess.case_id == submitted.case_id)))
    assert [r.staff_id for r in rows] == [alice.id]
    bob_key = portal.private_key(bob)
    case = db.get_one(Case, submitted.case_id)
    for sealed in [r.sealed_key for r in rows] + [case.reporter_sealed_key]:
        with pytest.raises(crypto.DecryptionFailed):
            crypto.unseal(bob_key, sealed)
    case_key = crypto.unseal(portal.private_key(alice), rows[0].sealed_key)
    assert content.open_report(case_key, case.id, case.report_ciphertext).description == "about bob"


def _blobs(session: Session) -> list[bytes]:
    found: list[bytes] = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, LargeBinary)]
        for column in columns:
            found.extend(v for v in session.scalars(select(column)) if v)
    return found


def test_database_and_instance_secrets_alone_decrypt_nothing(
    portal: Portal, db: Session, secrets: InstanceSecrets
) -> None:
    """The thief has every row and both secret files, but no password, recovery key or receipt."""
    alice = portal.staff("alice")
    submitted = portal.submit(
        description=DESCRIPTION, contact_name=NAME, contact_details="n@example.org"
    )
    case = db.get_one(Case, submitted.case_id)
    candidate_keys = [
        secrets.secret_key,
        secrets.pepper,
        crypto.subkey(secrets.secret_key, "reporter-cookie"),
        crypto.subkey(secrets.pepper, "reporter-cookie"),
    ]
    associated = [
        crypto.case_item_ad(case.id, content.REPORT),
        crypto.case_item_ad(case.id, content.CONTACT),
        b"portal-staff-private-key",
    ]
    blobs = _blobs(db)
    assert blobs
    for blob in blobs:
        for key in candidate_keys:
            for ad in associated:
                with pytest.raises(crypto.DecryptionFailed):
                    crypto.decrypt(key, blob, ad)
            with pytest.raises(crypto.DecryptionFailed):
                crypto.unseal(key, blob)
    # Staff key material needs the password; a password hash is not the password.
    user = db.get_one(StaffUser, alice.id)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.unwrap_with_password(
            user.password_hash, user.password_salt, user.key_by_password, portal.settings.kdf_cost
        )
    # Control: with a receipt the same rows do decrypt.
    reporter_key = crypto.derive_reporter_private_key(
        crypto.normalise_receipt(submitted.receipt), case.reporter_salt, portal.settings.kdf_cost
    )
    case_key = crypto.unseal(reporter_key, case.reporter_sealed_key)
    assert content.open_report(case_key, case.id, case.report_ciphertext).description == DESCRIPTION


def test_reporter_cookies_hold_no_receipt_and_no_readable_case(
    portal: Portal, app: Flask, db: Session
) -> None:
    portal.staff("alice")
    client = app.test_client()
    receipt = submit_via_web(client)
    token = csrf_token(client.get("/followup").text)
    response = client.post("/followup", data={"csrf_token": token, "receipt": receipt})
    cookie = client.get_cookie(reporter_session.COOKIE, path=reporter_session.PATH)
    assert cookie is not None
    raw = base64.urlsafe_b64decode(cookie.value)
    case_id = db.scalars(select(Case.id)).one()
    for secret in (receipt, crypto.normalise_receipt(receipt), case_id):
        assert secret not in cookie.value and secret.encode() not in raw
    set_cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Max-Age=" in set_cookie
    # The signed Flask cookie holds only the CSRF token.
    form_cookie = client.get_cookie("portal_form")
    assert form_cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert set(serializer.loads(form_cookie.value)) <= {"csrf_token", "_flashes"}


def test_development_server_request_log_has_no_client_address(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/", headers={"User-Agent": AGENT})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.shutdown()
        thread.join()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any('"GET / HTTP/1.1" 200' in line for line in lines), lines
    assert not any("127.0.0.1" in line or "agent-marker" in line for line in lines), lines


def test_error_pages_echo_no_request_metadata(app: Flask) -> None:
    client = _reporter_client(app)
    for response in (client.get("/nowhere"), client.post("/report", data={})):
        assert response.status_code in (400, 404, 503)
        for marker in _markers():
            assert marker not in response.text
