"""Every page of the admin console renders, and none of them (nor the exports) shows case
content: no concern text, no contact detail, no message, even when cases exist and their
holders have worked on them (DESIGN.md section 1: admins never see case content)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Case, Category, Queue, Role, RoutingRule, StaffUser, Tag, Visibility
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.reporting import followup
from tests.support.admin_helpers import admin_user, client_for, post
from tests.support.factories import Portal

SECRETS = {
    "description": "The depot manager falsifies the forklift inspection log every Friday.",
    "contact name": "Wen Jiahui",
    "contact details": "wen.jiahui.private@example.net",
    "reporter message": "He also asked me to sign the log for days I was on leave.",
    "staff reply": "Thank you; could you tell us which depot this is?",
    "internal note": "Cross-check with the insurer's inspection schedule.",
    "chinese description": "仓库主管每周五伪造叉车检查记录。",
}


@pytest.fixture
def world(app: Flask, portal: Portal, db: Session) -> dict[str, object]:
    holder = portal.staff("holder")
    root = admin_user(portal)
    named = portal.submit(
        category_code="other",
        description=SECRETS["description"],
        contact_name=SECRETS["contact name"],
        contact_details=SECRETS["contact details"],
    )
    portal.submit(category_code="safety", description=SECRETS["chinese description"])
    key = followup.unlock(db, portal.settings, portal.secrets.pepper, named.receipt)
    followup.add_message(db, portal.settings, key, SECRETS["reporter message"], named_day())
    private_key = portal.private_key(holder)
    now = dt.datetime.now(dt.UTC)
    cases.acknowledge(db, holder, private_key, named.handle, now)
    for text, visibility in (
        (SECRETS["staff reply"], Visibility.REPORTER),
        (SECRETS["internal note"], Visibility.INTERNAL),
    ):
        cases.add_message(
            db, portal.settings, holder, private_key, named.handle, text, visibility, now
        )
    db.add(Tag(label="legal review"))
    # What the case page records when the holder opens it (until it does so itself).
    audit.record(db, Action.CASE_VIEWED, now, actor=holder, case=db.get_one(Case, named.case_id))
    db.commit()
    # The holder reads the case in the browser too, as an ombudsperson would.
    page = client_for(app, holder).get(f"/staff/cases/{named.handle}").text
    assert SECRETS["description"] in page
    return {"holder": holder, "root": root, "handle": named.handle}


def named_day() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _example_values(db: Session, holder: StaffUser) -> dict[str, str]:
    return {
        "kind": "categories",
        "item_id": str(db.scalars(select(Category.id)).first()),
        "queue_id": str(db.scalars(select(Queue.id)).first()),
        "tag_id": str(db.scalars(select(Tag.id)).first()),
        "rule_id": str(db.scalars(select(RoutingRule.id)).first()),
        "staff_id": str(holder.id),
    }


def _admin_get_urls(app: Flask, values: dict[str, str]) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff/admin") or "GET" not in (rule.methods or ()):
            continue
        url = re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule.rule)
        url = re.sub(r"<any\([^)]*\):kind>", values["kind"], url)
        urls.append(url)
    assert len(urls) >= 15
    return urls


def _assert_no_case_content(text: str, where: str) -> None:
    for what, secret in SECRETS.items():
        assert secret not in text, f"{what} shown on {where}"


def test_every_admin_page_renders_and_shows_no_case_content(
    app: Flask, db: Session, world: dict[str, object]
) -> None:
    client = client_for(app, world["root"])  # type: ignore[arg-type]
    values = _example_values(db, world["holder"])  # type: ignore[arg-type]

    for url in _admin_get_urls(app, values):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_no_case_content(response.text, url)


def test_every_ordered_list_renders(app: Flask, db: Session, world: dict[str, object]) -> None:
    client = client_for(app, world["root"])  # type: ignore[arg-type]
    for kind in ("categories", "sites", "departments", "statuses", "outcomes"):
        page = client.get(f"/staff/admin/config/{kind}")
        assert page.status_code == 200, kind
        _assert_no_case_content(page.text, kind)


def test_exports_and_the_routing_test_show_no_case_content(
    app: Flask, db: Session, world: dict[str, object]
) -> None:
    client = client_for(app, world["root"])  # type: ignore[arg-type]
    other = str(db.scalars(select(Category.id).where(Category.code == "other")).one())

    responses = {
        "audit CSV": post(client, "/staff/admin/audit/export"),
        "taxonomy": post(client, "/staff/admin/taxonomy/export"),
        "routing test": post(
            client, "/staff/admin/routing-test", {"category": other, "sample": "a test"}
        ),
        "audit filtered by the case": client.get(
            "/staff/admin/audit", query_string={"case": world["handle"]}
        ),
    }

    for where, response in responses.items():
        assert response.status_code == 200, where
        _assert_no_case_content(response.text, where)
    # The log does show that the holder worked on the case, by handle only.
    assert str(world["handle"]) in responses["audit CSV"].text


def test_the_console_front_page_lists_its_parts(app: Flask, world: dict[str, object]) -> None:
    page = client_for(app, world["root"]).get("/staff/admin/").text  # type: ignore[arg-type]

    for label in ("Staff accounts", "Configuration", "Routing test", "Taxonomy file", "Audit log"):
        assert f">{label}</a>" in page
    _assert_no_case_content(page, "front page")


def test_an_admin_who_is_also_management_sees_no_more(
    app: Flask, portal: Portal, world: dict[str, object]
) -> None:
    both = portal.staff("both", roles=(Role.ADMIN, Role.MANAGEMENT), queues=())
    client = client_for(app, both)

    assert client.get("/staff/").status_code == 403
    assert client.get(f"/staff/cases/{world['handle']}").status_code == 403
    _assert_no_case_content(client.get("/staff/admin/audit").text, "audit log")


def test_console_pages_say_no_case_content_is_shown(app: Flask, world: dict[str, object]) -> None:
    client: FlaskClient = client_for(app, world["root"])  # type: ignore[arg-type]
    assert "Case content is never shown here." in client.get("/staff/admin/").text
