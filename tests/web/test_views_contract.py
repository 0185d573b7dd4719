"""How the views handle a refusal, checked on their source: one unit of work
(``portal/web/transactions.py``, the only module under ``portal/web`` that rolls a session back)
and one 404 for whatever is not found (``UnknownItem``, answered in ``portal/web/errors.py``),
instead of a hand-written ``rollback()`` or an ``_x_or_404`` helper in each view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.models import Role
from portal.settings import PROJECT_ROOT
from tests.support.factories import Portal
from tests.support.pages import login

WEB = PROJECT_ROOT / "portal" / "web"
UNIT_OF_WORK = WEB / "transactions.py"

ROLLBACK = re.compile(r"\.rollback\(")
OR_404 = re.compile(r"^\s*def\s+\w*or_404\w*\s*\(", re.MULTILINE)


def _view_files() -> list[Path]:
    return sorted(path for path in WEB.rglob("*.py") if path != UNIT_OF_WORK)


def _name(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def test_the_view_files_are_found() -> None:
    names = {_name(p) for p in _view_files()}
    assert "portal/web/admin/config_views.py" in names
    assert "portal/web/reporter/views.py" in names
    assert "portal/web/staff/views.py" in names
    assert _name(UNIT_OF_WORK) not in names


def test_only_the_unit_of_work_rolls_back() -> None:
    offenders = [
        f"{_name(path)}:{number}"
        for path in _view_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ROLLBACK.search(line)
    ]
    assert offenders == [], "use portal.web.transactions (unit_of_work, commit_or_form_error)"
    assert ROLLBACK.search(UNIT_OF_WORK.read_text(encoding="utf-8"))


def test_no_view_defines_an_or_404_helper() -> None:
    offenders = [
        f"{_name(path)}: {match.group(0).strip()}"
        for path in _view_files()
        for match in OR_404.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "raise portal.errors.UnknownItem: the app answers it with the 404"


@pytest.mark.parametrize("pattern", [ROLLBACK, OR_404])
def test_the_checks_would_catch_one(pattern: re.Pattern[str]) -> None:
    source = (
        "def _queue_or_404(queue_id: int) -> Queue:\n"
        "    try:\n        return get_queue(queue_id)\n"
        "    except InvalidInput:\n        session.rollback()\n"
    )
    assert pattern.search(source)


# --- the one 404, also where a view runs again after an expired form ---------------------------


def _admin(app: Flask, portal: Portal) -> FlaskClient:
    client = app.test_client()
    login(client, portal.staff("root", roles=(Role.ADMIN,), queues=()))
    return client


def test_an_unknown_id_is_the_404_of_a_made_up_address(app: Flask, portal: Portal) -> None:
    client = _admin(app, portal)
    made_up = client.get("/staff/admin/no-such-page")
    for url in (
        "/staff/admin/config/queues/999999",
        "/staff/admin/config/categories/999999",
        "/staff/admin/config/tags/999999",
        "/staff/admin/config/rules/999999",
        "/staff/admin/staff/999999",
        "/staff/admin/staff/999999/reset",
    ):
        response = client.get(url)
        assert response.status_code == made_up.status_code == 404, url
        assert response.text == made_up.text, url


def test_an_expired_form_for_an_unknown_id_is_the_same_404(app: Flask, portal: Portal) -> None:
    """A form whose CSRF token is missing or expired runs its view again to show it back; an id
    that does not exist is then the same 404, not an error page."""
    client = _admin(app, portal)
    made_up = client.get("/staff/admin/no-such-page")
    response = client.post("/staff/admin/config/queues/999999", data={"name": "Typed"})
    assert response.status_code == 404
    assert response.text == made_up.text


def test_an_expired_form_on_a_case_without_its_key_is_the_404_of_a_made_up_handle(
    app: Flask, portal: Portal
) -> None:
    portal.staff("alice")
    outsider = portal.staff("carol", queues=("hr",))
    submitted = portal.submit()
    client = app.test_client()
    login(client, outsider)
    made_up = client.get("/staff/cases/XXXX-0000")

    for action in ("status", "triage", "messages", "hold"):
        response = client.post(f"/staff/cases/{submitted.handle}/{action}", data={"text": "x"})
        assert response.status_code == made_up.status_code == 404, action
        assert response.text == made_up.text, action
