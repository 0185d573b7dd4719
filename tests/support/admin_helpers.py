"""Helpers for the admin console tests: an admin's client, posting forms, and looking at what the
database holds (rows, audit events) rather than only at what a page shows."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.db import Base
from portal.models import AccessRequest, AuditEvent, RequestState, Role, StaffUser
from portal.services.audit import chain as audit
from tests.support.factories import Portal
from tests.support.pages import csrf_token, login


def admin_user(portal: Portal, name: str = "root") -> StaffUser:
    return portal.staff(name, roles=(Role.ADMIN,), queues=())


def client_for(app: Flask, user: StaffUser) -> FlaskClient:
    client = app.test_client()
    login(client, user)
    return client


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None) -> TestResponse:
    """POST a form with a valid CSRF token of this client's session."""
    token = csrf_token(client.get("/staff/account").text)
    return client.post(url, data={"csrf_token": token, **(data or {})})


def fresh(db: Session) -> Session:
    """End the test session's read transaction so it sees what the app committed."""
    db.rollback()
    db.expire_all()
    return db


def events(db: Session, action: audit.Action) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
    return list(fresh(db).scalars(stmt))


def detail(event: AuditEvent) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(event.detail)
    return value


def snapshot(db: Session) -> dict[str, list[str]]:
    """Every row of every table, for comparing the whole database before and after; but for
    the staff sessions, whose "last seen" moves with every request."""
    fresh(db)
    out = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "staff_sessions":
            continue
        rows = db.execute(select(table)).all()
        out[table.name] = sorted(repr(tuple(row)) for row in rows)
    return out


def tables_containing(db: Session, needle: str) -> list[str]:
    """Names of the tables where some column value contains ``needle`` (as text or UTF-8)."""
    fresh(db)
    raw = needle.encode()
    found = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)).all():
            for value in row:
                if (isinstance(value, str) and needle in value) or (
                    isinstance(value, bytes) and raw in value
                ):
                    found.append(table.name)
    return found


def field_errors(page: str, field_id: str) -> list[str]:
    match = re.search(rf'<ul class="field-errors" id="{field_id}-error">(.*?)</ul>', page, re.S)
    if not match:
        return []
    return [html.unescape(m).strip() for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def input_value(page: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else None


def textarea(page: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>', page, re.S)
    assert match, f"page has no textarea {name!r}"
    return html.unescape(match.group(1))


def checked(page: str, name: str) -> set[str]:
    """Values of the ticked checkboxes named ``name``."""
    values = set()
    for tag in re.findall(rf'<input[^>]*name="{name}"[^>]*>', page):
        if " checked" in tag:
            match = re.search(r'value="([^"]*)"', tag)
            if match:
                values.add(html.unescape(match.group(1)))
    return values


def selected(page: str, name: str) -> str | None:
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert match, f"page has no select {name!r}"
    option = re.search(r'<option selected value="([^"]*)"', match.group(1))
    return html.unescape(option.group(1)) if option else None


def waiting_request_ids(db: Session) -> list[int]:
    """Ids of the access requests waiting for a second admin (four eyes), oldest first."""
    stmt = (
        select(AccessRequest.id)
        .where(AccessRequest.state == RequestState.PENDING.value)
        .order_by(AccessRequest.id)
    )
    return list(fresh(db).scalars(stmt))


def decide(client: FlaskClient, request_id: int, decision: str = "approve") -> TestResponse:
    """Approve (or reject) one access request through the console, as ``client``'s admin."""
    return post(
        client, "/staff/admin/staff/requests", {"request_id": str(request_id), "decision": decision}
    )


def approve_all(client: FlaskClient, db: Session) -> None:
    """A second admin approves every waiting request through the console."""
    for request_id in waiting_request_ids(db):
        response = decide(client, request_id)
        assert response.status_code == 302, response.text
