"""Members a queue marks as not excludable (e.g. the board queue's chair): they receive the
queue's concerns whatever the reporter ticked, and the concern form names them first."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import CaseAccess, Queue, QueueMembership, Role, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.casework import cases, content
from portal.services.reporting import routing
from tests.support.factories import Portal
from tests.support.pages import csrf_token, report_form

NOW = dt.datetime.now(dt.UTC)
SECRET = "The chief executive had the audit report rewritten."


def _queue(db: Session, slug: str) -> Queue:
    return db.scalars(select(Queue).where(Queue.slug == slug)).one()


def _holders(db: Session, case_id: str) -> set[int]:
    return set(db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == case_id)))


def _reads(portal: Portal, db: Session, user: StaffUser, handle: str) -> str:
    case, case_key = cases.unlock(db, user, portal.private_key(user), handle)
    return content.open_report(case_key, case.id, case.report_ciphertext).description


def _cannot_decrypt(db: Session, case_id: str, private_key: bytes) -> None:
    for sealed in db.scalars(select(CaseAccess.sealed_key).where(CaseAccess.case_id == case_id)):
        with pytest.raises(crypto.DecryptionFailed):
            crypto.unseal(private_key, sealed)


def _board_chair(portal: Portal, db: Session, name: str = "chair") -> StaffUser:
    """The board queue's chair, whom reporters cannot exclude from it."""
    chair = portal.staff(name, queues=())
    db.add(QueueMembership(queue_id=_queue(db, "board").id, staff_id=chair.id, excludable=False))
    db.commit()
    return chair


def test_a_member_who_cannot_be_excluded_receives_the_case_despite_the_exclusion(
    portal: Portal, db: Session
) -> None:
    chair = _board_chair(portal, db)
    member = portal.staff("member", queues=("board",))
    portal.staff("gen")

    submitted = portal.submit(
        category_code="executive_conduct",
        description=SECRET,
        excluded_staff_ids=[chair.id, member.id],
    )

    assert submitted.queue_slug == "board"  # not rerouted: the chair is still a recipient
    assert _holders(db, submitted.case_id) == {chair.id}
    assert _reads(portal, db, chair, submitted.handle) == SECRET
    _cannot_decrypt(db, submitted.case_id, portal.private_key(member))


def test_the_exclusion_still_applies_in_the_chairs_other_queues(
    portal: Portal, db: Session
) -> None:
    chair = _board_chair(portal, db)
    db.add(QueueMembership(queue_id=_queue(db, "general").id, staff_id=chair.id))
    db.commit()
    gen = portal.staff("gen")

    submitted = portal.submit(excluded_staff_ids=[chair.id])

    assert submitted.queue_slug == "general"
    assert _holders(db, submitted.case_id) == {gen.id}


def test_reporter_choices_name_who_cannot_be_excluded_from_which_queue(
    portal: Portal, db: Session
) -> None:
    assert not routing.reporter_choices(db).channel_open
    chair = _board_chair(portal, db)
    choices = routing.reporter_choices(db)
    assert choices.channel_open and routing.channel_open(db)
    assert choices.excludable == []  # nowhere may the chair be excluded yet
    assert [(a.display_name, a.queue_name) for a in choices.always_receive] == [
        ("Chair", "Board-level queue")
    ]
    db.add(QueueMembership(queue_id=_queue(db, "hr").id, staff_id=chair.id))
    db.commit()
    choices = routing.reporter_choices(db)
    assert choices.excludable == [routing.PublicStaff(chair.id, "Chair")]
    assert len(choices.always_receive) == 1


def test_create_staff_joins_not_excludable_queues(portal: Portal, db: Session) -> None:
    created = staff.create_staff(
        db,
        portal.settings,
        email="chair@example.org",
        display_name="Chair",
        roles=[Role.OMBUDSPERSON],
        queue_slugs=["general"],
        password="a very long password",
        now=NOW,
        not_excludable_in=["board"],
    )
    db.commit()
    flags = {
        slug: excludable
        for slug, excludable in db.execute(
            select(Queue.slug, QueueMembership.excludable)
            .join(Queue, Queue.id == QueueMembership.queue_id)
            .where(QueueMembership.staff_id == created.user.id)
        )
    }
    assert flags == {"general": True, "board": False}


def test_the_concern_form_says_who_cannot_be_excluded_from_which_queue(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    portal.staff("gen")
    assert 'id="cannot-exclude"' not in client.get("/report").text
    _board_chair(portal, db, "dora")

    page = client.get("/report").text

    notice = re.search(
        r'<div class="notice notice-warning" id="cannot-exclude">(.*?)</div>', page, re.S
    )
    assert notice is not None
    assert "Dora, in the queue “Board-level queue”" in notice.group(1)
    assert "even if you tick their name" in notice.group(1)
    assert page.index('id="cannot-exclude"') < page.index('type="submit"')  # before sending
    excluded = re.search(r'<ul class="choices" id="excluded">(.*?)</ul>', page, re.S)
    assert excluded is not None and "Dora" not in excluded.group(1)


def test_a_concern_excluding_the_chair_still_reaches_the_chair(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    chair = _board_chair(portal, db, "dora")
    db.add(QueueMembership(queue_id=_queue(db, "general").id, staff_id=chair.id))
    db.commit()
    portal.staff("gen")
    token = csrf_token(client.get("/report").text)

    response = client.post(
        "/report",
        data={
            "csrf_token": token,
            **report_form(category="executive_conduct", description=SECRET, excluded=str(chair.id)),
        },
        follow_redirects=True,
    )

    assert response.status_code == 200 and 'id="receipt"' in response.text
    holders = set(db.scalars(select(CaseAccess.staff_id)))
    assert holders == {chair.id}


def test_with_only_members_who_cannot_be_excluded_the_form_is_open(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    _board_chair(portal, db, "dora")

    page = client.get("/report")

    assert page.status_code == 200
    assert 'id="cannot-exclude"' in page.text
    assert 'name="excluded"' not in page.text
