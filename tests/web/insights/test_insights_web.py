"""The insights pages (/insights/): what management sees, and that the chart, the table and the
CSV file of every view show exactly the same protected figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.models import AuditEvent, Case, Role
from portal.services.audit.chain import Action
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.services.insights.calendar import Quarter
from portal.web.insights import charts, present
from tests.support import insights_helpers
from tests.support.factories import Portal
from tests.support.pages import login

TODAY = dt.date(2026, 8, 15)  # figures as of 2026-08-01: 2025-Q4 to 2026-Q2 are complete
K = 5
ALL_QUEUES = ("general", "hr", "ethics", "safety", "board")


class _Tables(HTMLParser):
    """Collects every <table id=...> as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def svg_of(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg[^>]*aria-labelledby="{chart_id}-title[^>]*>.*?</svg>', html, re.S)
    assert match, f"no chart {chart_id}"
    return match.group(0)


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@dataclass
class Released:
    client: FlaskClient
    db: Session


def _submit_many(portal: Portal, day: dt.date, n: int, category: str, **fields: object) -> None:
    for _ in range(n):
        portal.submit(today=day, category_code=category, **fields)


@pytest.fixture
def manager(app: Flask, portal: Portal) -> FlaskClient:
    portal.staff("ombud", queues=ALL_QUEUES)
    boss = portal.staff("boss", roles=(Role.MANAGEMENT,), queues=())
    client = app.test_client()
    assert login(client, boss) == "/insights/"
    return client


@pytest.fixture
def released(manager: FlaskClient, portal: Portal, db: Session) -> Released:
    # 2025-Q4: two concerns only (fewer than k: nothing but that fact is published).
    _submit_many(portal, dt.date(2025, 11, 3), 2, "pay")
    # 2026-Q1: harassment at hq/operations, safety at plant-north, two fraud (hidden).
    _submit_many(portal, dt.date(2026, 1, 12), 7, "harassment", site_code="hq")
    _submit_many(
        portal, dt.date(2026, 2, 2), 5, "harassment", site_code="hq", department_code="operations"
    )
    _submit_many(portal, dt.date(2026, 3, 20), 6, "safety", site_code="plant-north")
    _submit_many(portal, dt.date(2026, 3, 21), 2, "fraud", site_code="shanghai")
    _submit_many(
        portal,
        dt.date(2026, 3, 22),
        5,
        "harassment",
        site_code="hq",
        contact_name="A Person",
        contact_details="a.person@example.org",
    )
    # 2026-Q2: enough of two categories; one of a third.
    _submit_many(portal, dt.date(2026, 4, 7), 7, "harassment", site_code="plant-north")
    _submit_many(portal, dt.date(2026, 5, 7), 7, "safety", site_code="plant-north")
    _submit_many(portal, dt.date(2026, 6, 7), 1, "pay")
    # Some concerns acknowledged two days after they arrived (direct rows: only dates change).
    db.execute(
        update(Case)
        .where(Case.received_on == dt.date(2026, 1, 12))
        .values(acknowledged_on=dt.date(2026, 1, 14))
    )
    insights_store.refresh(db, TODAY, insights_helpers.KEY)
    db.commit()
    return Released(manager, db)


# --- before anything is released ----------------------------------------------------------------


def test_nothing_is_shown_before_a_release(manager: FlaskClient, portal: Portal) -> None:
    portal.submit(today=dt.date(2026, 1, 5))

    page = manager.get("/insights/")

    assert page.status_code == 200
    assert "No figures yet" in page.text and "portal insights refresh" in page.text
    assert "<svg" not in page.text and "<table" not in page.text
    for url in ("/insights/2026-Q1/", "/insights/2026-Q1/category.csv", "/insights/2026/"):
        assert manager.get(url).status_code == 404, url


# --- the overview -------------------------------------------------------------------------------


def test_overview_lists_quarters_newest_first_with_key_figures(released: Released) -> None:
    page = released.client.get("/insights/").text

    listed = re.findall(r'href="/insights/(\d{4}-Q\d)/"', page)
    assert listed[:3] == ["2026-Q2", "2026-Q1", "2025-Q4"]
    found = tables(page)
    kpis = dict((row[0], row[1]) for row in found["table-kpis"][1:])
    assert kpis["Concerns received"] == "15"
    # Nothing of 2026-Q2 is closed: every outcome is 0, hidden, and "still open" with them.
    assert kpis["Still open"] == "hidden"
    # The trend: 2025-Q4 had fewer than k concerns, so its total is hidden.
    assert found["table-trend"][1:] == [["2025-Q4", "hidden"], ["2026-Q1", "25"], ["2026-Q2", "15"]]
    trend_chart = svg_of(page, "trend")
    assert trend_chart.count('class="hidden-count"') == 1
    assert ">25</text>" in trend_chart and ">15</text>" in trend_chart
    # Months: the three of 2025-Q4 hidden, the others as published.
    months = found["table-months"][1:]
    assert months[0] == ["October 2025", "hidden"] and len(months) == 9
    assert ["January 2026", "7"] in months and ["March 2026", "13"] in months
    # The backlog by quarter of receipt: nothing is closed yet, so each quarter's zeros hide
    # its open count too (insights_service tests a backlog that is shown); no total then.
    assert found["table-backlog"][1:] == [
        ["2025-Q4", "hidden"],
        ["2026-Q1", "hidden"],
        ["2026-Q2", "hidden"],
        ["Total", "hidden"],
    ]


def test_management_lands_on_insights_and_sees_the_nav_link(manager: FlaskClient) -> None:
    page = manager.get("/staff/account").text
    assert 'href="/insights/"' in page


# --- a quarter: chart, table and CSV agree ------------------------------------------------------


def _chart_numbers(svg: str) -> list[str]:
    return re.findall(r">(\d+)</text>", svg)


def test_every_view_of_a_quarter_agrees_in_chart_table_and_csv(released: Released) -> None:
    client = released.client
    page = client.get("/insights/2026-Q1/")
    assert page.status_code == 200
    found = tables(page.text)
    volume = insights_store.load(released.db, Quarter(2026, 1), insights_releases.VOLUME)
    progress = insights_store.load(released.db, Quarter(2026, 1), insights_releases.PROGRESS)
    assert volume is not None and progress is not None
    assert 'id="threshold">5<' in page.text
    assert f'id="as-of">{progress.as_of.isoformat()}<' in page.text
    assert "marks a number that is not shown" in page.text and '"hidden" marks' in page.text
    shown_order = re.findall(r'<section class="insight-view" id="view-([a-z_]+)">', page.text)
    assert shown_order == list(present.ALL_VIEWS)
    for release in (volume, progress):
        for name, view in release.views.items():
            table = found[f"table-{name}"]
            exported = client.get(f"/insights/2026-Q1/{name}.csv")
            assert exported.status_code == 200
            assert exported.headers["Content-Disposition"].startswith("attachment")
            assert exported.mimetype == "text/csv"
            assert read_csv(exported.data.decode("utf-8")) == table, name
            chart = svg_of(page.text, f"chart-{name}")
            assert 'role="img"' in chart and "<title" in chart
            shown = [v for row in view.cells for v in row]
            assert chart.count('class="hidden-count"') == shown.count(None), name
            assert _chart_numbers(chart) == [str(v) for v in shown if v is not None], name
            body = table[1:-1]
            assert [row[1 : 1 + len(view.columns)] for row in body] == [
                ["hidden" if v is None else str(v) for v in row] for row in view.cells
            ], name
            assert table[-1][0] == "Total"
    kpis = client.get("/insights/2026-Q1/kpis.csv")
    assert read_csv(kpis.data.decode("utf-8")) == found["table-kpis"]


def test_hidden_cells_are_hidden_in_chart_table_and_csv(released: Released) -> None:
    volume = insights_store.load(released.db, Quarter(2026, 1), insights_releases.VOLUME)
    assert volume is not None
    category = volume.views["category"]
    hidden = [i for i, (v,) in enumerate(category.cells) if v is None]
    assert hidden, "the test data should make the category view hide something"
    page = released.client.get("/insights/2026-Q1/").text
    table = tables(page)["table-category"]
    exported = read_csv(released.client.get("/insights/2026-Q1/category.csv").data.decode("utf-8"))
    for i in hidden:
        assert table[1 + i][1] == "hidden"
        assert exported[1 + i][1] == "hidden"
    assert svg_of(page, "chart-category").count(">hidden</text>") == len(hidden)


@pytest.mark.parametrize("view", ["queue", "category_site"])
def test_the_queue_and_cross_tables_are_not_published(released: Released, view: str) -> None:
    """Routing ties the queue to the category, and a cross-table shares its totals with the
    one-way tables: neither is published (docs/insights.md, "Who reads the figures")."""
    assert released.client.get(f"/insights/2026-Q1/{view}.csv").status_code == 404
    assert f'id="view-{view}"' not in released.client.get("/insights/2026-Q1/").text


def test_a_deadline_table_not_yet_published_says_from_when(released: Released) -> None:
    """2026-Q2 as of 1 August: every acknowledgement deadline has passed, not every feedback
    deadline (a concern of 30 June acknowledged on 7 July has until 7 October)."""
    page = released.client.get("/insights/2026-Q2/").text
    assert 'id="view-acknowledgement"' in page and 'id="view-feedback"' not in page
    assert "Feedback given within the deadline" in page
    assert "Published from 2026-11-01, once every deadline of this quarter has passed" in page
    assert released.client.get("/insights/2026-Q2/feedback.csv").status_code == 404


def test_no_small_group_appears_anywhere(released: Released) -> None:
    client = released.client
    for period in ("2026-Q1", "2026-Q2"):
        volume = insights_store.load(released.db, Quarter.parse(period), insights_releases.VOLUME)
        progress = insights_store.load(
            released.db, Quarter.parse(period), insights_releases.PROGRESS
        )
        assert volume is not None and progress is not None
        for name in (*volume.views, *progress.views):
            rows = read_csv(client.get(f"/insights/{period}/{name}.csv").data.decode("utf-8"))
            header = rows[0]
            counted = [i for i, h in enumerate(header) if i and h not in present_extra()]
            for row in rows[1:]:
                for i in counted:
                    if row[i].isdigit():
                        assert not 0 < int(row[i]) < K, (period, name, row)
    page = client.get("/insights/2026-Q1/").text
    # Fraud (2 concerns) is listed like every category, its count hidden; nothing is merged.
    category = {row[0]: row[1] for row in tables(page)["table-category"][1:]}
    fraud = next(label for label in category if label.startswith("Fraud"))
    assert category[fraud] == "hidden"
    assert "Other categories" not in page


def present_extra() -> set[str]:
    return {"Employees", "Cases per 100 employees"}


def test_site_view_shows_reports_per_100_employees(released: Released) -> None:
    table = tables(released.client.get("/insights/2026-Q1/").text)["table-site"]
    assert table[0] == ["Site", "Cases", "Employees", "Cases per 100 employees"]
    by_label = {row[0]: row for row in table[1:]}
    hq = next(row for label, row in by_label.items() if label.lower().startswith("head"))
    if hq[1] != "hidden":
        assert hq[3] == f"{100 * int(hq[1]) / int(hq[2]):.1f}"


def test_a_quarter_with_too_few_concerns_says_so_only(released: Released) -> None:
    page = released.client.get("/insights/2025-Q4/")
    assert page.status_code == 200
    assert 'id="too-few"' in page.text and "<svg" not in page.text
    assert released.client.get("/insights/2025-Q4/category.csv").status_code == 404
    assert released.client.get("/insights/2025-Q4/kpis.csv").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/insights/2026-Q5/",
        "/insights/2026Q1/",
        "/insights/last-quarter/",
        "/insights/2026-Q3/",  # not complete, so not released
        "/insights/2026-Q1/nope.csv",
        "/insights/2026-Q1/to_json.csv",
        "/insights/2026-Q9/category.csv",
        "/insights/1999/",
    ],
)
def test_unknown_period_or_view_is_404(released: Released, url: str) -> None:
    assert released.client.get(url).status_code == 404


