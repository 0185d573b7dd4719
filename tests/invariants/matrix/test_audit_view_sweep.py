"""Every answer that carries case plaintext leaves a view in the audit log (DESIGN.md invariant
6; issue 13, finding 5: a 400 answer to an invalid form showed the whole decrypted case page and
recorded nothing).

A sweep derived from ``app.url_map``: every route outside the reporter's side (staff, admin,
insights, API), for every staff role of the authorization matrix
(tests/invariants/matrix/test_authorization.py, whose world and request bodies it reuses; the API
also with management's bearer token, which must be answered 200), and for every kind of request that
can produce an answer: a GET; a POST with the valid body of the matrix, without its CSRF token, with
a token and nothing else, and, on routes that take a case reference, with each field in turn
emptied, set to a value that is not offered, and made too long. After each answer, if its body holds
any case's plaintext (each case is seeded with its own markers: report, reporter message, reply,
internal note, attachment name and content, contact details), the audit log must have gained, during
that very request, a view of that case by that actor, and no answer records the same view twice. The
answer's status code does not matter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from portal.models import AuditEvent, Case, Visibility
from portal.services.accounts import api_tokens
from portal.services.attachments.store import PreparedFile
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.reporting import followup
from tests.invariants.matrix.test_authorization import (
    A_TEXT,
    B_TEXT,
    FULL_STAFF,
    MATRIX,
    STEP_PAGES,
    R,
    World,
    client_as,
    form_for,
    live_fields,
    make_world,
    url_for_rule,
)
from tests.support.factories import Portal
from tests.support.pages import csrf_token

#: The audit actions that say "this actor saw this case's plaintext".
VIEW_ACTIONS = frozenset({Action.CASE_VIEWED.value, Action.ATTACHMENT_DECRYPTED.value})
#: Every staff role of the matrix, those with an unfinished log-in too (the holder between
#: password and code is the holder's own account).
STAFF_ROLES = (*FULL_STAFF, *STEP_PAGES)
#: The reporter's own side is not staff access: reporter events enter the chain as day counts.
REPORTER_BLUEPRINTS = frozenset({"reporter", "static"})
#: Case routes whose every answer is a redirect or an error page, never the case: each is
#: checked like the others, and the sweep proves it shows nothing (below).
SHOW_NO_CASE = {
    ("/staff/cases/<handle>/acknowledge", "POST"): "no fields; a bad token gets the error page",
    ("/staff/cases/<handle>/hold/lift", "POST"): "no fields; a bad token gets the error page",
}
NOT_OFFERED = "not-offered-\u2603"
TOO_LONG = "x" * 30_000

A_REPORTER_MESSAGE = "Marker reporter wrote 4711 about the ledger"
A_REPLY = "Marker reply 5813 from the ombudsperson"
A_NOTE = "Marker internal note 6029 on the witness"
A_FILE_NAME = "marker-file-7331-minutes.txt"
A_FILE_TEXT = "Marker attachment body 8447"
C_TEXT = "Case C: marker 9151, the named reporter's concern."
C_CONTACT_NAME = "Marker Contactname 2207"
C_CONTACT_DETAILS = "marker-2207@example.org"


@dataclass(frozen=True)
class Seeded:
    world: World
    markers: dict[str, tuple[str, ...]]  # case id -> its plaintext markers
    actors: dict[R, int]  # role -> staff id that its audit events carry
    api_token: str  # a bearer token of the management account


@pytest.fixture
def seeded(app: Flask, portal: Portal) -> Seeded:
    world = make_world(app, portal)
    db = portal.session
    holder = world.staff[R.HOLDER]
    now = dt.datetime.now(dt.UTC)
    key = followup.unlock(db, portal.settings, portal.secrets.pepper, world.receipt_a)
    followup.add_message(
        db,
        portal.settings,
        key,
        A_REPORTER_MESSAGE,
        now.date(),
        files=[PreparedFile(A_FILE_NAME, "text/plain", A_FILE_TEXT.encode(), cleaned=True)],
    )
    private_key = portal.private_key(holder)
    for text, visibility in ((A_REPLY, Visibility.REPORTER), (A_NOTE, Visibility.INTERNAL)):
        cases.add_message(
            db, portal.settings, holder, private_key, world.handle_a, text, visibility, now
        )
    named = portal.submit(
        description=C_TEXT, contact_name=C_CONTACT_NAME, contact_details=C_CONTACT_DETAILS
    )
    token = api_tokens.create(
        db, portal.settings, world.staff[R.MANAGEMENT], "audit sweep", 30, now
    ).value
    db.commit()
    actors = {role: world.staff[role].id for role in FULL_STAFF}
    actors.update({role: world.unfinished[role].id for role in STEP_PAGES})
    return Seeded(
        world=world,
        markers={
            world.case_a_id: (
                A_TEXT,
                A_REPORTER_MESSAGE,
                A_REPLY,
                A_NOTE,
                A_FILE_NAME,
                A_FILE_TEXT,
            ),
            _case_id(app, world.handle_b): (B_TEXT,),
            named.case_id: (C_TEXT, C_CONTACT_NAME, C_CONTACT_DETAILS),
        },
        actors=actors,
        api_token=token,
    )


def _case_id(app: Flask, handle: str) -> str:
    with app.extensions["portal"].sessions() as session:
        case_id: str = session.scalars(select(Case.id).where(Case.handle == handle)).one()
        return case_id


def swept_rules(app: Flask) -> list[tuple[Rule, str]]:
    """(rule, method) of every route outside the reporter's side, from the app's URL map."""
    return sorted(
        (
            (rule, method)
            for rule in app.url_map.iter_rules()
            if rule.endpoint.split(".")[0] not in REPORTER_BLUEPRINTS
            for method in sorted((rule.methods or set()) & {"GET", "POST"})
        ),
        key=lambda pair: (pair[0].rule, pair[1]),
    )


def _route_ids() -> list[tuple[str, str]]:
    """The routes to parametrize over: the matrix rows outside the reporter's side. That these
    are exactly the app's routes is checked by ``test_the_sweep_covers_every_route``."""
    reporter_side = ("/", "/report", "/followup", "/leave")
    return sorted(
        (rule, method)
        for rule, method in MATRIX
        if not any(rule == p or rule.startswith(p + "/") for p in reporter_side)
    )


