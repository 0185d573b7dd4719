"""Taxonomy as code: export to the TOML format `portal load-taxonomy` reads, import with a
complete check first (a refused file changes nothing), in the console and on the command line."""

from __future__ import annotations

import datetime as dt
import io
import tomllib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import TaxonomyError
from portal.models import Category, OrgUnit, RoutingRule, StaffUser, WorkflowStatus
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.configuration import export as taxonomy_export
from portal.services.configuration import taxonomy
from portal.settings import PROJECT_ROOT
from tests.support.admin_helpers import (
    admin_user,
    client_for,
    detail,
    events,
    field_errors,
    fresh,
    post,
    snapshot,
)
from tests.support.factories import Portal
from tests.support.pages import csrf_token

DEFAULT_FILE = PROJECT_ROOT / "config" / "taxonomy.toml"
NOW = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def root(portal: Portal) -> StaffUser:
    return admin_user(portal)


@pytest.fixture
def console(app: Flask, root: StaffUser) -> FlaskClient:
    return client_for(app, root)


def _import(db: Session, text: str) -> taxonomy_export.Imported:
    return taxonomy_export.import_taxonomy(db, text, actor=None, now=NOW, via="test")


def _upload(client: FlaskClient, content: bytes, name: str = "taxonomy.toml") -> object:
    token = csrf_token(client.get("/staff/admin/taxonomy").text)
    return client.post(
        "/staff/admin/taxonomy/import",
        data={"csrf_token": token, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


# --- export --------------------------------------------------------------------------------------


def test_the_default_file_exports_to_the_same_data(db: Session) -> None:
    exported = taxonomy_export.export_text(db)

    assert tomllib.loads(exported) == tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    assert "[[routing]]" in exported and "泄漏" in exported  # readable, not escaped


def test_export_import_export_gives_identical_text(db: Session) -> None:
    first = taxonomy_export.export_text(db)

    _import(db, first)
    db.commit()
    second = taxonomy_export.export_text(fresh(db))

    assert second == first


def test_round_trip_after_console_changes(console: FlaskClient, db: Session) -> None:
    pay = fresh(db).scalars(select(Category).where(Category.code == "pay")).one()
    rule = fresh(db).scalars(select(RoutingRule).where(RoutingRule.position == 5)).one()
    post(console, "/staff/admin/config/categories", {"code": "wellbeing", "label": "Wellbeing"})
    post(console, f"/staff/admin/config/categories/{pay.id}/move", {"direction": "up"})
    post(console, "/staff/admin/config/departments", {"code": "legal", "label": "Legal"})
    post(console, f"/staff/admin/config/rules/{rule.id}/move", {"direction": "up"})
    post(
        console,
        "/staff/admin/config/statuses",
        {"code": "on_hold", "label": 'On hold, "waiting"', "kind": "open"},
    )
    harassment = fresh(db).scalars(select(Category).where(Category.code == "feedback")).one()
    post(console, f"/staff/admin/config/categories/{harassment.id}/active", {"active": "no"})
    first = taxonomy_export.export_text(fresh(db))

    _import(db, first)
    db.commit()
    second = taxonomy_export.export_text(fresh(db))

    assert second == first
    data = tomllib.loads(first)
    codes = [c["code"] for c in data["categories"]]
    assert codes.index("pay") < codes.index("dismissal")
    assert "wellbeing" in codes and "feedback" not in codes  # inactive entries are left out
    assert {"code": "legal", "label": "Legal"} in data["departments"]
    assert data["routing"][3] == {"category": "harassment", "queue": "hr"}
    assert {"code": "on_hold", "label": 'On hold, "waiting"', "kind": "open"} in data["statuses"]
    # ... and stay inactive after the import.
    assert not fresh(db).scalars(select(Category).where(Category.code == "feedback")).one().active


def test_console_download_is_the_export_and_is_audited(
    console: FlaskClient, db: Session, root: StaffUser
) -> None:
    response = post(console, "/staff/admin/taxonomy/export")

    assert response.status_code == 200
    assert response.mimetype == "application/toml"
    assert 'filename="taxonomy.toml"' in response.headers["Content-Disposition"]
    assert response.text == taxonomy_export.export_text(fresh(db))
    [event] = events(db, Action.CONFIG_EXPORTED)
    assert event.actor_id == root.id
    assert detail(event) == {
        "via": "console",
        "queues": 5,
        "categories": 12,
        "sites": 4,
        "departments": 5,
        "routing": 12,
    }
    assert audit.verify(db).ok


# --- import --------------------------------------------------------------------------------------


def test_console_import_loads_the_file_and_is_audited(
    console: FlaskClient, db: Session, root: StaffUser
) -> None:
    text = taxonomy_export.export_text(db).replace(
        'label = "Pay, hours or benefits"', 'label = "Pay and hours"'
    )

    response = _upload(console, text.encode())

    assert response.status_code == 302  # type: ignore[attr-defined]
    assert fresh(db).scalars(select(Category).where(Category.code == "pay")).one().label == (
        "Pay and hours"
    )
    [event] = events(db, Action.CONFIG_IMPORTED)
    assert event.actor_id == root.id
    assert detail(event) == {
        "via": "console",
        "queues": 5,
        "categories": 12,
        "sites": 4,
        "departments": 5,
        "routing": 12,
        "statuses": 5,
        "outcomes": 5,
    }
    page = console.get("/staff/admin/taxonomy").text
    assert "Taxonomy loaded: 5 queues, 12 categories, 12 routing rules" in page


def _broken(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BROKEN = {
    "not TOML": lambda t: t + "\n[[queues]\n",
    "unknown top-level key": lambda t: "colour = 'blue'\n" + t,
    "unknown key in a category": lambda t: _broken(
        t, 'code = "pay"\n', 'code = "pay"\nactive = false\n'
    ),
    "label is not text": lambda t: _broken(t, 'label = "Discrimination"', "label = 42"),
    "bad code": lambda t: _broken(t, 'code = "pay"', 'code = "Pay Day"'),
    "duplicate code": lambda t: _broken(t, 'code = "pay"', 'code = "fraud"'),
    "unknown queue in a rule": lambda t: _broken(t, 'queue = "board"', 'queue = "boardroom"'),
    "rule category not a string": lambda t: _broken(
        t, 'category = "executive_conduct"', 'category = ["executive_conduct"]'
    ),
    "unknown category in a rule": lambda t: _broken(
        t, 'category = "executive_conduct"', 'category = "executives"'
    ),
    "unknown priority": lambda t: _broken(t, 'priority = "urgent"', 'priority = "asap"'),
    "keywords not a list": lambda t: _broken(
        t,
        'category = "executive_conduct"\n',
        'category = "executive_conduct"\nkeywords = "fire"\n',
    ),
    "fallback not a queue": lambda t: _broken(
        t, 'fallback_queue = "general"', 'fallback_queue = "nowhere"'
    ),
    "two new statuses": lambda t: _broken(t, 'kind = "acknowledged"', 'kind = "new"'),
    "policy out of range": lambda t: _broken(
        t, "anonymity_threshold = 5", "anonymity_threshold = 2"
    ),
    "label with a control character": lambda t: _broken(
        t, 'label = "Discrimination"', 'label = "Discrimi\\u0007nation"'
    ),
    "unknown language": lambda t: _broken(t, 'label_zh_CN = "歧视"', 'label_fr = "Discrimination"'),
    "language in lower case": lambda t: _broken(t, 'label_zh_CN = "歧视"', 'label_zh_cn = "歧视"'),
    "English as a translation": lambda t: _broken(
        t, 'label_zh_CN = "歧视"', 'label_en = "Discrimination"'
    ),
    "translation too long": lambda t: _broken(
        t, 'label_zh_CN = "歧视"', f'label_zh_CN = "{"歧" * 201}"'
    ),
    "translation with a control character": lambda t: _broken(
        t, 'label_zh_CN = "歧视"', 'label_zh_CN = "歧\\u0007视"'
    ),
    "translation with a line break": lambda t: _broken(
        t, 'label_zh_CN = "已撤回"', 'label_zh_CN = "已\\n撤回"'
    ),
    "empty translation": lambda t: _broken(t, 'label_zh_CN = "歧视"', 'label_zh_CN = " "'),
    "translation is not text": lambda t: _broken(t, 'name_zh_CN = "道德与合规"', "name_zh_CN = 3"),
    "description translation too long": lambda t: _broken(
        t, 'description_zh_CN = "工作中的健康与安全风险。"', f'description_zh_CN = "{"险" * 1001}"'
    ),
}

MESSAGES = {
    "not TOML": "the file is not valid TOML",
    "unknown top-level key": "unknown top-level keys ['colour']",
    "unknown key in a category": "[[categories]] entry 5 has unknown keys ['active']",
    "label is not text": "[[categories]] entry 2: 'label' must be text",
    "bad code": "[[categories]] entry 5: 'code' 'Pay Day' is not a valid code",
    "duplicate code": "[[categories]] has 'fraud' twice",
    "unknown queue in a rule": "[[routing]] entry 1 names unknown queue 'boardroom'",
    "rule category not a string": "[[routing]] entry 1: 'category' must be text",
    "unknown category in a rule": "[[routing]] entry 1 names unknown category 'executives'",
    "unknown priority": "[[routing]] entry 2 has unknown priority 'asap'",
    "keywords not a list": "[[routing]] entry 1: 'keywords' must be a list of strings",
    "fallback not a queue": "fallback_queue 'nowhere' is not among [[queues]]",
    "two new statuses": "[[statuses]] needs exactly one status of kind 'new'",
    "policy out of range": "[policy]: anonymity_threshold must be a whole number from 3 to 100.",
    "label with a control character": (
        "[[categories]] entry 2: 'label' contains a line break or control character"
    ),
    "unknown language": (
        "[[categories]] entry 2: 'label_fr' names unknown language 'fr': translations are"
        " 'label_zh_CN'"
    ),
    "language in lower case": "[[categories]] entry 2: 'label_zh_cn' names unknown language",
    "English as a translation": "the English text is 'label' itself",
    "translation too long": "[[categories]] entry 2: 'label_zh_CN' is longer than 200 characters",
    "translation with a control character": (
        "[[categories]] entry 2: 'label_zh_CN' contains a line break or control character"
    ),
    "translation with a line break": (
        "[[outcomes]] entry 5: 'label_zh_CN' contains a line break or control character"
    ),
    "empty translation": "[[categories]] entry 2: 'label_zh_CN' is empty",
    "translation is not text": "[[queues]] entry 3: 'name_zh_CN' must be text",
    "description translation too long": (
        "[[queues]] entry 4: 'description_zh_CN' is longer than 1000 characters"
    ),
}


@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_a_refused_file_changes_nothing_and_says_where(db: Session, problem: str) -> None:
    text = BROKEN[problem](taxonomy_export.export_text(db))
    before = snapshot(db)

    with pytest.raises(TaxonomyError) as refused:
        _import(db, text)
    db.rollback()

    assert MESSAGES[problem] in str(refused.value)
    assert snapshot(db) == before


def test_a_syntax_error_names_its_line(db: Session) -> None:
    text = taxonomy_export.export_text(db) + "\n[[queues]\n"
    line = text.count("\n")

    with pytest.raises(TaxonomyError, match=rf"line {line}"):
        taxonomy_export.parse(text)


def test_a_status_cases_still_have_cannot_be_left_out(db: Session, portal: Portal) -> None:
    portal.staff("olga")
    portal.submit()  # a case in status "new"
    text = _broken(
        taxonomy_export.export_text(db),
        'code = "new"\nlabel = "New"\nlabel_zh_CN = "新收到"\nkind = "new"',
        'code = "fresh"\nlabel = "Fresh"\nkind = "new"',
    )
    before = snapshot(db)

    with pytest.raises(TaxonomyError, match="leaves out 'new', but cases have it"):
        _import(db, text)
    db.rollback()

    assert snapshot(db) == before
    assert fresh(db).scalars(select(WorkflowStatus).where(WorkflowStatus.code == "new")).one()


def test_console_import_error_is_shown_next_to_the_field(console: FlaskClient, db: Session) -> None:
    text = BROKEN["unknown queue in a rule"](taxonomy_export.export_text(db))
    before = snapshot(db)

    response = _upload(console, text.encode())

    assert response.status_code == 400  # type: ignore[attr-defined]
    [message] = field_errors(response.text, "file")  # type: ignore[attr-defined]
    assert message == ("Nothing was changed: [[routing]] entry 1 names unknown queue 'boardroom'.")
    assert snapshot(db) == before
    assert events(db, Action.CONFIG_IMPORTED) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not utf-8", "the file is not UTF-8 text (byte 1 cannot be read)"),
        (
            b"#" * (taxonomy_export.IMPORT_MAX_BYTES + 1),
            "the file is 262,145 bytes; the limit is 262,144 bytes",
        ),
    ],
)
def test_console_import_refuses_what_is_not_a_small_text_file(
    console: FlaskClient, db: Session, content: bytes, message: str
) -> None:
    before = snapshot(db)

    response = _upload(console, content)

    assert response.status_code == 400  # type: ignore[attr-defined]
    assert field_errors(response.text, "file") == [  # type: ignore[attr-defined]
        f"Nothing was changed: {message}."
    ]
    assert snapshot(db) == before


def test_console_import_without_a_file(console: FlaskClient) -> None:
    response = post(console, "/staff/admin/taxonomy/import")

    assert response.status_code == 400
    assert field_errors(response.text, "file") == ["Choose a file."]


# --- the command line ----------------------------------------------------------------------------


def _run(app: Flask, *args: str) -> tuple[int, str, str]:
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_export_to_stdout_and_to_a_file(app: Flask, db: Session, tmp_path: Path) -> None:
    code, out, _ = _run(app, "taxonomy", "export")
    assert code == 0
    assert out == taxonomy_export.export_text(fresh(db))

    target = tmp_path / "exported.toml"
    code, out, err = _run(app, "taxonomy", "export", str(target))
    assert code == 0 and out == ""
    assert "5 queues, 12 categories, 12 routing rules" in err
    assert target.read_text(encoding="utf-8") == taxonomy_export.export_text(fresh(db))
    exports = events(db, Action.CONFIG_EXPORTED)
    assert [(e.actor_id, detail(e)["via"]) for e in exports] == [(None, "cli"), (None, "cli")]


def test_cli_import_loads_a_file_and_refuses_a_broken_one(
    app: Flask, db: Session, tmp_path: Path
) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        taxonomy_export.export_text(db).replace('name = "HR ombuds"', 'name = "People team"'),
        encoding="utf-8",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN["duplicate code"](good.read_text(encoding="utf-8")), encoding="utf-8")

    code, out, _ = _run(app, "taxonomy", "import", str(good))
    assert code == 0, out
    assert "loaded" in out and "12 categories" in out
    before = snapshot(db)
    code, out, err = _run(app, "taxonomy", "import", str(bad))

    assert code != 0
    assert "nothing was changed: [[categories]] has 'fraud' twice" in err
    assert snapshot(db) == before
    assert "People team" in taxonomy_export.export_text(fresh(db))
    assert [detail(e)["via"] for e in events(db, Action.CONFIG_IMPORTED)] == ["cli"]


