"""Configured labels in the language being shown (issue 5): i18n.shown and its fallback, the
pages that show labels with the locale forced to zh_CN, and editing translations in the console
(audited by field name only)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.i18n import labels as i18n
from portal.models import Category, OrgUnit, Queue, StaffUser, WorkflowStatus
from portal.services.audit.chain import Action
from portal.services.configuration import taxonomy
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.web.insights import present
from tests.support.admin_helpers import (
    admin_user,
    client_for,
    detail,
    events,
    fresh,
    input_value,
    post,
)
from tests.support.factories import Portal
from tests.support.pages import login, open_followup


@pytest.fixture
def chinese(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages in zh_CN, as the locale selection will choose it (Flask-Babel's selector)."""
    monkeypatch.setattr(app.extensions["babel"], "locale_selector", lambda: "zh_CN")


def _category(db: Session, code: str) -> Category:
    return fresh(db).scalars(select(Category).where(Category.code == code)).one()


# --- i18n.shown ----------------------------------------------------------------------------------


def test_locales_come_from_one_place() -> None:
    assert i18n.LOCALES == ("en", "zh_CN")
    assert i18n.DEFAULT_LOCALE == "en" and i18n.TRANSLATED_LOCALES == ("zh_CN",)


def test_shown_translates_and_falls_back_to_english() -> None:
    row = Category(code="x", label="Pay", translations={"zh_CN": {"label": "薪酬"}})
    bare = Category(code="y", label="Other", translations={})

    assert i18n.shown(row) == "Pay"  # no locale bound: the default
    with i18n.use_locale("zh_CN"):
        assert i18n.shown(row) == "薪酬"
        assert i18n.shown(bare) == "Other"
    with i18n.use_locale("fr"):  # not a portal language: the default
        assert i18n.shown(row) == "Pay"
    assert i18n.shown(row, locale="zh_CN") == "薪酬"


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("zh_CN", "zh_CN"),
        ("zh_Hans_CN", "zh_CN"),  # how Babel spells zh_CN (str(Locale.parse("zh_CN")))
        ("zh-CN", "zh_CN"),
        ("en", "en"),
        ("en_GB", "en"),
        ("zh_TW", None),  # traditional Chinese is not zh_CN
        ("fr", None),
        ("", None),
    ],
)
def test_locale_tags_are_matched_to_the_portal_languages(tag: str, locale: str | None) -> None:
    assert i18n.match_locale(tag) == locale


# --- pages ---------------------------------------------------------------------------------------


def test_report_form_offers_chinese_labels(app: Flask, portal: Portal, chinese: None) -> None:
    portal.staff("olga")
    page = app.test_client().get("/report").text

    assert "骚扰、霸凌或性骚扰" in page
    assert "上海办公室" in page and "销售与市场" in page
    assert "Harassment, bullying or sexual harassment" not in page


def test_report_form_falls_back_to_english_without_a_translation(
    app: Flask, portal: Portal, db: Session, chinese: None
) -> None:
    portal.staff("olga")
    unit = db.scalars(select(OrgUnit).where(OrgUnit.code == "finance")).one()
    unit.translations = {}
    db.commit()

    page = app.test_client().get("/report").text

    assert ">Finance<" in page or "Finance (" in page
    assert "骚扰、霸凌或性骚扰" in page


def test_report_form_is_english_by_default(app: Flask, portal: Portal) -> None:
    portal.staff("olga")
    page = app.test_client().get("/report").text

    assert "Harassment, bullying or sexual harassment" in page
    assert "骚扰" not in page


