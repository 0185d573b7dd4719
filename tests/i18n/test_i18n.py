"""Issue 5, "Languages": English and Simplified Chinese, chosen by an explicit switch kept in the
session, else the browser's Accept-Language, else the ``default_locale`` setting; the choice is
never stored in the database; every translatable string has a translation."""

from __future__ import annotations

import datetime as dt
import logging
import re
from html.parser import HTMLParser

import pytest
from babel.messages.catalog import Catalog
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.app import create_app
from portal.db import checkpoint
from portal.i18n import catalogues, locales
from portal.instance import InstanceSecrets
from portal.services.casework import cases, workflow
from portal.settings import Settings, SettingsError, load_settings
from tests.support.factories import Portal
from tests.support.pages import csrf_token, open_followup, post_concern, report_form
from tests.support.stored import database_bytes

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found, "no <html lang>"
    return found.group(1)


class _Text(HTMLParser):
    """The visible text of a page (script and style are never in our pages)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


# --- Choosing the language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (["zh-CN", "zh", "en"], "zh_CN"),
        (["zh"], "zh_CN"),
        (["zh-Hans-CN"], "zh_CN"),
        (["zh-TW"], "zh_CN"),  # the only Chinese catalogue beats a language not asked for
        (["en-GB", "en"], "en"),
        (["fr", "de"], None),
        (["fr", "zh_CN"], "zh_CN"),  # the first supported one in the browser's order
        (["de", "en", "zh"], "en"),
        ([], None),
    ],
)
def test_browser_languages_map_to_a_catalogue(accept: list[str], expected: str | None) -> None:
    assert locales.from_accept_language(accept) == expected


def test_without_a_choice_the_page_follows_accept_language(client: FlaskClient) -> None:
    assert html_lang(client.get("/").text) == "en"
    page = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text
    assert html_lang(page) == "zh-CN"
    assert CHINESE.search(visible_text(page))
    page = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert html_lang(page) == "en"


def test_the_default_locale_setting_applies_when_the_browser_asks_for_nothing_we_have(
    app: Flask, settings: Settings, secrets: InstanceSecrets
) -> None:
    chinese = create_app(settings.replace(default_locale="zh_CN"), secrets=secrets)
    with chinese.test_client() as client:
        assert html_lang(client.get("/").text) == "zh-CN"
        assert html_lang(client.get("/", headers={"Accept-Language": "fr"}).text) == "zh-CN"
        assert html_lang(client.get("/", headers={"Accept-Language": "en-US"}).text) == "en"


def test_default_locale_must_be_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_DEFAULT_LOCALE", "fr")
    with pytest.raises(SettingsError, match="default_locale must be one of en, zh_CN"):
        load_settings()


def test_the_switch_wins_over_accept_language_and_comes_back_to_the_page(
    client: FlaskClient,
) -> None:
    chinese = {"Accept-Language": "zh-CN"}
    page = client.get("/report", headers=chinese).text
    assert 'href="/language/en?next=/report"' in page
    assert 'lang="en" hreflang="en"' in page
    switched = client.get("/language/en?next=/report", headers=chinese)
    assert switched.status_code == 303
    assert switched.location == "/report"
    assert html_lang(client.get("/report", headers=chinese).text) == "en"
    client.get("/language/zh_CN?next=/")
    page = client.get("/report").text  # no Accept-Language at all
    assert html_lang(page) == "zh-CN"
    assert 'href="/language/en?next=/report"' in page
    assert "/language/zh_CN" not in page  # only the other language is offered


def test_the_switch_keeps_the_query_of_the_page(client: FlaskClient) -> None:
    page = client.get("/followup?x=1").text
    assert 'href="/language/zh_CN?next=/followup?x%3D1"' in page
    assert client.get("/language/zh_CN?next=/followup?x%3D1").location == "/followup?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "/report\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_the_switch_never_leaves_the_site(client: FlaskClient, target: str) -> None:
    response = client.get("/language/zh_CN", query_string={"next": target})
    assert response.status_code == 303
    assert response.location == "/"


def test_an_unknown_language_is_not_found_and_changes_nothing(client: FlaskClient) -> None:
    assert client.get("/language/fr?next=/").status_code == 404
    assert html_lang(client.get("/").text) == "en"


def test_the_quick_exit_forgets_the_choice(client: FlaskClient) -> None:
    client.get("/language/zh_CN")
    assert html_lang(client.get("/").text) == "zh-CN"
    client.get("/leave")
    assert html_lang(client.get("/").text) == "en"


def test_the_choice_is_never_stored_nor_logged(
    app: Flask, portal: Portal, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    portal.staff("olivia")  # an ombudsperson opens the channel
    caplog.set_level(logging.DEBUG)
    # A reporter's write empties SQLite's WAL (tests/invariants/test_reporter_traces.py), which held
    # copies of pages that mention "zh_CN": count before from a WAL emptied the same way.
    checkpoint(app.extensions["portal"].engine)
    before = database_bytes(app)
    client.get("/language/zh_CN?next=/report")
    post_concern(client)
    after = database_bytes(app)
    assert before != after  # the concern itself was stored
    # The taxonomy's own translations say "zh_CN" already; the visit adds no mention of it.
    assert after.count(b"zh_CN") == before.count(b"zh_CN")
    assert after.count(b"zh-CN") == before.count(b"zh-CN") == 0
    assert "zh_CN" not in caplog.text


def test_the_receipt_page_offers_no_switch(portal: Portal, client: FlaskClient) -> None:
    portal.staff("olivia")
    page = post_concern(client).text
    assert "/language/" not in page  # following it would lose the receipt, shown once


def test_an_error_page_switch_does_not_repeat_the_refused_address(client: FlaskClient) -> None:
    response = client.get("/no-such-page-SECRET")
    assert response.status_code == 404
    assert 'href="/language/zh_CN?next=/"' in response.text
    assert "SECRET" not in response.text


def test_a_form_with_errors_is_shown_in_the_chosen_language(
    portal: Portal, client: FlaskClient
) -> None:
    portal.staff("olivia")
    client.get("/language/zh_CN")
    token = csrf_token(client.get("/report").text)
    response = client.post("/report", data={**report_form(description=""), "csrf_token": token})
    assert response.status_code == 400  # the form again, with the error and the text kept
    assert html_lang(response.text) == "zh-CN"
    assert CHINESE.search(visible_text(response.text))


# --- The catalogues ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_catalog() -> Catalog:
    return catalogues.extract()


@pytest.mark.parametrize("locale", catalogues.TRANSLATED)
def test_every_string_has_a_translation(locale: str, template_catalog: Catalog) -> None:
    """Fails on a string of the code or templates missing from the catalogue, left empty or
    fuzzy, with other placeholders than the English, on one no longer in the source, and on a
    .mo that is not its .po compiled. `make messages` updates both; then translate."""
    assert catalogues.problems(locale, template_catalog) == []


def test_the_completeness_check_catches_a_new_string(
    template_catalog: Catalog,
) -> None:
    template_catalog.add("A sentence nobody translated yet", None, [("portal/x.html", 1)])
    try:
        found = catalogues.problems("zh_CN", template_catalog)
    finally:
        del template_catalog["A sentence nobody translated yet"]
    assert found == ["missing (portal/x.html): 'A sentence nobody translated yet'"]


def test_the_placeholder_check() -> None:
    assert catalogues._placeholders("%(count)d of %(name)s, %s") == {"%(count)d", "%(name)s", "%s"}
    assert catalogues._placeholders("100%, always") == set()


REPORTER_PAGES = ["/", "/report", "/followup"]


@pytest.mark.parametrize("path", REPORTER_PAGES)
def test_reporter_pages_show_no_english_sentence_in_chinese(
    client: FlaskClient, path: str, template_catalog: Catalog
) -> None:
    """Rendered in Chinese, a page shows none of the English sentences (four words or more) of
    the catalogue: the .mo is loaded and every string of the page went through it."""
    client.get("/language/zh_CN")
    text = visible_text(client.get(path).text)
    assert CHINESE.search(text)
    sentences = {
        str(m.id)
        for m in template_catalog
        if isinstance(m.id, str) and len(m.id.split()) >= 4 and "%" not in m.id
    }
    shown = sorted(s for s in sentences if s in text)
    assert shown == []


def test_the_automatic_acknowledgement_reads_in_the_reporters_language(
    portal: Portal, db: Session, client: FlaskClient
) -> None:
    """Stored once, in English, like every message; shown translated to whoever reads it."""
    olga = portal.staff("olga")
    submitted = portal.submit()
    cases.acknowledge(db, olga, portal.private_key(olga), submitted.handle, dt.datetime.now(dt.UTC))
    db.commit()
    open_followup(client, submitted.receipt)
    english = visible_text(client.get("/followup/case").text)
    assert str(workflow.ACKNOWLEDGEMENT_TEXT) in english
    client.get("/language/zh_CN")
    chinese = visible_text(client.get("/followup/case").text)
    assert str(workflow.ACKNOWLEDGEMENT_TEXT) not in chinese
    assert gettext_zh(workflow.ACKNOWLEDGEMENT_TEXT.msgid) in chinese


def gettext_zh(msgid: str) -> str:
    catalog = catalogues.read("zh_CN")
    message = catalog.get(msgid)
    assert message is not None and message.string
    return str(message.string)


def test_staff_mails_are_written_in_the_default_locale(
    app: Flask, settings: Settings, secrets: InstanceSecrets
) -> None:
    """Mails are composed by commands, outside any request: the ``default_locale`` decides."""
    from portal.cli.notify import BabelTexts

    subject = "Case deadlines in the ombuds portal"
    with app.app_context():
        assert BabelTexts().gettext(subject) == subject
    chinese = create_app(settings.replace(default_locale="zh_CN"), secrets=secrets)
    with chinese.app_context():
        assert BabelTexts().gettext(subject) == gettext_zh(subject)
        waiting = BabelTexts().ngettext(
            "%(num)d new case is waiting for you in the ombuds portal.",
            "%(num)d new cases are waiting for you in the ombuds portal.",
            3,
        )
        assert "3" in waiting  # Chinese has one plural form, which takes the number
        assert CHINESE.search(waiting)