def test_the_default_file_also_loads_through_load_taxonomy_after_export(
    db: Session, tmp_path: Path
) -> None:
    # The export is "exactly the format `portal load-taxonomy` reads".
    path = tmp_path / "exported.toml"
    path.write_text(taxonomy_export.export_text(db), encoding="utf-8")

    report = taxonomy.load_taxonomy(db, taxonomy.read_taxonomy_file(path))

    assert (report.queues, report.categories, report.rules) == (5, 12, 12)


# --- translations --------------------------------------------------------------------------------

TRANSLATED_TABLES = ("queues", "categories", "sites", "departments", "statuses", "outcomes")


def test_every_text_of_the_default_file_has_a_chinese_translation() -> None:
    data = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    missing = []
    for table in TRANSLATED_TABLES:
        for entry in data[table]:
            for field in ("name", "label", "description"):
                if field in entry and not entry.get(f"{field}_zh_CN", "").strip():
                    missing.append((table, entry.get("code", entry.get("slug")), field))
    assert missing == []


def test_translations_are_loaded_and_exported_after_their_text(db: Session) -> None:
    harassment = db.scalars(select(Category).where(Category.code == "harassment")).one()
    assert harassment.translations == {"zh_CN": {"label": "骚扰、霸凌或性骚扰"}}

    exported = taxonomy_export.export_text(db)

    assert (
        'code = "harassment"\nlabel = "Harassment, bullying or sexual harassment"\n'
        'label_zh_CN = "骚扰、霸凌或性骚扰"\n'
    ) in exported
    assert 'name = "Health and safety"\nname_zh_CN = "健康与安全"\n' in exported


