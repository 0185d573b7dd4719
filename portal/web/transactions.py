"""The unit of work of a request: its writes are committed once, or none of them is.

Views stay thin (DESIGN.md §5): parse the form, call one service inside ``unit_of_work`` or
``commit_or_form_error``, render. The services flush and never commit; the block's end commits.
Whatever goes wrong inside the block rolls back everything the request flushed, so a refused
change never lands half-way and a page shown after it cannot commit any of it. This module is
the only place under ``portal/web`` that rolls a session back
(``tests/web/test_views_contract.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from flask import g
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, InvalidTransition
from portal.web import state
from portal.web.forms import PortalForm


@dataclass
class Work:
    """What became of one unit of work, for the view to answer."""

    #: The block ended and its writes are stored.
    committed: bool = False
    #: The refused input (``commit_or_form_error``), its message already on the form.
    refusal: InvalidInput | None = None
    cancelled: bool = False

    def cancel(self) -> None:
        """End the block rolled back instead of committed: a step after the service refused
        (say, the mail server did not take a one-time password), so nothing may be stored."""
        self.cancelled = True


def discard() -> None:
    """Throw away whatever this request flushed and did not commit. A connection that cannot
    even roll back (the database went away) is dropped instead; the next use takes a new one."""
    session: Session | None = g.get("db")
    if session is None:
        return
    try:
        session.rollback()
    except DBAPIError:
        session.invalidate()


@contextmanager
def unit_of_work(*, keep: tuple[type[BaseException], ...] = ()) -> Iterator[Work]:
    """Commit the request's session once when the block ends normally (unless cancelled).

    Any exception rolls back everything flushed and goes on, for the view to answer (an
    ``except`` around the block) or an error handler (``UnknownItem`` is the 404 page). An
    exception in ``keep`` commits first: what the service flushed on its way to it is a record
    of the failure itself (the audit event of a wrong password, the expiry of a request)."""
    session = state.db()
    work = Work()
    try:
        yield work
    except keep:
        session.commit()
        raise
    except BaseException:
        discard()
        raise
    if work.cancelled:
        discard()
        return
    # A failing commit propagates as it is: the database error pages roll back and say so.
    session.commit()
    work.committed = True


@contextmanager
def commit_or_form_error(
    form: PortalForm,
    *,
    fields: Mapping[str, str] | None = None,
    keep: tuple[type[BaseException], ...] = (),
) -> Iterator[Work]:
    """``unit_of_work`` for a form: bad input (``InvalidInput``, or a workflow move the rules
    refuse, ``InvalidTransition``) is rolled back, its message goes next to the field it names
    on ``form`` (``fields`` renames a service's argument to the form's field), and the block
    ends there without an exception. ``work.committed`` stays False, so the view shows the
    form again with what was typed and its status code."""
    try:
        with unit_of_work(keep=keep) as work:
            yield work
    except (InvalidInput, InvalidTransition) as error:
        field = (fields or {}).get(error.field, error.field)
        work.refusal = InvalidInput(field, error.message)
        form.field_error(work.refusal)
