"""A sweep of the web attack surface: CSRF on every state-changing route, stored XSS and
template injection in every field people type, direct object references across cases and
queues, and oversized or malformed requests.

The routes, roles and request bodies come from tests/invariants/matrix/test_authorization.py (its
MATRIX lists every route and which role may use it; its ``world`` holds two cases, A with an
attachment, and the staff around them), so a route added to the app is swept here without a change
to this file. What that matrix already proves (each role's status code on each route, a forged staff
cookie, a missing token on staff routes not crashing) is not repeated: this file looks at what a
refused request leaves in the database and the audit log, and at what a page renders.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import importlib
import io
import json
import pkgutil
import re
import tomllib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse
from wtforms import FileField, StringField
from wtforms.fields.core import UnboundField

import portal.web
from portal.db import Base
from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.models import (
    Attachment,
    AuditEvent,
    Case,
    Category,
    Message,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    Queue,
    Role,
    RoutingRule,
    StaffUser,
    Tag,
    WorkflowStatus,
)
from portal.services.accounts import accounts as staff_service
from portal.services.accounts import second_factor
from portal.services.attachments.store import PreparedFile
from portal.services.audit.chain import Action
from portal.services.casework import access_requests
from portal.services.configuration import editing as configuration
from portal.services.configuration import (
    export as taxonomy_export,
)
from portal.services.configuration import (
    taxonomy,
)
from portal.services.configuration.list_editing import Listed
from portal.web.admin import forms as admin_forms
from portal.web.admin import reset as admin_reset
from portal.web.forms import PortalForm
from portal.web.reporter import forms as reporter_forms
from portal.web.staff import access as staff_access
from portal.web.staff import forms as staff_forms
from portal.web.staff import hold as staff_hold
from tests.invariants.matrix.test_authorization import (
    A_TEXT,
    B_TEXT,
    INSIGHTS_QUARTER,
    MATRIX,
    R,
    World,
    _release_a_quarter,
    client_as,
    form_for,
    live_fields,
    url_for_rule,
)
from tests.support.admin_helpers import waiting_request_ids
from tests.support.factories import PASSWORD, TOTP_SECRET, Portal
from tests.support.pages import (
    csrf_token,
    login,
    login_password,
    open_followup,
    receipt_of,
    receipt_page_after,
    report_form,
)
from tests.support.smtp_server import app_mailbox

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Routes that accept a post without a valid token on purpose, and why that is safe.
CSRF_NOT_NEEDED = {
    # The receipt page's practice check compares two strings from the form: it reads no
    # database and stores nothing, and an expired token must not spoil a reporter's practice.
    ("/report/receipt-check", "POST"): "stores nothing",
}
#: The JSON API authenticates by a bearer header only (never a cookie), so it is exempt from
#: CSRF by design (portal/__init__.py); it has no state-changing route today.
CSRF_EXEMPT_BLUEPRINTS = ("api.",)
#: For each route, the first of these roles that the matrix lets through is the one that sends
#: the forged request: the attack must fail even for the role the route is meant for.
RIGHTFUL_ORDER = (
    R.REPORTER_A,
    R.HOLDER,
    R.ADMIN,
    R.MANAGEMENT,
    R.AT_CODE,
    R.AT_ENROL,
    R.AT_NEW_PASSWORD,
    R.ANONYMOUS,
)


# --- helpers ---------------------------------------------------------------------------------


def state_changing_routes(app: Flask) -> list[tuple[str, str]]:
    """(rule, method) of every route that accepts a state-changing method, from the app."""
    return sorted(
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith(CSRF_EXEMPT_BLUEPRINTS)
        for method in (rule.methods or set()) & STATE_CHANGING
    )


def rightful_role(rule: str, method: str) -> R:
    row = MATRIX[(rule, method)]
    return next(role for role in RIGHTFUL_ORDER if row[role].status < 400)


def dump(app: Flask) -> dict[str, list[str]]:
    """Every row of every table, in a stable order, from a fresh database session."""
    with app.extensions["portal"].sessions() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(table.select()))
            for table in Base.metadata.sorted_tables
        }


def audit_count(app: Flask) -> int:
    with app.extensions["portal"].sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


#: The tables a recorded view appends to.
AUDIT_TABLES = frozenset({"audit_events", "audit_head"})


def last_audit_seq(app: Flask) -> int:
    with app.extensions["portal"].sessions() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def audit_events_since(app: Flask, seq: int) -> list[tuple[str, int | None, str | None]]:
    """(action, actor, case) of the events appended after ``seq``, in order."""
    with app.extensions["portal"].sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.case_id)
            .where(AuditEvent.seq > seq)
            .order_by(AuditEvent.seq)
        )
        return [(action, actor, case) for action, actor, case in rows]


def freeze_clock(app: Flask, clients: Iterable[FlaskClient]) -> None:
    """Stop the app's clock and let each client's staff session see it once, so that a refused
    request that passes the staff guard (the views that re-render their form after a failed
    token) writes the same ``last_seen_at`` back: any other change is the request's doing."""
    state = app.extensions["portal"]
    now = state.clock()
    state.clock = lambda: now
    for client in clients:
        client.get("/staff/account")


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


# --- CSRF ------------------------------------------------------------------------------------


def test_every_state_changing_route_is_in_the_matrix(app: Flask) -> None:
    """The sweep below needs a rightful role and a body for each route: both come from the
    authorization matrix, so a new route must get its row there first."""
    routes = state_changing_routes(app)

    assert len(routes) > 40  # the enumeration finds the routes
    assert [key for key in routes if key not in MATRIX] == []
    assert all(rightful_role(*key) for key in routes)


@pytest.mark.parametrize("forgery", ["no token", "a token of another session"])
def test_a_forged_post_is_refused_on_every_route_and_changes_nothing(
    world: World, forgery: str
) -> None:
    app = world.app
    routes = state_changing_routes(app)
    clients: dict[R, FlaskClient] = {}
    bodies: dict[tuple[str, str], dict[str, str]] = {}
    for rule, method in routes:
        role = rightful_role(rule, method)
        if role not in clients:
            clients[role] = client_as(world, role)
        bodies[(rule, method)] = live_fields(clients[role], rule, world)
    stranger = app.test_client()
    foreign = csrf_token(stranger.get("/followup").text)
    freeze_clock(app, clients.values())
    before, audited = dump(app), audit_count(app)

    failures = []
    views = 0
    for rule, method in routes:
        role = rightful_role(rule, method)
        body = {**form_for(rule, world), **bodies[(rule, method)]}
        if forgery != "no token":
            body["csrf_token"] = foreign
        last = last_audit_seq(app)
        response = clients[role].open(url_for_rule(rule, world), method=method, data=body)
        after = dump(app)
        if response.status_code != 400 and (rule, method) not in CSRF_NOT_NEEDED:
            failures.append(f"{method} {rule} as {role.value}: {response.status_code}")
        changed = differences(before, after)
        if role == R.HOLDER and A_TEXT in response.text:
            # A recoverable form shows case A again with what was typed: that answer is a view
            # and is recorded like any other (issue 13, finding 5); it changes nothing else.
            expected = [(Action.CASE_VIEWED.value, world.staff[R.HOLDER].id, world.case_a_id)]
            if audit_events_since(app, last) != expected:
                failures.append(f"{method} {rule} as {role.value}: not recorded as one view")
            changed = [name for name in changed if name not in AUDIT_TABLES]
            views += 1
        if changed:
            failures.append(f"{method} {rule} as {role.value} changed {changed}")
        before = after
        if response.status_code == 400:
            assert A_TEXT not in response.text or role in (R.REPORTER_A, R.HOLDER)

    assert failures == []
    assert views > 0  # the recoverable case forms were swept
    assert audit_count(app) == audited + views