# --- the year page ------------------------------------------------------------------------------


def test_year_page_sums_only_fully_shown_rows(released: Released) -> None:
    page = released.client.get("/insights/2026/")
    assert page.status_code == 200
    found = tables(page.text)
    months = found["table-months"]
    assert months[0] == ["Month", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "Year"]
    total = months[-1]
    # Q3 and Q4 are not released, so the year total is hidden.
    assert total == ["Total", "25", "15", "not published yet", "not published yet", "hidden"]
    january = next(row for row in months if row[0] == "January 2026")
    assert january == ["January 2026", "7", "", "", "", "7"]
    category = {row[0]: row for row in found["table-category"][1:]}
    q1 = insights_store.load(released.db, Quarter(2026, 1), insights_releases.VOLUME)
    q2 = insights_store.load(released.db, Quarter(2026, 2), insights_releases.VOLUME)
    assert q1 is not None and q2 is not None
    q1_codes = {label.code for label in q1.views["category"].rows}
    q2_codes = {label.code for label in q2.views["category"].rows}
    assert q1_codes == q2_codes  # every category is listed every quarter, whatever the data
    assert not any("counted in other" in row for row in category.values())
    for row in category.values():
        assert row[-1] == "hidden"  # no year is complete


def test_year_totals_are_shown_when_every_quarter_is(
    manager: FlaskClient, portal: Portal, db: Session
) -> None:
    for month in (1, 4, 7, 10):
        # 6 harassment in the quarter's first month; 3 and 2 (small, hidden together, which
        # covers the zeros as well) in the next two.
        _submit_many(portal, dt.date(2025, month, 9), 6, "harassment")
        _submit_many(portal, dt.date(2025, month + 1, 9), 3, "pay")
        _submit_many(portal, dt.date(2025, month + 2, 9), 2, "fraud")
    insights_store.refresh(db, dt.date(2026, 2, 1), insights_helpers.KEY)
    db.commit()

    found = tables(manager.get("/insights/2025/").text)

    assert found["table-months"][-1] == ["Total", "11", "11", "11", "11", "44"]
    january = next(row for row in found["table-months"] if row[0] == "January 2025")
    assert january == ["January 2025", "6", "", "", "", "6"]
    harassment = next(row for row in found["table-category"] if row[0] != "Category")
    assert harassment[1:] == ["6", "6", "6", "6", "24"]


