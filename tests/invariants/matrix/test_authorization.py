"""Authorization matrix: every route of ``app.url_map`` × every role × GET/POST.

The table below is the specification. Each cell names what one role gets from one route, so a
change of policy shows up as a change of the table in review, and a route added without a row
fails ``test_every_route_is_in_the_matrix``. POSTs carry a valid CSRF token taken from a GET page
of the same client, so that every cell is about authorization, never about CSRF.

Case A sits in the "general" queue. Three ombudspersons are members of that queue: the holder
and a second holder received A's key; the other was excluded by A's reporter at submission and
must learn nothing about A, not even that its handle exists. A fourth ombudsperson sits only in
the "hr" queue: the holder may grant them A, or transfer A to their queue (after which the
holder, not a member of "hr", no longer holds A). The second holder is there so that the holder
may recuse without leaving A undecryptable.

Three more roles are staff whose log-in is not finished: the holder between the password and
the code, a new account before it has enrolled its second factor, and an account that must
choose a new password after an admin reset. Each reaches only its own step's page and log-out:
on every other staff route a GET is sent to its step's page and a POST gets 401, exactly as if
there were no session. The holder half-logged-in therefore learns nothing about case A either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import io
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.models import (
    AccessChange,
    Attachment,
    Case,
    CaseAccess,
    Category,
    Queue,
    Role,
    RoutingRule,
    StaffSession,
    StaffUser,
    Tag,
)
from portal.services.accounts import api_tokens
from portal.services.accounts import sessions as staff_sessions
from portal.services.attachments.store import PreparedFile
from portal.services.casework import access_requests
from portal.services.insights import store as insights_store
from portal.services.insights.calendar import Quarter
from portal.settings import PROJECT_ROOT, Settings
from portal.web.admin.config_views import LISTS
from portal.web.reporter import receipt_check
from tests.support import insights_helpers
from tests.support.factories import PASSWORD, Portal
from tests.support.pages import csrf_token, login, login_password, next_code, open_followup
from tests.support.smtp_server import app_mailbox

A_TEXT = "Case A: the night-shift supervisor signs safety checks nobody made."
B_TEXT = "Case B: the canteen fridge has been broken for a month."


class R(enum.StrEnum):
    """The roles of the matrix."""

    ANONYMOUS = "anonymous"
    REPORTER_A = "reporter of case A"
    REPORTER_B = "reporter of case B"
    HOLDER = "ombudsperson holding A"
    EXCLUDED = "ombudsperson excluded from A"
    ADMIN = "admin"
    MANAGEMENT = "management"
    AT_CODE = "holder of A between password and code"
    AT_ENROL = "new account before enrolling its second factor"
    AT_NEW_PASSWORD = "account that must choose a new password"


#: Staff roles with a finished log-in, and the unfinished ones with the page each may reach.
FULL_STAFF = (R.HOLDER, R.EXCLUDED, R.ADMIN, R.MANAGEMENT)
STEP_PAGES = {
    R.AT_CODE: "/staff/login/code",
    R.AT_ENROL: "/staff/login/enrol",
    R.AT_NEW_PASSWORD: "/staff/account/password",
}
NEW_PASSWORD = "a new password for the matrix"


#: Roles that may read case A. For every other role, A's text and handle must never appear in
#: any response, whatever the status code.
MAY_READ_A = frozenset({R.REPORTER_A, R.HOLDER})


@dataclass(frozen=True)
class Expect:
    status: int
    location: str | None = None  # path (and query) of the redirect target, for a redirect

    def __str__(self) -> str:
        return f"{self.status} → {self.location}" if self.location else str(self.status)


# Named outcomes. {handle} in a location stands for case A's handle.
PAGE = Expect(200)
LOGIN_REDIRECT = Expect(302, "/staff/login")
UNAUTHENTICATED = Expect(401)
FORBIDDEN = Expect(403)
NOT_FOUND = Expect(404)
EXPIRED_FOLLOWUP = Expect(401)  # the reporter page "your follow-up session has ended"
TO_FOLLOWUP_CASE = Expect(302, "/followup/case")
MESSAGE_SENT = Expect(302, "/followup/case?sent=1")
TO_START = Expect(302, "/")
# The quick exit: cookies cleared, then off to the configured neutral page (a full URL).
QUICK_EXIT = Expect(303, Settings().quick_exit_url)
TO_RECEIPT = Expect(303, "/report/receipt")  # a concern sent; the receipt in a cookie
RECEIPT_GONE = Expect(410)  # the receipt page without the cookie: shown once already
RECEIPT_MATCHES = Expect(200)  # the practice check, typed receipt = the page's receipt
TO_CASE_LIST = Expect(302, "/staff/")
LOGGED_OUT = Expect(302, "/staff/login")
CASE_UPDATED = Expect(302, "/staff/cases/{handle}")
ACCESS_ENDED = Expect(302, "/staff/")  # recused, or transferred to a queue one is not in
TO_CODE = Expect(302, "/staff/login/code")
TO_ACCOUNT = Expect(302, "/staff/account")
TO_ACCOUNT_TOKENS = Expect(302, "/staff/account")  # the #api-tokens fragment is not compared
TO_INSIGHTS = Expect(302, "/insights/")  # where a finished management log-in lands
STEP_UNFINISHED = Expect(401)  # "Finish logging in first": nothing was saved


def everyone(outcome: Expect) -> dict[R, Expect]:
    return dict.fromkeys(R, outcome)


def staff_route(
    *,
    holder: Expect,
    excluded: Expect,
    admin: Expect,
    management: Expect,
    method: str,
    unfinished: dict[R, Expect] | None = None,
) -> dict[R, Expect]:
    """A route behind the staff guard: without a staff session, GET goes to the log-in page and
    POST gets 401 (deny by default). An unfinished log-in is sent to its own step's page (GET)
    or gets 401 (POST), unless ``unfinished`` says otherwise for the route of its step."""
    outsider = LOGIN_REDIRECT if method == "GET" else UNAUTHENTICATED
    steps = {
        role: Expect(302, page) if method == "GET" else STEP_UNFINISHED
        for role, page in STEP_PAGES.items()
    }
    return {
        R.ANONYMOUS: outsider,
        R.REPORTER_A: outsider,
        R.REPORTER_B: outsider,
        R.HOLDER: holder,
        R.EXCLUDED: excluded,
        R.ADMIN: admin,
        R.MANAGEMENT: management,
        **steps,
        **(unfinished or {}),
    }


def admin_only(method: str, success: Expect) -> dict[R, Expect]:
    return staff_route(
        holder=FORBIDDEN, excluded=FORBIDDEN, admin=success, management=FORBIDDEN, method=method
    )


def log_in_step(method: str, role: R, success: Expect) -> dict[R, Expect]:
    """A log-in step's page: its own unfinished role gets it; a finished log-in is sent home."""
    return staff_route(
        holder=TO_CASE_LIST,
        excluded=TO_CASE_LIST,
        admin=TO_ACCOUNT,
        management=TO_INSIGHTS,
        method=method,
        unfinished={role: success},
    )


