"""The routing test page: which rule a sample concern would hit, the keyword, the queue, the
priority and who would receive it; and the sample text is never stored or logged."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Category, OrgUnit, Role, StaffUser
from tests.support.admin_helpers import (
    admin_user,
    client_for,
    field_errors,
    fresh,
    post,
    selected,
    snapshot,
    tables_containing,
    textarea,
)
from tests.support.factories import Portal

ENGLISH = "There was a gas leak near hall B yesterday (unique-sample-7f3e)."
CHINESE = "昨天B车间附近的消防通道被堵住了，样本编号九七三。"


@pytest.fixture
def staffed(portal: Portal) -> dict[str, StaffUser]:
    return {
        "carol": portal.staff("carol", queues=("safety", "hr")),
        "erik": portal.staff("erik", queues=("ethics",)),
        "gina": portal.staff("gina", queues=("general",)),
        "root": admin_user(portal),
    }


@pytest.fixture
def console(app: Flask, staffed: dict[str, StaffUser]) -> FlaskClient:
    return client_for(app, staffed["root"])


def _id(db: Session, model: type[Category] | type[OrgUnit], code: str) -> str:
    return str(fresh(db).scalars(select(model.id).where(model.code == code)).one())


def _result(page: str, part: str) -> str:
    match = re.search(rf'<dd id="result-{part}">(.*?)</dd>', page, re.S)
    assert match, page
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _try(client: FlaskClient, db: Session, category: str, text: str, **units: str) -> str:
    response = post(
        client,
        "/staff/admin/routing-test",
        {
            "category": _id(db, Category, category),
            "site": units.get("site", ""),
            "department": units.get("department", ""),
            "sample": text,
        },
    )
    assert response.status_code == 200, response.text
    return response.text


def test_english_sample_hits_the_keyword_rule(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "safety", ENGLISH)

    assert _result(page, "rule").startswith("Rule 2: category Health and safety risk; site any;")
    assert _result(page, "keyword") == "gas leak"
    assert _result(page, "queue") == "Health and safety"
    assert _result(page, "priority") == "Urgent"
    assert _result(page, "recipients") == "Carol"
    # What was typed stays in the form.
    assert textarea(page, "sample") == ENGLISH
    assert selected(page, "category") == _id(db, Category, "safety")


def test_chinese_sample_hits_a_chinese_keyword(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "safety", CHINESE)

    assert _result(page, "keyword") == "消防通道"
    assert _result(page, "priority") == "Urgent"
    assert textarea(page, "sample") == CHINESE


def test_without_a_keyword_the_next_rule_matches(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "safety", "The stairs are slippery.")

    assert _result(page, "rule").startswith("Rule 3: category Health and safety risk")
    assert _result(page, "keyword") == "none (the rule does not look at the text)"
    assert _result(page, "priority") == "Normal"


def test_other_with_bribery_in_chinese_goes_to_ethics(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "other", "供应商给采购经理回扣。")

    assert _result(page, "rule").startswith("Rule 12: category Something else")
    assert _result(page, "keyword") == "回扣"
    assert _result(page, "queue") == "Ethics and compliance"
    assert _result(page, "priority") == "High"
    assert _result(page, "recipients") == "Erik"


def test_no_rule_means_the_fallback_queue(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "feedback", "More plants in the office, please.")

    assert _result(page, "rule") == "No rule matched: the fallback queue takes it."
    assert _result(page, "queue") == "General ombuds office"
    assert _result(page, "recipients") == "Gina"


def test_an_unstaffed_queue_falls_back_and_it_is_said(console: FlaskClient, db: Session) -> None:
    page = _try(console, db, "executive_conduct", "")

    assert _result(page, "rule").startswith("Rule 1: category Conduct of an executive")
    assert _result(page, "queue") == (
        "General ombuds office (Board-level queue has no active ombudsperson, so the fallback"
        " queue takes it)"
    )
    assert _result(page, "recipients") == "Gina"


def test_a_rule_on_a_site_matches_only_that_site(console: FlaskClient, db: Session) -> None:
    hq = _id(db, OrgUnit, "hq")
    rules = console.get("/staff/admin/config/rules").text
    ethics = re.search(r'<option value="(\d+)">Ethics and compliance</option>', rules)
    assert ethics
    post(console, "/staff/admin/config/rules", {"site": hq, "queue": ethics.group(1)})
    # Moved to the top, so that it is tried first.
    rule_id = re.findall(r'id="rule-(\d+)"', console.get("/staff/admin/config/rules").text)[-1]
    for _ in range(12):
        post(console, f"/staff/admin/config/rules/{rule_id}/move", {"direction": "up"})

    at_hq = _try(console, db, "feedback", "", site=hq)
    elsewhere = _try(console, db, "feedback", "", site=_id(db, OrgUnit, "shanghai"))

    assert _result(at_hq, "rule").startswith("Rule 1: category any; site Head office;")
    assert _result(at_hq, "queue") == "Ethics and compliance"
    assert _result(elsewhere, "queue") == "General ombuds office"


def test_nobody_to_receive_it_is_said(app: Flask, portal: Portal, db: Session) -> None:
    root = admin_user(portal)
    client = client_for(app, root)

    page = _try(client, db, "feedback", "")

    assert "Nobody could receive it" in _result(page, "queue")
    assert _result(page, "recipients") == "nobody"


def test_ombudspersons_may_use_it_and_find_it_in_their_menu(
    app: Flask, staffed: dict[str, StaffUser], db: Session
) -> None:
    carol = client_for(app, staffed["carol"])

    assert 'href="/staff/admin/routing-test"' in carol.get("/staff/").text
    page = _try(carol, db, "safety", ENGLISH)
    assert _result(page, "queue") == "Health and safety"
    # ... but nothing else of the console.
    assert carol.get("/staff/admin/config/rules").status_code == 403
    assert carol.get("/staff/admin/").status_code == 403


def test_management_may_not(app: Flask, portal: Portal) -> None:
    boss = portal.staff("boss", roles=(Role.MANAGEMENT,), queues=())
    assert client_for(app, boss).get("/staff/admin/routing-test").status_code == 403


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"category": ""}, "category", "Choose a category."),
        ({"category": "99999"}, "category", "Not a valid choice."),
        ({"site": "99999"}, "site", "Not a valid choice."),
    ],
)
def test_bad_input_is_explained_and_the_text_kept(
    console: FlaskClient, db: Session, form: dict[str, str], field: str, message: str
) -> None:
    data = {"category": _id(db, Category, "safety"), "sample": ENGLISH, **form}

    response = post(console, "/staff/admin/routing-test", data)

    assert response.status_code == 400
    assert message in field_errors(response.text, field)[0]
    assert textarea(response.text, "sample") == ENGLISH
    assert 'id="result"' not in response.text


def test_a_sample_over_the_limit_is_refused_and_kept(
    console: FlaskClient, db: Session, portal: Portal
) -> None:
    limit = portal.settings.description_max_chars
    sample = "x" * (limit + 1)

    response = post(
        console,
        "/staff/admin/routing-test",
        {"category": _id(db, Category, "safety"), "sample": sample},
    )

    assert response.status_code == 400
    assert field_errors(response.text, "sample") == [
        f"This is {limit + 1:,} characters long; the limit is {limit:,}."
    ]
    assert textarea(response.text, "sample") == sample


def test_the_sample_text_is_never_stored_or_logged(
    console: FlaskClient, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    before = snapshot(db)
    caplog.set_level(logging.DEBUG)

    for sample in (ENGLISH, CHINESE):
        response = post(
            console,
            "/staff/admin/routing-test",
            {"category": _id(db, Category, "safety"), "sample": sample},
        )
        assert response.status_code == 200
        # Not in a cookie (the flash cookie is readable) nor in any header.
        assert sample not in str(response.headers)
        assert "unique-sample-7f3e" not in str(response.headers)

    assert snapshot(db) == before
    for needle in (ENGLISH, CHINESE, "unique-sample-7f3e", "样本编号九七三"):
        assert tables_containing(db, needle) == []
        assert needle not in caplog.text
    assert all(
        "unique-sample" not in str(record.args) and "样本" not in str(record.args)
        for record in caplog.records
    )
