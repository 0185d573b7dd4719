"""The Host header is the client's to choose, so nothing the portal sends may be built from it.

A redirect built from a forged Host (Werkzeug's trailing-slash 308s were) sends a reporter who
followed a poisoned link, or a cache that stored the answer, to the forger's server; a page that
names the Host does the same for its links. The portal answers only to the host of its
configured ``portal_url`` and to loopback (development), with a 400 to any other; and every
``Location`` it sends is a path (with its query), never an address with a host in it, except the
quick exit, which leaves for the configured neutral page.

The sweep takes its routes, roles and request bodies from
tests/invariants/matrix/test_authorization.py, so a route added to the app is swept here
without a change to this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.app import create_app
from portal.instance import InstanceSecrets
from portal.settings import Settings
from portal.web import auth as web_auth
from portal.web.reporter import receipt_cookie
from portal.web.reporter import session as reporter_session
from tests.invariants.matrix.test_authorization import (
    MATRIX,
    R,
    World,
    client_as,
    form_for,
    make_world,
    url_for_rule,
)
from tests.support.factories import Portal, cheap_settings
from tests.support.pages import csrf_token

FORGED_HOST = "forged-host.example"
FORGED_PROXY = "forged-proxy.example"
FORGED = (FORGED_HOST, FORGED_PROXY)
#: Every cookie the portal sets: a forged-host request carries the same ones as a real one.
COOKIES = ("portal_form", receipt_cookie.COOKIE, reporter_session.COOKIE, web_auth.COOKIE)


@pytest.fixture
def world(app: Flask, portal: Portal) -> World:
    return make_world(app, portal)


def urls(world: World) -> Iterator[tuple[str, str, str]]:
    """(method, rule, url) of every route of the matrix, and of its trailing-slash variant (the
    one Werkzeug answers with a redirect)."""
    for rule, method in MATRIX:
        url = url_for_rule(rule, world)
        yield method, rule, url
        yield method, rule, url[:-1] if url.endswith("/") and url != "/" else url + "/"


def leaks(response: TestResponse) -> list[str]:
    """Where a forged name shows in a response: a header or the body."""
    found = [
        f"header {name}: {value}"
        for name, value in response.headers.items()
        for forged in FORGED
        if forged in value.lower()
    ]
    body = response.get_data(as_text=True).lower()
    return found + [f"body names {forged}" for forged in FORGED if forged in body]


def carry_cookies(client: FlaskClient, host: str) -> None:
    """The test client sends a cookie only to the host it came from; a forger's request goes
    with the victim's cookies, so give the forged host a copy of each."""
    for name in COOKIES:
        cookie = client.get_cookie(name)
        if cookie is not None:
            client.set_cookie(name, cookie.value, domain=host, path=cookie.path)


def send(
    client: FlaskClient, method: str, rule: str, url: str, world: World, token: str, **kw: object
) -> TestResponse:
    data = {"csrf_token": token, **form_for(rule, world)} if method == "POST" else None
    return client.open(url, method=method, data=data, **kw)  # type: ignore[arg-type]


def test_a_forged_host_is_refused_and_never_reflected_on_any_route_as_any_role(
    world: World,
) -> None:
    forged = {"Host": FORGED_HOST, "X-Forwarded-Host": FORGED_PROXY}
    failures = []
    for role in R:
        client = client_as(world, role)
        token = csrf_token(client.get("/followup").text)
        carry_cookies(client, FORGED_HOST)
        for method, rule, url in urls(world):
            response = send(client, method, rule, url, world, token, headers=forged)
            where = f"{method} {url} as {role.value}"
            if response.status_code != 400:
                failures.append(f"{where}: {response.status_code}")
            failures += [f"{where}: {leak}" for leak in leaks(response)]

    assert failures == []


def test_every_redirect_is_a_path_and_names_no_forwarded_host(world: World) -> None:
    """A request to a trusted host with a forged X-Forwarded-Host (which the portal never
    reads): every redirect any route gives any role, trailing-slash ones included, is a path;
    and the page it leads to, fetched the same way, names no forged host either."""
    quick_exit = world.app.extensions["portal"].settings.quick_exit_url
    forged = {"X-Forwarded-Host": FORGED_PROXY}
    clients = {role: client_as(world, role) for role in R}
    tokens = {role: csrf_token(c.get("/followup").text) for role, c in clients.items()}
    failures, redirects = [], 0
    # Pages first, then the posts (which may log a role out or change what it may do: the
    # redirects they give then are swept as well).
    for wanted in ("GET", "POST"):
        for role, client in clients.items():
            for method, rule, url in urls(world):
                if method != wanted:
                    continue
                where = f"{method} {url} as {role.value}"
                response = send(client, method, rule, url, world, tokens[role], headers=forged)
                failures += [f"{where}: {leak}" for leak in leaks(response)]
                location = response.headers.get("Location")
                if location is None or location == quick_exit:
                    continue
                redirects += 1
                parts = urlsplit(location)
                if parts.scheme or parts.netloc or not location.startswith("/"):
                    failures.append(f"{where}: redirects to {location}")
                followed = client.get(location, headers=forged)
                failures += [f"{where} -> {location}: {leak}" for leak in leaks(followed)]

    assert redirects > 100  # the sweep meets the redirects: trailing slashes, log-ins, posts
    assert failures == []


def _app(tmp_path: Path, portal_url: str) -> Flask:
    (tmp_path / "instance").mkdir(exist_ok=True)
    settings: Settings = cheap_settings(tmp_path / "instance", portal_url=portal_url)
    return create_app(settings, secrets=InstanceSecrets.generate())


@pytest.mark.parametrize(
    ("portal_url", "trusted", "refused"),
    [
        (
            "https://ombuds.example.org",
            ["ombuds.example.org", "ombuds.example.org:443", "localhost", "127.0.0.1"],
            [FORGED_HOST, "example.org", "evil.ombuds.example.org", "ombuds.example.org.evil"],
        ),
        (
            "http://127.0.0.1:5000",
            ["127.0.0.1:5000", "localhost:5000", "localhost"],
            [FORGED_HOST, "127.0.0.2:5000", "0.0.0.0:5000", "[::1]:5000"],
        ),
        ("", ["localhost", "127.0.0.1:5000"], [FORGED_HOST, "ombuds.example.org", "Localhost"]),
    ],
)
def test_only_the_host_of_portal_url_and_loopback_are_served(
    tmp_path: Path, portal_url: str, trusted: list[str], refused: list[str]
) -> None:
    """The static file needs no database, so the answer is the host check's alone. (Werkzeug
    refuses upper-case names, which browsers never send, and cannot match an IPv6 literal in
    its trusted list: docs/limits.md.)"""
    client = _app(tmp_path, portal_url).test_client()
    for host in trusted:
        with client.get("/static/portal.css", headers={"Host": host}) as served:
            assert served.status_code == 200, host
    for host in refused:
        response = client.get("/static/portal.css", headers={"Host": host})
        with response:
            assert response.status_code == 400, host
            assert "This address is not the portal" in response.text, host
            assert host.lower() not in response.text.lower(), host
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_trailing_slash_redirect_is_a_path_on_the_configured_host(tmp_path: Path) -> None:
    client = _app(tmp_path, "https://ombuds.example.org").test_client()
    for host in ("ombuds.example.org", "localhost"):
        response = client.get("/staff?x=1", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/staff/?x=1"