def case_route(method: str, success: Expect) -> dict[R, Expect]:
    """A route on case A: only the holder; the excluded member gets the same 404 as for a case
    that does not exist; roles without case permissions get 403."""
    return staff_route(
        holder=success, excluded=NOT_FOUND, admin=FORBIDDEN, management=FORBIDDEN, method=method
    )


def admin_route(method: str, success: Expect, ombudsperson: Expect = FORBIDDEN) -> dict[R, Expect]:
    """A page of the admin console: admins only (ombudspersons too for the routing test)."""
    return staff_route(
        holder=ombudsperson,
        excluded=ombudsperson,
        admin=success,
        management=FORBIDDEN,
        method=method,
    )


def insights_route(success: Expect = PAGE) -> dict[R, Expect]:
    """A management insights page (/insights/, behind the staff log-in and its stages):
    management only; every other staff role gets 403, reporters are outsiders."""
    return staff_route(
        holder=FORBIDDEN, excluded=FORBIDDEN, admin=FORBIDDEN, management=success, method="GET"
    )


def admin_pages(*rules: str) -> dict[tuple[str, str], dict[R, Expect]]:
    return {(rule, "GET"): admin_route("GET", PAGE) for rule in rules}


# {staff_id} and the other ids in a location stand for the ids in World.ids.
TO_STAFF_USER = Expect(302, "/staff/admin/staff/{staff_id}")
TO_QUEUES = Expect(302, "/staff/admin/config/queues")
TO_ACCESS_REQUESTS = Expect(302, "/staff/admin/staff/requests")
TO_CATEGORIES = Expect(302, "/staff/admin/config/categories")
TO_TAGS = Expect(302, "/staff/admin/config/tags")
TO_RULES = Expect(302, "/staff/admin/config/rules")
TO_POLICY = Expect(302, "/staff/admin/config/policy")
TO_TAXONOMY = Expect(302, "/staff/admin/taxonomy")
ADMIN_LIST = f"/staff/admin/config/<{LISTS}>"