# --- stored XSS, template and formula injection ------------------------------------------------
#
# Every field in which a reporter, a staff member or an admin types text is listed below, either
# with the markers the sweep plants through it or with the reason nothing typed there is kept
# (test_every_text_field_of_every_form_is_in_the_sweep fails for a field in neither list, so
# the list cannot go stale). The taxonomy file writes the same columns as the console forms
# (test_every_text_of_the_taxonomy_file_is_in_the_sweep, and the import round trip below).

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "url": "javascript:alert(1)",
    "template": "{{7*7}}",
    # A spreadsheet runs a cell that starts like this (CSV injection); values of this kind are
    # planted with the payload first, and no cell of a CSV may start like a formula.
    "formula": '=HYPERLINK("//x.test")',
}
#: What must never be in the HTML, whatever page shows the payload (a formula is plain text
#: to a browser: it is looked for in the CSV files).
RAW: dict[str, re.Pattern[str] | None] = {
    "script": re.compile(r"<script>alert\(1\)"),
    "attribute": re.compile(r"\"><img|<img src=x"),
    "url": re.compile(r"(?:href|src|action|formaction|data)\s*=\s*[\"']?\s*javascript:", re.I),
    # Every planted value starts with a marker: "zq-<field> {{7*7}}" must not become "... 49"
    # (an e-mail address has no space: "zq-email/{{7*7}}@...").
    "template": re.compile(r"zq-[a-z]+[ /]49\b"),
    "formula": None,
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters that change how text reads without being seen: the bidi embeddings, overrides
#: and isolates, the marks, the zero-width ones, a tag character and the soft hyphen (all of
#: Unicode category Cf). Planted by test_hidden_characters_in_case_text_are_visible_to_staff
#: only: it is not markup, so the escaping test above has nothing to look for in it.
HIDDEN = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\ufeff\U000e0041\u00ad"
)
#: Short enough for a tag label (40 characters with its marker).
OTHER_PAYLOADS = {"hidden": f"\u202egnp.exe{HIDDEN}"}

#: The markers planted through each form field, by form class and field name. A field that
#: writes the same column for two rows (a category's label) plants a marker per row.
STORED: dict[tuple[type[PortalForm], str], tuple[str, ...]] = {
    # the reporter
    (reporter_forms.ReportForm, "description"): ("description",),
    (reporter_forms.ReportForm, "contact_name"): ("contact",),
    (reporter_forms.ReportForm, "contact_details"): ("details",),
    (reporter_forms.ReportForm, "files"): ("file",),  # the name of a file sent
    (reporter_forms.MessageForm, "text"): ("message",),
    (reporter_forms.MessageForm, "files"): ("addedfile",),
    # an ombudsperson
    (staff_forms.StaffMessageForm, "text"): ("reply", "note"),
    (staff_forms.StatusForm, "reason"): ("reason",),  # the reason for reopening a case
    (staff_hold.HoldForm, "hold_reason"): ("hold",),  # kept as an internal note
    (staff_forms.TriageForm, "new_tag"): ("tag",),
    # management
    (staff_forms.ApiTokenForm, "name"): ("token",),
    # an admin
    (admin_forms.NewStaffForm, "email"): ("email",),
    (admin_forms.NewStaffForm, "name"): ("colleague",),
    (admin_forms.TagForm, "label"): ("retag",),
    (admin_forms.QueueForm, "name"): ("queue",),
    (admin_forms.QueueForm, "name_zh_CN"): ("zhqueue",),
    (admin_forms.QueueForm, "description"): ("qdesc",),
    (admin_forms.QueueForm, "description_zh_CN"): ("zhqdesc",),
    (admin_forms.CategoryForm, "label"): ("category", "harassment"),
    (admin_forms.CategoryForm, "label_zh_CN"): ("zhcategory",),
    (admin_forms.CategoryForm, "description"): ("catdesc",),
    (admin_forms.CategoryForm, "description_zh_CN"): ("zhcatdesc",),
    (admin_forms.UnitForm, "label"): ("site", "department"),
    (admin_forms.UnitForm, "label_zh_CN"): ("zhsite", "zhdepartment"),
    (admin_forms.StatusForm, "label"): ("status",),
    (admin_forms.StatusForm, "label_zh_CN"): ("zhstatus",),
    (admin_forms.OutcomeForm, "label"): ("outcome",),
    (admin_forms.OutcomeForm, "label_zh_CN"): ("zhoutcome",),
    (admin_forms.RuleForm, "keywords"): ("keywords",),
}
#: Planted without a form: what `portal create-staff` sets (services/staff.py).
NOT_FROM_A_FORM = {"staffname": "a staff member's public name from `portal create-staff`"}

_CODE = "a code: lower-case letters, digits, '-' and '_' only (configuration.clean_code)"
_NUMBER = "a whole number, refused otherwise"
_SECRET = "a secret, compared and never stored or shown back"
_TAXONOMY_FILE = "the taxonomy file: its texts are in TAXONOMY_TEXTS below, by column"
_HONEYPOT = "the honeypot: a filled one refuses the post, and its text is dropped"
_LOOKED_UP = "looked up; a failed log-in records the account it names, never the text"
#: Fields whose text is never stored, and why. Those that a page shows back (a refused form
#: keeps what was typed) are swept by test_typed_text_shown_back_is_escaped (ECHOES).
NOT_STORED: dict[tuple[type[PortalForm], str], str] = {
    (reporter_forms.ReportForm, "website"): _HONEYPOT,
    (reporter_forms.MessageForm, "website"): _HONEYPOT,
    (reporter_forms.ReportForm, "access_code"): _SECRET,
    (reporter_forms.ReceiptForm, "receipt"): _SECRET + " (looked up by its HMAC)",
    (reporter_forms.ReceiptCheckForm, "typed"): _SECRET,
    (reporter_forms.ReceiptCheckForm, "token"): "the receipt encrypted by the server; compared",
    (staff_forms.LoginForm, "email"): _LOOKED_UP,
    (staff_forms.LoginForm, "password"): _SECRET,
    (staff_forms.LoginForm, "code"): _SECRET + " (asked only while the account is guessed at)",
    (staff_forms.CodeForm, "code"): _SECRET,
    (staff_forms.PasswordChangeForm, "current"): _SECRET,
    (staff_forms.PasswordChangeForm, "new"): "a password: only its Argon2 hash is stored",
    (staff_forms.PasswordChangeForm, "confirm"): _SECRET,
    (staff_forms.ApiTokenForm, "days"): _NUMBER,
    (admin_reset.ResetForm, "recovery_key"): _SECRET,
    (staff_access.RegrantForm, "fingerprint"): "a key fingerprint: compared, never stored or shown",
    (admin_forms.QueueForm, "slug"): _CODE,
    (admin_forms.CategoryForm, "code"): _CODE,
    (admin_forms.UnitForm, "code"): _CODE,
    (admin_forms.StatusForm, "code"): _CODE,
    (admin_forms.OutcomeForm, "code"): _CODE,
    (admin_forms.UnitForm, "headcount"): _NUMBER,
    (admin_forms.MoveForm, "direction"): "hidden; only 'up' or 'down' is accepted",
    (admin_forms.ActiveForm, "active"): "hidden; only 'yes' or 'no' is accepted",
    (admin_forms.RuleTestForm, "sample"): "matched in memory, never stored",
    (admin_forms.AuditFilterForm, "case"): "a case handle, refused unless it looks like one",
    (admin_forms.AuditExportForm, "case"): "a case handle, refused unless it looks like one",
    (admin_forms.VerifyForm, "expect"): "a SEQ:HASH anchor, compared with the chain",
    (admin_forms.ImportForm, "file"): _TAXONOMY_FILE,
}
#: File names are reduced to letters, digits, space and ``-_.()`` before they are stored
#: (test_sanitize.py): the case page lists them by that name (checked), never as planted.
FILE_MARKERS = ("file", "addedfile")
FIELDS = tuple(
    sorted({marker for markers in STORED.values() for marker in markers} | set(NOT_FROM_A_FORM))
)
#: Markers of case content (admin and management never see it) and of what only staff may see
#: (a reporter never sees it).
CASE_CONTENT = ("description", "contact", "details", "message", "reply", "note", "reason")
STAFF_ONLY = ("note", "reason", "tag", "retag", "email", "token", "keywords")


def planted(field: str, kind: str) -> str:
    payload = PAYLOADS[kind] if kind in PAYLOADS else OTHER_PAYLOADS[kind]
    text = f"{payload} zq-{field}" if kind == "formula" else f"zq-{field} {payload}"
    if field == "email":  # an address has no space, and is stored in lower case
        return text.replace(" ", "/").lower() + "@example.org"
    return text


def _post(client: FlaskClient, page: str, url: str, data: Mapping[str, object]) -> TestResponse:
    token = csrf_token(client.get(page).text)
    return client.post(url, data={"csrf_token": token, **data})


def _saved(admin: FlaskClient, url: str, data: Mapping[str, object]) -> None:
    response = _post(admin, url, url, data)
    assert response.status_code == 302, response.text


def _item_id(db: Session, model: type[Listed], code: str) -> int:
    return db.scalars(select(model.id).where(model.code == code)).one()


