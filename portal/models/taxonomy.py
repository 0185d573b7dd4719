"""Queues, categories, coarse organisation units and routing rules (from the taxonomy file)."""

from __future__ import annotations

import enum
from typing import ClassVar

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import Slug, Translations


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[Slug] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_fallback: Mapped[bool] = mapped_column(default=False)
    #: The fields the taxonomy file may translate (``label_zh_CN``), and their translations.
    TRANSLATED: ClassVar[tuple[str, ...]] = ("name", "description")
    translations: Mapped[Translations]


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable code: reports and rules refer to it, labels may change.
    code: Mapped[Slug] = mapped_column(unique=True)
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    #: The fields the taxonomy file may translate (``label_zh_CN``), and their translations.
    TRANSLATED: ClassVar[tuple[str, ...]] = ("label", "description")
    translations: Mapped[Translations]


class OrgUnitKind(enum.StrEnum):
    SITE = "site"
    DEPARTMENT = "department"


class OrgUnit(Base):
    """A site or department a reporter may name (or not) as a coarse attribute of a concern."""

    __tablename__ = "org_units"
    __table_args__ = (UniqueConstraint("kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[Slug]
    label: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    # Employees in the unit (configuration, for reports per 100 employees). A unit below the
    # policy's insights_min_headcount is merged into "other" in every insight; None = unknown.
    headcount: Mapped[int | None]
    #: The fields the taxonomy file may translate (``label_zh_CN``), and their translations.
    TRANSLATED: ClassVar[tuple[str, ...]] = ("label",)
    translations: Mapped[Translations]


class RoutingRule(Base):
    """First matching rule (by position) picks the queue and, optionally, the priority; an empty
    match field matches anything. Keywords are matched in memory against the reporter's text at
    submission; which rule matched is never stored."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int]
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    # One keyword or phrase per line (English, Chinese ...); any one of them matching is enough.
    keywords: Mapped[str] = mapped_column(Text, default="")
    # A priority code (see ``Priority``) given to matching cases; empty keeps "normal".
    priority: Mapped[str | None] = mapped_column(String(16))


class StatusKind(enum.StrEnum):
    """What the workflow engine needs to know of a configurable status."""

    NEW = "new"  # exactly one: where every case starts
    ACKNOWLEDGED = "acknowledged"  # at most one: where acknowledging moves a new case
    OPEN = "open"  # any number: work in progress
    CLOSED = "closed"  # exactly one: needs an outcome; leaving it needs a reason


class WorkflowStatus(Base):
    __tablename__ = "workflow_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[Slug] = mapped_column(unique=True)
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    #: The fields the taxonomy file may translate (``label_zh_CN``), and their translations.
    TRANSLATED: ClassVar[tuple[str, ...]] = ("label",)
    translations: Mapped[Translations]


class Outcome(Base):
    """How a closed case ended. ``substantiated`` feeds the substantiation rate (NAVEX:
    substantiated + partly substantiated over closed cases with an outcome)."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[Slug] = mapped_column(unique=True)
    label: Mapped[str] = mapped_column(String(200))
    substantiated: Mapped[bool] = mapped_column(default=False)
    # Days a case closed with this outcome is kept before it is purged; None: the policy's
    # ``retention_days``.
    retention_days: Mapped[int | None]
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    #: The fields the taxonomy file may translate (``label_zh_CN``), and their translations.
    TRANSLATED: ClassVar[tuple[str, ...]] = ("label",)
    translations: Mapped[Translations]


class Policy(Base):
    """The organisation's case-handling policy: one row (id 1), loaded from the taxonomy file's
    ``[policy]`` table and editable by admins. Deadlines apply to cases received after a change;
    each case keeps the due days computed when it arrived."""

    __tablename__ = "policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    acknowledge_days: Mapped[int] = mapped_column(default=7)
    feedback_months: Mapped[int] = mapped_column(default=3)
    due_soon_days: Mapped[int] = mapped_column(default=2)
    # Smallest group an aggregate report may show (DESIGN.md invariant 5); never below 3.
    anonymity_threshold: Mapped[int] = mapped_column(default=5)
    # Sites and departments with fewer employees are reported as "other" in insights.
    insights_min_headcount: Mapped[int] = mapped_column(default=20)
    # Concerns about one category in one site or department in one quarter that raise an
    # aggregate alert to the queues handling them; never below the anonymity threshold.
    signal_threshold: Mapped[int] = mapped_column(default=5)
    # Whether a reporter may send an attachment that cannot be cleaned of its metadata as it
    # is, after ticking a warning; off by default (such a file is refused).
    attachments_keep_uncleaned: Mapped[bool] = mapped_column(default=False)
    # Retention: a closed case is purged this many days after closing (unless its outcome sets
    # its own period), and its holders are warned this many days before.
    retention_days: Mapped[int] = mapped_column(default=730)
    retention_warning_days: Mapped[int] = mapped_column(default=30)


class Tag(Base):
    """A shared triage label (e.g. "interim protection", "legal review"). Tags are
    configuration, stored in the clear like categories: they must never name a person or carry
    case detail; what staff write about a case goes into encrypted notes."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
