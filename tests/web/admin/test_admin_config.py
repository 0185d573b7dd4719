"""Configuration in the admin console: queues, ordered lists (categories, sites, departments,
statuses, outcomes), tags, routing rules and the policy. Every change is checked in the
database and in the audit log; every refusal leaves the database as it was."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal.models import (
    Case,
    Category,
    OrgUnit,
    Outcome,
    Policy,
    Queue,
    RoutingRule,
    StaffUser,
    Tag,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.configuration import policy
from portal.services.reporting import routing
from tests.support.admin_helpers import (
    admin_user,
    client_for,
    detail,
    events,
    field_errors,
    fresh,
    input_value,
    post,
    selected,
    snapshot,
    textarea,
)
from tests.support.factories import Portal


@pytest.fixture
def root(portal: Portal) -> StaffUser:
    return admin_user(portal)


@pytest.fixture
def console(app: Flask, root: StaffUser) -> FlaskClient:
    return client_for(app, root)


def _config_events(db: Session) -> list[dict[str, Any]]:
    return [detail(e) for e in events(db, Action.CONFIG_CHANGED)]


def _category(db: Session, code: str) -> Category:
    return fresh(db).scalars(select(Category).where(Category.code == code)).one()


def _queue(db: Session, slug: str) -> Queue:
    return fresh(db).scalars(select(Queue).where(Queue.slug == slug)).one()


def _status(db: Session, code: str) -> WorkflowStatus:
    return fresh(db).scalars(select(WorkflowStatus).where(WorkflowStatus.code == code)).one()


def _codes(db: Session, model: type[Category] | type[WorkflowStatus] | type[Outcome]) -> list[str]:
    stmt = select(model.code).where(model.active).order_by(model.position, model.id)
    return list(fresh(db).scalars(stmt))


# --- pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/staff/admin/config",
        "/staff/admin/config/queues",
        "/staff/admin/config/categories",
        "/staff/admin/config/sites",
        "/staff/admin/config/departments",
        "/staff/admin/config/statuses",
        "/staff/admin/config/outcomes",
        "/staff/admin/config/tags",
        "/staff/admin/config/rules",
        "/staff/admin/config/policy",
    ],
)
def test_every_configuration_page_renders_with_the_current_configuration(
    console: FlaskClient, path: str
) -> None:
    page = console.get(path)

    assert page.status_code == 200
    assert 'class="subnav"' in page.text or path == "/staff/admin/config"
    expected = {
        "queues": "General ombuds office",
        "categories": "Harassment, bullying or sexual harassment",
        "sites": "Shanghai office",
        "departments": "Sales and marketing",
        "statuses": "Awaiting reporter",
        "outcomes": "Partly substantiated",
        "rules": "消防通道",
        "policy": 'name="anonymity_threshold"',
        "tags": "No tags yet.",
        "config": "Routing rules",
    }[path.rsplit("/", 1)[1]]
    assert expected in page.text


def test_edit_pages_render_filled_in(console: FlaskClient, db: Session) -> None:
    queue = _queue(db, "hr")
    category = _category(db, "pay")
    rule = fresh(db).scalars(select(RoutingRule).where(RoutingRule.position == 2)).one()

    queue_page = console.get(f"/staff/admin/config/queues/{queue.id}").text
    category_page = console.get(f"/staff/admin/config/categories/{category.id}").text
    rule_page = console.get(f"/staff/admin/config/rules/{rule.id}").text

    assert input_value(queue_page, "name") == "HR ombuds"
    assert 'name="slug"' not in queue_page  # codes never change
    assert input_value(category_page, "label") == "Pay, hours or benefits"
    assert 'name="code"' not in category_page
    assert selected(rule_page, "category") == str(_category(db, "safety").id)
    assert selected(rule_page, "priority") == "urgent"
    assert selected(rule_page, "queue") == str(_queue(db, "safety").id)
    assert "泄漏" in textarea(rule_page, "keywords").splitlines()


def test_unknown_ids_are_404(console: FlaskClient) -> None:
    for path in [
        "/staff/admin/config/queues/9999",
        "/staff/admin/config/categories/9999",
        "/staff/admin/config/tags/9999",
        "/staff/admin/config/rules/9999",
        "/staff/admin/config/widgets",
    ]:
        assert console.get(path).status_code == 404, path


def test_a_site_id_is_not_found_as_a_department(console: FlaskClient, db: Session) -> None:
    site = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "hq")).one()

    assert console.get(f"/staff/admin/config/sites/{site.id}").status_code == 200
    assert console.get(f"/staff/admin/config/departments/{site.id}").status_code == 404


# --- queues --------------------------------------------------------------------------------------


def test_add_edit_and_make_fallback_a_queue(
    console: FlaskClient, db: Session, root: StaffUser
) -> None:
    added = post(
        console,
        "/staff/admin/config/queues",
        {"slug": "legal", "name": "Legal", "description": "Lawyers."},
    )
    assert added.status_code == 302
    legal = _queue(db, "legal")
    assert (legal.name, legal.description, legal.is_fallback) == ("Legal", "Lawyers.", False)

    edited = post(
        console,
        f"/staff/admin/config/queues/{legal.id}",
        {"name": "Legal department", "description": "Lawyers."},
    )
    fallback = post(console, f"/staff/admin/config/queues/{legal.id}/fallback")

    assert edited.status_code == fallback.status_code == 302
    assert _queue(db, "legal").name == "Legal department"
    assert routing.fallback_queue(fresh(db)).slug == "legal"
    assert [q.slug for q in fresh(db).scalars(select(Queue).where(Queue.is_fallback))] == ["legal"]
    assert _config_events(db) == [
        {
            "object": "queue",
            "code": "legal",
            "change": "added",
            "fields": ["description", "name", "slug"],
        },
        {"object": "queue", "code": "legal", "change": "edited", "fields": ["name"]},
        {"object": "queue", "code": "legal", "change": "fallback", "fields": ["is_fallback"]},
    ]
    assert all(e.actor_id == root.id for e in events(db, Action.CONFIG_CHANGED))
    page = console.get("/staff/admin/config/queues").text
    assert "none: the portal cannot accept concerns that reach it" in page
    assert audit.verify(db).ok


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"slug": "Legal Team", "name": "Legal"},
            "slug",
            "Use lower-case letters, digits, '-' and '_' (at most 64), starting with a letter or"
            " a digit.",
        ),
        ({"slug": "hr", "name": "Another HR"}, "slug", "A queue with this code already exists."),
        ({"slug": "legal", "name": ""}, "name", "This field is required."),
        (
            {"slug": "legal", "name": "Legal\x07team"},
            "name",
            "Control characters are not allowed here.",
        ),
        (
            {"slug": "legal", "name": "Legal", "description": "x" * 1001},
            "description",
            "This is 1,001 characters long; the limit is 1,000.",
        ),
    ],
)
def test_queue_form_refuses_bad_input_and_keeps_it(
    console: FlaskClient, db: Session, form: dict[str, str], field: str, message: str
) -> None:
    before = snapshot(db)

    response = post(console, "/staff/admin/config/queues", form)

    assert response.status_code == 400
    assert field_errors(response.text, field) == [message]
    assert input_value(response.text, "slug") == form["slug"]
    assert snapshot(db) == before


# --- ordered lists -------------------------------------------------------------------------------


def test_add_edit_move_and_deactivate_a_category(console: FlaskClient, db: Session) -> None:
    added = post(
        console,
        "/staff/admin/config/categories",
        {"code": "wellbeing", "label": "Wellbeing", "description": "Stress, workload."},
    )
    assert added.status_code == 302
    assert _codes(db, Category)[-1] == "wellbeing"
    wellbeing = _category(db, "wellbeing")

    post(console, f"/staff/admin/config/categories/{wellbeing.id}/move", {"direction": "up"})
    assert _codes(db, Category)[-2:] == ["wellbeing", "other"]
    post(
        console,
        f"/staff/admin/config/categories/{wellbeing.id}",
        {"label": "Wellbeing at work", "description": "Stress, workload."},
    )
    post(console, f"/staff/admin/config/categories/{wellbeing.id}/active", {"active": "no"})

    assert _category(db, "wellbeing").label == "Wellbeing at work"
    assert "wellbeing" not in _codes(db, Category)
    assert _config_events(db) == [
        {
            "object": "category",
            "code": "wellbeing",
            "change": "added",
            "fields": ["code", "description", "label"],
        },
        {"object": "category", "code": "wellbeing", "change": "moved", "fields": ["position"]},
        {"object": "category", "code": "wellbeing", "change": "edited", "fields": ["label"]},
        {"object": "category", "code": "wellbeing", "change": "deactivated", "fields": ["active"]},
    ]
    post(console, f"/staff/admin/config/categories/{wellbeing.id}/active", {"active": "yes"})
    assert "wellbeing" in _codes(db, Category)


def test_the_first_cannot_move_up_nor_the_last_down(console: FlaskClient, db: Session) -> None:
    first, last = _category(db, "harassment"), _category(db, "other")

    up = post(console, f"/staff/admin/config/categories/{first.id}/move", {"direction": "up"})
    down = post(console, f"/staff/admin/config/categories/{last.id}/move", {"direction": "down"})
    sideways = post(
        console, f"/staff/admin/config/categories/{last.id}/move", {"direction": "sideways"}
    )

    assert (up.status_code, down.status_code, sideways.status_code) == (302, 302, 400)
    assert _codes(db, Category)[0] == "harassment" and _codes(db, Category)[-1] == "other"
    assert _config_events(db) == []


def test_a_category_a_rule_names_cannot_be_deactivated(console: FlaskClient, db: Session) -> None:
    safety = _category(db, "safety")
    before = snapshot(db)

    response = post(console, f"/staff/admin/config/categories/{safety.id}/active", {"active": "no"})

    assert response.status_code == 400
    assert field_errors(response.text, f"row-{safety.id}") == [
        "Routing rule 2 names this category: change or delete that rule first."
    ]
    assert snapshot(db) == before


def test_the_last_category_cannot_be_deactivated(console: FlaskClient, db: Session) -> None:
    db.execute(cast(Table, RoutingRule.__table__).delete())
    for category in db.scalars(select(Category).where(Category.code != "other")):
        category.active = False
    db.commit()
    other = _category(db, "other")

    response = post(console, f"/staff/admin/config/categories/{other.id}/active", {"active": "no"})

    assert response.status_code == 400
    assert "This is the last active category: reporters need at least one." in response.text
    assert _category(db, "other").active


def test_a_site_a_rule_names_cannot_be_deactivated(console: FlaskClient, db: Session) -> None:
    hq = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "hq")).one()
    queue_id = _queue(db, "general").id
    post(console, "/staff/admin/config/rules", {"site": str(hq.id), "queue": str(queue_id)})

    response = post(console, f"/staff/admin/config/sites/{hq.id}/active", {"active": "no"})

    assert response.status_code == 400
    assert "Routing rule 13 names this site: change or delete that rule first." in response.text


def test_site_codes_are_unique_per_kind(console: FlaskClient, db: Session) -> None:
    # "sales" is a department; a site may have the same code, a second department may not.
    assert (
        post(
            console, "/staff/admin/config/sites", {"code": "sales", "label": "Sales floor"}
        ).status_code
        == 302
    )
    response = post(
        console, "/staff/admin/config/departments", {"code": "sales", "label": "Sales again"}
    )
    assert response.status_code == 400
    assert field_errors(response.text, "code") == ["A department with this code already exists."]


def test_site_and_department_headcounts(console: FlaskClient, db: Session) -> None:
    hq = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "hq")).one()
    page = console.get(f"/staff/admin/config/sites/{hq.id}").text
    assert input_value(page, "headcount") == "420"  # from the taxonomy file

    saved = post(
        console, f"/staff/admin/config/sites/{hq.id}", {"label": hq.label, "headcount": " 450 "}
    )
    added = post(
        console,
        "/staff/admin/config/departments",
        {"code": "legal", "label": "Legal", "headcount": "0"},
    )

    assert saved.status_code == added.status_code == 302
    assert fresh(db).get_one(OrgUnit, hq.id).headcount == 450
    legal = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "legal")).one()
    assert legal.headcount == 0
    assert _config_events(db)[-2]["fields"] == ["headcount"]
    assert "headcount" in _config_events(db)[-1]["fields"]
    listing = console.get("/staff/admin/config/sites").text
    assert "450" in listing

    # Empty means unknown.
    cleared = post(
        console, f"/staff/admin/config/sites/{hq.id}", {"label": hq.label, "headcount": ""}
    )
    assert cleared.status_code == 302
    assert fresh(db).get_one(OrgUnit, hq.id).headcount is None
    assert "unknown" in console.get("/staff/admin/config/sites").text


@pytest.mark.parametrize("value", ["-1", "twelve", "3.5", "1e3", "٣", "99999999999"])
def test_a_headcount_must_be_a_whole_number(console: FlaskClient, db: Session, value: str) -> None:
    hq = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "hq")).one()
    before = snapshot(db)

    edited = post(
        console, f"/staff/admin/config/sites/{hq.id}", {"label": hq.label, "headcount": value}
    )
    added = post(
        console,
        "/staff/admin/config/sites",
        {"code": "annex", "label": "Annex", "headcount": value},
    )

    for response in (edited, added):
        assert response.status_code == 400
        assert field_errors(response.text, "headcount") == [
            "Enter the number of employees as a whole number (0 or more), or leave it empty."
        ]
        assert input_value(response.text, "headcount") == value  # kept for correcting
    assert snapshot(db) == before


def test_workflow_status_kind_rules(console: FlaskClient, db: Session, portal: Portal) -> None:
    before = snapshot(db)

    second_new = post(
        console,
        "/staff/admin/config/statuses",
        {"code": "triage", "label": "Triage", "kind": "new"},
    )
    no_kind = post(console, "/staff/admin/config/statuses", {"code": "triage", "label": "Triage"})
    closed = _status(db, "closed")
    last_closed = post(
        console, f"/staff/admin/config/statuses/{closed.id}/active", {"active": "no"}
    )
    long_code = post(
        console,
        "/staff/admin/config/statuses",
        {"code": "x" * 33, "label": "Long", "kind": "open"},
    )

    assert field_errors(second_new.text, "kind") == [
        "There is already an active status of kind 'new'; the workflow allows only one."
    ]
    assert field_errors(no_kind.text, "kind") == ["Choose what kind of status this is."]
    assert field_errors(last_closed.text, f"row-{closed.id}") == [
        "This is the only active status of kind 'closed'; the workflow needs exactly one."
    ]
    assert "(at most 32)" in field_errors(long_code.text, "code")[0]
    assert input_value(second_new.text, "code") == "triage"
    assert snapshot(db) == before

    added = post(
        console,
        "/staff/admin/config/statuses",
        {"code": "on_hold", "label": "On hold", "kind": "open"},
    )
    assert added.status_code == 302 and _status(db, "on_hold").kind == "open"

    portal.staff("olga")
    portal.submit()  # a case ...
    awaiting = _status(db, "awaiting_reporter")
    db.execute(
        cast(Table, Case.__table__).update().values(status="awaiting_reporter")
    )  # ... waiting
    db.commit()
    in_use = post(console, f"/staff/admin/config/statuses/{awaiting.id}/active", {"active": "no"})
    assert field_errors(in_use.text, f"row-{awaiting.id}") == [
        "Cases have this status: move them to another status first."
    ]
    assert _status(db, "awaiting_reporter").active


def test_a_status_kind_is_fixed_and_its_label_editable(console: FlaskClient, db: Session) -> None:
    status = _status(db, "investigating")

    page = console.get(f"/staff/admin/config/statuses/{status.id}").text
    response = post(
        console,
        f"/staff/admin/config/statuses/{status.id}",
        {"label": "Under investigation", "kind": "closed"},
    )

    assert 'name="kind"' not in page
    assert response.status_code == 302
    assert (_status(db, "investigating").label, _status(db, "investigating").kind) == (
        "Under investigation",
        "open",
    )


def test_outcomes_substantiated_flag_and_the_last_outcome(
    console: FlaskClient, db: Session
) -> None:
    referred = fresh(db).scalars(select(Outcome).where(Outcome.code == "referred")).one()
    post(
        console,
        f"/staff/admin/config/outcomes/{referred.id}",
        {"label": "Referred elsewhere", "substantiated": "y"},
    )
    assert fresh(db).get_one(Outcome, referred.id).substantiated
    assert _config_events(db)[-1]["fields"] == ["substantiated"]

    outcomes = list(fresh(db).scalars(select(Outcome)))
    for outcome in outcomes[1:]:
        outcome.active = False
    db.commit()
    response = post(
        console, f"/staff/admin/config/outcomes/{outcomes[0].id}/active", {"active": "no"}
    )
    assert "This is the last active outcome: closing a case needs one." in response.text
    assert fresh(db).get_one(Outcome, outcomes[0].id).active


# --- tags ----------------------------------------------------------------------------------------


def test_rename_and_deactivate_a_tag(console: FlaskClient, db: Session) -> None:
    db.add_all([Tag(label="legal review"), Tag(label="Interim protection")])
    db.commit()
    tag = fresh(db).scalars(select(Tag).where(Tag.label == "legal review")).one()
    assert "legal review" in console.get("/staff/admin/config/tags").text

    clash = post(console, f"/staff/admin/config/tags/{tag.id}", {"label": "INTERIM protection"})
    too_long = post(console, f"/staff/admin/config/tags/{tag.id}", {"label": "x" * 41})
    renamed = post(console, f"/staff/admin/config/tags/{tag.id}", {"label": "Legal review"})
    off = post(console, f"/staff/admin/config/tags/{tag.id}/active", {"active": "no"})

    assert field_errors(clash.text, "label") == ["Another tag already has this name."]
    assert input_value(clash.text, "label") == "INTERIM protection"
    assert field_errors(too_long.text, "label") == [
        "This tag is 41 characters long; the limit is 40."
    ]
    assert renamed.status_code == off.status_code == 302
    row = fresh(db).get_one(Tag, tag.id)
    assert (row.label, row.active) == ("Legal review", False)
    # Tags have no code: the audit names them by id, and never their text.
    assert _config_events(db) == [
        {"object": "tag", "code": str(tag.id), "change": "edited", "fields": ["label"]},
        {"object": "tag", "code": str(tag.id), "change": "deactivated", "fields": ["active"]},
    ]
    assert all("review" not in e.detail for e in events(db, Action.CONFIG_CHANGED))


# --- routing rules -------------------------------------------------------------------------------


def test_add_edit_move_and_delete_a_rule(console: FlaskClient, db: Session) -> None:
    other = _category(db, "other")
    hr = _queue(db, "hr")
    added = post(
        console,
        "/staff/admin/config/rules",
        {
            "category": str(other.id),
            "keywords": "overtime\n  unpaid   overtime \n加班\n\nOVERTIME",
            "priority": "high",
            "queue": str(hr.id),
        },
    )
    assert added.status_code == 302
    rule = fresh(db).scalars(select(RoutingRule).order_by(RoutingRule.position.desc())).first()
    assert rule is not None
    rule_id = rule.id
    assert (rule.position, rule.category_id, rule.queue_id, rule.priority) == (
        13,
        other.id,
        hr.id,
        "high",
    )
    assert rule.keywords.splitlines() == ["overtime", "unpaid overtime", "加班"]

    for _ in range(12):  # to the top, and once more (nothing happens)
        post(console, f"/staff/admin/config/rules/{rule_id}/move", {"direction": "up"})
    assert fresh(db).get_one(RoutingRule, rule_id).position == 1
    positions = sorted(fresh(db).scalars(select(RoutingRule.position)))
    assert positions == list(range(1, 14))
    hit = routing.match_rule(fresh(db), other, None, None, "Lots of 加班 lately")
    assert hit.rule is not None and hit.rule.id == rule_id and hit.keyword == "加班"

    post(
        console,
        f"/staff/admin/config/rules/{rule_id}",
        {"category": str(other.id), "keywords": "overtime", "priority": "", "queue": str(hr.id)},
    )
    assert fresh(db).get_one(RoutingRule, rule_id).priority is None
    deleted = post(console, f"/staff/admin/config/rules/{rule_id}/delete")
    assert deleted.status_code == 302
    assert fresh(db).get(RoutingRule, rule_id) is None
    assert sorted(fresh(db).scalars(select(RoutingRule.position))) == list(range(1, 13))

    changes = _config_events(db)
    assert changes[0] == {
        "object": "rule",
        "code": str(rule_id),
        "change": "added",
        "fields": ["category", "keywords", "priority", "queue"],
    }
    assert [c["change"] for c in changes[1:]] == ["moved"] * 12 + ["edited", "deleted"]
    assert changes[-2]["fields"] == ["keywords", "priority"]
    # Keywords are configuration text: the log names the field, never the words.
    assert all("overtime" not in e.detail for e in events(db, Action.CONFIG_CHANGED))
    assert audit.verify(db).ok


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"queue": ""}, "queue", "Choose the queue that receives matching concerns."),
        ({"keywords": "x" * 101}, "keywords", "A keyword is longer than 100 characters."),
        (
            {"keywords": "\n".join(f"word{i}" for i in range(101))},
            "keywords",
            "More than 100 keywords in one rule.",
        ),
        ({"priority": "whenever"}, "priority", "Not a valid choice."),
        ({"category": "99999"}, "category", "Not a valid choice."),
    ],
)
def test_rule_form_refuses_bad_input_and_keeps_it(
    console: FlaskClient, db: Session, changes: dict[str, str], field: str, message: str
) -> None:
    form = {
        "category": "",
        "site": "",
        "department": "",
        "keywords": "kept keyword",
        "priority": "",
        "queue": str(_queue(db, "hr").id),
    }
    form.update(changes)
    before = snapshot(db)

    response = post(console, "/staff/admin/config/rules", form)

    assert response.status_code == 400
    errors = field_errors(response.text, field)
    assert errors and message in errors[0], errors
    assert textarea(response.text, "keywords") == form["keywords"]
    assert snapshot(db) == before


# --- policy --------------------------------------------------------------------------------------


def test_policy_change_is_saved_and_audited(console: FlaskClient, db: Session) -> None:
    response = post(
        console,
        "/staff/admin/config/policy",
        {
            "acknowledge_days": "5",
            "feedback_months": "3",
            "due_soon_days": "2",
            "anonymity_threshold": "8",
            "insights_min_headcount": "20",
            "signal_threshold": "10",
            "retention_days": "730",
            "retention_warning_days": "30",
        },
    )

    assert response.status_code == 302
    assert policy.values(fresh(db)) == policy.PolicyValues(5, 3, 2, 8, 20, 10)
    assert _config_events(db) == [
        {
            "object": "policy",
            "code": "policy",
            "change": "edited",
            "fields": ["acknowledge_days", "anonymity_threshold", "signal_threshold"],
        }
    ]
    page = console.get("/staff/admin/config/policy").text
    assert input_value(page, "anonymity_threshold") == "8"


def test_policy_refuses_an_alert_count_below_the_threshold(
    console: FlaskClient, db: Session
) -> None:
    fields = {
        "acknowledge_days": "7",
        "feedback_months": "3",
        "due_soon_days": "2",
        "anonymity_threshold": "8",
        "insights_min_headcount": "20",
        "signal_threshold": "5",
        "retention_days": "730",
        "retention_warning_days": "30",
    }
    response = post(console, "/staff/admin/config/policy", fields)

    assert response.status_code == 400
    assert "must not be below anonymity_threshold" in response.text
    assert policy.values(fresh(db)) == policy.PolicyValues()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("anonymity_threshold", "2", "Give a whole number from 3 to 100."),
        ("acknowledge_days", "8", "Give a whole number from 1 to 7."),
        ("feedback_months", "0", "Give a whole number from 1 to 3."),
        ("due_soon_days", "soon", "Not a valid integer value."),
        ("due_soon_days", "", "Give a whole number."),
    ],
)
def test_policy_limits_are_explained_next_to_the_field(
    console: FlaskClient, db: Session, field: str, value: str, message: str
) -> None:
    form = {
        "acknowledge_days": "6",
        "feedback_months": "2",
        "due_soon_days": "3",
        "anonymity_threshold": "9",
    }
    form[field] = value
    before = snapshot(db)

    response = post(console, "/staff/admin/config/policy", form)

    assert response.status_code == 400
    assert message in field_errors(response.text, field)
    for name, typed in form.items():
        assert input_value(response.text, name) == typed
    assert snapshot(db) == before
    assert fresh(db).get_one(Policy, policy.POLICY_ID).anonymity_threshold == 5


def test_saving_nothing_new_records_nothing(console: FlaskClient, db: Session) -> None:
    hr = _queue(db, "hr")
    responses = [
        post(
            console,
            f"/staff/admin/config/queues/{hr.id}",
            {"name": hr.name, "description": hr.description},
        ),
        post(
            console,
            "/staff/admin/config/policy",
            {
                "acknowledge_days": "7",
                "feedback_months": "3",
                "due_soon_days": "2",
                "anonymity_threshold": "5",
                "insights_min_headcount": "20",
                "signal_threshold": "5",
                "retention_days": "730",
                "retention_warning_days": "30",
            },
        ),
    ]

    assert [r.status_code for r in responses] == [302, 302]
    assert _config_events(db) == []
    assert "Nothing changed." in console.get("/staff/admin/config/policy").text


def test_every_change_leaves_the_chain_intact(console: FlaskClient, db: Session) -> None:
    pay = _category(db, "pay")
    post(console, f"/staff/admin/config/categories/{pay.id}/move", {"direction": "down"})
    post(console, "/staff/admin/config/sites", {"code": "lab", "label": "Lab"})
    result = audit.verify(fresh(db))
    assert result.ok and result.checked >= 2
    assert re.fullmatch(r"[0-9a-f]{64}", result.head_hash)


@pytest.mark.parametrize(
    ("path", "form", "field", "message"),
    [
        ("queues/{hr}", {"name": "", "description": "kept"}, "name", "This field is required."),
        (
            "categories/{pay}",
            {"label": "y" * 201, "description": "kept"},
            "label",
            "This is 201 characters long; the limit is 200.",
        ),
        (
            "categories/{pay}",
            {"label": "Pay", "description": "kept" + "z" * 1000},
            "description",
            "This is 1,004 characters long; the limit is 1,000.",
        ),
    ],
)
def test_edit_forms_refuse_bad_input_and_keep_it(
    console: FlaskClient,
    db: Session,
    path: str,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    url = "/staff/admin/config/" + path.format(hr=_queue(db, "hr").id, pay=_category(db, "pay").id)
    before = snapshot(db)

    response = post(console, url, form)

    assert response.status_code == 400
    assert field_errors(response.text, field) == [message]
    assert textarea(response.text, "description") == form["description"]
    assert snapshot(db) == before
