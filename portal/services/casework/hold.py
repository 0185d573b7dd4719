"""Legal hold: keep one case out of the retention job's reach while proceedings need it.

An organisation under a litigation hold, a regulator's inquiry or a police investigation must
be able to stop a case from being deleted under the retention policy (``services.retention``)
without reopening it (which would falsify its status and its deadlines), and lift that later.

- A hold is placed and lifted by an ombudsperson who holds the case's key, like closing and
  reopening it; a case one cannot open is ``NoAccess``, the same as one that does not exist.
- Placing needs a reason of 1 to ``HOLD_REASON_MAX_CHARS`` characters (cleaned like all text).
  It is kept only as an encrypted internal note in the case's thread, starting
  ``HOLD_NOTE_PREFIX``: never in a column, never in the audit log, which records that a hold
  was placed or lifted, by whom and when.
- The case keeps only the day the hold was placed (``Case.held_on``), a date like every other
  date of a case.
- A held case, open or closed, is never warned about nor deleted by the retention job, and the
  case list's "will be deleted" notice leaves it out.
- Placing or lifting a hold forgets any retention warning already given
  (``Case.purge_warned_on``). So a closed case whose period ran out during the hold is not
  deleted at the next run after the lift: its holders are warned again, and the purge waits the
  whole warning period from that new warning.

Each action is audited in the same transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.errors import InvalidInput, InvalidTransition
from portal.i18n.wording import N_
from portal.models import Case, MessageAuthor, StaffUser, Visibility
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases, thread
from portal.services.casework.text import clean_text

#: The longest reason for a hold, in characters after cleaning (docs/limits.md).
HOLD_REASON_MAX_CHARS = 1000
#: The internal note that keeps the reason, encrypted like every note. Stored in English like
#: the reopening note (``workflow.REOPEN_NOTE_PREFIX``).
HOLD_NOTE_PREFIX = "Reason for the legal hold: "
#: The form field a refusal belongs next to.
REASON_FIELD = "hold_reason"


def is_held(case: Case) -> bool:
    return case.held_on is not None


def place(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    reason: str,
    now: dt.datetime,
    *,
    reason_max_chars: int = HOLD_REASON_MAX_CHARS,
) -> Case:
    """Put the case on legal hold, with ``reason`` kept as an encrypted internal note. The row
    is locked first: a purge running on this case either sees the hold, or has deleted the case
    and this is NoAccess (``retention.not_held``)."""
    case, keys = cases.unlock_keys(session, user, private_key, handle, lock=True)
    if is_held(case):
        # A colleague placed it since the page was shown; what was typed is shown back.
        raise InvalidTransition(
            N_("This case is already on legal hold. Add what you typed as an internal note."),
            field=REASON_FIELD,
        )
    text = clean_text(reason, REASON_FIELD, reason_max_chars, required=False)
    if not text:
        raise InvalidInput(REASON_FIELD, N_("Give the reason for the legal hold."))
    case.held_on = now.date()
    # A warning given before the hold no longer counts: see the module's docstring.
    case.purge_warned_on = None
    thread.append(
        session,
        case,
        keys,
        author=MessageAuthor.STAFF,
        visibility=Visibility.INTERNAL,
        text=HOLD_NOTE_PREFIX + text,
        today=now.date(),
        now=now,
        staff=user,
    )
    # The reason is in the encrypted note only: the chain records that it happened.
    audit.record(session, Action.CASE_HOLD_PLACED, now, actor=user, case=case)
    session.flush()
    return case


def lift(
    session: Session, user: StaffUser, private_key: bytes, handle: str, now: dt.datetime
) -> Case:
    """End the case's legal hold. A closed case is then warned about again before any purge."""
    case, _case_key = cases.unlock(session, user, private_key, handle, lock=True)
    if not is_held(case):
        raise InvalidTransition(N_("This case is not on legal hold."), field="hold")
    case.held_on = None
    # The retention clock's warning starts afresh: nothing is deleted without a new notice.
    case.purge_warned_on = None
    audit.record(session, Action.CASE_HOLD_LIFTED, now, actor=user, case=case)
    session.flush()
    return case