def test_import_changes_and_removes_translations_and_round_trips(db: Session) -> None:
    text = _broken(
        taxonomy_export.export_text(db), 'label_zh_CN = "歧视"\n', 'label_zh_CN = "就业歧视"\n'
    )
    text = _broken(text, 'label_zh_CN = "财务"\n', "")  # finance: no translation any more
    text = _broken(
        text,
        'code = "other"\nlabel = "Something else"\nlabel_zh_CN = "其他问题"\n',
        'code = "other"\nlabel = "Something else"\nlabel_zh_CN = "其他问题"\n'
        'description_zh_CN = "以上都不是"\n',
    )

    _import(db, text)
    db.commit()

    rows = {c.code: c for c in fresh(db).scalars(select(Category))}
    assert rows["discrimination"].translations == {"zh_CN": {"label": "就业歧视"}}
    assert rows["other"].translations == {
        "zh_CN": {"label": "其他问题", "description": "以上都不是"}
    }
    finance = fresh(db).scalars(select(OrgUnit).where(OrgUnit.code == "finance")).one()
    assert finance.translations == {}
    assert taxonomy_export.export_text(fresh(db)) == text


def test_load_taxonomy_refuses_an_unknown_language_but_ignores_other_keys(db: Session) -> None:
    data = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    data["sites"][0]["colour"] = "blue"  # load-taxonomy is lenient about unknown keys ...
    taxonomy.load_taxonomy(db, data)
    data["sites"][0]["label_de"] = "Hauptsitz"  # ... but not about a language it does not have

    with pytest.raises(TaxonomyError, match=r"\[\[sites\]\] entry 1: 'label_de' names unknown"):
        taxonomy.load_taxonomy(db, data)
    db.rollback()
