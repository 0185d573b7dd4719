"""The key the insights tests compute releases with (``insights.release_key``), as a server would
from its instance secret; tests that model the reader never use it (they replay every order)."""

from __future__ import annotations

from portal.services.insights import calendar as insights_calendar
from portal.services.insights import figures as insights

KEY = insights.release_key(b"an instance secret for the tests".ljust(32, b"."))


def order(quarter: insights_calendar.Quarter) -> insights.ComplementOrder:
    return insights.keyed_order(KEY, quarter)
