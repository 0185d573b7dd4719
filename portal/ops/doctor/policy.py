"""The organisation's policy and what has been published under it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import InsightRelease, Policy, SignalAlert
from portal.ops.doctor.core import CheckResult, _fail, _ok
from portal.services.configuration.policy import MIN_THRESHOLD, POLICY_ID, PolicyValues


def check_threshold(session: Session) -> CheckResult:
    """The anonymity threshold (and the signal threshold that must not undercut it) as stored.
    The admin console and the taxonomy loader refuse values below 3; this catches a value set
    directly in the database."""
    name = "anonymity-threshold"
    row = session.get(Policy, POLICY_ID)  # read only: policy.current() would insert the row
    k = row.anonymity_threshold if row else PolicyValues.anonymity_threshold
    signal = row.signal_threshold if row else PolicyValues.signal_threshold
    if k < MIN_THRESHOLD:
        return _fail(
            name,
            f"the anonymity threshold is {k}: reports may show groups of {k} concerns or fewer,"
            f" which can identify reporters (never below {MIN_THRESHOLD})",
            f"set anonymity_threshold to {MIN_THRESHOLD} or more in the admin console"
            f" (Policy) or in the taxonomy file's [policy] table (default 5)",
        )
    if signal < max(k, MIN_THRESHOLD):
        return _fail(
            name,
            f"the signal threshold is {signal}, below the anonymity threshold {k}: an alert"
            " would name a group smaller than any report may show",
            f"set signal_threshold to at least {max(k, MIN_THRESHOLD)} in the admin console"
            " (Policy)",
        )
    source = "policy" if row else "default policy (no policy row yet)"
    return _ok(name, f"{source}: anonymity threshold {k}, signal threshold {signal}")


def check_published_thresholds(session: Session) -> CheckResult:
    """Insight releases and signal alerts keep the threshold they were computed with; one below
    3 means figures or alerts for too small a group are already visible."""
    name = "insights-threshold"
    releases = list(
        session.scalars(
            select(InsightRelease.period)
            .where(InsightRelease.threshold < MIN_THRESHOLD)
            .order_by(InsightRelease.period)
            .distinct()
        )
    )
    alerts = session.scalar(
        select(func.count()).select_from(SignalAlert).where(SignalAlert.threshold < MIN_THRESHOLD)
    )
    if releases or alerts:
        found = []
        if releases:
            found.append(f"insight releases of {', '.join(releases)}")
        if alerts:
            found.append(f"{alerts} signal alert(s)")
        return _fail(
            name,
            f"{' and '.join(found)} were computed with a threshold below {MIN_THRESHOLD}",
            "raise the anonymity threshold, delete those rows from insight_releases (and"
            " signal_alerts) and run `portal insights refresh`, which recomputes them with the"
            " current threshold",
        )
    return _ok(name, f"every published insight and alert used a threshold of {MIN_THRESHOLD}+")