def test_the_sweep_covers_every_route(app: Flask) -> None:
    """A route added to the app is swept without a change here (it needs a matrix row, which
    tests/invariants/matrix/test_authorization.py enforces); this checks the two lists agree."""
    derived = {(rule.rule, method) for rule, method in swept_rules(app)}
    assert derived == set(_route_ids())
    assert sum(1 for rule, _ in derived if "<handle>" in rule) >= 10


@dataclass(frozen=True)
class Attempt:
    kind: str
    method: str
    data: dict[str, object] | None  # None: a GET
    token: bool = True


def attempts(rule: str, method: str, valid: dict[str, object]) -> Iterator[Attempt]:
    """Every kind of request the sweep sends to one route; the valid body last, since it may
    end the sender's access (recusal, transfer) or session (log-out)."""
    if method == "GET":
        yield Attempt("GET", method, None)
        return
    yield Attempt("no CSRF token", method, valid, token=False)
    yield Attempt("token only", method, {})
    if "<handle>" in rule:
        for name, value in valid.items():
            if not isinstance(value, str | list):
                continue
            for label, bad in (("empty", ""), ("not offered", NOT_OFFERED), ("long", TOO_LONG)):
                yield Attempt(f"{name} {label}", method, {**valid, name: bad})
    yield Attempt("valid", method, valid)


