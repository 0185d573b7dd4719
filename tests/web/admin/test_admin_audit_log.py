"""The audit log in the console: newest first, filters, paging, reporter day counts, the chain
verification with its anchor, and the CSV export (itself audited)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.models import AuditEvent, Case, StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from tests.support.admin_helpers import (
    admin_user,
    client_for,
    detail,
    events,
    field_errors,
    fresh,
    post,
    selected,
)
from tests.support.factories import Portal

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def root(portal: Portal) -> StaffUser:
    return admin_user(portal)


@pytest.fixture
def console(app: Flask, root: StaffUser) -> FlaskClient:
    # The console's own log-in is audited too: put it before the history below, so that the
    # history's events are the newest and its reporter day counts are rolled up as they happen.
    app.extensions["portal"].clock = lambda: T0 - dt.timedelta(days=2)
    return client_for(app, root)


def _seqs(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr id="event-(\d+)"', page)]


def _row(page: str, seq: int) -> str:
    match = re.search(rf'<tr id="event-{seq}">(.*?)</tr>', page, re.S)
    assert match, page
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


@pytest.fixture
def history(portal: Portal, db: Session, root: StaffUser) -> dict[str, object]:
    """A few events on two days by two people, one of them on a case."""
    olga = portal.staff("olga")
    case = db.get_one(Case, portal.submit(today=T0.date() - dt.timedelta(days=1)).case_id)
    audit.record(db, Action.LOGIN, T0, actor=olga)
    audit.record(db, Action.CASE_VIEWED, T0 + dt.timedelta(minutes=1), actor=olga, case=case)
    audit.record(
        db,
        Action.STAFF_ROLES_CHANGED,
        T0 + dt.timedelta(days=1),
        actor=root,
        target=olga,
        roles=["ombudsperson"],
        added=[],
        removed=["custodian"],
    )
    db.commit()
    return {"olga": olga, "case": case}


def test_newest_first_with_labels_accounts_and_detail(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    page = console.get("/staff/admin/audit").text

    seqs = _seqs(page)
    assert seqs == sorted(seqs, reverse=True) and seqs
    newest = _row(page, seqs[0])
    assert "2026-03-03 09:30:00" in newest and "Staff roles changed" in newest
    assert "root@example.org" in newest and "olga@example.org" in newest
    assert "removed: custodian" in newest
    viewed = [s for s in seqs if "Case viewed" in _row(page, s)]
    assert history["case"].handle in _row(page, viewed[0])  # type: ignore[attr-defined]


def test_reporter_events_are_shown_as_day_counts(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    page = console.get("/staff/admin/audit").text

    day = (T0.date() - dt.timedelta(days=1)).isoformat()
    rows = [_row(page, s) for s in _seqs(page)]
    [counted] = [r for r in rows if f"Reporter events of {day}" in r]
    assert f"day {day} reporters" in counted
    assert "1 concerns received, 0 reporter messages" in counted
    # No case handle, no time of day: a reporter event is never placed among staff events.
    assert history["case"].handle not in counted  # type: ignore[attr-defined]
    assert not re.search(r"\d\d:\d\d", counted)


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({"action": "case.viewed"}, {"case.viewed"}),
        ({"action": "staff."}, {"staff.roles_changed"}),
        ({"action": "reporter."}, {"reporter.day_counts"}),
        # The counts of 2 March are stamped at midnight after it, so they fall on 3 March.
        ({"day": "2026-03-03"}, {"staff.roles_changed", "reporter.day_counts"}),
    ],
)
def test_filters(
    console: FlaskClient,
    db: Session,
    history: dict[str, object],
    query: dict[str, str],
    wanted: set[str],
) -> None:
    page = console.get("/staff/admin/audit", query_string=query)

    assert page.status_code == 200
    shown = {fresh(db).get_one(AuditEvent, seq).action for seq in _seqs(page.text)}
    assert shown == wanted
    assert selected(page.text, "action") == query.get("action", "")


def test_filter_by_actor_and_by_case_handle_as_typed(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    olga = history["olga"]
    case = history["case"]

    by_actor = console.get("/staff/admin/audit", query_string={"actor": str(olga.id)}).text  # type: ignore[attr-defined]
    by_case = console.get(
        "/staff/admin/audit",
        query_string={"case": f"  {case.handle.lower()} "},  # type: ignore[attr-defined]
    ).text

    assert {fresh(db).get_one(AuditEvent, s).actor_id for s in _seqs(by_actor)} == {olga.id}  # type: ignore[attr-defined]
    assert [fresh(db).get_one(AuditEvent, s).action for s in _seqs(by_case)] == ["case.viewed"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"day": "2026-13-45"}, "day", "Not a valid date value."),
        ({"case": "not a handle"}, "case", "A case handle looks like ABCD-1234."),
        ({"action": "case.deleted"}, "action", "Not a valid choice."),
        ({"actor": "99999"}, "actor", "Not a valid choice."),
    ],
)
def test_bad_filters_are_explained_not_crashed(
    console: FlaskClient, query: dict[str, str], field: str, message: str
) -> None:
    page = console.get("/staff/admin/audit", query_string=query)

    assert page.status_code == 400
    assert message in field_errors(page.text, field)
    assert "Please correct the marked filters." in page.text


def test_a_bad_page_marker_is_a_400_not_a_500(console: FlaskClient) -> None:
    for marker in ("abc", "0"):
        page = console.get("/staff/admin/audit", query_string={"before": marker})
        assert page.status_code == 400
        assert "The page link was not valid" in page.text


def test_paging_backwards_from_the_newest(
    console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    for i in range(60):
        audit.record(db, Action.LOGIN, T0 + dt.timedelta(seconds=i), actor=root)
    db.commit()
    total = len(list(fresh(db).scalars(select(AuditEvent.seq))))

    first = console.get("/staff/admin/audit", query_string={"action": "login"}).text
    older = re.search(r'<a href="([^"]+)" rel="next">Older events</a>', first)
    assert older
    second = console.get(older.group(1).replace("&amp;", "&")).text

    assert len(_seqs(first)) == 50 and _seqs(first)[0] == total
    assert len(_seqs(second)) == 11  # the other 10, and the console's own log-in
    assert _seqs(second)[0] == _seqs(first)[-1] - 1
    assert "Older events" not in second and "Newest events" in second
    assert selected(second, "action") == "login"  # the filter carries over


# --- verification --------------------------------------------------------------------------------


def test_verify_shows_the_result_and_an_anchor(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    page = console.get("/staff/admin/audit/verify").text

    result = audit.verify(fresh(db))
    assert f"The chain is intact: {result.checked} events checked." in page
    anchor = re.search(r'<code id="anchor">(\d+):([0-9a-f]{64})</code>', page)
    assert anchor and (int(anchor.group(1)), anchor.group(2)) == (
        result.head_seq,
        result.head_hash,
    )

    with_anchor = console.get(
        "/staff/admin/audit/verify", query_string={"expect": f"{anchor.group(1)}:{anchor.group(2)}"}
    ).text
    assert f"The anchor {anchor.group(1)} is in it." in with_anchor


def test_verify_names_the_first_broken_link(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    target = (
        fresh(db)
        .scalars(select(AuditEvent.seq).where(AuditEvent.action == Action.CASE_VIEWED.value))
        .one()
    )
    db.execute(update(AuditEvent).where(AuditEvent.seq == target).values(actor_email="x@y.z"))
    db.commit()

    page = console.get("/staff/admin/audit/verify").text

    assert f"The chain is BROKEN at event {target}: its content does not match its hash." in page


def test_verify_refuses_a_malformed_anchor(console: FlaskClient) -> None:
    page = console.get("/staff/admin/audit/verify", query_string={"expect": "12:nothex"})

    assert page.status_code == 400
    assert field_errors(page.text, "expect") == [
        "Give the anchor as SEQ:HASH, as the verification printed it."
    ]


# --- CSV export ----------------------------------------------------------------------------------


def test_csv_export_of_the_filtered_view_is_audited(
    console: FlaskClient, db: Session, history: dict[str, object], root: StaffUser
) -> None:
    olga = history["olga"]

    response = post(
        console,
        "/staff/admin/audit/export",
        {"action": "", "actor": str(olga.id)},  # type: ignore[attr-defined]
    )

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment;" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["seq", "time_utc", "actor", "action", "case", "target", "detail"]
    assert [r[3] for r in rows[1:]] == ["case.viewed", "login"]  # newest first
    assert rows[1][4] == history["case"].handle  # type: ignore[attr-defined]
    assert rows[2][1] == "2026-03-02T09:30:00+00:00"
    [exported] = events(db, Action.AUDIT_EXPORTED)
    assert exported.actor_id == root.id
    assert detail(exported) == {
        "rows": 2,
        "truncated": False,
        "filter_action": None,
        "filter_actor_id": olga.id,  # type: ignore[attr-defined]
        "filter_case": None,
        "filter_day": None,
    }
    assert audit.verify(fresh(db)).ok


def test_csv_export_defuses_spreadsheet_formulas(
    console: FlaskClient, db: Session, portal: Portal
) -> None:
    user = portal.staff("plain")
    user.email = "=cmd|x@example.org"
    db.commit()
    audit.record(db, Action.LOGIN, T0, actor=user)
    db.commit()

    response = post(console, "/staff/admin/audit/export", {"action": "login"})

    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[1][2] == "'=cmd|x@example.org"


def test_csv_export_with_a_bad_filter_exports_nothing(console: FlaskClient, db: Session) -> None:
    response = post(console, "/staff/admin/audit/export", {"day": "yesterday"})

    assert response.status_code == 400
    assert "Not a valid date value." in field_errors(response.text, "day")
    assert events(db, Action.AUDIT_EXPORTED) == []


def test_verify_shows_the_sealed_anchor_and_checks_one(
    console: FlaskClient, db: Session, history: dict[str, object]
) -> None:
    """Issue 13, finding 11: the console gives the MACed anchor and takes it back."""
    page = console.get("/staff/admin/audit/verify").text
    sealed = re.search(r'<code id="sealed-anchor">([^<]+)</code>', page)
    assert sealed and sealed.group(1) == audit.current_anchor(fresh(db)).text()
    seq = sealed.group(1).split(":")[0]
    again = console.get("/staff/admin/audit/verify", query_string={"expect": sealed.group(1)})
    assert again.status_code == 200 and f"The anchor {seq} is in it." in again.text
    # Cut the tail: the console says truncated, and shows no sealed anchor for the cut log.
    db.execute(delete(AuditEvent).where(AuditEvent.seq == int(seq)))
    db.commit()
    cut = console.get("/staff/admin/audit/verify", query_string={"expect": sealed.group(1)})
    assert "truncated" in cut.text and 'id="sealed-anchor"' not in cut.text