#: (rule, method) → role → expected outcome.
MATRIX: dict[tuple[str, str], dict[R, Expect]] = {
    ("/", "GET"): everyone(PAGE),
    ("/report", "GET"): everyone(PAGE),
    ("/report", "POST"): everyone(TO_RECEIPT),  # post/redirect/get to the receipt page
    # Without the hand-over cookie of a submission just made: "shown once, not again".
    ("/report/receipt", "GET"): everyone(RECEIPT_GONE),
    ("/followup", "GET"): everyone(PAGE),
    ("/followup", "POST"): everyone(TO_FOLLOWUP_CASE),  # posts case B's receipt
    ("/followup/case", "GET"): {
        **everyone(EXPIRED_FOLLOWUP),
        R.REPORTER_A: PAGE,
        R.REPORTER_B: PAGE,
    },
    ("/followup/case", "POST"): {
        **everyone(EXPIRED_FOLLOWUP),
        R.REPORTER_A: MESSAGE_SENT,
        R.REPORTER_B: MESSAGE_SENT,
    },
    ("/followup/leave", "POST"): everyone(TO_START),
    # Reporter safety: open to everyone; neither reads nor writes anything of a case.
    ("/leave", "GET"): everyone(QUICK_EXIT),
    # The language switch: <locale> is zh_CN; without ?next= it goes back to the front page.
    ("/language/<locale>", "GET"): everyone(Expect(303, "/")),
    ("/report/receipt-check", "POST"): everyone(RECEIPT_MATCHES),
    ("/staff/login", "GET"): everyone(PAGE),
    # Posts the holder's credentials: the password step leads to the code step.
    ("/staff/login", "POST"): everyone(TO_CODE),
    ("/staff/login/code", "GET"): log_in_step("GET", R.AT_CODE, PAGE),
    # Posts a current code of the holder; the holder's log-in then lands on the case list.
    ("/staff/login/code", "POST"): log_in_step("POST", R.AT_CODE, TO_CASE_LIST),
    ("/staff/login/enrol", "GET"): log_in_step("GET", R.AT_ENROL, PAGE),
    # Posts a current code of the secret the enrolment page shows (an ombudsperson: cases).
    ("/staff/login/enrol", "POST"): log_in_step("POST", R.AT_ENROL, TO_CASE_LIST),
    # Log-out is open to every stage, so an unfinished log-in can be abandoned.
    ("/staff/logout", "POST"): staff_route(
        holder=LOGGED_OUT,
        excluded=LOGGED_OUT,
        admin=LOGGED_OUT,
        management=LOGGED_OUT,
        method="POST",
        unfinished=dict.fromkeys(STEP_PAGES, LOGGED_OUT),
    ),
    ("/staff/", "GET"): staff_route(
        holder=PAGE, excluded=PAGE, admin=FORBIDDEN, management=FORBIDDEN, method="GET"
    ),
    ("/staff/account", "GET"): staff_route(
        holder=PAGE, excluded=PAGE, admin=PAGE, management=PAGE, method="GET"
    ),
    # Every finished log-in may change its password; so may (must) the forced step.
    ("/staff/account/password", "GET"): staff_route(
        holder=PAGE,
        excluded=PAGE,
        admin=PAGE,
        management=PAGE,
        method="GET",
        unfinished={R.AT_NEW_PASSWORD: PAGE},
    ),
    # A change ends every session: back to the log-in page; the forced change shows the new
    # recovery key instead (200).
    ("/staff/account/password", "POST"): staff_route(
        holder=LOGGED_OUT,
        excluded=LOGGED_OUT,
        admin=LOGGED_OUT,
        management=LOGGED_OUT,
        method="POST",
        unfinished={R.AT_NEW_PASSWORD: PAGE},
    ),
    # <session_id> is another session of the holder: only the holder may end it; for anyone
    # else it does not exist.
    ("/staff/account/sessions/<session_id>/revoke", "POST"): staff_route(
        holder=TO_ACCOUNT,
        excluded=NOT_FOUND,
        admin=NOT_FOUND,
        management=NOT_FOUND,
        method="POST",
    ),
    ("/staff/account/sessions/revoke-others", "POST"): staff_route(
        holder=TO_ACCOUNT,
        excluded=TO_ACCOUNT,
        admin=TO_ACCOUNT,
        management=TO_ACCOUNT,
        method="POST",
    ),
    # Insights API tokens: management only. <token_id> is a token of the management account;
    # creating shows the new token once (200).
    ("/staff/account/api-tokens", "POST"): staff_route(
        holder=FORBIDDEN, excluded=FORBIDDEN, admin=FORBIDDEN, management=PAGE, method="POST"
    ),
    ("/staff/account/api-tokens/<int:token_id>/revoke", "POST"): staff_route(
        holder=FORBIDDEN,
        excluded=FORBIDDEN,
        admin=FORBIDDEN,
        management=TO_ACCOUNT_TOKENS,
        method="POST",
    ),
    # The JSON API reads a bearer token only, never a cookie: without one, 401 for everyone.
    ("/api/v1/insights/periods", "GET"): everyone(UNAUTHENTICATED),
    ("/api/v1/insights/<period>", "GET"): everyone(UNAUTHENTICATED),
    ("/api/v1/insights/<period>/kpis", "GET"): everyone(UNAUTHENTICATED),
    ("/api/v1/insights/<period>/<view>", "GET"): everyone(UNAUTHENTICATED),
    # The OpenAPI document holds shapes, not figures: open, so a tool can learn to authenticate.
    ("/api/v1/openapi.json", "GET"): everyone(PAGE),
    ("/staff/cases/<handle>", "GET"): case_route("GET", PAGE),
    ("/staff/cases/<handle>/acknowledge", "POST"): case_route("POST", CASE_UPDATED),
    ("/staff/cases/<handle>/status", "POST"): case_route("POST", CASE_UPDATED),
    ("/staff/cases/<handle>/messages", "POST"): case_route("POST", CASE_UPDATED),
    ("/staff/cases/<handle>/recuse", "POST"): case_route("POST", ACCESS_ENDED),
    ("/staff/cases/<handle>/grant", "POST"): case_route("POST", CASE_UPDATED),
    # A colleague who is not waiting for a re-grant: a plain grant (fingerprint not needed).
    ("/staff/cases/<handle>/regrant", "POST"): case_route("POST", CASE_UPDATED),
    ("/staff/cases/<handle>/transfer", "POST"): case_route("POST", ACCESS_ENDED),
    ("/staff/cases/<handle>/triage", "POST"): case_route("POST", CASE_UPDATED),
    # Legal hold: placed with a reason; lifting a case that is not on hold (A is not) says so
    # on the case page, like lifting one that is (tests/services/casework/test_hold.py).
    ("/staff/cases/<handle>/hold", "POST"): case_route("POST", CASE_UPDATED),
    ("/staff/cases/<handle>/hold/lift", "POST"): case_route("POST", CASE_UPDATED),
    # <attachment_id> is a file sent with case A: only a holder of A's key downloads it (200).
    ("/staff/cases/<handle>/attachments/<attachment_id>", "GET"): case_route("GET", PAGE),
    ("/staff/admin/", "GET"): staff_route(
        holder=FORBIDDEN, excluded=FORBIDDEN, admin=PAGE, management=FORBIDDEN, method="GET"
    ),
    ("/staff/admin/password-resets", "GET"): admin_only("GET", PAGE),
    # <staff_id> is the management account; the POST mails the one-time password to them
    # and shows the admin that it did (200).
    ("/staff/admin/staff/<int:staff_id>/reset", "GET"): admin_only("GET", PAGE),
    ("/staff/admin/staff/<int:staff_id>/reset", "POST"): admin_only("POST", PAGE),
    ("/staff/admin/regrants", "GET"): admin_only("GET", PAGE),
    # The admin console: staff accounts.
    **admin_pages(
        "/staff/admin/staff", "/staff/admin/staff/new", "/staff/admin/staff/<int:staff_id>"
    ),
    # Mails the one-time password to the new address; shows the admin that it did.
    ("/staff/admin/staff/new", "POST"): admin_route("POST", PAGE),
    ("/staff/admin/staff/<int:staff_id>/roles", "POST"): admin_route("POST", TO_STAFF_USER),
    ("/staff/admin/staff/<int:staff_id>/queues", "POST"): admin_route("POST", TO_STAFF_USER),
    ("/staff/admin/staff/<int:staff_id>/disable", "POST"): admin_route("POST", TO_STAFF_USER),
    ("/staff/admin/staff/<int:staff_id>/enable", "POST"): admin_route("POST", TO_STAFF_USER),
    # Four eyes: the waiting access requests; the matrix approves one another admin asked for.
    ("/staff/admin/staff/requests", "GET"): admin_route("GET", PAGE),
    ("/staff/admin/staff/requests", "POST"): admin_route("POST", TO_ACCESS_REQUESTS),
    # Configuration.
    **admin_pages(
        "/staff/admin/config",
        "/staff/admin/config/queues",
        "/staff/admin/config/queues/<int:queue_id>",
        ADMIN_LIST,
        ADMIN_LIST + "/<int:item_id>",
        "/staff/admin/config/tags",
        "/staff/admin/config/tags/<int:tag_id>",
        "/staff/admin/config/rules",
        "/staff/admin/config/rules/<int:rule_id>",
        "/staff/admin/config/policy",
    ),
    ("/staff/admin/config/queues", "POST"): admin_route("POST", TO_QUEUES),
    ("/staff/admin/config/queues/<int:queue_id>", "POST"): admin_route("POST", TO_QUEUES),
    ("/staff/admin/config/queues/<int:queue_id>/fallback", "POST"): admin_route("POST", TO_QUEUES),
    (ADMIN_LIST, "POST"): admin_route("POST", TO_CATEGORIES),
    (ADMIN_LIST + "/<int:item_id>", "POST"): admin_route("POST", TO_CATEGORIES),
    (ADMIN_LIST + "/<int:item_id>/move", "POST"): admin_route("POST", TO_CATEGORIES),
    (ADMIN_LIST + "/<int:item_id>/active", "POST"): admin_route("POST", TO_CATEGORIES),
    ("/staff/admin/config/tags/<int:tag_id>", "POST"): admin_route("POST", TO_TAGS),
    ("/staff/admin/config/tags/<int:tag_id>/active", "POST"): admin_route("POST", TO_TAGS),
    ("/staff/admin/config/rules", "POST"): admin_route("POST", TO_RULES),
    ("/staff/admin/config/rules/<int:rule_id>", "POST"): admin_route("POST", TO_RULES),
    ("/staff/admin/config/rules/<int:rule_id>/move", "POST"): admin_route("POST", TO_RULES),
    ("/staff/admin/config/rules/<int:rule_id>/delete", "POST"): admin_route("POST", TO_RULES),
    ("/staff/admin/config/policy", "POST"): admin_route("POST", TO_POLICY),
    # The routing test: ombudspersons too.
    ("/staff/admin/routing-test", "GET"): admin_route("GET", PAGE, ombudsperson=PAGE),
    ("/staff/admin/routing-test", "POST"): admin_route("POST", PAGE, ombudsperson=PAGE),
    # Taxonomy as code.
    **admin_pages("/staff/admin/taxonomy"),
    ("/staff/admin/taxonomy/export", "POST"): admin_route("POST", PAGE),  # the file
    ("/staff/admin/taxonomy/import", "POST"): admin_route("POST", TO_TAXONOMY),
    # The audit log.
    **admin_pages("/staff/admin/audit", "/staff/admin/audit/verify"),
    ("/staff/admin/audit/export", "POST"): admin_route("POST", PAGE),  # the CSV
    # Management insights. <period> is the released quarter of World.ids, <year> its year and
    # <view> a view name ("kpis" for the key figures).
    ("/insights/", "GET"): insights_route(),
    ("/insights/<int(fixed_digits=4):year>/", "GET"): insights_route(),
    ("/insights/<period>/", "GET"): insights_route(),
    ("/insights/<period>/<view>.csv", "GET"): insights_route(),  # the CSV file
}