def send(client: FlaskClient, url: str, attempt: Attempt, headers: dict[str, str]) -> TestResponse:
    if attempt.data is None:
        return client.get(url, headers=headers)
    data = dict(attempt.data)
    if attempt.token:
        data["csrf_token"] = csrf_token(client.get("/followup").text)
    return client.post(url, data=data, headers=headers)


def _last_seq(app: Flask) -> int:
    with app.extensions["portal"].sessions() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _views_since(app: Flask, seq: int) -> list[tuple[int | None, str | None]]:
    """(actor, case) of each view recorded after ``seq``, one entry per event."""
    with app.extensions["portal"].sessions() as session:
        rows = session.execute(
            select(AuditEvent.actor_id, AuditEvent.case_id).where(
                AuditEvent.seq > seq, AuditEvent.action.in_(VIEW_ACTIONS)
            )
        )
        return [(actor, case) for actor, case in rows]


def _carried(seeded: Seeded, body: bytes) -> set[str]:
    """The cases whose plaintext is in ``body``."""
    return {
        case_id
        for case_id, markers in seeded.markers.items()
        if any(marker.encode() in body for marker in markers)
    }


@pytest.mark.parametrize(("rule", "method"), _route_ids(), ids=lambda v: str(v))
def test_every_answer_that_carries_case_plaintext_records_a_view(
    seeded: Seeded, rule: str, method: str
) -> None:
    world = seeded.world
    app = world.app
    url = url_for_rule(rule, world)
    # Each sender: a label, its client, the staff id its audit events carry, its headers. The
    # API reads a bearer token only, so its routes are also sent with management's token.
    senders: list[tuple[str, FlaskClient, int, dict[str, str]]] = [
        (role.value, client_as(world, role), seeded.actors[role], {}) for role in STAFF_ROLES
    ]
    if rule.startswith("/api/"):
        bearer = {"Authorization": f"Bearer {seeded.api_token}"}
        senders.append(
            ("management's API token", app.test_client(), seeded.actors[R.MANAGEMENT], bearer)
        )
    base = form_for(rule, world)
    unrecorded: list[str] = []
    recorded_twice: list[str] = []
    api_answers: list[int] = []  # what the bearer token got: the API was really read
    shown: list[str] = []
    for attempt in attempts(rule, method, base):
        for label, client, actor, headers in senders:
            sent = attempt
            if attempt.data is not None:
                body = dict(attempt.data)
                if attempt.kind == "valid":
                    body.update(live_fields(client, rule, world))
                if "file" in body:  # a file object is read once: a fresh one for each send
                    body["file"] = form_for(rule, world)["file"]
                sent = Attempt(attempt.kind, method, body, attempt.token)
            before = _last_seq(app)
            response = send(client, url, sent, headers)
            if headers:
                api_answers.append(response.status_code)
            carried = _carried(seeded, response.get_data())
            views = _views_since(app, before)
            # One answer, one view of each case it shows: never one without it, never two.
            twice = {view for view in views if views.count(view) > 1}
            if twice:
                recorded_twice.append(f"{method} {rule} ({attempt.kind}) as {label}: {twice}")
            if not carried:
                continue
            shown.append(f"{attempt.kind} as {label}: {response.status_code}")
            for case_id in carried:
                if (actor, case_id) not in views:
                    unrecorded.append(
                        f"{method} {rule} ({attempt.kind}) as {label} answered "
                        f"{response.status_code} with case {case_id}'s plaintext and no view"
                    )
    assert unrecorded == []
    assert recorded_twice == []
    assert api_answers == ([200] if rule.startswith("/api/") else [])
    if "<handle>" in rule and (rule, method) not in SHOW_NO_CASE:
        assert shown, f"{method} {rule}: the sweep never saw case content; is it still swept?"
    if (rule, method) in SHOW_NO_CASE or "<handle>" not in rule:
        # Nothing outside a case's own routes shows case content, recorded or not.
        assert shown == [], f"{method} {rule} showed case content: {shown}"