def _unit(db: Session, kind: OrgUnitKind) -> tuple[int, str]:
    """A unit's id and code (not the row: the fixture's session would keep its old label)."""
    unit = db.execute(
        select(OrgUnit.id, OrgUnit.code).where(OrgUnit.kind == kind.value).order_by(OrgUnit.id)
    ).first()
    assert unit is not None
    return unit.id, unit.code


ZH = {"Accept-Language": "zh-CN"}


@dataclass
class Swept:
    kind: str  # of PAYLOADS
    pages: dict[str, TestResponse]  # HTML, by name
    outputs: dict[str, TestResponse]  # downloads and API answers, by name


@pytest.fixture(params=sorted(PAYLOADS))
def xss(request: pytest.FixtureRequest, app: Flask, portal: Portal, db: Session) -> Swept:
    """Every field filled with one kind of payload through the real forms; returns every page
    and download that shows them."""
    kind = request.param
    value = {field: planted(field, kind) for field in FIELDS}
    writer = staff_service.create_staff(
        db,
        portal.settings,
        email="writer@example.org",
        display_name=value["staffname"],
        roles=[Role.OMBUDSPERSON],
        queue_slugs=["general", "hr"],
        password=PASSWORD,
        now=dt.datetime.now(dt.UTC),
    ).user
    second_factor.assign_totp_secret(db, writer, TOTP_SECRET)
    db.commit()
    admin = app.test_client()
    login(admin, portal.staff("admin", roles=(Role.ADMIN,), queues=()))
    (site, site_code), (department, department_code) = (
        _unit(db, OrgUnitKind.SITE),
        _unit(db, OrgUnitKind.DEPARTMENT),
    )
    general = db.scalars(select(Queue.id).where(Queue.slug == "general")).one()
    config = "/staff/admin/config"
    other = f"{config}/categories/{_item_id(db, Category, 'other')}"
    status = f"{config}/statuses/{_item_id(db, WorkflowStatus, 'investigating')}"
    outcome = f"{config}/outcomes/{_item_id(db, Outcome, 'substantiated')}"
    for url, data in (
        (
            other,
            {
                "label": value["category"],
                "label_zh_CN": value["zhcategory"],
                "description": value["catdesc"],
                "description_zh_CN": value["zhcatdesc"],
            },
        ),
        (
            f"{config}/categories/{_item_id(db, Category, 'harassment')}",
            {"label": value["harassment"]},
        ),
        (f"{config}/sites/{site}", {"label": value["site"], "label_zh_CN": value["zhsite"]}),
        (
            f"{config}/departments/{department}",
            {"label": value["department"], "label_zh_CN": value["zhdepartment"]},
        ),
        (status, {"label": value["status"], "label_zh_CN": value["zhstatus"]}),
        (outcome, {"label": value["outcome"], "label_zh_CN": value["zhoutcome"]}),
        (
            f"{config}/queues/{general}",
            {
                "name": value["queue"],
                "name_zh_CN": value["zhqueue"],
                "description": value["qdesc"],
                "description_zh_CN": value["zhqdesc"],
            },
        ),
    ):
        _saved(admin, url, data)
    added = _post(
        admin,
        f"{config}/rules",
        f"{config}/rules",
        {"keywords": value["keywords"], "queue": str(general)},
    )
    assert added.status_code == 302, added.text
    rule = db.scalars(select(RoutingRule.id).order_by(RoutingRule.position.desc())).first()
    # A colleague reporters cannot exclude from the general queue: the concern form names
    # them, with the queue and its description.
    with app_mailbox(app) as mailbox:
        created = _post(
            admin,
            "/staff/admin/staff/new",
            "/staff/admin/staff/new",
            {
                "email": value["email"],
                "name": value["colleague"],
                "roles": [Role.OMBUDSPERSON.value],
                "queues": ["general"],
                "not_excludable_in": ["general"],
            },
        )
    assert created.status_code == 200, created.text
    colleague = db.scalars(select(StaffUser.id).where(StaffUser.email == value["email"])).one()
    # Four eyes: the role and the queue take effect when a second admin approves them.
    approver = portal.staff("approver", roles=(Role.ADMIN,), queues=())
    for request_id in waiting_request_ids(db):
        access_requests.approve(db, request_id, actor=approver, now=dt.datetime.now(dt.UTC))
    db.commit()
    # The colleague's first log-in, with the one-time password mailed to them, leads to the
    # enrolment page.
    [mail] = mailbox.received
    temporary = re.search(r"^    (\S+)$", mail.body, re.M)
    assert temporary is not None
    newcomer = app.test_client()
    first = _post(
        newcomer,
        "/staff/login",
        "/staff/login",
        {"email": value["email"], "password": temporary.group(1).strip()},
    )
    assert first.status_code == 302, first.text
    second_step = app.test_client()
    assert login_password(second_step, writer) == "/staff/login/code"

    reporter = app.test_client()
    posted = _post(
        reporter,
        "/report",
        "/report",
        report_form(
            category="other",
            site=site_code,
            department=department_code,
            identity="named",
            contact_name=value["contact"],
            contact_details=value["details"],
            description=value["description"],
            files=[(io.BytesIO(b"plain notes"), f"{value['file']}.txt")],
        ),
    )
    receipt_page = receipt_page_after(reporter, posted)
    open_followup(reporter, receipt_of(receipt_page.text))
    sent = _post(
        reporter,
        "/followup/case",
        "/followup/case",
        {
            "text": value["message"],
            "files": [(io.BytesIO(b"more notes"), f"{value['addedfile']}.txt")],
        },
    )
    assert sent.status_code == 302, sent.text
    handle = db.scalars(select(Case.handle)).one()

    ombudsperson = app.test_client()
    login(ombudsperson, writer)
    case_url = f"/staff/cases/{handle}"
    for url, data in (
        (f"{case_url}/messages", {"text": value["reply"], "visibility": "reporter"}),
        (f"{case_url}/messages", {"text": value["note"], "visibility": "internal"}),
        (f"{case_url}/triage", {"priority": "high", "org_category": "", "new_tag": value["tag"]}),
        (f"{case_url}/status", {"status": "closed", "outcome": "substantiated"}),
        (f"{case_url}/status", {"status": "investigating", "reason": value["reason"]}),
    ):
        response = _post(ombudsperson, case_url, url, data)
        assert response.status_code == 302, response.text
    # The page after the redirect carries the message "Status changed to “<label>”".
    reopened = ombudsperson.get(response.location)
    held = _post(ombudsperson, case_url, f"{case_url}/hold", {"hold_reason": value["hold"]})
    assert held.status_code == 302, held.text
    tag = db.scalars(select(Tag.id)).one()
    # A second tag, renamed by the admin (the console's only way to name one).
    tagged = _post(
        ombudsperson,
        case_url,
        f"{case_url}/triage",
        {"priority": "high", "org_category": "", "tags": [str(tag)], "new_tag": "zq plain"},
    )
    assert tagged.status_code == 302, tagged.text
    second = db.scalars(select(Tag.id).where(Tag.id != tag)).one()
    _saved(admin, f"{config}/tags/{second}", {"label": value["retag"]})

    management = app.test_client()
    login(management, portal.staff("manager", roles=(Role.MANAGEMENT,), queues=()))
    token_page = _post(
        management,
        "/staff/account",
        "/staff/account/api-tokens",
        {"name": value["token"], "days": "30"},
    )
    assert token_page.status_code == 200, token_page.text
    api_token = re.search(r'id="api-token">([^<]+)<', token_page.text)
    assert api_token is not None
    bearer = {"Authorization": f"Bearer {api_token.group(1).strip()}"}
    _release_a_quarter(db)  # counts the renamed harassment category
    quarter = str(INSIGHTS_QUARTER)
    attachment = db.scalars(select(Attachment.id).order_by(Attachment.id)).first()

    pages: dict[str, TestResponse] = {
        "reporter: start": app.test_client().get("/"),
        "reporter: the form": app.test_client().get("/report"),
        "reporter: the form (zh_CN)": app.test_client().get("/report", headers=ZH),
        "reporter: receipt": receipt_page,
        "reporter: follow-up log-in": app.test_client().get("/followup"),
        "reporter: follow-up": reporter.get("/followup/case"),
        "reporter: follow-up (zh_CN)": reporter.get("/followup/case", headers=ZH),
        "staff: log-in": app.test_client().get("/staff/login"),
        "staff: second step": second_step.get("/staff/login/code"),
        "staff: enrolment": newcomer.get(first.headers["Location"]),
        "staff: case": ombudsperson.get(case_url),
        "staff: case (zh_CN)": ombudsperson.get(case_url, headers=ZH),
        "staff: case, reopened": reopened,
        "staff: case list": ombudsperson.get("/staff/"),
        "staff: case list (zh_CN)": ombudsperson.get("/staff/", headers=ZH),
        "staff: account": ombudsperson.get("/staff/account"),
        "staff: account (zh_CN)": ombudsperson.get("/staff/account", headers=ZH),
        "staff: password": ombudsperson.get("/staff/account/password"),
        "admin: home": admin.get("/staff/admin/"),
        "admin: staff list": admin.get("/staff/admin/staff"),
        "admin: staff member": admin.get(f"/staff/admin/staff/{writer.id}"),
        "admin: colleague": admin.get(f"/staff/admin/staff/{colleague}"),
        "admin: account created": created,
        "admin: new account": admin.get("/staff/admin/staff/new"),
        "admin: password resets": admin.get("/staff/admin/password-resets"),
        "admin: reset": admin.get(f"/staff/admin/staff/{colleague}/reset"),
        "admin: regrants": admin.get("/staff/admin/regrants"),
        "admin: access requests": admin.get("/staff/admin/staff/requests"),
        "admin: configuration": admin.get(config),
        "admin: categories": admin.get(f"{config}/categories"),
        "admin: category": admin.get(other),
        "admin: sites": admin.get(f"{config}/sites"),
        "admin: site": admin.get(f"{config}/sites/{site}"),
        "admin: departments": admin.get(f"{config}/departments"),
        "admin: department": admin.get(f"{config}/departments/{department}"),
        "admin: statuses": admin.get(f"{config}/statuses"),
        "admin: status": admin.get(status),
        "admin: outcomes": admin.get(f"{config}/outcomes"),
        "admin: outcome": admin.get(outcome),
        "admin: queues": admin.get(f"{config}/queues"),
        "admin: queue": admin.get(f"{config}/queues/{general}"),
        "admin: tags": admin.get(f"{config}/tags"),
        "admin: tag": admin.get(f"{config}/tags/{tag}"),
        "admin: rules": admin.get(f"{config}/rules"),
        "admin: rule": admin.get(f"{config}/rules/{rule}"),
        "admin: policy": admin.get(f"{config}/policy"),
        "admin: routing test": admin.get("/staff/admin/routing-test"),
        # The sample is the keyword itself, so the page names the rule and the keyword hit.
        "admin: routing test result": _post(
            admin,
            "/staff/admin/routing-test",
            "/staff/admin/routing-test",
            {
                "category": str(_item_id(db, Category, "other")),
                "site": "",
                "department": "",
                "sample": value["keywords"],
            },
        ),
        "admin: taxonomy": admin.get("/staff/admin/taxonomy"),
        "admin: audit log": admin.get("/staff/admin/audit"),
        "admin: audit verify": admin.get("/staff/admin/audit/verify"),
        "management: account": management.get("/staff/account"),
        "management: insights": management.get("/insights/"),
        "management: year": management.get(f"/insights/{INSIGHTS_QUARTER.year}/"),
        "management: quarter": management.get(f"/insights/{quarter}/"),
        "management: quarter (zh_CN)": management.get(f"/insights/{quarter}/", headers=ZH),
    }
    outputs: dict[str, TestResponse] = {
        "admin: audit export": _post(admin, "/staff/admin/audit", "/staff/admin/audit/export", {}),
        "admin: taxonomy export": _post(
            admin, "/staff/admin/taxonomy", "/staff/admin/taxonomy/export", {}
        ),
        "management: category CSV": management.get(f"/insights/{quarter}/category.csv"),
        # No queue table since issue 13 (routing ties it to the category): the site table
        # carries a typed label instead.
        "management: site CSV": management.get(f"/insights/{quarter}/site.csv"),
        "management: API category": app.test_client().get(
            f"/api/v1/insights/{quarter}/category", headers=bearer
        ),
        "management: API quarter": app.test_client().get(
            f"/api/v1/insights/{quarter}", headers=bearer
        ),
        "management: API periods": app.test_client().get(
            "/api/v1/insights/periods", headers=bearer
        ),
        "staff: attachment": ombudsperson.get(f"{case_url}/attachments/{attachment}"),
    }
    for name, response in {**pages, **outputs}.items():
        assert response.status_code == 200, name
        response.get_data()  # read now: a streamed download holds its request open till closed
        response.close()
    return Swept(kind, pages, outputs)


