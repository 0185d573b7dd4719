"""Reusable column types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from sqlalchemy import JSON, DateTime, LargeBinary, String
from sqlalchemy.orm import mapped_column
from sqlalchemy.types import TypeDecorator

#: A random 128-bit identifier in hex (see ``crypto.random_id``).
RandomId = Annotated[str, mapped_column(String(32), primary_key=True)]
Blob = Annotated[bytes, mapped_column(LargeBinary)]
Slug = Annotated[str, mapped_column(String(64))]
#: Translations of a taxonomy row's labels, ``{locale: {field: text}}`` (see
#: ``portal.i18n.labels``). Assign a new dict to change it: in-place changes of a JSON value are
#: not tracked.
Translations = Annotated[
    dict[str, dict[str, str]], mapped_column(JSON, default=dict, server_default="{}")
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Exact times, for staff events only; stored as UTC, returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: object
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite keeps no zone
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