METHODS = ("GET", "POST")
SKIPPED_ENDPOINTS = frozenset({"static"})


@dataclass
class World:
    app: Flask
    handle_a: str
    handle_b: str
    receipt_a: str
    receipt_b: str
    case_a_id: str
    staff: dict[R, StaffUser]
    hr_member_id: int  # an ombudsperson in "hr" only: grantee of A, or its holder once moved
    unfinished: dict[R, StaffUser]
    holder_other_session: str  # public id of a second session of the holder
    # Ids for the admin console's URLs: the management account, the "hr" queue, the first
    # category, a tag, the first routing rule; and the insights' released quarter, year, view.
    ids: dict[str, str] = field(default_factory=dict)


def make_world(app: Flask, portal: Portal) -> World:
    """The cases and staff of the matrix (also used by the other sweeps of this folder)."""
    holder = portal.staff("holder")
    excluded = portal.staff("excluded")
    portal.staff("second")  # also holds A, so that the holder may recuse
    hr_member = portal.staff("hrmember", queues=("hr",))
    admin = portal.staff("admin", roles=(Role.ADMIN,), queues=())
    management = portal.staff("management", roles=(Role.MANAGEMENT,), queues=())
    # "other" routes to the general queue, where both ombudspersons sit.
    case_a = portal.submit(
        category_code="other",
        description=A_TEXT,
        excluded_staff_ids=(excluded.id,),
        attachments=[PreparedFile("evidence.txt", "text/plain", A_TEXT.encode(), cleaned=True)],
    )
    case_b = portal.submit(category_code="other", description=B_TEXT)
    assert case_a.queue_slug == case_b.queue_slug == "general"
    users = {R.HOLDER: holder, R.EXCLUDED: excluded, R.ADMIN: admin, R.MANAGEMENT: management}
    newcomer = portal.staff("newcomer", queues=(), totp_secret=None)
    renewing = portal.staff("renewing", queues=())
    renewing.must_change_password = True
    staff_sessions.start_session(
        portal.session, holder, portal.private_key(holder), dt.datetime.now(dt.UTC)
    )
    portal.session.commit()
    other_session = portal.session.scalars(
        select(StaffSession.public_id).where(StaffSession.staff_id == holder.id)
    ).one()
    db = portal.session
    token = api_tokens.create(
        db, portal.settings, management, "matrix", 30, dt.datetime.now(dt.UTC)
    )
    tag = Tag(label="legal review")
    db.add(tag)
    db.commit()
    # Four eyes: another admin asked for the custodian role for the management account; the
    # matrix's admin may approve it.
    asker = portal.staff("asker", roles=(Role.ADMIN,), queues=())
    waiting = access_requests.ask(
        db,
        management,
        AccessChange.ROLE,
        actor=asker,
        now=dt.datetime.now(dt.UTC),
        role=Role.CUSTODIAN,
    )
    db.commit()
    ids = {
        "staff_id": management.id,
        "queue_id": db.scalars(select(Queue.id).where(Queue.slug == "hr")).one(),
        "item_id": db.scalars(select(Category.id).where(Category.code == "harassment")).one(),
        "tag_id": tag.id,
        "rule_id": db.scalars(select(RoutingRule.id).where(RoutingRule.position == 1)).one(),
        "token_id": token.id,
        "request_id": waiting.id,
        "general_queue_id": db.scalars(select(Queue.id).where(Queue.slug == "general")).one(),
        "period": str(INSIGHTS_QUARTER),
        "year": INSIGHTS_QUARTER.year,
        "view": "category",
        "attachment_id": db.scalars(
            select(Attachment.id).where(Attachment.case_id == case_a.case_id)
        ).one(),
    }
    _release_a_quarter(db)
    return World(
        app=app,
        handle_a=case_a.handle,
        handle_b=case_b.handle,
        receipt_a=case_a.receipt,
        receipt_b=case_b.receipt,
        case_a_id=case_a.case_id,
        staff=users,
        hr_member_id=hr_member.id,
        unfinished={R.AT_CODE: holder, R.AT_ENROL: newcomer, R.AT_NEW_PASSWORD: renewing},
        holder_other_session=other_session,
        ids={name: str(value) for name, value in ids.items()},
    )