#: Which planted values each page or download must show (as text, once unescaped or parsed):
#: the proof that it does render them, so that "no raw payload" is not vacuous. A page in
#: Chinese shows the Chinese texts where there are some, the English ones where not.
SHOWN: dict[str, tuple[str, ...]] = {
    "reporter: start": (),
    "reporter: follow-up log-in": (),
    "reporter: the form": (
        "staffname",
        "colleague",  # cannot be excluded from the general queue: named with it
        "category",
        "harassment",
        "site",
        "department",
        "queue",
        "qdesc",
    ),
    "reporter: the form (zh_CN)": (
        "staffname",
        "colleague",
        "zhcategory",
        "zhsite",
        "zhdepartment",
        "zhqueue",
        "zhqdesc",
    ),
    "reporter: receipt": (),
    "reporter: follow-up": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "category",
        "site",
        "department",
        "status",
    ),
    "reporter: follow-up (zh_CN)": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "zhcategory",
        "zhsite",
        "zhdepartment",
        "zhstatus",
    ),
    "staff: log-in": (),
    "staff: second step": (),
    "staff: enrolment": (),
    "staff: case": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "note",
        "reason",
        "hold",
        "tag",
        "retag",
        "staffname",
        "colleague",
        "category",
        "harassment",
        "queue",
        "site",
        "department",
        "status",
        "outcome",
    ),
    "staff: case (zh_CN)": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "note",
        "reason",
        "tag",
        "retag",
        "staffname",
        "colleague",
        "zhcategory",
        "zhqueue",
        "zhsite",
        "zhdepartment",
        "zhstatus",
        "zhoutcome",
    ),
    "staff: case, reopened": ("status", "reason", "tag"),  # the status also in a message
    # ... and who joined the writer's queues (four eyes): the colleague, in the general queue.
    "staff: case list": ("tag", "retag", "category", "queue", "status", "colleague"),
    "staff: case list (zh_CN)": ("tag", "retag", "zhcategory", "zhqueue", "zhstatus"),
    "staff: account": ("staffname", "queue"),
    "staff: account (zh_CN)": ("staffname", "zhqueue"),
    "staff: password": (),
    "admin: home": (),
    "admin: staff list": ("staffname", "colleague", "email", "queue"),
    "admin: staff member": ("staffname", "queue"),
    "admin: colleague": ("colleague", "email", "queue"),
    "admin: account created": ("colleague", "email"),
    "admin: new account": ("queue",),
    "admin: password resets": ("staffname", "colleague", "email"),
    "admin: reset": ("colleague", "email"),
    "admin: regrants": (),
    "admin: access requests": ("colleague", "email", "queue"),
    "admin: configuration": (),
    "admin: categories": ("category", "harassment", "catdesc"),
    "admin: category": ("category", "catdesc", "zhcategory", "zhcatdesc"),
    "admin: sites": ("site",),
    "admin: site": ("site", "zhsite"),
    "admin: departments": ("department",),
    "admin: department": ("department", "zhdepartment"),
    "admin: statuses": ("status",),
    "admin: status": ("status", "zhstatus"),
    "admin: outcomes": ("outcome",),
    "admin: outcome": ("outcome", "zhoutcome"),
    "admin: queues": ("queue", "qdesc"),
    "admin: queue": ("queue", "qdesc", "zhqueue", "zhqdesc"),
    "admin: tags": ("tag", "retag"),
    "admin: tag": ("tag",),
    "admin: rules": ("keywords", "category", "harassment", "queue", "site", "department"),
    "admin: rule": ("keywords", "category", "harassment", "queue", "site", "department"),
    "admin: policy": (),
    "admin: routing test": ("category", "harassment", "site", "department"),
    # The sample typed is the rule's keyword: the page names the rule, the hit and the people.
    "admin: routing test result": (
        "keywords",
        "category",
        "harassment",
        "queue",
        "site",
        "department",
        "staffname",
        "colleague",
    ),
    "admin: taxonomy": (),
    "admin: audit log": ("email",),  # names accounts by e-mail, and no content
    "admin: audit verify": (),
    "management: account": ("token",),
    "management: insights": (),
    "management: year": ("category", "harassment", "outcome"),
    "management: quarter": (
        "category",
        "harassment",
        "site",
        "department",
        "outcome",
    ),
    "management: quarter (zh_CN)": (
        "zhcategory",
        "zhsite",
        "zhdepartment",
        "zhoutcome",
    ),
    # downloads and API answers
    "admin: audit export": ("email",),
    "admin: taxonomy export": (
        "qdesc",
        "zhqdesc",
        "category",
        "harassment",
        "zhcategory",
        "catdesc",
        "zhcatdesc",
        "site",
        "zhsite",
        "department",
        "zhdepartment",
        "status",
        "zhstatus",
        "outcome",
        "zhoutcome",
        "keywords",
    ),
    "management: category CSV": ("category", "harassment"),
    "management: site CSV": ("site",),
    "management: API category": ("category", "harassment"),
    "management: API quarter": (),
    "management: API periods": (),
    "staff: attachment": (),
}
#: What each download or API answer is: never HTML, so a browser cannot run what it holds.
OUTPUT_TYPES = {
    "admin: audit export": "text/csv",
    "admin: taxonomy export": "application/toml",
    "management: category CSV": "text/csv",
    "management: site CSV": "text/csv",
    "management: API category": "application/json",
    "management: API quarter": "application/json",
    "management: API periods": "application/json",
    "staff: attachment": "text/plain",
}
#: GET routes the sweep does not open, and why.
NOT_SWEPT = {
    "static": "files of the repository",
    "language.switch": "a redirect",
    "reporter.leave": "a redirect (quick exit)",
    "api.openapi": "a fixed document",
    "api.kpis": "numbers only",
}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _csv_cells(response: TestResponse) -> list[str]:
    return [
        cell for row in csv.reader(io.StringIO(response.get_data(as_text=True))) for cell in row
    ]


