"""Issue 5, "Languages", in a real browser: a browser that asks for Chinese gets Chinese pages; the
switch in the header changes the language and comes back to the same page, with JavaScript off
and on; a whole concern and its follow-up work in Chinese; the Chinese pages pass axe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.i18n import catalogues
from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.browser.test_accessibility import violations
from tests.support.factories import Portal

pytestmark = SQLITE_ONLY

DESCRIPTION = "我的经理每周一都当着全组的面对我大喊大叫。"
RECEIPT = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$")
_ZH = catalogues.read("zh_CN")


def zh(msgid: str) -> str:
    """The catalogue's Chinese for ``msgid`` (so the test follows the translators' wording)."""
    message = _ZH.get(msgid)
    assert message is not None and message.string, msgid
    return str(message.string)


def heading(page: Page) -> str:
    return page.get_by_role("heading", level=1).inner_text().strip()


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_switch_language_and_raise_a_concern_in_chinese(
    portal: Portal, new_tab: NewTab, javascript: bool
) -> None:
    portal.staff("olivia")
    tab = new_tab(javascript=javascript)  # the browser asks for English
    page = tab.page
    page.goto("/report")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Raise a concern")

    page.get_by_role("navigation", name="Language").get_by_role("link", name="简体中文").click()
    expect(page).to_have_url(re.compile(r"/report$"))  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text(zh("Raise a concern"))

    page.locator("input[name=category][value=harassment]").check()
    page.get_by_label(zh("What happened?")).fill(DESCRIPTION)
    page.get_by_label(zh("When did it happen?")).select_option("ongoing")
    page.get_by_role("button", name=zh("Send my concern")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(zh("Your concern was received"))
    receipt = page.locator("#receipt").inner_text().strip()
    assert RECEIPT.match(receipt), receipt
    assert page.get_by_role("navigation", name=zh("Language")).count() == 0  # shown once

    page.get_by_role("link", name=zh("Go to follow-up")).click()
    page.get_by_label(zh("Your receipt")).fill(receipt)
    page.get_by_role("button", name=zh("Open my case")).click()
    expect(page).to_have_url(re.compile(r"/followup/case$"))
    expect(page.get_by_text(DESCRIPTION)).to_be_visible()

    # And back to English on the same page, still logged in to the case.
    page.get_by_role("navigation", name=zh("Language")).get_by_role("link", name="English").click()
    expect(page).to_have_url(re.compile(r"/followup/case$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern")
    expect(page.get_by_text(DESCRIPTION)).to_be_visible()
    tab.assert_clean()


def test_a_browser_asking_for_chinese_gets_chinese_pages_without_axe_violations(
    portal: Portal, new_tab: NewTab
) -> None:
    portal.staff("olivia")
    tab = new_tab(locale="zh-CN", width=360, height=740)
    page = tab.page
    found: dict[str, list[str]] = {}
    for path, title in [
        ("/", "Raise a concern safely"),
        ("/report", "Raise a concern"),
        ("/followup", "Follow up on your concern"),
        ("/staff/login", "Staff log-in"),
    ]:
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        assert heading(page) == zh(title)
        found[path] = violations(page)
    assert {path: v for path, v in found.items() if v} == {}
    tab.assert_clean()