# --- who may see them ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OMBUDSPERSON, Role.ADMIN, Role.CUSTODIAN])
def test_other_staff_roles_are_refused(
    app: Flask, portal: Portal, released: Released, role: Role
) -> None:
    user = portal.staff(f"someone-{role.value}", roles=(role,), queues=())
    client = app.test_client()
    login(client, user)
    for url in (
        "/insights/",
        "/insights/2026-Q1/",
        "/insights/2026/",
        "/insights/2026-Q1/kpis.csv",
    ):
        response = client.get(url)
        assert response.status_code == 403, (role, url)
        assert "25" not in response.text


def test_anonymous_visitor_is_sent_to_log_in(app: Flask, released: Released) -> None:
    response = app.test_client().get("/insights/2026-Q1/")
    assert response.status_code == 302 and response.location.endswith("/staff/login")


def test_the_staff_cookie_is_never_sent_to_reporter_pages(app: Flask, portal: Portal) -> None:
    boss = portal.staff("boss2", roles=(Role.MANAGEMENT,), queues=())
    client = app.test_client()
    login(client, boss)
    assert client.get_cookie("portal_staff", path="/staff") is not None
    assert client.get_cookie("portal_staff", path="/insights") is not None
    assert client.get_cookie("portal_staff", path="/") is None


