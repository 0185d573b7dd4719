"""The unit of work of a request (``portal.web.transactions``): its writes are committed once,
or none of them is; bad input is rolled back and comes back on its form field with what was
typed. Each test looks at what the database holds, through a session of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms import StringField

from portal.errors import InvalidInput, InvalidTransition, NoAccess, WrongCode
from portal.models import Tag
from portal.web import state
from portal.web.forms import PortalForm
from portal.web.transactions import commit_or_form_error, discard, unit_of_work


class LabelForm(PortalForm):
    class Meta:
        csrf = False

    label = StringField()
    roles = StringField()


@pytest.fixture
def commits(app: Flask) -> Iterator[list[int]]:
    """A POST request's context, and the commits of its session (one entry per commit)."""
    with app.test_request_context("/", method="POST", data={"label": "typed by hand"}):
        seen: list[int] = []
        event.listen(state.db(), "after_commit", lambda _session: seen.append(1))
        yield seen


def _stored(db: Session) -> list[str]:
    db.rollback()  # a fresh read: what the request committed, nothing else
    return list(db.scalars(select(Tag.label).order_by(Tag.label)))


def _flush_tag(label: str) -> None:
    """What a service does: add and flush, never commit."""
    state.db().add(Tag(label=label))
    state.db().flush()


def test_a_block_that_ends_normally_is_committed_once(commits: list[int], db: Session) -> None:
    form = LabelForm()
    with commit_or_form_error(form) as work:
        _flush_tag("first")
        _flush_tag("second")

    assert work.committed
    assert work.refusal is None
    assert commits == [1]
    assert _stored(db) == ["first", "second"]
    assert form.errors == {}


def test_bad_input_is_rolled_back_and_shown_on_its_field(commits: list[int], db: Session) -> None:
    form = LabelForm()
    with commit_or_form_error(form) as work:
        _flush_tag("half-way")
        raise InvalidInput("label", "Keep it under 40 characters.")

    assert not work.committed
    assert commits == []
    assert _stored(db) == []  # what was flushed before the refusal is gone too
    assert form.label.errors == ["Keep it under 40 characters."]
    assert form.label.data == "typed by hand"  # the form comes back with what was typed
    assert work.refusal is not None
    assert work.refusal.field == "label"


def test_a_service_argument_is_renamed_to_the_form_field(commits: list[int], db: Session) -> None:
    form = LabelForm()
    with commit_or_form_error(form, fields={"role": "roles"}) as work:
        raise InvalidInput("role", "Choose a role.")

    assert form.roles.errors == ["Choose a role."]
    assert not form.label.errors
    assert work.refusal is not None
    assert work.refusal.field == "roles"
    assert commits == []


def test_a_refused_workflow_move_goes_to_the_field_it_names(
    commits: list[int], db: Session
) -> None:
    form = LabelForm()
    with commit_or_form_error(form) as work:
        _flush_tag("moved")
        raise InvalidTransition("Closing needs an outcome.", field="label")

    assert form.label.errors == ["Closing needs an outcome."]
    assert not work.committed
    assert _stored(db) == []


def test_an_error_without_a_field_of_the_form_goes_above_it(
    commits: list[int], db: Session
) -> None:
    form = LabelForm()
    with commit_or_form_error(form):
        raise InvalidInput("nowhere", "Try again.")

    assert form.form_errors == ["Try again."]


def test_any_other_exception_rolls_back_and_goes_on(commits: list[int], db: Session) -> None:
    form = LabelForm()
    with pytest.raises(NoAccess), commit_or_form_error(form):
        _flush_tag("not yours")
        raise NoAccess

    assert commits == []
    assert _stored(db) == []
    assert form.errors == {}


def test_a_kept_exception_commits_what_was_flushed_and_goes_on(
    commits: list[int], db: Session
) -> None:
    with pytest.raises(WrongCode), unit_of_work(keep=(WrongCode,)):
        _flush_tag("audit of the failure")
        raise WrongCode

    assert commits == [1]
    assert _stored(db) == ["audit of the failure"]


def test_a_cancelled_block_stores_nothing(commits: list[int], db: Session) -> None:
    form = LabelForm()
    with commit_or_form_error(form) as work:
        _flush_tag("mail refused")
        work.cancel()

    assert not work.committed
    assert work.refusal is None
    assert commits == []
    assert _stored(db) == []


def test_a_failed_commit_goes_on_and_stores_nothing(commits: list[int], db: Session) -> None:
    db.add(Tag(label="taken"))
    db.commit()
    form = LabelForm()
    with pytest.raises(IntegrityError), commit_or_form_error(form):
        state.db().add(Tag(label="taken"))  # flushed only by the commit, which fails

    discard()  # what the page answering it does first
    assert commits == []
    assert _stored(db) == ["taken"]
    assert form.errors == {}


def test_discard_drops_what_was_flushed(commits: list[int], db: Session) -> None:
    _flush_tag("flushed, never committed")
    discard()
    state.db().commit()

    assert _stored(db) == []
