"""What `portal demo` loads into an empty portal: seven demo staff accounts (enrolled in the
second factor), five demo cases through the real intake and casework services, and the made-up
history of past quarters (``demo_history``) so that the insights pages have figures. The click
command (``portal.cli.main``) prints what this returns and commits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import PortalError
from portal.instance import InstanceSecrets
from portal.models import Case, Priority, Role, StaffUser, Visibility
from portal.ops import demo_history
from portal.services.accounts import accounts as staff
from portal.services.accounts import administration as admin
from portal.services.accounts import second_factor
from portal.services.casework import cases, triage
from portal.services.insights import figures as insights
from portal.services.reporting import intake
from portal.settings import Settings

DEMO_DOMAIN = "demo.invalid"
# Demo instances only: `portal demo` refuses a portal that has real staff accounts.
DEMO_PASSWORD = "portal-demo-password"  # noqa: S105  # nosec B105  # the published demo password
# The demo accounts' second factor, printed like the password: `portal totp` turns it into the
# current code, so nobody needs a phone to try the portal. Demo instances only, as above.
DEMO_TOTP_SECRET = "DEMO DEMO DEMO DEMO PORT ALXX"  # noqa: S105  # nosec B105  # the published demo secret, base32 (A-Z, 2-7)


DEMO_STAFF: list[dict[str, Any]] = [
    {
        "email": "alice",
        "name": "Alice Chen",
        "roles": [Role.OMBUDSPERSON],
        "queues": ["general", "hr"],
    },
    {
        "email": "bob",
        "name": "Bob Martin",
        "roles": [Role.OMBUDSPERSON],
        "queues": ["general", "ethics"],
    },
    {
        "email": "carol",
        "name": "Carol Okafor",
        "roles": [Role.OMBUDSPERSON],
        "queues": ["safety", "hr"],
    },
    {"email": "dora", "name": "Dora Lindqvist", "roles": [Role.OMBUDSPERSON], "queues": ["board"]},
    {"email": "admin", "name": "Portal Admin", "roles": [Role.ADMIN], "queues": []},
    # A second admin: a change that gives access needs one admin to ask and another to approve.
    {"email": "admin2", "name": "Second Admin", "roles": [Role.ADMIN], "queues": []},
    {"email": "manager", "name": "Mia Manager", "roles": [Role.MANAGEMENT], "queues": []},
]

DEMO_CASES: list[dict[str, Any]] = [
    {
        "days_ago": 20,
        "category": "dismissal",
        "site": "shanghai",
        "happened": "ongoing",
        "text": "My team lead says my contract will not be renewed and that I will get no "
        "severance unless I sign a resignation letter this week.",
        "ack": True,
        "reply": True,
        "status": "awaiting_reporter",
        "triage": {"priority": "high", "at_risk": True, "tags": ["Interim protection"]},
    },
    {
        "days_ago": 9,
        "category": "harassment",
        "department": "sales",
        "happened": "month-1",
        "text": "A senior colleague keeps making comments about my appearance in team meetings.",
        "ack": True,
        "status": "investigating",
    },
    {
        "days_ago": 6,
        "category": "safety",
        "site": "plant-north",
        "happened": "ongoing",
        "text": "The emergency exit at the back of hall B has been blocked by pallets for weeks.",
    },
    {
        "days_ago": 3,
        "category": "fraud",
        "happened": "month-2",
        "text": "Expense claims for a client dinner were submitted twice, once by each of two "
        "managers.",
        "named": ("Sam Lee", "sam.lee@example.org"),
        "exclude": ["alice"],
    },
    {
        "days_ago": 1,
        "category": "feedback",
        "happened": "ongoing",
        "text": "It would help if shift rotas were published two weeks ahead instead of one.",
    },
]


class RealStaffPresent(PortalError):
    """The portal has a staff account outside ``DEMO_DOMAIN``: no demo data goes into it."""


@dataclass
class Loaded:
    """What one `portal demo` did. ``receipts`` (category code, receipt) are the demo cases'
    and are shown once; empty with ``history`` 0 when the portal already held cases."""

    receipts: list[tuple[str, str]] = field(default_factory=list)
    history: int = 0


def _month(today: dt.date, spec: str) -> str:
    if not spec.startswith("month-"):
        return spec
    back = int(spec.split("-")[1])
    index = today.year * 12 + today.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _alice(
    session: Session,
    settings: Settings,
    by_email: dict[str, StaffUser],
    shared: crypto.SharedPasswordKeys | None,
) -> tuple[StaffUser, bytes]:
    """Alice, who works on the demo cases, with her private key: unwrapped with the key this run
    made her account with, or (an account made by an earlier run) by logging in."""
    alice = by_email[f"alice@{DEMO_DOMAIN}"]
    if shared is not None and alice.password_salt == shared.salt:
        return alice, shared.private_key(alice.key_by_password)
    return staff.authenticate(session, settings, alice.email, DEMO_PASSWORD)


def load(
    session: Session, settings: Settings, secrets: InstanceSecrets, now: dt.datetime
) -> Loaded:
    """Add the demo staff missing from the portal, then, if it holds no case yet, the demo cases
    and the made-up history. Flushes, never commits."""
    users = list(session.scalars(select(StaffUser)))
    if any(not u.email.endswith("@" + DEMO_DOMAIN) for u in users):
        raise RealStaffPresent("this portal has real staff accounts; refusing to add demo data")
    by_email = {u.email: u for u in users}
    # The accounts someone logs into keep the portal's full Argon2 costs; their published
    # password's hash and wrapping key are computed once for all seven (docs/security-model.md).
    shared: crypto.SharedPasswordKeys | None = None
    for spec in DEMO_STAFF:
        email = f"{spec['email']}@{DEMO_DOMAIN}"
        if email not in by_email:
            if shared is None:
                shared = crypto.SharedPasswordKeys(
                    DEMO_PASSWORD, settings.kdf_cost, settings.password_cost
                )
            by_email[email] = staff.create_staff(
                session,
                settings,
                email=email,
                display_name=spec["name"],
                roles=spec["roles"],
                queue_slugs=spec["queues"],
                password=DEMO_PASSWORD,
                now=now,
                shared_password=shared,
            ).user
            second_factor.assign_totp_secret(session, by_email[email], DEMO_TOTP_SECRET)
            # Made at the server like `portal create-staff`: audited, shown to the queues.
            admin.note_created_at_server(session, by_email[email], now)
    session.flush()
    loaded = Loaded()
    if session.scalar(select(Case.id).limit(1)) is not None:
        return loaded
    today = now.date()
    holder: tuple[StaffUser, bytes] | None = None  # Alice's key, unlocked once for every case
    for spec in DEMO_CASES:
        day = today - dt.timedelta(days=spec["days_ago"])
        named = spec.get("named")
        submitted = intake.submit(
            session,
            settings,
            secrets.pepper,
            intake.Concern(
                category_code=spec["category"],
                description=spec["text"],
                happened=_month(day, spec["happened"]),
                site_code=spec.get("site"),
                department_code=spec.get("department"),
                contact_name=named[0] if named else None,
                contact_details=named[1] if named else None,
                excluded_staff_ids=[
                    by_email[f"{e}@{DEMO_DOMAIN}"].id for e in spec.get("exclude", [])
                ],
            ),
            day,
        )
        loaded.receipts.append((spec["category"], submitted.receipt))
        if spec.get("ack") or spec.get("reply"):
            if holder is None:
                holder = _alice(session, settings, by_email, shared)
            alice, key = holder
            when = dt.datetime.combine(day + dt.timedelta(days=2), dt.time(10, 0), dt.UTC)
            cases.acknowledge(session, alice, key, submitted.handle, when)
            if spec.get("reply"):
                cases.add_message(
                    session,
                    settings,
                    alice,
                    key,
                    submitted.handle,
                    "Thank you for raising this. Can you tell us whether the resignation "
                    "letter was given to you in writing?",
                    Visibility.REPORTER,
                    when + dt.timedelta(hours=3),
                )
            if spec.get("status"):
                cases.set_status(
                    session,
                    alice,
                    key,
                    submitted.handle,
                    spec["status"],
                    when + dt.timedelta(hours=4),
                )
            if spec.get("triage"):
                values = spec["triage"]
                triage.triage(
                    session,
                    alice,
                    key,
                    submitted.handle,
                    triage.Triage(
                        priority=Priority(values["priority"]),
                        reporter_at_risk=values["at_risk"],
                        org_category_id=None,
                        new_tag=values["tags"][0],
                    ),
                    when + dt.timedelta(hours=5),
                )
    loaded.history = demo_history.load(
        session,
        settings,
        secrets.pepper,
        today,
        insights_key=insights.release_key(secrets.secret_key),
    )
    return loaded
