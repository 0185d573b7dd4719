"""A sweep of the web attack surface: CSRF on every state-changing route, stored XSS and
template injection in every field people type, direct object references across cases and
queues, and oversized or malformed requests.

The routes, roles and request bodies come from tests/test_authorization.py (its MATRIX lists
every route and which role may use it; its ``world`` holds two cases, A with an attachment, and
the staff around them), so a route added to the app is swept here without a change to this
file. What that matrix already proves (each role's status code on each route, a forged staff
cookie, a missing token on staff routes not crashing) is not repeated: this file looks at what a
refused request leaves in the database and the audit log, and at what a page renders.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Iterable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.db import Base
from portal.models import (
    Attachment,
    AuditEvent,
    Case,
    Category,
    Message,
    OrgUnit,
    Queue,
    Role,
    StaffUser,
    Tag,
)
from portal.services import staff as staff_service
from portal.services.attachments import PreparedFile
from tests.conftest import (
    PASSWORD,
    TOTP_SECRET,
    Portal,
    csrf_token,
    login,
    open_followup,
    receipt_of,
    receipt_page_after,
    report_form,
)
from tests.test_authorization import (
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
    make_world,
    url_for_rule,
)

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


@pytest.fixture
def world(app: Flask, portal: Portal) -> World:
    return make_world(app, portal)


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
    bodies: dict[tuple[str, str], dict[str, object]] = {}
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
    for rule, method in routes:
        role = rightful_role(rule, method)
        body = {**form_for(rule, world), **bodies[(rule, method)]}
        if forgery != "no token":
            body["csrf_token"] = foreign
        response = clients[role].open(url_for_rule(rule, world), method=method, data=body)
        after = dump(app)
        if response.status_code != 400 and (rule, method) not in CSRF_NOT_NEEDED:
            failures.append(f"{method} {rule} as {role.value}: {response.status_code}")
        if differences(before, after):
            failures.append(f"{method} {rule} as {role.value} changed {differences(before, after)}")
            before = after
        if response.status_code == 400:
            assert A_TEXT not in response.text or role in (R.REPORTER_A, R.HOLDER)

    assert failures == []
    assert audit_count(app) == audited


# --- stored XSS and template injection ----------------------------------------------------------

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "url": "javascript:alert(1)",
    "template": "{{7*7}}",
}
#: What must never be in the HTML, whatever page shows the payload.
RAW = {
    "script": re.compile(r"<script>alert\(1\)"),
    "attribute": re.compile(r"\"><img|<img src=x"),
    "url": re.compile(r"(?:href|src|action|formaction|data)\s*=\s*[\"']?\s*javascript:", re.I),
    # Every planted value starts with a marker: "zq-<field> {{7*7}}" must not become "... 49".
    "template": re.compile(r"zq-[a-z]+ 49\b"),
}
FIELDS = (
    "description",
    "contact",  # the named reporter's name
    "details",  # and how to reach them
    "message",  # the reporter's follow-up message
    "file",  # the name of a file the reporter sent
    "reply",
    "note",
    "hold",  # the reason for a legal hold (kept as an internal note)
    "tag",
    "staffname",  # a staff member's display name
    "category",
    "harassment",  # the category the insights release counts
    "queue",
    "site",
    "department",
    "token",  # a management API token's name
)


def planted(field: str, payload: str) -> str:
    return f"zq-{field} {payload}"


def _post(client: FlaskClient, page: str, url: str, data: dict[str, object]) -> TestResponse:
    token = csrf_token(client.get(page).text)
    return client.post(url, data={"csrf_token": token, **data})


def _rename(admin: FlaskClient, url: str, field: str, value: str) -> None:
    response = _post(admin, url, url, {field: value})
    assert response.status_code == 302, response.text


def _item_id(db: Session, model: type[Category] | type[OrgUnit], code: str) -> int:
    return db.scalars(select(model.id).where(model.code == code)).one()


@pytest.fixture(params=sorted(PAYLOADS))
def xss(request: pytest.FixtureRequest, app: Flask, portal: Portal, db: Session) -> dict[str, str]:
    """Every field filled with one payload through the real forms; returns the pages that show
    them, rendered, by name."""
    payload = PAYLOADS[request.param]
    value = {field: planted(field, payload) for field in FIELDS}
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
    staff_service.assign_totp_secret(db, writer, TOTP_SECRET)
    db.commit()
    admin = app.test_client()
    login(admin, portal.staff("admin", roles=(Role.ADMIN,), queues=()))
    site = db.scalars(select(OrgUnit).where(OrgUnit.kind == "site")).first()
    department = db.scalars(select(OrgUnit).where(OrgUnit.kind == "department")).first()
    assert site is not None and department is not None
    general = db.scalars(select(Queue.id).where(Queue.slug == "general")).one()
    for url, field, typed in (
        (f"/staff/admin/config/categories/{_item_id(db, Category, 'other')}", "label", "category"),
        (
            f"/staff/admin/config/categories/{_item_id(db, Category, 'harassment')}",
            "label",
            "harassment",
        ),
        (f"/staff/admin/config/sites/{site.id}", "label", "site"),
        (f"/staff/admin/config/departments/{department.id}", "label", "department"),
        (f"/staff/admin/config/queues/{general}", "name", "queue"),
    ):
        _rename(admin, url, field, value[typed])

    reporter = app.test_client()
    posted = _post(
        reporter,
        "/report",
        "/report",
        report_form(
            category="other",
            site=site.code,
            department=department.code,
            identity="named",
            contact_name=value["contact"],
            contact_details=value["details"],
            description=value["description"],
            files=[(io.BytesIO(b"plain notes"), f"{value['file']}.txt")],
        ),
    )
    receipt = receipt_of(receipt_page_after(reporter, posted).text)
    open_followup(reporter, receipt)
    sent = _post(reporter, "/followup/case", "/followup/case", {"text": value["message"]})
    assert sent.status_code == 302, sent.text
    handle = db.scalars(select(Case.handle)).one()

    ombudsperson = app.test_client()
    login(ombudsperson, writer)
    case_url = f"/staff/cases/{handle}"
    for url, data in (
        (f"{case_url}/messages", {"text": value["reply"], "visibility": "reporter"}),
        (f"{case_url}/messages", {"text": value["note"], "visibility": "internal"}),
        (f"{case_url}/triage", {"priority": "high", "org_category": "", "new_tag": value["tag"]}),
        (f"{case_url}/hold", {"hold_reason": value["hold"]}),
    ):
        response = _post(ombudsperson, case_url, url, data)
        assert response.status_code == 302, response.text
    tag = db.scalars(select(Tag.id)).one()

    management = app.test_client()
    login(management, portal.staff("manager", roles=(Role.MANAGEMENT,), queues=()))
    created = _post(
        management,
        "/staff/account",
        "/staff/account/api-tokens",
        {"name": value["token"], "days": "30"},
    )
    assert created.status_code == 200, created.text
    _release_a_quarter(db)  # counts the renamed harassment category

    pages = {
        "reporter: follow-up": reporter.get("/followup/case"),
        "reporter: the form": app.test_client().get("/report"),
        "staff: case": ombudsperson.get(case_url),
        "staff: case list": ombudsperson.get("/staff/"),
        "staff: account": ombudsperson.get("/staff/account"),
        "admin: staff list": admin.get("/staff/admin/staff"),
        "admin: staff member": admin.get(f"/staff/admin/staff/{writer.id}"),
        "admin: password resets": admin.get("/staff/admin/password-resets"),
        "admin: categories": admin.get("/staff/admin/config/categories"),
        "admin: category": admin.get(
            f"/staff/admin/config/categories/{_item_id(db, Category, 'other')}"
        ),
        "admin: sites": admin.get("/staff/admin/config/sites"),
        "admin: departments": admin.get("/staff/admin/config/departments"),
        "admin: queues": admin.get("/staff/admin/config/queues"),
        "admin: queue": admin.get(f"/staff/admin/config/queues/{general}"),
        "admin: tags": admin.get("/staff/admin/config/tags"),
        "admin: tag": admin.get(f"/staff/admin/config/tags/{tag}"),
        "admin: rules": admin.get("/staff/admin/config/rules"),
        "admin: routing test": admin.get("/staff/admin/routing-test"),
        "admin: audit log": admin.get("/staff/admin/audit"),
        "management: account": management.get("/staff/account"),
        "management: insights": management.get("/insights/"),
        "management: quarter": management.get(f"/insights/{INSIGHTS_QUARTER}/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
    return {"payload": request.param, **{name: r.text for name, r in pages.items()}}


#: Which planted values each page must show (unescaped, as text): the proof that the page does
#: render them, so that "no raw payload" is not vacuous. The name of a file the reporter sent is
#: in no list: it is reduced to letters, digits and ``-_.()`` before it is stored
#: (test_sanitize.py), so the payload cannot reach a page in any form.
SHOWN = {
    "reporter: follow-up": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "category",
        "site",
        "department",
    ),
    "reporter: the form": ("staffname", "category", "harassment", "site", "department"),
    "staff: case": (
        "description",
        "contact",
        "details",
        "message",
        "reply",
        "note",
        "hold",
        "tag",
        "staffname",
        "category",
        "queue",
        "site",
        "department",
    ),
    "staff: case list": ("tag", "category", "queue"),
    "staff: account": ("staffname", "queue"),
    "admin: staff list": ("staffname", "queue"),
    "admin: staff member": ("staffname", "queue"),
    "admin: password resets": ("staffname",),
    "admin: categories": ("category", "harassment"),
    "admin: category": ("category",),
    "admin: sites": ("site",),
    "admin: departments": ("department",),
    "admin: queues": ("queue",),
    "admin: queue": ("queue",),
    "admin: tags": ("tag",),
    "admin: tag": ("tag",),
    "admin: rules": ("category", "harassment", "queue", "site", "department"),
    "admin: routing test": ("category", "harassment", "site", "department"),
    "admin: audit log": (),  # names no content; checked for raw markup all the same
    "management: account": ("token",),
    "management: insights": (),
    "management: quarter": ("category", "harassment", "queue"),
}


def test_typed_text_is_escaped_on_every_page_that_shows_it(xss: dict[str, str]) -> None:
    kind = xss["payload"]
    payload = PAYLOADS[kind]
    assert set(xss) - {"payload"} == set(SHOWN)

    for name, fields in SHOWN.items():
        page = xss[name]
        assert not RAW[kind].search(page), f"{name}: {kind} payload rendered as markup"
        if kind in ("script", "attribute"):
            assert payload not in page, name
        shown = html.unescape(page)
        missing = [field for field in fields if planted(field, payload) not in shown]
        assert missing == [], f"{name} does not show {missing}"
    if kind == "template":
        assert "zq-description {{7*7}}" in xss["staff: case"]  # literally, not evaluated


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
