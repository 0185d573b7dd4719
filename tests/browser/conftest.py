"""Real-browser fixtures: the app served over HTTP on loopback, driven by headless Chromium.

The browser is Debian's Chromium (``/usr/bin/chromium``, or ``PORTAL_TEST_CHROMIUM``), launched
by Playwright for Python; Playwright's own browser downloads are never used. Without that
executable every test here is skipped with one line, so ``make test`` still runs on a machine
without Chromium (``.ci/run`` installs it).

Each xdist worker starts its own Chromium (once per session) and, per test, its own HTTP server
on a free port over the worker's SQLite test database: the file database is shared by the server's
threads and the test's own session, so a test can arrange data with ``portal`` and then browse.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from portal.models import StaffUser
from tests.support.factories import PASSWORD
from tests.support.pages import next_code

CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")
NO_CHROMIUM = f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium every browser test is skipped before any fixture starts (the skip
    summary in tests/conftest.py prints the reason once)."""
    if os.access(CHROMIUM, os.X_OK):
        return
    skip = pytest.mark.skip(reason=NO_CHROMIUM)
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


#: Browser tests run on SQLite only: the server threads share its file database, and the
#: PostgreSQL variants of the same pages are covered by the test client tests.
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the portal keeps none, and the test output stays readable)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test's app on a real HTTP server at ``http://127.0.0.1:<free port>``."""
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield chromium
    chromium.close()


@dataclass
class Tab:
    """A page in its own browser context, with what it logged and where it went."""

    page: Page
    origin: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def _on_console(self, message: ConsoleMessage) -> None:
        where = message.location.get("url", "")
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.type}: {message.text} ({where})")

    def _on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign_requests.append(request.url)

    def assert_clean(self) -> None:
        """No console error or warning, no uncaught exception, no request to another origin."""
        assert self.console_errors == []
        assert self.foreign_requests == []


NewTab = Callable[..., Tab]


@pytest.fixture
def new_tab(browser: Browser, live_server: str) -> Iterator[NewTab]:
    """Opens a tab on the live server: ``new_tab(javascript=False, width=360, height=740)``;
    ``locale="zh-CN"`` makes the browser ask for Chinese."""
    contexts = []

    def open_tab(
        *, javascript: bool = True, width: int = 1280, height: int = 800, locale: str = "en-US"
    ) -> Tab:
        context = browser.new_context(
            base_url=live_server,
            java_script_enabled=javascript,
            viewport={"width": width, "height": height},
            locale=locale,  # also the Accept-Language the browser sends
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        tab = Tab(page, live_server)
        page.on("console", tab._on_console)
        page.on("pageerror", lambda error: tab.console_errors.append(f"uncaught: {error}"))
        context.on("request", tab._on_request)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


def enter_password(page: Page, user: StaffUser, password: str = PASSWORD) -> None:
    """The first staff log-in step in the browser, by the labels: e-mail and password."""
    page.goto("/staff/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/staff/login/code$"))


def enter_code(page: Page, app: Flask, user: StaffUser) -> None:
    """The second step: the authenticator app's current code, from ``next_code`` (pyotp
    through ``portal.crypto``; it moves the app's clock on, rather than waiting, when this
    account's code of the current 30 seconds was used already)."""
    page.get_by_label("Code from your authenticator app").fill(next_code(app, user))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/staff/login"))
    expect(staff_nav(page).get_by_role("button", name="Log out")).to_be_visible()


def log_in(page: Page, app: Flask, user: StaffUser, password: str = PASSWORD) -> None:
    """Both staff log-in steps, as a person does them (password, then a fresh code)."""
    enter_password(page, user, password)
    enter_code(page, app, user)


def staff_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Staff")


def log_out(page: Page) -> None:
    staff_nav(page).get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/staff/login$"))
