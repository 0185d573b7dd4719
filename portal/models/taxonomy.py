"""Queues, categories, coarse organisation units and routing rules (from the taxonomy file)."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import Slug


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[Slug] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_fallback: Mapped[bool] = mapped_column(default=False)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable code: reports and rules refer to it, labels may change.
    code: Mapped[Slug] = mapped_column(unique=True)
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


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


class RoutingRule(Base):
    """First matching rule (by position) picks the queue; an empty match field matches anything."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int]
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
