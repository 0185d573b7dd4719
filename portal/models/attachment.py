"""Attachments: files a reporter sent, stored only as ciphertext chunks under the case key.

The database, not a local disk, holds them, so that every app server can read them. In the
clear a row has its case, who sent it (the reporter, for now) and the day; its name, type,
size, whether it was cleaned and the message it came with are inside ``meta_ciphertext``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import Blob, RandomId

_NO_ROWID = {"sqlite_with_rowid": False}


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (_NO_ROWID,)

    id: Mapped[RandomId]
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))  # a MessageAuthor value
    # A day, like every reporter event (DESIGN.md invariant 3).
    created_on: Mapped[dt.date] = mapped_column(Date)
    meta_ciphertext: Mapped[Blob]
    # 0: legacy, bound to the case and id only; 1: also to ``author`` and ``created_on``
    # (``attachments.META_BOUND``). Legacy rows are refused once the case is migrated.
    ad_version: Mapped[int] = mapped_column(default=0)


class AttachmentChunk(Base):
    """One piece of an attachment's content (``attachments.CHUNK_BYTES`` of plaintext at most),
    encrypted with associated data naming its case, attachment, place and whether it is the
    last, so pieces cannot be moved, reordered or cut off unnoticed."""

    __tablename__ = "attachment_chunks"
    __table_args__ = (_NO_ROWID,)

    attachment_id: Mapped[str] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    ciphertext: Mapped[Blob]
