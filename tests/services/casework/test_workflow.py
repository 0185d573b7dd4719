"""The configurable workflow: which moves are allowed, what closing and reopening need, where
the reason for reopening is kept (only as ciphertext), and the audit events of every move."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.app import create_app
from portal.errors import InvalidInput, InvalidTransition, TaxonomyError
from portal.models import (
    AuditEvent,
    Case,
    Message,
    Outcome,
    StatusKind,
    Tag,
    Visibility,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases, workflow
from portal.services.casework.deadlines import DeadlineState
from portal.services.configuration import taxonomy
from portal.services.reporting import followup
from tests.support.cli import cli_app, run_command
from tests.support.factories import Portal
from tests.support.stored import assert_nowhere_in_the_database

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
REASON = "The reporter sent new evidence about the night shift 4417."


def _status(db: Session, code: str) -> WorkflowStatus:
    return db.scalars(select(WorkflowStatus).where(WorkflowStatus.code == code)).one()


def _outcome(db: Session, code: str) -> Outcome:
    return db.scalars(select(Outcome).where(Outcome.code == code)).one()


def _events(db: Session, case_id: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)
    return list(db.scalars(stmt))


def _actions(db: Session, case_id: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.action, audit.detail_of(e)) for e in _events(db, case_id)]


# --- the rules, table-driven --------------------------------------------------------------------

OK = "ok"

# (current status, target status, acknowledged?, outcome code given, reason given) → the field
# a refusal names, or OK with what the move does (closes, reopens, acknowledges first).
RULES = [
    # forward moves between active statuses
    ("new", "acknowledged", False, None, False, (OK, False, False, True)),
    ("new", "investigating", False, None, False, (OK, False, False, True)),
    ("new", "awaiting_reporter", False, None, False, (OK, False, False, True)),
    ("acknowledged", "investigating", True, None, False, (OK, False, False, False)),
    ("investigating", "awaiting_reporter", True, None, False, (OK, False, False, False)),
    ("awaiting_reporter", "investigating", True, None, False, (OK, False, False, False)),
    ("investigating", "acknowledged", True, None, False, (OK, False, False, False)),
    # a new case that was acknowledged while its workflow had no "acknowledged" status
    ("new", "investigating", True, None, False, (OK, False, False, False)),
    # closing: needs an outcome; a new case may be closed without acknowledging it
    ("investigating", "closed", True, "substantiated", False, (OK, True, False, False)),
    ("new", "closed", False, "withdrawn", False, (OK, True, False, False)),
    ("investigating", "closed", True, None, False, "outcome"),
    ("investigating", "closed", True, "no_such_outcome", False, "outcome"),
    ("investigating", "closed", True, "retired_outcome", False, "outcome"),
    # an outcome is for closing only; a reason for reopening only
    ("investigating", "awaiting_reporter", True, "substantiated", False, "outcome"),
    ("investigating", "awaiting_reporter", True, None, True, "reason"),
    ("new", "closed", False, "withdrawn", True, "reason"),
    # reopening: needs a reason
    ("closed", "investigating", True, None, True, (OK, False, True, False)),
    ("closed", "acknowledged", True, None, True, (OK, False, True, False)),
    ("closed", "investigating", True, None, False, "reason"),
    ("closed", "investigating", True, "referred", True, "outcome"),
    # never back to new, never to the same status, never to an inactive or unknown one
    ("acknowledged", "new", True, None, False, "status"),
    ("closed", "new", True, None, True, "status"),
    ("investigating", "investigating", True, None, False, "status"),
    ("closed", "closed", True, "withdrawn", False, "status"),
    ("investigating", "retired_status", True, None, False, "status"),
    ("investigating", "no_such_status", True, None, False, "status"),
]


@pytest.mark.parametrize(
    ("current", "target", "acknowledged", "outcome", "reason", "expected"),
    RULES,
    ids=[
        f"{r[0]}->{r[1]}" + (f" outcome={r[3]}" if r[3] else "") + (" +reason" if r[4] else "")
        for r in RULES
    ],
)
def test_transition_rules(
    portal: Portal,
    db: Session,
    current: str,
    target: str,
    acknowledged: bool,
    outcome: str | None,
    reason: bool,
    expected: str | tuple[str, bool, bool, bool],
) -> None:
    db.add(WorkflowStatus(code="retired_status", label="Retired", kind="open", active=False))
    db.add(Outcome(code="retired_outcome", label="Retired", active=False))
    db.flush()
    target_row = workflow.status_by_code(db, target)
    outcome_row = workflow.outcome_by_code(db, outcome) if outcome else None

    def decide() -> workflow.Move:
        return workflow.check(
            _status(db, current),
            target_row,
            acknowledged=acknowledged,
            outcome=outcome_row,
            outcome_given=outcome is not None,
            reason="why" if reason else None,
        )

    if isinstance(expected, str):
        with pytest.raises(InvalidTransition) as info:
            decide()
        assert info.value.field == expected
        assert info.value.message
    else:
        move = decide()
        _, closes, reopens, acknowledges_first = expected
        assert move.target.code == target
        assert (move.outcome is not None) is closes
        assert (move.reason is not None) is reopens
        assert move.acknowledges_first is acknowledges_first


def test_the_form_offers_every_active_status_but_new_and_the_current_one(
    portal: Portal, db: Session
) -> None:
    portal.staff("olga")
    case = db.get_one(Case, portal.submit().case_id)
    assert [s.code for s in workflow.targets(db, case)] == [
        "acknowledged",
        "investigating",
        "awaiting_reporter",
        "closed",
    ]


# --- acknowledging ------------------------------------------------------------------------------


def test_acknowledging_moves_new_to_acknowledged_tells_the_reporter_and_is_audited(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(today=NOW.date())
    cases.acknowledge(db, olga, portal.private_key(olga), submitted.handle, NOW)
    db.commit()

    case = db.get_one(Case, submitted.case_id)
    assert (case.status, case.acknowledged_on) == ("acknowledged", NOW.date())
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    assert [e.text for e in followup.view(db, reporter).thread] == [workflow.ACKNOWLEDGEMENT_TEXT]
    assert _actions(db, case.id) == [
        (Action.CASE_ACKNOWLEDGED, {"from": "new", "to": "acknowledged"})
    ]
    assert audit.verify(db).ok


def test_without_an_acknowledged_status_acknowledging_keeps_the_status(
    portal: Portal, db: Session
) -> None:
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data["statuses"] = [s for s in data["statuses"] if s["kind"] != "acknowledged"]
    taxonomy.load_taxonomy(db, data)
    db.commit()
    olga = portal.staff("olga")
    submitted = portal.submit()
    key = portal.private_key(olga)
    cases.acknowledge(db, olga, key, submitted.handle, NOW)
    case = db.get_one(Case, submitted.case_id)
    assert (case.status, case.acknowledged_on) == ("new", NOW.date())
    # Moving it on now does not acknowledge a second time.
    cases.set_status(db, olga, key, submitted.handle, "investigating", NOW)
    db.commit()
    assert [a for a, _ in _actions(db, case.id)] == [
        Action.CASE_ACKNOWLEDGED,
        Action.CASE_STATUS_CHANGED,
    ]
    assert db.scalar(select(Message.id).where(Message.case_id == case.id)) is not None
    assert len(list(db.scalars(select(Message).where(Message.case_id == case.id)))) == 1


def test_acknowledging_twice_or_a_closed_case_is_refused(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    first, second = portal.submit(), portal.submit()
    cases.acknowledge(db, olga, key, first.handle, NOW)
    with pytest.raises(InvalidTransition, match="already acknowledged"):
        cases.acknowledge(db, olga, key, first.handle, NOW)
    cases.set_status(db, olga, key, second.handle, "closed", NOW, outcome="withdrawn")
    with pytest.raises(InvalidTransition, match="closed case"):
        cases.acknowledge(db, olga, key, second.handle, NOW)


def test_moving_a_new_case_on_acknowledges_it_first(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(today=NOW.date())
    cases.set_status(db, olga, portal.private_key(olga), submitted.handle, "investigating", NOW)
    db.commit()

    case = db.get_one(Case, submitted.case_id)
    assert (case.status, case.acknowledged_on) == ("investigating", NOW.date())
    assert _actions(db, case.id) == [
        (Action.CASE_ACKNOWLEDGED, {"from": "new", "to": "acknowledged"}),
        (Action.CASE_STATUS_CHANGED, {"from": "acknowledged", "to": "investigating"}),
    ]


def test_choosing_the_acknowledged_status_is_one_acknowledgement(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    cases.set_status(db, olga, portal.private_key(olga), submitted.handle, "acknowledged", NOW)
    db.commit()
    assert _actions(db, submitted.case_id) == [
        (Action.CASE_ACKNOWLEDGED, {"from": "new", "to": "acknowledged"})
    ]


# --- closing and reopening ----------------------------------------------------------------------


def test_closing_needs_an_outcome_and_stores_it(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    cases.set_status(db, olga, key, submitted.handle, "investigating", NOW)
    with pytest.raises(InvalidTransition) as info:
        cases.set_status(db, olga, key, submitted.handle, "closed", NOW)
    assert info.value.field == "outcome"
    case = db.get_one(Case, submitted.case_id)
    assert (case.status, case.closed_on, case.outcome_id) == ("investigating", None, None)

    later = NOW + dt.timedelta(days=3)
    cases.set_status(db, olga, key, submitted.handle, "closed", later, outcome="substantiated")
    db.commit()
    assert case.status == "closed"
    assert case.closed_on == later.date()
    assert case.outcome_id == _outcome(db, "substantiated").id
    assert workflow.is_closed(case)
    assert _actions(db, case.id)[-1] == (
        Action.CASE_CLOSED,
        {"from": "investigating", "outcome": "substantiated"},
    )
    assert audit.verify(db).ok


def test_reopening_needs_a_reason_kept_only_as_an_encrypted_note(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="withdrawn")
    for missing in (None, "", "  \n\t "):
        with pytest.raises(InvalidTransition) as info:
            cases.set_status(db, olga, key, submitted.handle, "investigating", NOW, reason=missing)
        assert info.value.field == "reason"

    cases.set_status(db, olga, key, submitted.handle, "investigating", NOW, reason=REASON)
    db.commit()

    case = db.get_one(Case, submitted.case_id)
    assert (case.status, case.closed_on, case.outcome_id) == ("investigating", None, None)
    # Staff read it as an internal note; the reporter does not see it at all.
    detail = cases.open_case(db, portal.settings, olga, key, submitted.handle, NOW.date())
    notes = [e for e in detail.thread if e.visibility.value == "internal"]
    assert [n.text for n in notes] == [workflow.REOPEN_NOTE_PREFIX + REASON]
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    assert all(REASON not in e.text for e in followup.view(db, reporter).thread)
    # The audit event says that it was reopened and to what; not why.
    assert _actions(db, case.id)[-1] == (Action.CASE_REOPENED, {"to": "investigating"})
    assert audit.verify(db).ok
    # Anywhere in the database, the reason is ciphertext only.
    assert_nowhere_in_the_database(db, REASON)
    assert_nowhere_in_the_database(db, "night shift 4417")


def test_the_reason_is_cleaned_and_limited(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="withdrawn")
    too_long = "x" * (workflow.REOPEN_REASON_MAX_CHARS + 1)
    with pytest.raises(InvalidInput) as info:
        cases.set_status(db, olga, key, submitted.handle, "investigating", NOW, reason=too_long)
    assert info.value.field == "reason" and "1,000" in info.value.message
    assert db.get_one(Case, submitted.case_id).status == "closed"

    exact = " \x00" + "y" * workflow.REOPEN_REASON_MAX_CHARS + "\r\n"
    cases.set_status(db, olga, key, submitted.handle, "investigating", NOW, reason=exact)
    detail = cases.open_case(db, portal.settings, olga, key, submitted.handle, NOW.date())
    assert detail.thread[-1].text == workflow.REOPEN_NOTE_PREFIX + "y" * 1000


def test_a_case_closed_and_reopened_can_close_again(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="withdrawn")
    cases.set_status(db, olga, key, submitted.handle, "awaiting_reporter", NOW, reason="New facts")
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="referred")
    db.commit()
    assert db.get_one(Case, submitted.case_id).outcome_id == _outcome(db, "referred").id
    # Closed before it was acknowledged: going back to work acknowledges it.
    assert _actions(db, submitted.case_id) == [
        (Action.CASE_CLOSED, {"from": "new", "outcome": "withdrawn"}),
        (Action.CASE_ACKNOWLEDGED, {"from": "closed", "to": "closed"}),
        (Action.CASE_REOPENED, {"to": "awaiting_reporter"}),
        (Action.CASE_CLOSED, {"from": "awaiting_reporter", "outcome": "referred"}),
    ]
    assert db.get_one(Case, submitted.case_id).acknowledged_on == NOW.date()


def test_a_new_case_closed_unacknowledged_has_no_pending_acknowledgement(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(today=NOW.date())
    cases.set_status(
        db, olga, portal.private_key(olga), submitted.handle, "closed", NOW, outcome="withdrawn"
    )
    detail = cases.open_case(
        db, portal.settings, olga, portal.private_key(olga), submitted.handle, NOW.date()
    )
    ack, feedback = detail.deadlines
    assert (ack.state, feedback.state) == (DeadlineState.ENDED, DeadlineState.MET)
    assert detail.case.acknowledged_on is None
    assert _actions(db, submitted.case_id) == [
        (Action.CASE_CLOSED, {"from": "new", "outcome": "withdrawn"})
    ]


# --- a workflow of the organisation's own ------------------------------------------------------


def test_rules_follow_kinds_not_codes(portal: Portal, db: Session) -> None:
    """An organisation that names its statuses differently gets the same rules."""
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data["statuses"] = [
        {"code": "received", "label": "Received", "kind": "new"},
        {"code": "assessing", "label": "Assessing", "kind": "open"},
        {"code": "legal_review", "label": "Legal review", "kind": "open"},
        {"code": "concluded", "label": "Concluded", "kind": "closed"},
    ]
    taxonomy.load_taxonomy(db, data)
    db.commit()
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    case = db.get_one(Case, submitted.case_id)
    assert case.status == "received"
    cases.set_status(db, olga, key, submitted.handle, "legal_review", NOW)
    assert case.acknowledged_on == NOW.date(), "moving it on acknowledged it"
    with pytest.raises(InvalidTransition):
        cases.set_status(db, olga, key, submitted.handle, "received", NOW)
    with pytest.raises(InvalidTransition):
        cases.set_status(db, olga, key, submitted.handle, "concluded", NOW)
    cases.set_status(db, olga, key, submitted.handle, "concluded", NOW, outcome="referred")
    cases.set_status(db, olga, key, submitted.handle, "assessing", NOW, reason="Appeal")
    db.commit()
    assert [(a, d) for a, d in _actions(db, case.id)] == [
        (Action.CASE_ACKNOWLEDGED, {"from": "received", "to": "received"}),
        (Action.CASE_STATUS_CHANGED, {"from": "received", "to": "legal_review"}),
        (Action.CASE_CLOSED, {"from": "legal_review", "outcome": "referred"}),
        (Action.CASE_REOPENED, {"to": "assessing"}),
    ]
    # The reporter sees the organisation's own label.
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    assert followup.view(db, reporter).status_label == "Assessing"


def test_status_of_kind_needs_an_active_one(portal: Portal, db: Session) -> None:
    for row in db.scalars(select(WorkflowStatus).where(WorkflowStatus.kind == "acknowledged")):
        row.active = False
    db.flush()
    with pytest.raises(TaxonomyError):
        workflow.status_of_kind(db, StatusKind.ACKNOWLEDGED)


def test_a_reporter_message_moves_a_waiting_case_on_only_if_the_workflow_has_both(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    cases.set_status(db, olga, portal.private_key(olga), submitted.handle, "awaiting_reporter", NOW)
    _status(db, "investigating").active = False
    db.commit()
    before = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    followup.add_message(db, portal.settings, reporter, "more", NOW.date())
    db.commit()
    assert db.get_one(Case, submitted.case_id).status == "awaiting_reporter"
    # A reporter event is never written into the chain as it happens.
    assert db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == before


# --- staff actions leave a trace ----------------------------------------------------------------


def test_viewing_replying_and_noting_are_audited_without_content(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    cases.view_case(db, portal.settings, olga, key, submitted.handle, NOW)
    reply, note = "A reply with marker 5521.", "A note with marker 9934."
    cases.add_message(
        db, portal.settings, olga, key, submitted.handle, reply, Visibility.REPORTER, NOW
    )
    cases.add_message(
        db, portal.settings, olga, key, submitted.handle, note, Visibility.INTERNAL, NOW
    )
    db.commit()
    events = _events(db, submitted.case_id)
    assert [(e.action, audit.detail_of(e)) for e in events] == [
        (Action.CASE_VIEWED, {}),
        (Action.CASE_REPLIED, {}),
        (Action.CASE_NOTE_ADDED, {}),
    ]
    assert {(e.actor_id, e.case_handle) for e in events} == {(olga.id, submitted.handle)}
    assert audit.verify(db).ok
    assert_nowhere_in_the_database(db, "5521")
    assert_nowhere_in_the_database(db, "9934")


def test_opening_a_case_without_showing_it_records_nothing(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    cases.open_case(
        db, portal.settings, olga, portal.private_key(olga), submitted.handle, NOW.date()
    )
    assert _events(db, submitted.case_id) == []


# --- the demo -----------------------------------------------------------------------------------


def test_demo_cases_show_the_workflow_and_triage(tmp_path: Path) -> None:
    """`portal demo` goes through the same services: statuses, triage and their audit events."""
    app, settings = cli_app(tmp_path)
    run_command(app, "init")
    app = create_app(settings)
    code, output = run_command(app, "demo")
    assert code == 0, output
    with app.extensions["portal"].sessions() as session:
        # The cases someone worked on (audited), not the made-up history of past quarters
        # (portal.ops.demo_history sets its dates and statuses directly, without audit events).
        worked_on = Case.id.in_(select(AuditEvent.case_id).where(AuditEvent.case_id.is_not(None)))
        statuses = sorted(session.scalars(select(Case.status).where(worked_on)))
        assert statuses.count("awaiting_reporter") == 1 and statuses.count("investigating") == 1
        triaged = session.scalars(select(Case).where(Case.reporter_at_risk)).one()
        assert (triaged.priority, triaged.status) == ("high", "awaiting_reporter")
        assert list(session.scalars(select(Tag.label))) == ["Interim protection"]
        actions = set(session.scalars(select(AuditEvent.action)))
        wanted = {Action.CASE_ACKNOWLEDGED, Action.CASE_STATUS_CHANGED, Action.CASE_TRIAGED}
        assert wanted <= actions
        assert audit.verify(session).ok
