"""What the database holds, read as an attacker with a copy of it would: every byte, every row."""

from __future__ import annotations

import contextlib
from pathlib import Path

from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.db import Base


def database_bytes(app: Flask) -> bytes:
    """Everything the database holds, as raw bytes: the files for SQLite, every row for
    PostgreSQL (cast to text, which renders bytea as hex and text as itself)."""
    state = app.extensions["portal"]
    engine = state.engine
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    chunks = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = text(f"SELECT t::text FROM {table.name} t")  # noqa: S608 - our table names
            for row in conn.execute(query):
                chunks.append(row[0].encode())
                # bytea is shown as hex: decode it too, so binary columns are searched as bytes
                for part in row[0].split("\\\\x")[1:]:
                    hexdigits = part.split(",")[0].split(")")[0].strip('"')
                    with contextlib.suppress(ValueError):
                        chunks.append(bytes.fromhex(hexdigits))
    return b"\n".join(chunks)


def assert_nowhere_in_the_database(db: Session, text: str) -> None:
    """Read every row of every table and look for ``text`` in its values, as text and bytes."""
    needle = text.encode()
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)):
            for value in row:
                if isinstance(value, str):
                    assert text not in value, f"found in {table.name}"
                elif isinstance(value, bytes | memoryview):
                    assert needle not in bytes(value), f"found in {table.name}"
