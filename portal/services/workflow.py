"""The configurable case workflow: statuses (by kind) and outcomes from the taxonomy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import StatusKind, WorkflowStatus
from portal.services.errors import TaxonomyError


def status_of_kind(session: Session, kind: StatusKind) -> WorkflowStatus:
    """The active status of a kind that has exactly one (new, closed) or the first one."""
    row = session.scalar(
        select(WorkflowStatus)
        .where(WorkflowStatus.kind == kind.value, WorkflowStatus.active)
        .order_by(WorkflowStatus.position)
        .limit(1)
    )
    if row is None:
        raise TaxonomyError(f"the workflow has no active status of kind {kind.value!r}")
    return row
