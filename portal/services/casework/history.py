"""A case's own history, read from the audit chain for its case page.

The audit detail holds codes and ids only; here they are turned into the labels the taxonomy
gives them today (a status code into its label, tag ids into tag labels) for reading. Nothing
in the chain is case content, so nothing here is either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.i18n import labels as i18n
from portal.models import Case, Category, Outcome, StaffUser, Tag, WorkflowStatus
from portal.services.audit import chain as audit

Value = str | bool | list[str] | None


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    at: dt.datetime
    actor_name: str | None  # None for the system
    action: str  # an audit Action value
    target_name: str | None
    details: list[tuple[str, Value]]


def _labels(
    session: Session, model: type[WorkflowStatus] | type[Outcome] | type[Category]
) -> dict[str, str]:
    rows: list[WorkflowStatus | Outcome | Category] = list(session.scalars(select(model)))
    return {row.code: i18n.shown(row) for row in rows}


def case_history(session: Session, case: Case) -> list[HistoryEntry]:
    """Oldest first: who did what to the case, and when."""
    events = audit.case_history(session, case)
    staff_ids = {e.actor_id for e in events} | {e.target_staff_id for e in events}
    staff_ids.discard(None)
    names = {
        user_id: name
        for user_id, name in session.execute(
            select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(staff_ids))
        )
    }
    statuses = _labels(session, WorkflowStatus)
    outcomes = _labels(session, Outcome)
    categories = _labels(session, Category)
    tags = {str(i): label for i, label in session.execute(select(Tag.id, Tag.label))}

    def show(key: str, value: object) -> Value:
        if key in ("from", "to") and isinstance(value, str):
            return statuses.get(value, value)
        if key == "outcome" and isinstance(value, str):
            return outcomes.get(value, value)
        if key == "org_category" and isinstance(value, str):
            return categories.get(value, value)
        if key in ("tags", "tags_created") and isinstance(value, list):
            return [tags.get(str(v), str(v)) for v in value]
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, list):
            return [str(v) for v in value]
        return str(value)

    return [
        HistoryEntry(
            seq=event.seq,
            at=event.at,
            actor_name=(
                names.get(event.actor_id, f"#{event.actor_id}")
                if event.actor_id is not None
                else None
            ),
            action=event.action,
            target_name=(
                names.get(event.target_staff_id, f"#{event.target_staff_id}")
                if event.target_staff_id is not None
                else None
            ),
            details=[(key, show(key, value)) for key, value in audit.detail_of(event).items()],
        )
        for event in events
    ]
