"""The insights JSON API: bearer tokens only, JSON errors, exactly the stored releases, and an
OpenAPI document that matches the routes and the answers."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import InsightRelease, Role
from portal.services.accounts import administration as admin
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.web.api.openapi import RESPONSE_SCHEMAS, SCHEMAS, document
from tests.support.api_helpers import (
    QUARTER,
    SECRET_TEXT,
    TODAY,
    manager,
    ombudsperson,
    released_quarter,
    token_for,
)
from tests.support.factories import Portal
from tests.support.pages import login

NOW = dt.datetime.combine(TODAY, dt.time(9), tzinfo=dt.UTC)


@pytest.fixture
def api(app: Flask, portal: Portal) -> tuple[FlaskClient, dict[str, str], list[str]]:
    ombudsperson(portal)
    handles = released_quarter(portal)
    boss = manager(portal)
    app.extensions["portal"].clock = lambda: NOW
    headers = {"Authorization": f"Bearer {token_for(portal, boss, NOW)}"}
    return app.test_client(), headers, handles


def stored(db: Session, kind: str) -> dict[str, Any]:
    row = db.scalars(
        select(InsightRelease).where(InsightRelease.period == QUARTER, InsightRelease.kind == kind)
    ).one()
    data: dict[str, Any] = json.loads(row.payload)
    return data


ROUTES = [
    "/api/v1/insights/periods",
    f"/api/v1/insights/{QUARTER}",
    f"/api/v1/insights/{QUARTER}/kpis",
    f"/api/v1/insights/{QUARTER}/category",
    f"/api/v1/insights/{QUARTER}/outcome",
]


def test_periods_lists_the_released_quarters(api: Any) -> None:
    client, headers, _ = api
    response = client.get("/api/v1/insights/periods", headers=headers)
    assert response.status_code == 200
    assert response.json == {"periods": [{"period": QUARTER, "url": f"/api/v1/insights/{QUARTER}"}]}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"


def test_a_quarter_is_exactly_the_stored_releases(api: Any, db: Session) -> None:
    client, headers, _ = api
    body = client.get(f"/api/v1/insights/{QUARTER}", headers=headers).json

    volume, progress = stored(db, "volume"), stored(db, "progress")
    assert body["volume"] == volume
    assert body["progress"] == progress
    expected_kpis = insights.kpis(
        insights_releases.Release.from_json(json.dumps(volume)),
        insights_releases.Release.from_json(json.dumps(progress)),
        insights_store.substantiated_codes(db),
    )
    assert body["kpis"]["total"] == expected_kpis.total == 9
    assert body["kpis"]["anonymous_share"] == expected_kpis.anonymous_share
    assert body["kpis"]["open_cases"] == expected_kpis.open_cases
    assert client.get(f"/api/v1/insights/{QUARTER}/kpis", headers=headers).json == body["kpis"]


def test_hidden_cells_are_null(api: Any, db: Session) -> None:
    client, headers, _ = api
    view = client.get(f"/api/v1/insights/{QUARTER}/category", headers=headers).json
    assert view["view"] == stored(db, "volume")["views"]["category"]
    assert view["threshold"] == 5 and view["kind"] == "volume"
    cells = [c for row in view["view"]["cells"] for c in row]
    assert None in cells  # small groups were suppressed, and come out as JSON null
    assert "null" in client.get(f"/api/v1/insights/{QUARTER}/category", headers=headers).text


@pytest.mark.parametrize("name", ["queue", "category_site"])
def test_the_queue_and_cross_views_are_not_served(api: Any, name: str) -> None:
    """Not published since issue 13 (routing ties the queue to the category; a cross-table
    shares its totals): 404 like any unknown view."""
    client, headers, _ = api
    assert client.get(f"/api/v1/insights/{QUARTER}/{name}", headers=headers).status_code == 404


def test_one_view_of_each_release(api: Any, db: Session) -> None:
    client, headers, _ = api
    for name in ("months", "category", "anonymity"):
        body = client.get(f"/api/v1/insights/{QUARTER}/{name}", headers=headers).json
        assert body["view"] == stored(db, "volume")["views"][name]
    outcome = client.get(f"/api/v1/insights/{QUARTER}/outcome", headers=headers).json
    assert outcome["kind"] == "progress"
    assert outcome["view"] == stored(db, "progress")["views"]["outcome"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/insights/2025-Q2",  # below the threshold and not complete: not released
        "/api/v1/insights/2024-Q4",
        "/api/v1/insights/not-a-quarter",
        "/api/v1/insights/2025-Q2/kpis",
        f"/api/v1/insights/{QUARTER}/no_such_view",
        "/api/v1/insights/2030-Q1/months",
        "/api/v1/nothing-here",
    ],
)
def test_unknown_period_or_view_is_a_json_404(api: Any, url: str) -> None:
    client, headers, _ = api
    response = client.get(url, headers=headers)
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


def test_nothing_from_cases_appears(api: Any) -> None:
    client, headers, handles = api
    for url in ROUTES:
        text = client.get(url, headers=headers).text
        assert SECRET_TEXT not in text
        assert not any(handle in text for handle in handles)
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text.replace('"2025-05-01"', ""))


@pytest.mark.parametrize("url", [*ROUTES, "/api/v1/insights/2030-Q1"])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer pti_wrong", "pti_x"],
)
def test_without_a_good_token_every_route_is_401(
    api: Any, url: str, authorization: str | None
) -> None:
    client, _, _ = api
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(url, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["status"] == 401
    assert response.headers["Cache-Control"] == "no-store"


def test_a_staff_cookie_is_not_a_token(api: Any, portal: Portal) -> None:
    client, _, _ = api
    login(client, manager(portal, "browser"))
    assert client.get("/api/v1/insights/periods").status_code == 401


def test_a_token_whose_owner_lost_the_role_is_403(api: Any, portal: Portal, db: Session) -> None:
    client, _, _ = api
    boss = manager(portal, "demoted")
    demoted = {"Authorization": f"Bearer {token_for(portal, boss, NOW)}"}
    chief = portal.staff("chief", roles=(Role.ADMIN,), queues=())
    admin.set_roles(db, boss, (Role.CUSTODIAN,), actor=chief, now=NOW)
    db.commit()
    response = client.get("/api/v1/insights/periods", headers=demoted)
    assert response.status_code == 403
    assert response.json["error"]["status"] == 403


def test_a_disabled_owners_token_is_401(api: Any, portal: Portal, db: Session) -> None:
    client, _, _ = api
    boss = manager(portal, "leaver")
    headers = {"Authorization": f"Bearer {token_for(portal, boss, NOW)}"}
    boss.active = False
    db.commit()
    assert client.get("/api/v1/insights/periods", headers=headers).status_code == 401


def test_an_expired_token_is_401(api: Any, app: Flask, portal: Portal) -> None:
    client, _, _ = api
    headers = {"Authorization": f"Bearer {token_for(portal, manager(portal, 'brief'), NOW, 1)}"}
    assert client.get("/api/v1/insights/periods", headers=headers).status_code == 200
    app.extensions["portal"].clock = lambda: NOW + dt.timedelta(days=1)
    assert client.get("/api/v1/insights/periods", headers=headers).status_code == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405(api: Any, method: str) -> None:
    client, headers, _ = api
    response = client.open("/api/v1/insights/periods", method=method, headers=headers)
    assert response.status_code == 405
    assert response.json["error"]["status"] == 405
    assert "GET" in response.headers["Allow"]


def test_bad_tokens_are_throttled_per_client(api: Any, app: Flask) -> None:
    client, headers, _ = api
    limit = app.extensions["portal"].settings.api_max_failures
    for _ in range(limit):
        bad = client.get("/api/v1/insights/periods", headers={"Authorization": "Bearer pti_x"})
        assert bad.status_code == 401
    throttled = client.get("/api/v1/insights/periods", headers=headers)
    assert throttled.status_code == 429
    assert throttled.json["error"]["status"] == 429


# --- the OpenAPI document -------------------------------------------------------------------


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api/v1"))


def test_openapi_describes_every_route_and_no_other(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")  # no token needed: shapes, not data
    assert response.status_code == 200
    doc = response.json
    assert doc == json.loads(json.dumps(document()))
    assert doc["openapi"].startswith("3.1")
    served = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served == described
    assert set(RESPONSE_SCHEMAS) == set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    # Every $ref points at a declared schema.
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc))
    assert refs and set(refs) <= set(SCHEMAS)


def _check(value: Any, schema: dict[str, Any], where: str) -> None:
    """A light structural check of the JSON Schema subset the document uses."""
    if "$ref" in schema:
        _check(value, SCHEMAS[schema["$ref"].rsplit("/", 1)[1]], where)
        return
    if "oneOf" in schema:
        errors = []
        for option in schema["oneOf"]:
            try:
                _check(value, option, where)
                return
            except AssertionError as error:
                errors.append(error)
        raise AssertionError(f"{where}: matches no option: {errors}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        python: dict[str, type | tuple[type, ...]] = {
            "object": dict,
            "array": list,
            "string": str,
            "integer": int,
            "number": (int, float),
            "null": type(None),
            "boolean": bool,
        }
        assert any(isinstance(value, python[k]) for k in kinds), f"{where}: {value!r} not {kinds}"
        if isinstance(value, bool):
            assert "boolean" in kinds, where
    if "enum" in schema:
        assert value in schema["enum"], where
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), where
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, item in value.items():
            if key in schema.get("properties", {}):
                _check(item, schema["properties"][key], f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(item, schema["additionalProperties"], f"{where}.{key}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            if i < len(prefix):
                _check(item, prefix[i], f"{where}[{i}]")
            elif "items" in schema:
                _check(item, schema["items"], f"{where}[{i}]")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/api/v1/insights/periods", "/insights/periods"),
        (f"/api/v1/insights/{QUARTER}", "/insights/{period}"),
        (f"/api/v1/insights/{QUARTER}/kpis", "/insights/{period}/kpis"),
        (f"/api/v1/insights/{QUARTER}/category", "/insights/{period}/{view}"),
        (f"/api/v1/insights/{QUARTER}/acknowledgement", "/insights/{period}/{view}"),
    ],
)
def test_answers_match_the_declared_schemas(api: Any, url: str, path: str) -> None:
    client, headers, _ = api
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    _check(response.json, {"$ref": f"#/components/schemas/{RESPONSE_SCHEMAS[path]}"}, url)
    error = client.get(url.replace(QUARTER, "1999-Q1"), headers=headers)
    if error.status_code == 404:
        _check(error.json, {"$ref": "#/components/schemas/Error"}, url)


def test_the_checker_is_not_a_rubber_stamp() -> None:
    with pytest.raises(AssertionError):
        _check({"periods": [{"period": "2025-Q9", "url": "/"}]}, SCHEMAS["Periods"], "x")
    with pytest.raises(AssertionError):
        _check({"error": {"status": "401"}}, SCHEMAS["Error"], "x")
