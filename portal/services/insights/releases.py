"""What a release publishes: its views (each a partition of the quarter's cases), labels and
durations."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.services.insights import disclosure
from portal.services.insights.calendar import Quarter

VOLUME = "volume"
PROGRESS = "progress"
OTHER = disclosure.OTHER
NOT_GIVEN = "not-given"

#: The views of each release, in display order: every one a partition of the quarter's cases.
VOLUME_VIEWS = ("months", "category", "site", "department", "anonymity")
PROGRESS_VIEWS = ("outcome", "acknowledgement", "feedback")

ANONYMITY_ROWS = ("named", "anonymous_returned", "anonymous_silent")
#: "Not on time" is late, not done yet, or (feedback after a late acknowledgement) not yet due:
#: one row, because apart the rows would be tied to other views by the workflow (a closed case
#: was acknowledged) and by dates (only late arrivals can be "not yet due").
DEADLINE_ROWS = ("on_time", "not_on_time")

#: The version of the publication rule (docs/insights.md). Releases stored with method 1 (the
#: queue view, the category-by-site table, complements by size) keep their figures.
METHOD = 2


@dataclass(frozen=True)
class Label:
    code: str
    label: str


@dataclass(frozen=True)
class View:
    """A published table: ``None`` marks a hidden count. A 1-D view has one column, no column
    totals, and ``row_totals`` None."""

    name: str
    rows: tuple[Label, ...]
    columns: tuple[Label, ...]
    cells: tuple[tuple[int | None, ...], ...]
    row_totals: tuple[int | None, ...] | None
    column_totals: tuple[int | None, ...] | None
    total: int | None

    @property
    def is_cross(self) -> bool:
        return self.row_totals is not None

    def column(self, index: int = 0) -> tuple[int | None, ...]:
        return tuple(row[index] for row in self.cells)

    def value(self, code: str) -> int | None:
        """A 1-D view's count for row ``code`` (None: hidden or not a row)."""
        for label, row in zip(self.rows, self.cells, strict=True):
            if label.code == code:
                return row[0]
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": [[r.code, r.label] for r in self.rows],
            "columns": [[c.code, c.label] for c in self.columns],
            "cells": [list(row) for row in self.cells],
            "row_totals": None if self.row_totals is None else list(self.row_totals),
            "column_totals": None if self.column_totals is None else list(self.column_totals),
            "total": self.total,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> View:
        def labels(items: Iterable[Sequence[str]]) -> tuple[Label, ...]:
            return tuple(Label(code, label) for code, label in items)

        def opt(values: Sequence[int | None] | None) -> tuple[int | None, ...] | None:
            return None if values is None else tuple(values)

        return cls(
            name=data["name"],
            rows=labels(data["rows"]),
            columns=labels(data["columns"]),
            cells=tuple(tuple(row) for row in data["cells"]),
            row_totals=opt(data["row_totals"]),
            column_totals=opt(data["column_totals"]),
            total=data["total"],
        )


@dataclass(frozen=True)
class Durations:
    """Median and 90th percentile of whole days, over at least k cases (else None)."""

    median: float | None
    p90: float | None


@dataclass(frozen=True)
class Release:
    period: Quarter
    kind: str
    as_of: dt.date
    threshold: int
    total: int | None  # None: fewer than k cases, nothing else is published
    views: Mapping[str, View] = field(default_factory=dict)
    durations: Mapping[str, Durations] = field(default_factory=dict)
    # Configuration, not data: headcounts of the units shown (merged ones summed into "other").
    headcounts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    method: int = METHOD

    def to_json(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "period": str(self.period),
                "kind": self.kind,
                "as_of": self.as_of.isoformat(),
                "threshold": self.threshold,
                "total": self.total,
                "views": {name: view.to_json() for name, view in self.views.items()},
                "durations": {
                    name: {"median": d.median, "p90": d.p90} for name, d in self.durations.items()
                },
                "headcounts": {kind: dict(h) for kind, h in self.headcounts.items()},
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Release:
        data = json.loads(text)
        return cls(
            period=Quarter.parse(data["period"]),
            kind=data["kind"],
            as_of=dt.date.fromisoformat(data["as_of"]),
            threshold=data["threshold"],
            total=data["total"],
            views={name: View.from_json(v) for name, v in data["views"].items()},
            durations={
                name: Durations(d["median"], d["p90"]) for name, d in data["durations"].items()
            },
            headcounts=data["headcounts"],
            method=data.get("method", 1),
        )
