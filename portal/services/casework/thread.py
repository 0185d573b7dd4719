"""A case's thread: appending and reading encrypted messages.

Each message is sealed in the bound format (``content.MESSAGE_BOUND``): its ciphertext is bound
to the case, the row, its visibility, its author kind, its author and its times, so a row whose
clear columns were changed in the database (an internal note made reporter-visible, a reporter
message made "written by" a staff member) or whose ciphertext was moved from another row or case
does not decrypt. Such a row is refused: never shown, counted in ``Thread.refused`` so that the
case page says a message could not be verified.

Reporter-visible messages are under the case key (the reporter holds it); internal notes are
under the case's staff-only key, which is sealed to staff holders only (``CaseAccess``), so a
receipt plus a copy of the database reads no note.

Cases from before this format (``Case.thread_version`` 0) are migrated when a staff holder next
opens them (``keys_for_holder``): a staff-only key is made and sealed to every holder, and each
legacy message is sealed again in the bound format. Until then their legacy messages are shown as
unverified. Once a case is migrated, or holds any bound message or any sealed staff-only key, a
legacy row is refused: setting a row's format back to legacy (a downgrade) gains nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.models import (
    Case,
    CaseAccess,
    Message,
    MessageAuthor,
    PendingRegrant,
    StaffUser,
    Visibility,
)
from portal.services.attachments import store as attachments
from portal.services.casework import content

logger = logging.getLogger(__name__)

NO_STAFF_KEY = N_(
    "Your copy of this case's key for internal notes is missing, so you cannot write a note."
    " Ask a colleague who holds the case to grant it to you again."
)

#: ``Case.thread_version`` of a case whose messages are all in the bound format.
THREAD_BOUND = 1


@dataclass(frozen=True)
class CaseKeys:
    """The keys a case is read with: the case key, and the staff-only key of its internal notes
    (None on the reporter's side, or for a holder whose copy of it was lost)."""

    case: bytes
    staff: bytes | None = None


@dataclass(frozen=True)
class ThreadEntry:
    author: MessageAuthor
    author_name: str | None  # staff display name; None for the reporter and the system
    visibility: Visibility
    day: dt.date
    time: dt.datetime | None  # exact time for staff entries only
    text: str
    message_id: str = ""  # to place the attachments that came with it
    # False for a legacy message of a case not migrated yet: its columns are not bound.
    verified: bool = True


@dataclass(frozen=True)
class Thread:
    entries: list[ThreadEntry]
    refused: int = 0  # rows that did not verify (changed, moved, downgraded): not shown
    withheld: int = 0  # internal notes this reader holds no staff-only key for


def _columns(message: Message) -> content.MessageColumns:
    return content.MessageColumns(
        case_id=message.case_id,
        message_id=message.id,
        visibility=message.visibility,
        author=message.author,
        author_staff_id=message.author_staff_id,
        created_on=message.created_on,
        created_at=message.created_at,
    )


def append(
    session: Session,
    case: Case,
    keys: CaseKeys,
    *,
    author: MessageAuthor,
    visibility: Visibility,
    text: str,
    today: dt.date,
    now: dt.datetime | None = None,
    staff: StaffUser | None = None,
) -> Message:
    """Add an entry. A reporter entry must not carry an exact time (DESIGN.md invariant 3); an
    internal note needs the staff-only key and is never under the case key."""
    if author is MessageAuthor.REPORTER and now is not None:
        raise ValueError("reporter messages carry the day only")
    if author is MessageAuthor.REPORTER and visibility is not Visibility.REPORTER:
        raise ValueError("a reporter message is reporter-visible")
    key = keys.staff if visibility is Visibility.INTERNAL else keys.case
    if key is None:
        raise InvalidInput("text", NO_STAFF_KEY)
    count = session.scalar(
        select(func.count()).select_from(Message).where(Message.case_id == case.id)
    )
    message = Message(
        id=crypto.random_id(),
        case_id=case.id,
        author=author.value,
        author_staff_id=staff.id if staff else None,
        visibility=visibility.value,
        created_on=today,
        created_at=now.astimezone(dt.UTC) if now is not None else None,
        ad_version=content.MESSAGE_BOUND,
        ciphertext=b"",
    )
    body = content.MessageBody(seq=(count or 0) + 1, text=text)
    message.ciphertext = content.seal_bound_message(key, _columns(message), body)
    session.add(message)
    session.flush()
    return message


def is_bound(session: Session, case: Case) -> bool:
    """Whether legacy rows are refused in this case: it was migrated, or anything in it was
    written in the bound format. Each sign is checked, so clearing one of them (the case's
    version column, say) does not make the case accept legacy rows again."""
    if case.thread_version >= THREAD_BOUND or case.staff_key_tag is not None:
        return True
    bound_message = session.scalar(
        select(Message.id)
        .where(Message.case_id == case.id, Message.ad_version != content.MESSAGE_LEGACY)
        .limit(1)
    )
    if bound_message is not None:
        return True
    staff_key = session.scalar(
        select(CaseAccess.staff_id)
        .where(CaseAccess.case_id == case.id, CaseAccess.sealed_staff_key.is_not(None))
        .limit(1)
    )
    return staff_key is not None


def _open(message: Message, keys: CaseKeys, bound: bool) -> tuple[int, ThreadEntry] | str:
    """(seq, entry), or why the row is not shown: "refused" or "withheld"."""
    try:
        visibility = Visibility(message.visibility)
        author = MessageAuthor(message.author)
    except ValueError:
        return "refused"
    try:
        if message.ad_version == content.MESSAGE_BOUND:
            key = keys.staff if visibility is Visibility.INTERNAL else keys.case
            if key is None:
                return "withheld"
            body = content.open_bound_message(key, _columns(message), message.ciphertext)
            verified = True
        elif message.ad_version == content.MESSAGE_LEGACY and not bound:
            body = content.open_message(keys.case, message.case_id, message.id, message.ciphertext)
            verified = False
        else:
            return "refused"
    except (crypto.DecryptionFailed, ValueError, KeyError, TypeError):
        return "refused"
    entry = ThreadEntry(
        author=author,
        author_name=None,
        visibility=visibility,
        day=message.created_on,
        time=message.created_at,
        text=body.text,
        message_id=message.id,
        verified=verified,
    )
    return body.seq, entry


def read(session: Session, case: Case, keys: CaseKeys, *, include_internal: bool) -> Thread:
    """The thread as its reader may see it, in its order. Rows that do not verify are left out
    and counted; nothing of their content is read or logged."""
    stmt = select(Message).where(Message.case_id == case.id)
    if not include_internal:
        stmt = stmt.where(Message.visibility == Visibility.REPORTER.value)
    bound = is_bound(session, case)
    entries: list[tuple[int, str, ThreadEntry]] = []
    names: dict[int, str] = {}
    refused = withheld = 0
    for message in session.scalars(stmt):
        opened = _open(message, keys, bound)
        if opened == "withheld":
            withheld += 1
            continue
        if isinstance(opened, str):
            refused += 1
            continue
        seq, entry = opened
        if message.author_staff_id is not None:
            if message.author_staff_id not in names:
                staff = session.get(StaffUser, message.author_staff_id)
                names[message.author_staff_id] = staff.display_name if staff else "?"
            entry = replace(entry, author_name=names[message.author_staff_id])
        entries.append((seq, message.id, entry))
    entries.sort(key=lambda item: (item[0], item[1]))
    return Thread([entry for _, _, entry in entries], refused=refused, withheld=withheld)


def seal_staff_key_to(public_key: bytes, staff_key: bytes | None) -> bytes | None:
    """A holder's sealed copy of the staff-only key (None when the sealer has none to give)."""
    return None if staff_key is None else crypto.seal(public_key, staff_key)


def keys_for_holder(
    session: Session, case: Case, access: CaseAccess, private_key: bytes, case_key: bytes
) -> CaseKeys:
    """The keys of a case for one staff holder (``access`` is their row, ``case_key`` already
    unsealed from it). A case that has no staff-only key yet (made before it existed) is
    migrated here, in the caller's transaction: a new staff-only key sealed to every holder
    not awaiting a re-grant, and every legacy message sealed again in the bound format."""
    if access.sealed_staff_key is not None:
        try:
            staff_key = crypto.unseal(private_key, access.sealed_staff_key)
        except crypto.DecryptionFailed:
            logger.warning("case %s: a sealed staff-only key does not open", case.handle)
            return CaseKeys(case_key)
        tag = case.staff_key_tag
        expected = crypto.staff_key_tag(case_key, case.id, staff_key)
        if tag is None or not crypto.constant_time_equal(tag, expected):
            # Sealed by someone who does not hold the case key: notes under it are not theirs
            # to vouch for, so none is shown (they count as withheld).
            logger.warning("case %s: a staff-only key does not match its case", case.handle)
            return CaseKeys(case_key)
        return CaseKeys(case_key, staff_key)
    if not is_bound(session, case):
        # Two holders opening a legacy case at once must not each make a staff-only key (the
        # later one would orphan notes written under the earlier one): take the case's row lock
        # (PostgreSQL; SQLite has one writer at a time) and look again.
        session.refresh(case, with_for_update=True)
        session.refresh(access)
        if access.sealed_staff_key is not None:
            return keys_for_holder(session, case, access, private_key, case_key)
    if is_bound(session, case):
        # Migrated already, but this copy carries no staff-only key: the notes stay closed to
        # this holder until a colleague grants the case again.
        return CaseKeys(case_key)
    keys = CaseKeys(case_key, crypto.new_key())
    if migrate(session, case, keys) is None:
        return CaseKeys(case_key)
    return keys


def migrate(session: Session, case: Case, keys: CaseKeys) -> int | None:
    """Seal the staff-only key to every holder of the case and every legacy message again in
    the bound format; mark the case migrated. Returns how many messages were sealed again.

    Nothing is changed, and None returned, when any legacy row does not open or names no known
    visibility or author: a genuine legacy row always does, so the case was tampered with (bound
    rows set back to legacy, say), and sealing its rows in the bound format would vouch for
    whatever the attacker wrote. Its rows stay unverified or refused."""
    staff_key = keys.staff
    if staff_key is None:
        raise ValueError("migrating a thread needs the staff-only key")
    legacy: list[tuple[Message, Visibility, content.MessageBody]] = []
    for message in session.scalars(
        select(Message).where(
            Message.case_id == case.id, Message.ad_version == content.MESSAGE_LEGACY
        )
    ):
        try:
            visibility = Visibility(message.visibility)
            MessageAuthor(message.author)
            body = content.open_message(keys.case, case.id, message.id, message.ciphertext)
        except (crypto.DecryptionFailed, ValueError, KeyError, TypeError):
            logger.warning("case %s: a legacy message does not open; not migrated", case.handle)
            return None
        legacy.append((message, visibility, body))
    legacy_files = attachments.legacy_metadata(session, case.id, keys.case)
    if legacy_files is None:
        logger.warning("case %s: a legacy attachment does not open; not migrated", case.handle)
        return None
    pending = set(
        session.scalars(select(PendingRegrant.staff_id).where(PendingRegrant.case_id == case.id))
    )
    for row, public_key in session.execute(
        select(CaseAccess, StaffUser.public_key)
        .join(StaffUser, StaffUser.id == CaseAccess.staff_id)
        .where(CaseAccess.case_id == case.id)
    ):
        if row.staff_id not in pending:
            row.sealed_staff_key = crypto.seal(public_key, staff_key)
    for message, visibility, body in legacy:
        key = staff_key if visibility is Visibility.INTERNAL else keys.case
        message.ciphertext = content.seal_bound_message(key, _columns(message), body)
        message.ad_version = content.MESSAGE_BOUND
    attachments.reseal(keys.case, legacy_files)
    case.thread_version = THREAD_BOUND
    case.staff_key_tag = crypto.staff_key_tag(keys.case, case.id, staff_key)
    session.flush()
    logger.info("case %s: %d messages sealed again in the bound format", case.handle, len(legacy))
    return len(legacy)