INSIGHTS_QUARTER = Quarter(2025, 1)


def _release_a_quarter(db: Session) -> None:
    """Enough concerns in one past quarter for a published release. Direct rows with dummy
    key material (nobody reads them; only their dates and categories count), which is much
    cheaper than the real intake for every cell of the matrix."""
    category = db.scalars(select(Category).where(Category.code == "harassment")).one()
    queue = db.scalars(select(Queue.id).where(Queue.slug == "hr")).one()
    day = INSIGHTS_QUARTER.start + dt.timedelta(days=10)
    for n in range(6):
        db.add(
            Case(
                id=f"matrix-insights-{n}",
                handle=f"MTRX-{n:04d}",
                sort_key=n,
                queue_id=queue,
                category_id=category.id,
                is_anonymous=True,
                status="new",
                received_on=day,
                acknowledge_due_on=day + dt.timedelta(days=7),
                feedback_due_on=day + dt.timedelta(days=90),
                lookup_id=bytes([n]) * 32,
                reporter_salt=b"salt",
                reporter_kdf="dummy",
                reporter_public_key=b"public",
                reporter_sealed_key=b"sealed",
                report_ciphertext=b"ciphertext",
            )
        )
    db.flush()
    insights_store.refresh(db, INSIGHTS_QUARTER.end + dt.timedelta(days=20), insights_helpers.KEY)
    db.commit()


