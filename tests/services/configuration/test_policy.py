"""The policy row and the configurable workflow in the taxonomy file: limits and validation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, TaxonomyError
from portal.models import Case, Outcome, WorkflowStatus
from portal.services.configuration import policy, taxonomy
from portal.settings import PROJECT_ROOT
from tests.support.factories import Portal


def _default() -> dict[str, Any]:
    return taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")


def test_default_taxonomy_loads_workflow_outcomes_and_policy(portal: Portal, db: Session) -> None:
    codes = [s.code for s in taxonomy.statuses(db)]
    assert codes == ["new", "acknowledged", "investigating", "awaiting_reporter", "closed"]
    substantiated = {o.code for o in taxonomy.outcomes(db) if o.substantiated}
    assert substantiated == {"substantiated", "partly_substantiated"}
    assert policy.values(db) == policy.PolicyValues(7, 3, 2, 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("acknowledge_days", 8),  # the directive's 7 days is an upper bound
        ("acknowledge_days", 0),
        ("feedback_months", 4),
        ("anonymity_threshold", 2),  # never below 3 (DESIGN.md invariant 5)
        ("due_soon_days", -1),
        ("anonymity_threshold", True),
    ],
)
def test_policy_limits(portal: Portal, db: Session, field: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=field):
        policy.update(db, **{field: value})  # type: ignore[arg-type]
    data = _default()
    data["policy"][field] = value
    with pytest.raises(TaxonomyError, match=r"\[policy\]"):
        taxonomy.load_taxonomy(db, data)


def test_policy_update_reports_what_changed(portal: Portal, db: Session) -> None:
    assert policy.update(db, acknowledge_days=5, due_soon_days=2) == {"acknowledge_days": (7, 5)}


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ([{"code": "open", "label": "Open", "kind": "open"}], "exactly one status of kind 'new'"),
        (
            [
                {"code": "new", "label": "New", "kind": "new"},
                {"code": "done", "label": "Done", "kind": "done"},
            ],
            "needs a 'kind'",
        ),
        (
            [
                {"code": "new", "label": "New", "kind": "new"},
                {"code": "a", "label": "A", "kind": "acknowledged"},
                {"code": "b", "label": "B", "kind": "acknowledged"},
                {"code": "closed", "label": "Closed", "kind": "closed"},
            ],
            "at most one",
        ),
        (
            [
                {"code": "n" * 33, "label": "New", "kind": "new"},
                {"code": "closed", "label": "Closed", "kind": "closed"},
            ],
            "longer than 32",
        ),
    ],
)
def test_bad_workflows_are_refused(
    portal: Portal, db: Session, statuses: list[dict[str, str]], message: str
) -> None:
    data = _default()
    data["statuses"] = statuses
    with pytest.raises(TaxonomyError, match=message):
        taxonomy.load_taxonomy(db, data)


def test_a_status_in_use_cannot_be_removed_or_change_kind(portal: Portal, db: Session) -> None:
    portal.staff("alice")
    portal.submit()  # status "new"
    data = _default()
    data["statuses"] = [s for s in data["statuses"] if s["code"] != "new"] + [
        {"code": "fresh", "label": "Fresh", "kind": "new"}
    ]
    with pytest.raises(TaxonomyError, match="'new' is missing"):
        taxonomy.load_taxonomy(db, data)
    db.rollback()
    data = _default()
    data["statuses"][0]["kind"] = "open"
    data["statuses"].insert(0, {"code": "fresh", "label": "Fresh", "kind": "new"})
    with pytest.raises(TaxonomyError, match="kind cannot change"):
        taxonomy.load_taxonomy(db, data)


def test_removed_outcomes_and_unused_statuses_are_deactivated(portal: Portal, db: Session) -> None:
    data = _default()
    data["outcomes"] = [o for o in data["outcomes"] if o["code"] != "withdrawn"]
    data["statuses"] = [s for s in data["statuses"] if s["code"] != "awaiting_reporter"]
    taxonomy.load_taxonomy(db, data)
    db.commit()
    assert db.scalar(select(Outcome.active).where(Outcome.code == "withdrawn")) is False
    row = db.scalar(select(WorkflowStatus).where(WorkflowStatus.code == "awaiting_reporter"))
    assert row is not None and not row.active
    assert "awaiting_reporter" not in [s.code for s in taxonomy.statuses(db)]


def test_files_without_workflow_tables_get_the_defaults(portal: Portal, db: Session) -> None:
    data = _default()
    for key in ("statuses", "outcomes", "policy"):
        data.pop(key)
    report = taxonomy.load_taxonomy(db, data)
    assert (report.statuses, report.outcomes) == (5, 5)
    portal.staff("alice")
    submitted = portal.submit()
    case = db.get_one(Case, submitted.case_id)
    assert case.status == "new"
