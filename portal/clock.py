"""The clock: the current time as an aware UTC datetime, the default of ``PortalState.clock``
and what the commands stamp their changes with. Nothing in the portal reads a naive or local
time (ruff's DTZ rules)."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
