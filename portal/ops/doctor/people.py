"""The people: queues staffed, an admin, no demo account left."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portal.models import Queue, QueueMembership, Role, StaffRole, StaffUser
from portal.ops.doctor.core import CheckResult, _fail, _ok, _warn

#: The e-mail domain of the accounts `portal demo` creates, whose password and TOTP secret are
#: printed in the code and the README (equal to ``portal.ops.demo.DEMO_DOMAIN``; a test keeps
#: them so).
DEMO_DOMAIN = "demo.invalid"


def _active_with_role(role: Role) -> Select[int]:
    return (
        select(StaffUser.id)
        .join(StaffRole, StaffRole.staff_id == StaffUser.id)
        .where(StaffUser.active, StaffRole.role == role.value)
    )


def check_staffing(session: Session) -> CheckResult:
    """Every queue has an active ombudsperson. An empty fallback queue stops intake of every
    concern whose own queue is empty; an empty other queue sends its concerns to the fallback
    queue, to people the reporter may not have expected."""
    name = "queues-staffed"
    staffed = set(
        session.scalars(
            select(QueueMembership.queue_id)
            .where(QueueMembership.staff_id.in_(_active_with_role(Role.OMBUDSPERSON)))
            .distinct()
        )
    )
    queues = list(session.scalars(select(Queue).order_by(Queue.slug)))
    if not queues:
        return _fail(name, "there are no queues", "run `portal init` to load the taxonomy")
    empty = [q for q in queues if q.id not in staffed]
    fallback_empty = [q for q in empty if q.is_fallback]
    if len(empty) == len(queues) or fallback_empty:
        names = ", ".join(q.slug for q in empty)
        return _fail(
            name,
            f"no active ombudsperson in {names}"
            + (" (the fallback queue): concerns cannot be accepted" if fallback_empty else ""),
            "add one with `portal create-staff EMAIL --role ombudsperson --queue SLUG` or"
            " `portal membership` for an existing account",
        )
    if empty:
        return _warn(
            name,
            f"no active ombudsperson in {', '.join(q.slug for q in empty)}: their concerns go to"
            " the fallback queue",
            "add an ombudsperson to each of those queues (`portal membership`), or route"
            " nothing to them",
        )
    return _ok(name, f"each of the {len(queues)} queues has an active ombudsperson")


def check_admin(session: Session) -> CheckResult:
    name = "admin"
    count = session.scalar(
        select(func.count()).select_from(_active_with_role(Role.ADMIN).subquery())
    )
    if not count:
        return _fail(
            name,
            "no active admin account: nobody can change the configuration or read the audit log"
            " in the console",
            "create one with `portal create-staff EMAIL --role admin`",
        )
    return _ok(name, f"{count} active admin account(s)")


def check_demo_accounts(session: Session) -> CheckResult:
    name = "demo-accounts"
    demo = list(
        session.scalars(
            select(StaffUser.email)
            .where(StaffUser.active, StaffUser.email.endswith("@" + DEMO_DOMAIN))
            .order_by(StaffUser.email)
        )
    )
    if demo:
        return _fail(
            name,
            f"{len(demo)} active demo account(s) ({', '.join(demo[:3])}"
            f"{', ...' if len(demo) > 3 else ''}): their password and second factor are public",
            "this database was loaded with `portal demo`: start production from a fresh database"
            " with `portal init`, or at least disable them with `portal staff disable EMAIL`",
        )
    return _ok(name, "no demo account")
