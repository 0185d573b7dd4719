"""Factories and constants the tests share: settings with cheap Argon2, the database under test,
and ``Portal``, which makes staff and cases through the real services."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.instance import InstanceSecrets
from portal.models import Role, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.accounts import second_factor
from portal.services.reporting import intake
from portal.settings import TEST_ARGON2, Settings

PASSWORD = "correct horse battery staple"
#: The second factor of every account made by ``Portal.staff`` (unless told otherwise).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
POSTGRES_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")
NO_POSTGRES = "PORTAL_TEST_DATABASE_URL is not set: PostgreSQL variants skipped"
NO_REDIS = "PORTAL_TEST_REDIS_URL is not set: Redis variants skipped"


def cheap_settings(instance: Path, database_url: str = "", **changes: object) -> Settings:
    settings = Settings(
        instance_path=instance,
        database_url=database_url,
        secure_cookies=False,
        # Other tests send many concerns from one test client; the submission limits have
        # their own tests (test_abuse_control.py), which set the limits they test.
        submit_max_per_client=10_000,
        submit_max_total=10_000,
    )
    return settings.with_argon2(TEST_ARGON2).replace(**changes)


@dataclass
class DatabaseUnderTest:
    url: str
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Portal:
    """Factories for the objects tests need, through the real services."""

    def __init__(
        self, app: Flask, session: Session, settings: Settings, secrets: InstanceSecrets
    ) -> None:
        self.app = app
        self.session = session
        self.settings = settings
        self.secrets = secrets

    def staff(
        self,
        name: str,
        *,
        roles: tuple[Role, ...] = (Role.OMBUDSPERSON,),
        queues: tuple[str, ...] = ("general",),
        password: str = PASSWORD,
        totp_secret: str | None = TOTP_SECRET,
    ) -> StaffUser:
        """A staff user, already enrolled with ``totp_secret`` (None: not enrolled, so the first
        log-in goes through enrolment)."""
        created = staff.create_staff(
            self.session,
            self.settings,
            email=f"{name}@example.org",
            display_name=name.capitalize(),
            roles=roles,
            queue_slugs=queues,
            password=password,
            now=dt.datetime.now(dt.UTC),
        )
        if totp_secret is not None:
            second_factor.assign_totp_secret(self.session, created.user, totp_secret)
        self.session.commit()
        return created.user

    def submit(self, today: dt.date | None = None, **fields: object) -> intake.Submitted:
        values: dict[str, object] = {
            "category_code": "other",
            "description": "Something worrying happened.",
            "happened": "ongoing",
        }
        values.update(fields)
        submitted = intake.submit(
            self.session,
            self.settings,
            self.secrets.pepper,
            intake.Concern(**values),  # type: ignore[arg-type]
            today or utc_today(),
        )
        self.session.commit()
        return submitted

    def private_key(self, user: StaffUser, password: str = PASSWORD) -> bytes:
        return staff.authenticate(self.session, self.settings, user.email, password)[1]