def test_logging_out_ends_access_to_insights(manager: FlaskClient) -> None:
    from tests.support.pages import csrf_token

    token = csrf_token(manager.get("/staff/account").text)
    manager.post("/staff/logout", data={"csrf_token": token})
    assert manager.get_cookie("portal_staff", path="/insights") is None
    assert manager.get("/insights/").status_code == 302


# --- the chart module ---------------------------------------------------------------------------


def test_bar_chart_escapes_labels_and_is_deterministic() -> None:
    items = [("<script>alert(1)</script>", 7), ("Zero & co", 0), ("Small", None)]
    first = charts.bars("c1", 'A "title" <b>', items, hidden_mark="hidden")
    second = charts.bars("c1", 'A "title" <b>', items, hidden_mark="hidden")

    assert first == second
    assert "<script>" not in first and "&lt;script&gt;" in first
    assert "Zero &amp; co" in first and "&lt;b&gt;" in first
    assert 'role="img"' in first and 'aria-labelledby="c1-title c1-desc"' in first
    assert '<title id="c1-title">' in first
    assert first.count('class="hidden-count"') == 1 and ">hidden</text>" in first
    assert ">0</text>" in first and ">7</text>" in first
    assert "style=" not in first and "<script" not in first


def test_hidden_bar_has_the_same_size_whatever_else_is_shown() -> None:
    small = charts.bars("a", "t", [("x", None), ("y", 5)], hidden_mark="hidden")
    large = charts.bars("a", "t", [("x", None), ("y", 5000)], hidden_mark="hidden")
    hatch = re.compile(r'<rect class="hidden-count"[^>]*>')
    assert hatch.findall(small) == hatch.findall(large)