def _texts(name: str, response: TestResponse) -> list[str]:
    """What a download holds, as its reader sees it: CSV cells (a leading ' that defuses a
    formula taken off), TOML and JSON strings."""
    kind = OUTPUT_TYPES[name]
    if kind == "text/csv":
        return [
            cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell
            for cell in _csv_cells(response)
        ]
    if kind == "application/toml":
        return list(_strings(tomllib.loads(response.get_data(as_text=True))))
    if kind == "application/json":
        return list(_strings(response.get_json()))
    return [response.get_data(as_text=True)]


def _endpoint(app: Flask, response: TestResponse) -> str:
    request = response.request
    adapter = app.url_map.bind("localhost")
    endpoint, _values = adapter.match(request.path, method=request.method)
    return str(endpoint)


def _one_charset(name: str, response: TestResponse) -> None:
    """A text type says its charset exactly once (a download said ``charset=utf-8`` twice)."""
    header = response.headers["Content-Type"]
    if (response.mimetype or "").startswith("text/"):
        assert header == f"{response.mimetype}; charset=utf-8", (name, header)
    else:
        assert header.lower().count("charset") <= 1, (name, header)


def _check_pages(xss: Swept) -> None:
    raw = RAW[xss.kind]
    payload = PAYLOADS[xss.kind]
    for name, response in xss.pages.items():
        page = response.text
        assert response.mimetype == "text/html", name
        _one_charset(name, response)
        if raw is not None:
            assert not raw.search(page), f"{name}: {xss.kind} payload rendered as markup"
        if xss.kind in ("script", "attribute"):
            assert payload not in page, name
        shown = html.unescape(page)
        missing = [field for field in SHOWN[name] if planted(field, xss.kind) not in shown]
        assert missing == [], f"{name} does not show {missing}"
        leaked = [
            field
            for field in (STAFF_ONLY if name.startswith("reporter:") else ())
            + (CASE_CONTENT if name.startswith(("admin:", "management:")) else ())
            if planted(field, xss.kind) in shown
        ]
        assert leaked == [], f"{name} shows {leaked}"
    if xss.kind == "template":
        assert "zq-description {{7*7}}" in xss.pages["staff: case"].text  # as typed
    # The two files the reporter sent, listed under their reduced names only.
    files = dict(re.findall(r'/attachments/([0-9a-f]+)">([^<]*)<', xss.pages["staff: case"].text))
    assert len(files) == len(FILE_MARKERS)
    assert all(re.fullmatch(r"[\w .()-]+\.txt", name) for name in files.values()), files


def _check_downloads(xss: Swept) -> None:
    """Not HTML (so a browser runs nothing in them), no cell a spreadsheet would run."""
    for name, response in xss.outputs.items():
        assert response.mimetype == OUTPUT_TYPES[name], name
        _one_charset(name, response)
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        if not name.startswith("management: API"):
            assert response.headers["Content-Disposition"].startswith("attachment;"), name
        if OUTPUT_TYPES[name] == "text/csv":
            formulas = [cell for cell in _csv_cells(response) if cell.startswith(FORMULA_START)]
            assert formulas == [], f"{name}: cells a spreadsheet would run: {formulas}"
        texts = _texts(name, response)
        missing = [field for field in SHOWN[name] if planted(field, xss.kind) not in texts]
        assert missing == [], f"{name} does not hold {missing}"
        leaked = [
            field
            for field in CASE_CONTENT
            if name.startswith(("admin:", "management:"))
            and any(planted(field, xss.kind) in text for text in texts)
        ]
        assert leaked == [], f"{name} holds {leaked}"


def test_typed_text_is_escaped_on_every_page_that_shows_it(xss: Swept) -> None:
    """Pages and downloads are checked in one test: planting everything is the slow part."""
    assert set(xss.pages) | set(xss.outputs) == set(SHOWN)
    _check_pages(xss)
    _check_downloads(xss)


#: What a staff member reads of a case: what the reporter wrote, what colleagues wrote, tags.
CASE_TEXT = (*CASE_CONTENT, "hold", "tag", "retag")


def _visible(text: str) -> str:
    """``text`` as a staff page shows it: every hidden character as its marker."""
    return "".join(f"⟦U+{ord(c):04X}⟧" if c in HIDDEN else c for c in text)


@pytest.mark.parametrize("xss", ["hidden"], indirect=True)
def test_hidden_characters_in_case_text_are_visible_to_staff(xss: Swept) -> None:
    """A right-to-left override or a zero-width character in case text would make a staff
    page read otherwise than it is written (``<RLO>gnp.exe`` reads "exe.png"). On
    every staff page that shows case text, each such character is a visible marker in a
    ``hidden-char`` span, and never the character itself; the reporter's pages and the
    downloads keep the text as written."""
    checked = 0
    for name, response in xss.pages.items():
        fields = [field for field in SHOWN[name] if field in CASE_TEXT]
        if not name.startswith("staff:") or not fields:
            continue
        text = html.unescape(re.sub(r"<[^>]*>", "", response.text))
        for field in fields:
            typed = planted(field, "hidden")
            assert typed not in text, f"{name} shows {field} with its hidden characters"
            assert _visible(typed) in text, f"{name} does not show {field} with markers"
            checked += 1
        assert re.search(
            r'<span class="hidden-char" title="RIGHT-TO-LEFT OVERRIDE">', response.text
        )
    assert checked > 20
    reporter = html.unescape(xss.pages["reporter: follow-up"].text)
    assert planted("description", "hidden") in reporter  # the reporter's own text, as written
    assert planted("note", "hidden") not in reporter


@pytest.mark.parametrize("xss", ["script"], indirect=True)  # the same pages for every payload
def test_the_sweep_opens_every_page_of_the_app(app: Flask, xss: Swept) -> None:
    """A page added later is in no list above: this fails until it is swept or said why not."""
    opened = {_endpoint(app, r) for r in (*xss.pages.values(), *xss.outputs.values())}
    pages = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set()) and rule.endpoint not in NOT_SWEPT
    }

    assert sorted(pages - opened) == []
    assert set(NOT_SWEPT) <= {rule.endpoint for rule in app.url_map.iter_rules()}


# --- the list of fields cannot go stale ----------------------------------------------------------


def _all_forms() -> list[type[PortalForm]]:
    """Every form class of the web layer that a view instantiates: the leaves of the
    PortalForm tree (a base such as ItemForm is only ever used through its subclasses)."""
    for module in pkgutil.walk_packages(portal.web.__path__, "portal.web."):
        importlib.import_module(module.name)
    found: list[type[PortalForm]] = []
    todo = [PortalForm]
    while todo:
        form = todo.pop()
        children = form.__subclasses__()
        todo.extend(children)
        if not children and form.__module__.startswith("portal."):
            found.append(form)
    return found