def client_as(world: World, role: R) -> FlaskClient:
    client = world.app.test_client()
    if role == R.REPORTER_A:
        open_followup(client, world.receipt_a)
    elif role == R.REPORTER_B:
        open_followup(client, world.receipt_b)
    elif role in world.staff:
        login(client, world.staff[role])
    elif role == R.AT_NEW_PASSWORD:
        assert login(client, world.unfinished[role]) == STEP_PAGES[role]
    elif role in world.unfinished:
        assert login_password(client, world.unfinished[role]) == STEP_PAGES[role]
    return client


def form_for(rule: str, world: World) -> dict[str, object]:
    """A valid body for each POST route, so that only authorization decides the outcome."""
    queue = world.ids["general_queue_id"]
    bodies: dict[str, dict[str, object]] = {
        "/report": {
            "category": "other",
            "description": "A concern sent during the authorization test.",
            "happened": "ongoing",
            "identity": "anonymous",
            "site": "",
            "department": "",
        },
        "/followup": {"receipt": world.receipt_b},
        "/report/receipt-check": receipt_check_form(world),
        "/followup/case": {"text": "A message sent during the authorization test."},
        "/staff/login": {"email": world.staff[R.HOLDER].email, "password": PASSWORD},
        "/staff/account/password": {
            "current": PASSWORD,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
        "/staff/cases/<handle>/status": {"status": "investigating"},
        "/staff/cases/<handle>/triage": {
            "priority": "high",
            "reporter_at_risk": "y",
            "org_category": "",
            "new_tag": "matrix",
        },
        "/staff/cases/<handle>/messages": {
            "text": "A reply sent during the authorization test.",
            "visibility": "reporter",
        },
        "/staff/cases/<handle>/recuse": {"confirm": "y"},
        "/staff/cases/<handle>/hold": {"hold_reason": "A hold placed during the matrix test."},
        "/staff/cases/<handle>/grant": {"colleague": str(world.hr_member_id)},
        "/staff/cases/<handle>/regrant": {"colleague": str(world.hr_member_id), "fingerprint": ""},
        "/staff/cases/<handle>/transfer": {"queue": "hr"},
        "/staff/admin/staff/new": {
            "email": "new.colleague@example.org",
            "name": "New Colleague",
            "roles": ["ombudsperson"],
            "queues": ["general"],
        },
        "/staff/admin/staff/<int:staff_id>/roles": {"roles": ["management", "custodian"]},
        "/staff/admin/staff/<int:staff_id>/queues": {"queues": ["general"]},
        "/staff/admin/staff/requests": {
            "request_id": world.ids["request_id"],
            "decision": "approve",
        },
        "/staff/admin/config/queues": {"slug": "legal", "name": "Legal"},
        "/staff/admin/config/queues/<int:queue_id>": {"name": "People team"},
        ADMIN_LIST: {"code": "wellbeing", "label": "Wellbeing"},
        ADMIN_LIST + "/<int:item_id>": {"label": "Harassment or bullying"},
        ADMIN_LIST + "/<int:item_id>/move": {"direction": "down"},
        ADMIN_LIST + "/<int:item_id>/active": {"active": "yes"},
        "/staff/admin/config/tags/<int:tag_id>": {"label": "Legal review"},
        "/staff/admin/config/tags/<int:tag_id>/active": {"active": "no"},
        "/staff/admin/config/rules": {"keywords": "overtime", "queue": queue},
        "/staff/admin/config/rules/<int:rule_id>": {"queue": queue},
        "/staff/admin/config/rules/<int:rule_id>/move": {"direction": "down"},
        "/staff/admin/config/policy": {
            "acknowledge_days": "6",
            "feedback_months": "3",
            "due_soon_days": "2",
            "anonymity_threshold": "5",
            "insights_min_headcount": "20",
            "signal_threshold": "5",
            "retention_days": "730",
            "retention_warning_days": "30",
        },
        "/staff/account/api-tokens": {"name": "Matrix BI", "days": "30"},
        "/staff/admin/routing-test": {
            "category": world.ids["item_id"],
            "sample": "A sample concern sent during the authorization test.",
        },
        "/staff/admin/taxonomy/import": {
            "file": (io.BytesIO(TAXONOMY_FILE.read_bytes()), "taxonomy.toml")
        },
    }
    return bodies.get(rule, {})


def receipt_check_form(world: World) -> dict[str, object]:
    """What the receipt page of case B would post back: its token and B's receipt typed."""
    with world.app.app_context():
        token = receipt_check.token_for(world.receipt_b)
    return {"token": token, "typed": world.receipt_b.lower()}


def live_fields(client: FlaskClient, rule: str, world: World) -> dict[str, str]:
    """Fields only known at request time: a fresh second-factor code for the code step, and a
    code of the secret the enrolment page shows this client (if it shows one)."""
    if rule == "/staff/login/code":
        return {"code": next_code(world.app, world.staff[R.HOLDER])}
    if rule == "/staff/login/enrol":
        shown = re.search(r'id="totp-secret">([^<]+)<', client.get(rule).text)
        if shown is None:
            return {"code": "000000"}
        secret = crypto.normalise_totp_secret(shown.group(1))
        now = world.app.extensions["portal"].clock()
        return {"code": crypto.totp_code(secret, crypto.totp_step(now))}
    return {}


TAXONOMY_FILE = PROJECT_ROOT / "config" / "taxonomy.toml"


def url_for_rule(rule: str, world: World) -> str:
    url = rule.replace("<handle>", world.handle_a)
    url = url.replace("<session_id>", world.holder_other_session)
    url = url.replace("<locale>", "zh_CN")
    url = url.replace("<attachment_id>", world.ids["attachment_id"])
    url = url.replace(f"<{LISTS}>", "categories")
    url = url.replace("<int(fixed_digits=4):year>", world.ids["year"])
    url = re.sub(r"<(period|view)>", lambda m: world.ids[m.group(1)], url)
    return re.sub(r"<int:([a-z_]+)>", lambda m: world.ids[m.group(1)], url)


def send(client: FlaskClient, method: str, url: str, form: dict[str, object]) -> TestResponse:
    if method == "GET":
        return client.get(url)
    token = csrf_token(client.get("/followup").text)
    return client.post(url, data={"csrf_token": token, **form})


def redirect_target(response: TestResponse) -> str | None:
    if response.location is None:
        return None
    parts = urlsplit(response.location)
    if parts.netloc:  # off-site (the quick exit): the whole address matters
        return response.location
    return parts.path + (f"?{parts.query}" if parts.query else "")


CELLS = [
    pytest.param(rule, method, role, expected, id=f"{method} {rule} as {role.value}")
    for (rule, method), row in MATRIX.items()
    for role, expected in row.items()
]


@pytest.mark.parametrize(("rule", "method", "role", "expected"), CELLS)
def test_route_answers_role_as_the_matrix_says(
    world: World, rule: str, method: str, role: R, expected: Expect
) -> None:
    client = client_as(world, role)
    form = {**form_for(rule, world), **live_fields(client, rule, world)}

    # A reset mails its one-time password (never shown to the admin): give it a mail server.
    mails = method == "POST" and (rule.endswith("/reset") or rule == "/staff/admin/staff/new")
    with app_mailbox(client.application) if mails else contextlib.nullcontext():
        response = send(client, method, url_for_rule(rule, world), form)

    got = Expect(response.status_code, redirect_target(response) if expected.location else None)
    wanted = Expect(
        expected.status,
        expected.location and expected.location.format(handle=world.handle_a, **world.ids),
    )
    assert got == wanted, f"{method} {rule} as {role.value}: expected {wanted}, got {got}"
    if role not in MAY_READ_A:
        assert A_TEXT not in response.text
        assert world.handle_a not in response.text
        assert world.handle_a not in (response.location or "")


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    served = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in SKIPPED_ENDPOINTS
        for method in METHODS
        if method in (rule.methods or ())
    }
    missing = sorted(served - MATRIX.keys())
    stale = sorted(MATRIX.keys() - served)
    assert not missing, f"routes with no row in MATRIX: {missing}"
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"