def test_staff_case_page_and_list_show_chinese_status(
    app: Flask, portal: Portal, chinese: None
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(category_code="pay")
    client = app.test_client()
    login(client, olga)

    case_page = client.get(f"/staff/cases/{submitted.handle}").text
    listing = client.get("/staff/").text

    assert "新收到" in case_page  # status "new"
    assert "薪酬、工时或福利" in case_page  # the reporter's category
    assert "综合申诉办公室" in case_page  # the queue
    assert "新收到" in listing and "薪酬、工时或福利" in listing


def test_status_without_translation_shows_english(
    app: Flask, portal: Portal, db: Session, chinese: None
) -> None:
    status = db.scalars(select(WorkflowStatus).where(WorkflowStatus.code == "new")).one()
    status.translations = {}
    db.commit()
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = app.test_client()
    login(client, olga)

    page = client.get(f"/staff/cases/{submitted.handle}").text

    assert ">New<" in page or ">New " in page
    assert "新收到" not in page.split('id="case-status"')[1].split("</dd>")[0]


def test_follow_up_page_shows_chinese_status_and_category(
    app: Flask, portal: Portal, chinese: None
) -> None:
    portal.staff("olga")
    submitted = portal.submit(category_code="fraud")
    client = app.test_client()
    open_followup(client, submitted.receipt)

    page = client.get("/followup/case").text

    assert "新收到" in page and "欺诈、贿赂或财务违规" in page


def test_insight_rows_are_translated_by_code_at_render_time(db: Session) -> None:
    view = insights_releases.View(
        name="category",
        rows=(
            insights_releases.Label("pay", "Pay, hours or benefits"),
            insights_releases.Label("gone", "Gone"),
        ),
        columns=(insights_releases.Label("count", "count"),),
        cells=((5,), (7,)),
        row_totals=None,
        column_totals=None,
        total=12,
    )
    names = insights.translated_names(db, "zh_CN")

    assert present.label_for("category", view.rows[0], names=names) == "薪酬、工时或福利"
    # A code the taxonomy no longer has keeps the release's own label.
    assert present.label_for("category", view.rows[1], names=names) == "Gone"
    assert (
        present.label_for("site", insights_releases.Label("hq", "Head office"), names=names)
        == "总部"
    )
    assert insights.translated_names(db, "en") == {}  # English: the release's labels as stored


# --- the console ---------------------------------------------------------------------------------


@pytest.fixture
def console_admin(portal: Portal) -> StaffUser:
    return admin_user(portal)


def test_console_edits_the_chinese_label_beside_the_english_one(
    app: Flask, db: Session, console_admin: StaffUser
) -> None:
    console = client_for(app, console_admin)
    pay = _category(db, "pay")
    url = f"/staff/admin/config/categories/{pay.id}"
    page = console.get(url).text
    assert input_value(page, "label_zh_CN") == "薪酬、工时或福利"

    post(
        console,
        url,
        {"label": pay.label, "description": "", "label_zh_CN": "薪酬与福利"},
    )

    assert _category(db, "pay").translations == {"zh_CN": {"label": "薪酬与福利"}}
    changed = [detail(e) for e in events(db, Action.CONFIG_CHANGED)]
    assert changed[-1]["fields"] == ["label_zh_CN"]
    assert "薪酬与福利" not in str(changed)  # the audit names fields, never labels

    post(console, url, {"label": pay.label, "description": "", "label_zh_CN": ""})

    assert _category(db, "pay").translations == {}  # empty: no translation, English shown


def test_console_refuses_a_control_character_in_a_translation(
    app: Flask, db: Session, console_admin: StaffUser
) -> None:
    console = client_for(app, console_admin)
    general = fresh(db).scalars(select(Queue).where(Queue.slug == "general")).one()
    queue_page = f"/staff/admin/config/queues/{general.id}"

    response = post(
        console,
        queue_page,
        {"name": "General ombuds office", "description": "", "name_zh_CN": "综合\x07办公室"},
    )

    assert response.status_code == 400
    assert "Control characters are not allowed here." in response.text


def test_console_adds_a_status_with_its_translation(
    app: Flask, db: Session, console_admin: StaffUser
) -> None:
    console = client_for(app, console_admin)

    post(
        console,
        "/staff/admin/config/statuses",
        {"code": "on_hold", "label": "On hold", "label_zh_CN": "暂缓处理", "kind": "open"},
    )

    row = fresh(db).scalars(select(WorkflowStatus).where(WorkflowStatus.code == "on_hold")).one()
    assert row.translations == {"zh_CN": {"label": "暂缓处理"}}
    assert detail(events(db, Action.CONFIG_CHANGED)[-1])["fields"] == [
        "code",
        "kind",
        "label",
        "label_zh_CN",
    ]
    assert taxonomy.statuses(fresh(db))[-1].code == "on_hold"


def test_a_post_without_the_translation_field_keeps_the_translation(
    app: Flask, db: Session, console_admin: StaffUser
) -> None:
    console = client_for(app, console_admin)
    pay = _category(db, "pay")

    post(console, f"/staff/admin/config/categories/{pay.id}", {"label": "Pay and hours"})

    assert _category(db, "pay").translations == {"zh_CN": {"label": "薪酬、工时或福利"}}


def test_console_lists_show_the_labels_in_the_page_language(
    app: Flask, portal: Portal, console_admin: StaffUser, chinese: None
) -> None:
    """The console's lists (categories, sites, statuses, queues, routing rules, staff) show the
    translation on a Chinese page, as every other page does; the edit forms keep both."""
    portal.staff("olga")  # an ombudsperson in "general", listed with her queue
    console = client_for(app, console_admin)
    pages = {
        "/staff/admin/config/categories": ("骚扰、霸凌或性骚扰", "Harassment, bullying"),
        "/staff/admin/config/sites": ("北部工厂", "North plant"),
        "/staff/admin/config/statuses": ("新收到", ">New<"),
        "/staff/admin/config/queues": ("人力资源申诉专员", "HR ombuds"),
        "/staff/admin/config/rules": ("董事会级受理队列", "Board-level queue"),
        "/staff/admin/staff": ("综合申诉办公室", "General ombuds office"),
    }
    for url, (chinese_label, english_label) in pages.items():
        page = console.get(url)
        assert page.status_code == 200, url
        assert chinese_label in page.text, url
        assert english_label not in page.text, url


def test_console_lists_stay_english_on_an_english_page(
    app: Flask, portal: Portal, console_admin: StaffUser
) -> None:
    console = client_for(app, console_admin)
    page = console.get("/staff/admin/config/rules").text
    assert "Board-level queue" in page and "董事会级受理队列" not in page