def _text_fields(form: type[PortalForm]) -> set[str]:
    """The fields of ``form`` a person can type into or name a file in."""
    return {
        name
        for name in dir(form)
        if isinstance(field := getattr(form, name), UnboundField)
        and issubclass(field.field_class, (StringField, FileField))
    }


def test_every_text_field_of_every_form_is_in_the_sweep() -> None:
    fields = {(form, name) for form in _all_forms() for name in _text_fields(form)}

    assert len(fields) > 40  # the enumeration finds the forms (and the translation fields)
    assert (reporter_forms.ReportForm, "description") in fields
    assert (admin_forms.CategoryForm, "label_zh_CN") in fields
    unlisted = sorted(
        f"{form.__module__}.{form.__name__}.{name}"
        for form, name in fields - STORED.keys() - NOT_STORED.keys()
    )
    assert unlisted == [], "add each to STORED (and plant it) or NOT_STORED (with the reason)"
    assert sorted(map(str, (STORED.keys() | NOT_STORED.keys()) - fields)) == []
    assert NOT_STORED[(admin_forms.ImportForm, "file")] == _TAXONOMY_FILE
    assert STORED.keys() & NOT_STORED.keys() == set()


def test_every_marker_is_planted_shown_and_unambiguous() -> None:
    shown = {field for fields in SHOWN.values() for field in fields}
    assert sorted(set(FIELDS) - shown - set(FILE_MARKERS)) == []
    assert shown <= set(FIELDS)
    # With the formula payload first, "... zq-queue" must not also match "... zq-queuedesc".
    assert [(a, b) for a in FIELDS for b in FIELDS if a != b and b.startswith(a)] == []


def test_a_code_field_refuses_every_payload() -> None:
    """The reason given for not planting in a code field: it keeps nothing but [a-z0-9_-]."""
    codes = [key for key, reason in NOT_STORED.items() if reason == _CODE]
    assert len(codes) == 5
    for kind in PAYLOADS:
        with pytest.raises(InvalidInput):
            configuration.clean_code(planted("code", kind))


#: The taxonomy file's texts, by table, and the console field that writes the same column (so
#: what the sweep plants through the console is what an import would store there).
TAXONOMY_TEXTS: dict[tuple[str, str], tuple[type[PortalForm], str] | str] = {
    ("queues", "slug"): _CODE,
    ("queues", "name"): (admin_forms.QueueForm, "name"),
    ("queues", "description"): (admin_forms.QueueForm, "description"),
    ("categories", "code"): _CODE,
    ("categories", "label"): (admin_forms.CategoryForm, "label"),
    ("categories", "description"): (admin_forms.CategoryForm, "description"),
    ("sites", "code"): _CODE,
    ("sites", "label"): (admin_forms.UnitForm, "label"),
    ("sites", "headcount"): _NUMBER,
    ("departments", "code"): _CODE,
    ("departments", "label"): (admin_forms.UnitForm, "label"),
    ("departments", "headcount"): _NUMBER,
    ("statuses", "code"): _CODE,
    ("statuses", "label"): (admin_forms.StatusForm, "label"),
    ("statuses", "kind"): "one of the four kinds",
    ("outcomes", "code"): _CODE,
    ("outcomes", "label"): (admin_forms.OutcomeForm, "label"),
    ("outcomes", "substantiated"): "true or false",
    ("outcomes", "retention_days"): _NUMBER,
    ("routing", "keywords"): (admin_forms.RuleForm, "keywords"),
    ("routing", "category"): "a category's code",
    ("routing", "site"): "a site's code",
    ("routing", "department"): "a department's code",
    ("routing", "queue"): "a queue's code",
    ("routing", "priority"): "one of the priorities",
}


def _taxonomy_keys() -> set[tuple[str, str]]:
    keys = set()
    for table, (_required, allowed) in taxonomy_export._TABLE_KEYS.items():
        keys |= {(table, key) for key in allowed}
        keys |= {
            (table, i18n.key(field, locale))
            for field in taxonomy_export._TRANSLATED[table]
            for locale in i18n.TRANSLATED_LOCALES
        }
    return keys | {("routing", key) for key in taxonomy.RULE_KEYS}


def _translated_form_field(table: str, key: str) -> tuple[type[PortalForm], str] | str:
    english = i18n.split_key(key, taxonomy_export._TRANSLATED.get(table, ()))
    assert english is not None, (table, key)
    written = TAXONOMY_TEXTS[(table, english[0])]
    assert not isinstance(written, str)
    return written[0], key


def test_every_text_of_the_taxonomy_file_is_in_the_sweep() -> None:
    keys = _taxonomy_keys()
    assert ("categories", "label_zh_CN") in keys and ("routing", "keywords") in keys
    for table, key in sorted(keys):
        written = TAXONOMY_TEXTS.get((table, key)) or _translated_form_field(table, key)
        assert isinstance(written, str) or written in STORED, (table, key)
    assert sorted(set(TAXONOMY_TEXTS) - keys) == []


def test_an_imported_taxonomy_keeps_every_text_exactly_as_typed(
    app: Flask, portal: Portal, db: Session
) -> None:
    """The taxonomy file writes the columns the console does, unchanged: so the pages swept
    above show an imported text as they show a typed one. Every text of the file, in every
    table, carries a payload of every kind."""
    kinds = sorted(PAYLOADS)
    data = taxonomy_export.export_data(db)
    data["routing"].append({"keywords": ["zq-keyword"], "queue": "general"})
    expected: list[object] = []
    for table, entries in data.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            for key in list(entry):
                written = TAXONOMY_TEXTS.get((table, key)) or _translated_form_field(table, key)
                if isinstance(written, str):
                    continue
                text = planted(f"{table}{len(expected)}", kinds[len(expected) % len(kinds)])
                entry[key] = [text] if key == "keywords" else text
                expected.append(entry[key])
    admin = app.test_client()
    login(admin, portal.staff("admin", roles=(Role.ADMIN,), queues=()))
    portal.staff("olga")

    imported = _post(
        admin,
        "/staff/admin/taxonomy",
        "/staff/admin/taxonomy/import",
        {"file": (io.BytesIO(taxonomy_export.dumps(data).encode()), "taxonomy.toml")},
    )
    exported = _post(admin, "/staff/admin/taxonomy", "/staff/admin/taxonomy/export", {})

    assert imported.status_code == 302, imported.text
    again = tomllib.loads(exported.get_data(as_text=True))
    kept = [
        entry[key]
        for entries in again.values()
        if isinstance(entries, list)
        for entry in entries
        for key in entry
        if "zq-" in str(entry[key])
    ]
    assert len(expected) > 30
    assert sorted(map(str, kept)) == sorted(map(str, expected))
    for page in ("/report", "/staff/admin/config/categories", "/staff/admin/config/rules"):
        for headers in ({}, ZH):
            client = admin if page.startswith("/staff") else app.test_client()
            shown = client.get(page, headers=headers).text
            assert "zq-" in shown, page
            assert not any(raw.search(shown) for raw in RAW.values() if raw), page


# --- typed text shown back ------------------------------------------------------------------------


@dataclass(frozen=True)
class Echo:
    """A request whose answer shows typed text back without storing it (a refused form keeps
    what was typed; a lost session keeps the unsent text). In ``data`` and ``url``, ``@name``
    is a planted value (``@name+N``: made N characters longer, past a limit)."""

    role: R
    method: str
    url: str
    data: dict[str, object]
    shown: tuple[str, ...]  # the markers the answer must show back
    status: int = 400


