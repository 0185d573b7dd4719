"""Systemic signals: several concerns about one category in one unit in one quarter.

When the concerns received this calendar quarter about one category (the organisation's, else
the reporter's) in one site or department reach the policy's ``signal_threshold``, every queue
that handles at least one of them gets one alert: "several concerns about harassment in the
North plant this quarter". An alert names a group, never a case, and never the exact count
(only "at least the threshold", which is never below the anonymity threshold), so a pattern is
seen without profiling anyone. Units below the policy's minimum headcount raise no alert of
their own: the alert would point at a handful of people (insights merge them into "other").

Each alert is raised once per queue, group and quarter (table ``signal_alerts``) and mailed to
the queue's active ombudspersons in one message per person, with the same batching rules as
the other notices (a plain count, no case). ``portal insights signals`` runs it (cron, daily).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.i18n import labels as i18n
from portal.models import (
    Case,
    Category,
    OrgUnit,
    OrgUnitKind,
    Queue,
    QueueMembership,
    SignalAlert,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.configuration import policy
from portal.services.insights.calendar import Quarter
from portal.services.notifications.mail import Mailer, compose
from portal.services.notifications.notify import Notice, RunResult, Texts, deliver, link_lines
from portal.settings import Settings


@dataclass(frozen=True, order=True)
class Signal:
    period: str
    queue_id: int
    category_id: int
    unit_id: int


def detect(session: Session, today: dt.date) -> list[Signal]:
    """The groups of this quarter (up to ``today``) at or above the signal threshold, one
    signal per queue holding at least one of their cases."""
    values = policy.values(session)
    quarter = Quarter.of(today)
    small_units = set(
        session.scalars(
            select(OrgUnit.id).where(
                OrgUnit.headcount.is_not(None),
                OrgUnit.headcount < values.insights_min_headcount,
            )
        )
    )
    category = func.coalesce(Case.org_category_id, Case.category_id)
    found: set[Signal] = set()
    for unit_column in (Case.site_id, Case.department_id):
        in_quarter = (
            Case.received_on >= quarter.start,
            Case.received_on <= today,
            unit_column.is_not(None),
        )
        groups = session.execute(
            select(category, unit_column)
            .where(*in_quarter)
            .group_by(category, unit_column)
            .having(func.count() >= values.signal_threshold)
        ).all()
        for category_id, unit_id in groups:
            if unit_id is None or unit_id in small_units:
                continue
            queues = session.scalars(
                select(Case.queue_id)
                .where(*in_quarter, category == category_id, unit_column == unit_id)
                .distinct()
            )
            for queue_id in queues:
                found.add(Signal(str(quarter), queue_id, category_id, unit_id))
    return sorted(found)


def new_signals(session: Session, today: dt.date) -> list[Signal]:
    """Signals not raised before."""
    quarter = str(Quarter.of(today))
    raised = {
        Signal(a.period, a.queue_id, a.category_id, a.unit_id)
        for a in session.scalars(select(SignalAlert).where(SignalAlert.period == quarter))
    }
    return [s for s in detect(session, today) if s not in raised]


@dataclass(frozen=True)
class ActiveAlert:
    """An alert as staff see it."""

    queue_name: str
    category_label: str
    unit_label: str
    unit_kind: str
    threshold: int
    period: str


def alerts_for(session: Session, user: StaffUser, today: dt.date) -> list[ActiveAlert]:
    """This quarter's alerts for the queues ``user`` is a member of."""
    quarter = str(Quarter.of(today))
    rows = session.execute(
        select(SignalAlert, Queue, Category, OrgUnit)
        .join(Queue, Queue.id == SignalAlert.queue_id)
        .join(Category, Category.id == SignalAlert.category_id)
        .join(OrgUnit, OrgUnit.id == SignalAlert.unit_id)
        .join(QueueMembership, QueueMembership.queue_id == SignalAlert.queue_id)
        .where(QueueMembership.staff_id == user.id, SignalAlert.period == quarter)
        .order_by(Queue.name, Category.position, OrgUnit.kind, OrgUnit.position)
    ).all()
    return [
        ActiveAlert(
            i18n.shown(q, "name"), i18n.shown(c), i18n.shown(u), u.kind, a.threshold, a.period
        )
        for a, q, c, u in rows
    ]


def _message(
    settings: Settings,
    staff_id: int,
    to: str,
    lines: Sequence[str],
    now: dt.datetime,
    texts: Texts,
) -> Notice:
    body = [
        texts.gettext("Several concerns about the same subject have arrived this quarter:"),
        "",
        *lines,
        "",
        *link_lines(settings, texts),
        "",
        texts.gettext(
            "This alert counts concerns; it names no case and no person. Look at the pattern, "
            "not for the people who raised it."
        ),
    ]
    subject = texts.gettext("A pattern of concerns in the ombuds portal")
    return Notice(staff_id, to, compose(settings, to, subject, "\n".join(body) + "\n", now))


def raise_alerts(
    session: Session,
    settings: Settings,
    mailer: Mailer,
    now: dt.datetime,
    texts: Texts,
    *,
    dry_run: bool = False,
) -> RunResult:
    """Record new signals and mail the members of each queue concerned (one message each)."""
    today = now.astimezone(dt.UTC).date()
    threshold = policy.values(session).signal_threshold
    signals = new_signals(session, today)
    categories = {c.id: i18n.shown(c) for c in session.scalars(select(Category))}
    units = {u.id: (i18n.shown(u), u.kind) for u in session.scalars(select(OrgUnit))}
    per_queue: dict[int, list[str]] = defaultdict(list)
    for s in signals:
        label, kind = units[s.unit_id]
        where = (
            texts.gettext("at site %(unit)s", unit=label)
            if kind == OrgUnitKind.SITE.value
            else texts.gettext("in department %(unit)s", unit=label)
        )
        per_queue[s.queue_id].append(
            texts.gettext(
                "- %(count)d or more concerns about %(category)s %(where)s",
                count=threshold,
                category=categories[s.category_id],
                where=where,
            )
        )
    lines_for: dict[int, list[str]] = defaultdict(list)
    emails: dict[int, str] = {}
    if per_queue:
        members = session.execute(
            select(QueueMembership.queue_id, StaffUser)
            .join(StaffUser, StaffUser.id == QueueMembership.staff_id)
            .where(QueueMembership.queue_id.in_(per_queue))
        ).all()
        for queue_id, user in members:
            if cases.may_handle_cases(user):
                lines_for[user.id].extend(per_queue[queue_id])
                emails[user.id] = user.email
    notices = [
        _message(settings, staff_id, emails[staff_id], lines, now, texts)
        for staff_id, lines in sorted(lines_for.items(), key=lambda item: emails[item[0]])
    ]
    if dry_run:
        return RunResult(True, None, notices)
    for s in signals:
        session.add(
            SignalAlert(
                queue_id=s.queue_id,
                period=s.period,
                category_id=s.category_id,
                unit_id=s.unit_id,
                threshold=threshold,
                raised_on=today,
                notified=False,
            )
        )
    session.flush()
    deliveries = deliver(mailer, notices)
    if signals:
        if all(d.ok for d in deliveries):
            for alert in session.scalars(
                select(SignalAlert).where(
                    SignalAlert.period == str(Quarter.of(today)), SignalAlert.notified.is_(False)
                )
            ):
                alert.notified = True
        audit.record(
            session,
            Action.SIGNALS_RAISED,
            now,
            signals=len(signals),
            recipients=sum(d.ok for d in deliveries),
            failed=sum(not d.ok for d in deliveries),
        )
    session.flush()
    return RunResult(True, None, notices, deliveries)
