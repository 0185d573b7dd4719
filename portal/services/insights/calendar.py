"""The calendar of publication: complete quarters, and the day their figures are released."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from portal.errors import InvalidInput
from portal.i18n.wording import N_

_PERIOD = re.compile(r"(\d{4})-Q([1-4])", re.ASCII)


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _PERIOD.fullmatch(text)
        if match is None:
            raise InvalidInput("period", N_("A period is a calendar quarter such as 2026-Q3."))
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        """The first day after the quarter."""
        return self.next().start

    @property
    def months(self) -> tuple[str, ...]:
        return tuple(f"{self.year}-{3 * self.number - 2 + i:02d}" for i in range(3))

    def next(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )


def release_date(today: dt.date) -> dt.date:
    """The "as of" date of figures computed today: the first day of the month."""
    return today.replace(day=1)


def complete_quarters(first_case: dt.date | None, as_of: dt.date) -> list[Quarter]:
    """The quarters from the first case's up to the last one that ended by ``as_of``."""
    if first_case is None:
        return []
    quarters = []
    q = Quarter.of(first_case)
    while q.end <= as_of:
        quarters.append(q)
        q = q.next()
    return quarters