ECHOES = {
    "concern form without a category": Echo(
        R.ANONYMOUS,
        "POST",
        "/report",
        {
            "category": "",
            "description": "@description",
            "happened": "ongoing",
            "identity": "named",
            "contact_name": "@contact",
            "contact_details": "@details",
        },
        ("description", "contact", "details"),
    ),
    "follow-up message after the session ended": Echo(
        R.ANONYMOUS, "POST", "/followup/case", {"text": "@message"}, ("message",), 401
    ),
    "follow-up log-in with a wrong receipt": Echo(
        R.ANONYMOUS, "POST", "/followup", {"receipt": "@receipt"}, ()
    ),
    "receipt check": Echo(
        R.ANONYMOUS,
        "POST",
        "/report/receipt-check",
        {"typed": "@typed", "token": "@token"},
        ("typed",),
    ),
    "staff log-in refused": Echo(
        R.ANONYMOUS,
        "POST",
        "/staff/login",
        {"email": "@email", "password": "@password"},
        ("email",),
    ),
    "second step with a wrong code": Echo(
        R.AT_CODE, "POST", "/staff/login/code", {"code": "@code"}, ()
    ),
    "reply after the session ended": Echo(
        R.ANONYMOUS,
        "POST",
        "/staff/cases/{handle}/messages",
        {"text": "@reply", "visibility": "reporter"},
        ("reply",),
        401,
    ),
    "reopening reason after the session ended": Echo(
        R.ANONYMOUS,
        "POST",
        "/staff/cases/{handle}/status",
        {"status": "investigating", "reason": "@reason"},
        ("reason",),
        401,
    ),
    "reason for a case that is not closed": Echo(
        R.HOLDER,
        "POST",
        "/staff/cases/{handle}/status",
        {"status": "investigating", "reason": "@reason"},
        ("reason",),
    ),
    "tag name too long": Echo(
        R.HOLDER,
        "POST",
        "/staff/cases/{handle}/triage",
        {"priority": "normal", "org_category": "", "new_tag": "@tag+40"},
        ("tag+40",),
    ),
    "API token lifetime not a number": Echo(
        R.MANAGEMENT,
        "POST",
        "/staff/account/api-tokens",
        {"name": "@token", "days": "@days"},
        ("token", "days"),
    ),
    "account with a wrong e-mail": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/staff/new",
        {"email": "@address", "name": "@colleague", "roles": ["ombudsperson"]},
        ("address", "colleague"),
    ),
    "password reset with a wrong recovery key": Echo(
        R.ADMIN, "POST", "/staff/admin/staff/{staff}/reset", {"recovery_key": "@key"}, ()
    ),
    "queue without a name": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/config/queues",
        {"slug": "@slug", "name": "", "description": "@qdesc", "name_zh_CN": "@zhqueue"},
        ("slug", "qdesc", "zhqueue"),
    ),
    "category label too long": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/config/categories/{category}",
        {"label": "@category+200", "description": "@catdesc"},
        ("category+200", "catdesc"),
    ),
    "headcount not a number": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/config/sites",
        {"code": "@code", "label": "@site", "headcount": "@headcount"},
        ("code", "site", "headcount"),
    ),
    "tag renamed to a name too long": Echo(
        R.ADMIN, "POST", "/staff/admin/config/tags/{tag}", {"label": "@retag+40"}, ("retag+40",)
    ),
    "rule keyword too long": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/config/rules",
        {"keywords": "@keywords+100", "queue": "{general_queue_id}"},
        ("keywords+100",),
    ),
    "routing test without a category": Echo(
        R.ADMIN, "POST", "/staff/admin/routing-test", {"sample": "@sample"}, ("sample",)
    ),
    "audit log filtered by something not a handle": Echo(
        R.ADMIN, "GET", "/staff/admin/audit?case=@case", {}, ("case",)
    ),
    "audit export filtered by something not a handle": Echo(
        R.ADMIN, "POST", "/staff/admin/audit/export", {"case": "@case"}, ("case",)
    ),
    "a page's own address, in its language links": Echo(
        R.ANONYMOUS, "GET", "/report?x=@address", {}, (), 200
    ),
    "audit check against something not an anchor": Echo(
        R.ADMIN, "GET", "/staff/admin/audit/verify?expect=@expect", {}, ("expect",)
    ),
    "taxonomy file naming an unknown fallback queue": Echo(
        R.ADMIN,
        "POST",
        "/staff/admin/taxonomy/import",
        {"file": "fallback_queue = '@fallback'\n"},
        ("fallback",),
    ),
}
_TYPED = re.compile(r"@([a-z]+)(?:\+(\d+))?")


def _typed(text: str, kind: str, quote: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        typed = planted(match.group(1), kind) + " x" * int(match.group(2) or 0)
        return urllib.parse.quote(typed) if quote else typed

    return _TYPED.sub(value, text)


def _echo_body(echo: Echo, kind: str, world: World) -> dict[str, object]:
    body: dict[str, object] = {}
    for name, value in echo.data.items():
        if isinstance(value, str):
            value = _typed(value.format(**world.ids), kind)
        if name == "file":
            value = (io.BytesIO(str(value).encode()), "taxonomy.toml")
        body[name] = value
    return body


@pytest.mark.parametrize("kind", ["script", "attribute", "template"])
def test_typed_text_shown_back_is_escaped(world: World, kind: str) -> None:
    raw = RAW[kind]
    assert raw is not None
    world.ids |= {"handle": world.handle_a, "staff": world.ids["staff_id"]}
    world.ids["category"] = world.ids["item_id"]
    world.ids["tag"] = world.ids["tag_id"]

    failures = []
    for name, echo in ECHOES.items():
        client = client_as(world, echo.role)
        url = _typed(echo.url.format(**world.ids), kind, quote=True)
        if echo.method == "GET":
            response = client.get(url)
        else:
            token = csrf_token(client.get("/followup").text)
            body = {"csrf_token": token, **_echo_body(echo, kind, world)}
            response = client.post(url, data=body)
        page = html.unescape(response.text)
        if (response.status_code, response.mimetype) != (echo.status, "text/html"):
            failures.append(f"{name}: {response.status_code} {response.mimetype}")
        # A {{7*7}} shown literally is what is wanted; the other payloads only ever escaped.
        literal = kind != "template" and PAYLOADS[kind] in response.text
        if raw.search(response.text) or literal:
            failures.append(f"{name}: rendered as markup")
        missing = [marker for marker in echo.shown if _typed(f"@{marker}", kind) not in page]
        if missing:
            failures.append(f"{name}: does not show {missing} back")

    assert failures == []


# --- direct object references ----------------------------------------------------------------


def _messages(app: Flask) -> list[tuple[str, str]]:
    with app.extensions["portal"].sessions() as session:
        return [(m.case_id, m.author) for m in session.scalars(select(Message))]


def test_a_reporter_session_cannot_reach_another_case_by_any_parameter(world: World) -> None:
    client = client_as(world, R.REPORTER_A)
    other = {"case": world.handle_b, "handle": world.handle_b, "case_id": world.ids["period"]}
    with world.app.extensions["portal"].sessions() as session:
        case_b_id = session.scalars(select(Case.id).where(Case.handle == world.handle_b)).one()
    other["case_id"] = case_b_id
    query = "&".join(f"{key}={value}" for key, value in other.items())

    page = client.get(f"/followup/case?{query}")
    token = csrf_token(page.text)
    posted = client.post(
        f"/followup/case?{query}",
        data={
            "csrf_token": token,
            "text": "Meant for case B.",
            **other,
            "receipt": world.receipt_b,
        },
    )

    assert page.status_code == 200 and A_TEXT in page.text and B_TEXT not in page.text
    assert posted.status_code == 302
    assert [case for case, _author in _messages(world.app)] == [world.case_a_id]
    shown = client.get("/followup/case").text
    assert "Meant for case B." in shown and B_TEXT not in shown


def _hr_member(world: World) -> FlaskClient:
    with world.app.extensions["portal"].sessions() as session:
        member = session.get_one(StaffUser, world.hr_member_id)
    client = world.app.test_client()
    login(client, member)
    return client


def test_an_ombudsperson_of_another_queue_cannot_open_download_triage_or_reply(
    world: World,
) -> None:
    client = _hr_member(world)
    case_url = f"/staff/cases/{world.handle_a}"
    token = csrf_token(client.get("/staff/account").text)
    freeze_clock(world.app, [client])
    before = dump(world.app)

    answers = {
        "open": client.get(case_url),
        "download": client.get(f"{case_url}/attachments/{world.ids['attachment_id']}"),
        "triage": client.post(
            f"{case_url}/triage",
            data={"csrf_token": token, **form_for("/staff/cases/<handle>/triage", world)},
        ),
        "reply": client.post(
            f"{case_url}/messages",
            data={"csrf_token": token, "text": "A reply from hr.", "visibility": "reporter"},
        ),
    }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)
    for response in answers.values():
        assert A_TEXT not in response.text and world.handle_a not in response.text
    assert differences(before, dump(world.app)) == []


def test_an_attachment_of_one_case_cannot_be_fetched_through_another_cases_handle(
    world: World, portal: Portal
) -> None:
    secret = b"Only case C holds this file."
    case_c = portal.submit(
        description="Case C, with its own file.",
        attachments=[PreparedFile("c.txt", "text/plain", secret, cleaned=True)],
    )
    with world.app.extensions["portal"].sessions() as session:
        c_file = session.scalars(
            select(Attachment.id).where(Attachment.case_id == case_c.case_id)
        ).one()
    client = client_as(world, R.HOLDER)  # holds A, B and C

    own = client.get(f"/staff/cases/{case_c.handle}/attachments/{c_file}")
    crossed = client.get(f"/staff/cases/{world.handle_a}/attachments/{c_file}")
    crossed_b = client.get(f"/staff/cases/{world.handle_b}/attachments/{c_file}")

    assert own.status_code == 200 and own.data == secret
    assert crossed.status_code == crossed_b.status_code == 404
    assert secret not in crossed.data + crossed_b.data