def test_csv_cells_cannot_start_a_formula(app: Flask) -> None:
    grid = present.Grid(
        "x",
        "x",
        ("Label", "Cases"),
        (
            present.Row("a", "=HYPERLINK(1)", (present.Value(count=5),)),
            present.Row("b", "+1", (present.Value(count=None),)),
            present.Row("c", "@sum", (present.Value(count=0),)),
            present.Row("d", "-2", (present.Value(count=6),)),
        ),
        None,
        1,
    )
    with app.test_request_context():
        rows = read_csv(present.to_csv(grid))
    assert [row[0] for row in rows[1:]] == ["'=HYPERLINK(1)", "'+1", "'@sum", "'-2"]
    assert [row[1] for row in rows[1:]] == ["5", "hidden", "0", "6"]


def test_fixed_codes_get_human_labels(app: Flask) -> None:
    with app.test_request_context():
        assert present.label_for("anonymity", insights_releases.Label("named", "named")) == "Named"
        assert (
            present.label_for("feedback", insights_releases.Label("not_on_time", "not_on_time"))
            == "Not on time (late, or not done yet)"
        )
        assert present.label_for("outcome", insights_releases.Label("open", "open")) == "Still open"
        assert (
            present.label_for("site", insights_releases.Label("not-given", "not given"))
            == "Not given"
        )
        assert (
            present.label_for("months", insights_releases.Label("2026-07", "2026-07"))
            == "July 2026"
        )
        merged = present.label_for("site", insights_releases.Label("other", "other"))
        assert merged.startswith("Other")


def test_a_csv_export_is_audited_with_the_table_not_its_content(released: Released) -> None:
    response = released.client.get("/insights/2026-Q1/category.csv")
    assert response.status_code == 200
    released.db.expire_all()
    events = list(
        released.db.scalars(
            select(AuditEvent).where(AuditEvent.action == Action.INSIGHTS_EXPORTED.value)
        )
    )
    assert len(events) == 1
    assert json.loads(events[0].detail) == {"period": "2026-Q1", "view": "category"}
    assert events[0].actor_email == "boss@example.org"