def test_every_row_of_the_matrix_names_every_role() -> None:
    incomplete = {key: sorted(set(R) - row.keys()) for key, row in MATRIX.items()}
    assert {key: roles for key, roles in incomplete.items() if roles} == {}


def test_only_known_url_arguments(app: Flask) -> None:
    # url_for_rule fills in these; a new converter needs a value chosen for it there.
    arguments = {
        argument
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in SKIPPED_ENDPOINTS
        for argument in rule.arguments
    }
    assert arguments <= {
        "handle",
        "locale",
        "session_id",
        "attachment_id",
        "kind",
        "staff_id",
        "queue_id",
        "item_id",
        "tag_id",
        "rule_id",
        "token_id",
        "period",
        "year",
        "view",
    }


def test_staff_routes_deny_by_default(app: Flask) -> None:
    """Every staff route other than the log-in page turns away a visitor without a session."""
    staff_rules = [
        (rule, method)
        for rule, method in MATRIX
        if rule.startswith("/staff/") and rule != "/staff/login"
    ]
    assert staff_rules
    for key in staff_rules:
        row = MATRIX[key]
        outsider = LOGIN_REDIRECT if key[1] == "GET" else UNAUTHENTICATED
        assert row[R.ANONYMOUS] == outsider, key


STAFF_POSTS = [rule for rule, method in MATRIX if method == "POST" and rule.startswith("/staff/")]


