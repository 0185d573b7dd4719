"""A case's thread: appending and reading encrypted messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import Case, Message, MessageAuthor, StaffUser, Visibility
from portal.services import content


@dataclass(frozen=True)
class ThreadEntry:
    author: MessageAuthor
    author_name: str | None  # staff display name; None for the reporter and the system
    visibility: Visibility
    day: dt.date
    time: dt.datetime | None  # exact time for staff entries only
    text: str
    message_id: str = ""  # to place the attachments that came with it


def append(
    session: Session,
    case: Case,
    case_key: bytes,
    *,
    author: MessageAuthor,
    visibility: Visibility,
    text: str,
    today: dt.date,
    now: dt.datetime | None = None,
    staff: StaffUser | None = None,
) -> Message:
    """Add an entry. A reporter entry must not carry an exact time (DESIGN.md invariant 3)."""
    if author is MessageAuthor.REPORTER and now is not None:
        raise ValueError("reporter messages carry the day only")
    count = session.scalar(
        select(func.count()).select_from(Message).where(Message.case_id == case.id)
    )
    message_id = crypto.random_id()
    body = content.MessageBody(seq=(count or 0) + 1, text=text)
    message = Message(
        id=message_id,
        case_id=case.id,
        author=author.value,
        author_staff_id=staff.id if staff else None,
        visibility=visibility.value,
        created_on=today,
        created_at=now,
        ciphertext=content.seal_message(case_key, case.id, message_id, body),
    )
    session.add(message)
    session.flush()
    return message


def read(
    session: Session, case: Case, case_key: bytes, *, include_internal: bool
) -> list[ThreadEntry]:
    stmt = select(Message).where(Message.case_id == case.id)
    if not include_internal:
        stmt = stmt.where(Message.visibility == Visibility.REPORTER.value)
    entries: list[tuple[int, str, ThreadEntry]] = []
    names: dict[int, str] = {}
    for message in session.scalars(stmt):
        body = content.open_message(case_key, case.id, message.id, message.ciphertext)
        name = None
        if message.author_staff_id is not None:
            if message.author_staff_id not in names:
                staff = session.get(StaffUser, message.author_staff_id)
                names[message.author_staff_id] = staff.display_name if staff else "?"
            name = names[message.author_staff_id]
        entry = ThreadEntry(
            author=MessageAuthor(message.author),
            author_name=name,
            visibility=Visibility(message.visibility),
            day=message.created_on,
            time=message.created_at,
            text=body.text,
            message_id=message.id,
        )
        entries.append((body.seq, message.id, entry))
    entries.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in entries]