def _get_pages_of(role: R) -> list[str]:
    return [
        rule
        for (rule, method), row in MATRIX.items()
        if method == "GET" and row[role].status == 200
    ]


@pytest.mark.parametrize("role", [R.ADMIN, R.MANAGEMENT])
def test_admin_and_management_see_no_case_content_on_any_page(world: World, role: R) -> None:
    """The matrix checks case A's description and handle on every route while nothing has
    happened to A; here the holder has written a reply and an internal note first (so the
    audit log has events about A), and every page the role may open, and the audit export,
    is searched for any case's content."""
    holder = client_as(world, R.HOLDER)
    case_url = f"/staff/cases/{world.handle_a}"
    written = {"reporter": "Only the holder reads this reply.", "internal": "An internal note."}
    for visibility, text in written.items():
        token = csrf_token(holder.get(case_url).text)
        holder.post(
            f"{case_url}/messages",
            data={"csrf_token": token, "text": text, "visibility": visibility},
        )
    client = client_as(world, role)
    secrets = [A_TEXT, B_TEXT, *written.values()]
    if role == R.MANAGEMENT:  # the audit log names cases by handle, for the admin's review
        secrets += [world.handle_a, world.handle_b]

    seen = {rule: client.get(url_for_rule(rule, world)) for rule in _get_pages_of(role)}
    if role == R.ADMIN:
        token = csrf_token(client.get("/staff/admin/audit").text)
        seen["audit export"] = client.post("/staff/admin/audit/export", data={"csrf_token": token})

    assert len(seen) > 3
    for name, response in seen.items():
        assert response.status_code == 200, name
        leaked = [s for s in secrets if s in response.get_data(as_text=True)]
        assert leaked == [], f"{name} shows {leaked}"


# --- oversized and malformed requests ----------------------------------------------------------


def test_a_body_over_the_limit_gets_the_413_page_on_every_route_and_stores_nothing(
    world: World,
) -> None:
    """test_bad_input.py checks the concern form; here every state-changing route, each sent
    by its rightful role with a valid token."""
    app = world.app
    # The same check as at the production cap (werkzeug reads the cap per request), at a cap
    # small enough that 40-odd requests do not each carry 50 MB.
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    too_long = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    routes = state_changing_routes(app)
    clients = {role: client_as(world, role) for role in {rightful_role(*key) for key in routes}}
    token = {role: csrf_token(client.get("/followup").text) for role, client in clients.items()}
    freeze_clock(app, clients.values())
    before = dump(app)

    answers = {}
    for rule, method in routes:
        role = rightful_role(rule, method)
        body = {**form_for(rule, world), "csrf_token": token[role], "padding": too_long}
        response = clients[role].open(url_for_rule(rule, world), method=method, data=body)
        answers[f"{method} {rule}"] = (response.status_code, "Too much was sent" in response.text)

    assert {key: answer for key, answer in answers.items() if answer != (413, True)} == {}
    assert differences(before, dump(app)) == []


@pytest.fixture
def reporter(client: FlaskClient, portal: Portal) -> FlaskClient:
    portal.staff("olga")
    open_followup(client, portal.submit().receipt)
    return client


MALFORMED = {
    "multipart without a boundary": ("multipart/form-data", b"description=x"),
    "multipart with a broken body": (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="text"\r\n\r\nunterminated',
    ),
    "invalid UTF-8": ("application/x-www-form-urlencoded", b"text=%FF%FE%C3%28&description=%80"),
    "raw invalid UTF-8": ("application/x-www-form-urlencoded", b"text=\xff\xfe\xc3\x28"),
    "NUL bytes": ("application/x-www-form-urlencoded", b"text=a%00b&description=%00"),
    "JSON": ("application/json", b'{"text": "hello", "description": "hello"}'),
    "plain text": ("text/plain", b"text=hello"),
    "XML": ("application/xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"),
    "no content type": ("", b"text=hello"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize("url", ["/report", "/followup", "/followup/case", "/staff/login"])
def test_a_malformed_body_is_refused_not_crashed_and_stores_nothing(
    reporter: FlaskClient, app: Flask, url: str, kind: str
) -> None:
    content_type, body = MALFORMED[kind]
    token = csrf_token(reporter.get("/followup/case").text)
    before = dump(app)
    query = f"?csrf_token={token}"  # a token where a form would not carry it: still refused

    response = reporter.post(url + query, data=body, content_type=content_type or None)

    assert response.status_code in (400, 401, 413, 415), response.status_code
    assert differences(before, dump(app)) == []


@pytest.mark.parametrize(
    "url",
    [
        "/" + "x" * 20_000,
        "/report?" + "x=1&" * 5_000,
        "/followup/case/" + "%00" * 1_000,
        "/staff/cases/" + "A" * 10_000 + "/attachments/" + "1" * 10_000,
        "/staff/admin/staff/99999999999999999999999999",
        "/staff/admin/config/queues/-1",
        "/staff/admin/config/tags/9223372036854775808",
        "/staff/account/sessions/" + "é" * 500 + "/revoke",
        "/insights/99999/",
        "/insights/2025-Q9/",
        "/api/v1/insights/" + "Q" * 5000,
        "/language/" + "x" * 5000,
    ],
    ids=lambda url: url[:40],
)
def test_a_very_long_or_odd_url_never_gets_a_500(app: Flask, portal: Portal, url: str) -> None:
    portal.staff("olga")  # so that the concern form is open
    admin = app.test_client()
    login(admin, portal.staff("admin", roles=(Role.ADMIN,), queues=()))
    token = csrf_token(admin.get("/staff/account").text)

    answers = [admin.get(url), admin.post(url, data={"csrf_token": token})]

    assert [r.status_code for r in answers if r.status_code >= 500] == []


def _odd_bodies(rule: str, world: World, token: str) -> dict[str, tuple[str, bytes]]:
    """Bodies no browser form sends, each as (content type, bytes): JSON (broken, a number, a
    list, a string, a token of the wrong type, a right token in JSON), plain text, multipart
    with unknown fields and a file where none is asked, and the route's own valid form with
    every key repeated (the first value valid, the second not)."""
    valid = {key: str(value) for key, value in form_for(rule, world).items()}
    repeated = [("csrf_token", token), ("csrf_token", "x")]
    for key, value in valid.items():
        repeated += [(key, value), (key, "\u202e" + "9" * 300)]
    boundary = "sweepboundary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="no-such-field"\r\n\r\nx\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"; '
        f'filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nnot a field value\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    return {
        "JSON broken": ("application/json", b"{"),
        "JSON number": ("application/json", b"1"),
        "JSON list": ("application/json", b"[]"),
        "JSON string": ("application/json", b'"x"'),
        "JSON token of the wrong type": ("application/json", b'{"csrf_token": 5}'),
        "JSON with the right token": (
            "application/json",
            json.dumps({"csrf_token": token, "description": {"a": 1}}).encode(),
        ),
        "plain text": ("text/plain", f"csrf_token={token}".encode()),
        "multipart with wrong fields": (f"multipart/form-data; boundary={boundary}", multipart),
        "urlencoded with repeated keys": (
            "application/x-www-form-urlencoded",
            urllib.parse.urlencode(repeated).encode(),
        ),
    }


def test_no_body_of_any_content_type_gets_a_5xx_on_any_post_route_as_any_role(
    world: World,
) -> None:
    """Every state-changing route of the URL map, as every role of the matrix, with every odd
    body: never a 500 (issue 13, finding 9: a JSON body crashed the form routes)."""
    app = world.app
    routes = state_changing_routes(app)
    # Every client logs in first: what one role's odd posts do (failed log-ins counted
    # against an account) must not stop the next role from logging in.
    clients = {role: client_as(world, role) for role in R}
    crashed = []
    for role, client in clients.items():
        token = csrf_token(client.get("/followup").text)
        for rule, method in routes:
            for kind, (content_type, body) in _odd_bodies(rule, world, token).items():
                response = client.open(
                    url_for_rule(rule, world), method=method, data=body, content_type=content_type
                )
                if response.status_code >= 500:
                    crashed.append(
                        f"{method} {rule} as {role.value}, {kind}: {response.status_code}"
                    )
    assert crashed == []