@pytest.mark.parametrize("role", [R.ANONYMOUS, R.REPORTER_B, R.EXCLUDED, R.ADMIN, R.AT_CODE])
@pytest.mark.parametrize("rule", STAFF_POSTS)
def test_staff_post_without_csrf_token_is_refused_not_crashed(
    world: World, rule: str, role: R
) -> None:
    """The CSRF check runs before the staff guard; its failure must not let a request into a
    view (or crash it) for a role the matrix turns away."""
    client = client_as(world, role)

    response = client.post(url_for_rule(rule, world), data=form_for(rule, world))

    assert response.status_code in {400, 401, 403, 404}
    assert A_TEXT not in response.text
    assert world.handle_a not in response.text


@pytest.mark.parametrize("cookie", ["forged", "forged.AAAA", ".", "é.é"])
def test_a_forged_staff_cookie_counts_as_no_session(world: World, cookie: str) -> None:
    client = world.app.test_client()
    client.set_cookie("portal_staff", cookie, path="/staff")
    token = csrf_token(client.get("/followup").text)

    listing = client.get("/staff/")
    posted = client.post(f"/staff/cases/{world.handle_a}/acknowledge", data={"csrf_token": token})

    assert (listing.status_code, redirect_target(listing)) == (302, "/staff/login")
    assert posted.status_code == 401


def test_excluded_ombudsperson_holds_no_key_for_case_a(world: World, db: Session) -> None:
    holders = set(
        db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == world.case_a_id))
    )

    assert world.staff[R.EXCLUDED].id not in holders
    assert world.staff[R.HOLDER].id in holders and len(holders) == 2  # holder and second


def test_excluded_ombudsperson_lists_case_b_but_not_case_a(world: World) -> None:
    client = client_as(world, R.EXCLUDED)

    listing = client.get("/staff/")

    assert listing.status_code == 200
    assert world.handle_b in listing.text  # the list works for this user ...
    assert world.handle_a not in listing.text  # ... and A is not on it


def test_excluded_ombudsperson_gets_the_same_404_as_for_a_made_up_handle(world: World) -> None:
    client = client_as(world, R.EXCLUDED)

    real = client.get(f"/staff/cases/{world.handle_a}")
    made_up = client.get("/staff/cases/XXXX-0000")

    assert real.status_code == made_up.status_code == 404
    assert real.text == made_up.text


def test_reporter_of_b_sees_b_and_never_a(world: World) -> None:
    client = client_as(world, R.REPORTER_B)

    page = client.get("/followup/case")

    assert page.status_code == 200
    assert B_TEXT in page.text
    assert A_TEXT not in page.text


def test_holder_reads_case_a(world: World) -> None:
    client = client_as(world, R.HOLDER)

    page = client.get(f"/staff/cases/{world.handle_a}")

    assert page.status_code == 200
    assert A_TEXT in page.text


@pytest.mark.parametrize("role", [R.ADMIN, R.MANAGEMENT])
def test_admin_and_management_cannot_list_or_open_cases(world: World, role: R) -> None:
    client = client_as(world, role)

    listing = client.get("/staff/")
    case_a = client.get(f"/staff/cases/{world.handle_a}")

    assert (listing.status_code, case_a.status_code) == (403, 403)
    assert A_TEXT not in listing.text + case_a.text
    assert world.handle_b not in listing.text
