"""Triage: priority, the risk flag, the organisation's category beside the reporter's, and the
shared tag vocabulary, through the service and the case page."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, NoAccess
from portal.models import AuditEvent, Case, CaseTag, Category, Priority, StaffUser, Tag
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import triage
from portal.services.casework.triage import Triage
from tests.support.factories import Portal
from tests.support.html import field_errors, form_problems
from tests.support.pages import csrf_token, login

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _category(db: Session, code: str) -> Category:
    return db.scalars(select(Category).where(Category.code == code)).one()


def _tags(db: Session) -> list[str]:
    return sorted(db.scalars(select(Tag.label)))


def _case_tags(db: Session, case_id: str) -> list[str]:
    stmt = select(Tag.label).join(CaseTag, CaseTag.tag_id == Tag.id)
    return sorted(db.scalars(stmt.where(CaseTag.case_id == case_id)))


def _triaged(db: Session, case_id: str) -> list[dict[str, object]]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.case_id == case_id, AuditEvent.action == Action.CASE_TRIAGED)
        .order_by(AuditEvent.seq)
    )
    return [audit.detail_of(e) for e in db.scalars(stmt)]


def _run(portal: Portal, user: StaffUser, handle: str, values: Triage) -> list[str]:
    changed = triage.triage(portal.session, user, portal.private_key(user), handle, values, NOW)
    portal.session.commit()
    return changed


def _values(**changes: object) -> Triage:
    fields: dict[str, object] = {
        "priority": Priority.NORMAL,
        "reporter_at_risk": False,
        "org_category_id": None,
    }
    fields.update(changes)
    return Triage(**fields)  # type: ignore[arg-type]


# --- the service --------------------------------------------------------------------------------


def test_triage_is_stored_beside_the_reporter_s_category_and_audited(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga", queues=("hr",))
    submitted = portal.submit(category_code="pay")
    reporter_category = _category(db, "pay").id
    org = _category(db, "retaliation")

    changed = _run(
        portal,
        olga,
        submitted.handle,
        _values(
            priority=Priority.URGENT,
            reporter_at_risk=True,
            org_category_id=org.id,
            new_tag="Interim protection",
        ),
    )

    case = db.get_one(Case, submitted.case_id)
    assert changed == ["org_category", "priority", "reporter_at_risk", "tags"]
    assert (case.priority, case.reporter_at_risk, case.org_category_id) == ("urgent", True, org.id)
    assert case.category_id == reporter_category, "the reporter's choice is never overwritten"
    assert _case_tags(db, case.id) == ["Interim protection"]
    tag_id = str(db.scalars(select(Tag.id)).one())
    assert _triaged(db, case.id) == [
        {
            "changed": ["org_category", "priority", "reporter_at_risk", "tags"],
            "org_category": "retaliation",
            "priority": "urgent",
            "reporter_at_risk": True,
            "tags": [tag_id],
            "tags_created": [tag_id],
        }
    ]
    # Tag labels are typed text: the chain holds their ids only.
    assert "Interim" not in " ".join(db.scalars(select(AuditEvent.detail)))
    assert audit.verify(db).ok


def test_only_what_changed_is_audited_and_nothing_for_no_change(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    _run(portal, olga, submitted.handle, _values(priority=Priority.HIGH))
    assert _run(portal, olga, submitted.handle, _values(priority=Priority.HIGH)) == []
    assert _run(portal, olga, submitted.handle, _values(priority=Priority.LOW)) == ["priority"]
    assert _triaged(db, submitted.case_id) == [
        {"changed": ["priority"], "priority": "high"},
        {"changed": ["priority"], "priority": "low"},
    ]


def test_tags_are_applied_removed_and_shared(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    first, second = portal.submit(), portal.submit()
    _run(portal, olga, first.handle, _values(new_tag="Legal review"))
    legal = db.scalars(select(Tag).where(Tag.label == "Legal review")).one()
    # The same label in other capitals and spacing is the same tag, on any case.
    _run(portal, olga, second.handle, _values(new_tag="  LEGAL   review "))
    assert _tags(db) == ["Legal review"]
    assert _case_tags(db, second.case_id) == ["Legal review"]
    assert _triaged(db, second.case_id) == [{"changed": ["tags"], "tags": [str(legal.id)]}]
    # Ticking an existing tag and a new one; then taking one off.
    _run(portal, olga, first.handle, _values(tag_ids=[legal.id], new_tag="Needs interpreter"))
    assert _case_tags(db, first.case_id) == ["Legal review", "Needs interpreter"]
    _run(portal, olga, first.handle, _values(tag_ids=[]))
    assert _case_tags(db, first.case_id) == []
    assert _tags(db) == ["Legal review", "Needs interpreter"], "the vocabulary stays"


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("x" * (triage.TAG_MAX_CHARS + 1), "limit is 40"),
        ("bad\x00tag", "control characters"),
        ("two\nlines", "line breaks"),
        ("tab\there", "line breaks"),
        ("esc\x1b", "control characters"),
    ],
)
def test_bad_tags_are_refused_and_nothing_is_stored(
    portal: Portal, db: Session, label: str, message: str
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    with pytest.raises(InvalidInput, match=message) as info:
        _run(portal, olga, submitted.handle, _values(priority=Priority.HIGH, new_tag=label))
    assert info.value.field == "new_tag"
    db.rollback()
    assert _tags(db) == []
    assert db.get_one(Case, submitted.case_id).priority == "normal"


def test_tag_length_limit_is_inclusive_and_blank_means_none(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    _run(portal, olga, submitted.handle, _values(new_tag="   "))
    assert _tags(db) == []
    _run(portal, olga, submitted.handle, _values(new_tag="é" * triage.TAG_MAX_CHARS))
    assert _tags(db) == ["é" * 40]
    with pytest.raises(InvalidInput):
        triage.clean_tag_label("  ")


def test_a_retired_tag_is_not_recreated_but_may_stay_on_its_cases(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    first, second = portal.submit(), portal.submit()
    _run(portal, olga, first.handle, _values(new_tag="Old label"))
    tag = db.scalars(select(Tag)).one()
    tag.active = False
    db.commit()
    with pytest.raises(InvalidInput, match="retired"):
        _run(portal, olga, second.handle, _values(new_tag="old label"))
    db.rollback()
    with pytest.raises(InvalidInput, match="no longer offered"):
        _run(portal, olga, second.handle, _values(tag_ids=[tag.id]))
    db.rollback()
    # On the case that has it, it is offered (so it can be kept or taken off).
    assert [t.label for t in triage.offered_tags(db, [tag])] == ["Old label"]
    _run(portal, olga, first.handle, _values(tag_ids=[tag.id], priority=Priority.HIGH))
    assert _case_tags(db, first.case_id) == ["Old label"]
    _run(portal, olga, first.handle, _values(tag_ids=[], priority=Priority.HIGH))
    assert _case_tags(db, first.case_id) == []


def test_too_many_tags_on_one_case(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    ids = []
    for i in range(triage.TAGS_PER_CASE_MAX):
        tag = Tag(label=f"tag {i}")
        db.add(tag)
        db.flush()
        ids.append(tag.id)
    db.commit()
    _run(portal, olga, submitted.handle, _values(tag_ids=ids))
    with pytest.raises(InvalidInput, match="at most 20") as info:
        _run(portal, olga, submitted.handle, _values(tag_ids=ids, new_tag="one more"))
    assert info.value.field == "tags"


def test_the_organisation_s_category_must_be_active(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    privacy = _category(db, "privacy")
    _run(portal, olga, submitted.handle, _values(org_category_id=privacy.id))
    privacy.active = False
    db.commit()
    # Kept while it is the case's own, even retired; not chosen anew.
    assert _run(portal, olga, submitted.handle, _values(org_category_id=privacy.id)) == []
    other = portal.submit()
    for bad in (privacy.id, 99_999):
        with pytest.raises(InvalidInput) as info:
            _run(portal, olga, other.handle, _values(org_category_id=bad))
        assert info.value.field == "org_category"
        db.rollback()
    assert _run(portal, olga, submitted.handle, _values()) == ["org_category"]
    assert _triaged(db, submitted.case_id)[-1] == {
        "changed": ["org_category"],
        "org_category": None,
    }


def test_triage_needs_the_case_key(portal: Portal, db: Session) -> None:
    portal.staff("olga", queues=("general",))
    bob = portal.staff("bob", queues=("hr",))
    submitted = portal.submit(category_code="other")
    with pytest.raises(NoAccess):
        _run(portal, bob, submitted.handle, _values(priority=Priority.URGENT))
    db.rollback()
    assert db.get_one(Case, submitted.case_id).priority == "normal"


# --- the case page ------------------------------------------------------------------------------


def _client(app: Flask, user: StaffUser) -> FlaskClient:
    client = app.test_client()
    login(client, user)
    return client


def _form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    data: dict[str, str | list[str]] = {"priority": "normal", "org_category": "", "new_tag": ""}
    data.update(changes)
    return data


def test_triage_through_the_case_page(app: Flask, portal: Portal, db: Session) -> None:
    olga = portal.staff("olga", queues=("hr",))
    submitted = portal.submit(category_code="pay")
    client = _client(app, olga)
    page = client.get(f"/staff/cases/{submitted.handle}")
    assert "stored unencrypted" in page.text and "never name a person" in page.text
    org = _category(db, "retaliation")

    response = client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={
            "csrf_token": csrf_token(page.text),
            **_form(
                priority="high", reporter_at_risk="y", org_category=str(org.id), new_tag="Legal"
            ),
        },
    )

    assert response.status_code == 302
    shown = client.get(f"/staff/cases/{submitted.handle}").text
    assert "Triage saved." in shown
    assert 'id="case-priority" class="priority priority-high">High<' in shown
    assert "At risk" in shown
    assert 'id="reporter-category">Pay, hours or benefits<' in shown
    assert f'id="org-category">{org.label}<' in shown
    assert '<span class="tag">Legal</span>' in shown
    case = db.get_one(Case, submitted.case_id)
    db.refresh(case)
    assert (case.priority, case.reporter_at_risk, case.org_category_id) == ("high", True, org.id)
    assert case.category_id == _category(db, "pay").id
    # Unticking the box clears the flag (a checkbox sends nothing when unticked).
    tag_id = str(db.scalars(select(Tag.id)).one())
    client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={"csrf_token": csrf_token(shown), **_form(priority="high", tags=[tag_id])},
    )
    db.refresh(case)
    assert (case.reporter_at_risk, case.org_category_id) == (False, None)


def test_a_bad_new_tag_is_marked_kept_and_nothing_is_saved(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    page = client.get(f"/staff/cases/{submitted.handle}")
    typed = "y" * 41

    response = client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={"csrf_token": csrf_token(page.text), **_form(priority="urgent", new_tag=typed)},
    )

    assert response.status_code == 400
    assert field_errors(response.text, "new_tag") == [
        "This tag is 41 characters long; the limit is 40."
    ]
    assert f'value="{typed}"' in response.text
    assert db.scalar(select(func.count()).select_from(Tag)) == 0
    db.expire_all()
    assert db.get_one(Case, submitted.case_id).priority == "normal"


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", "extreme"), ("priority", ""), ("org_category", "x"), ("tags", "999")],
)
def test_a_choice_that_is_not_offered_is_marked(
    app: Flask, portal: Portal, db: Session, field: str, value: str
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    page = client.get(f"/staff/cases/{submitted.handle}")
    response = client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={"csrf_token": csrf_token(page.text), **_form(**{field: value})},
    )
    assert response.status_code == 400
    assert field_errors(response.text, field)
    assert _triaged(db, submitted.case_id) == []


def test_an_expired_triage_form_keeps_the_new_tag(app: Flask, portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    response = client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={"csrf_token": "expired", **_form(new_tag="Typed before lunch")},
    )
    assert response.status_code == 400
    assert "had been open too long" in form_problems(response.text)
    assert 'value="Typed before lunch"' in response.text
    assert _tags(db) == []


def test_a_tag_created_by_a_colleague_at_the_same_moment_is_not_a_500(
    app: Flask, portal: Portal, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two people create the same tag at once: the second insert hits the unique index."""
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    page = client.get(f"/staff/cases/{submitted.handle}")
    db.add(Tag(label="Same moment"))
    db.commit()
    # As if the colleague's row had not been visible when this request looked.
    monkeypatch.setattr(triage, "same_label", lambda session, label: None)

    response = client.post(
        f"/staff/cases/{submitted.handle}/triage",
        data={"csrf_token": csrf_token(page.text), **_form(priority="high", new_tag="Same moment")},
    )

    assert response.status_code == 400
    assert field_errors(response.text, "new_tag") == [
        "A colleague has just created this tag. Send the form again."
    ]
    assert 'value="Same moment"' in response.text
    db.expire_all()
    assert db.get_one(Case, submitted.case_id).priority == "normal"
    assert _tags(db) == ["Same moment"]
