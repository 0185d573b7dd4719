"""Behind a reverse proxy (``proxy_hops``): the per-client rate limits tell clients apart by the
address the proxy appended to X-Forwarded-For, and that address is still never stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.settings import Settings, SettingsError, load_settings
from tests.support.factories import DatabaseUnderTest, Portal, cheap_settings
from tests.support.pages import csrf_token
from tests.support.stored import database_bytes

PROXY = "127.0.0.1"
ALICE = "203.0.113.7"
BOB = "198.51.100.23"
WRONG_RECEIPT = "0000-0000-0000-0000-0000"


def _behind_proxy(app: Flask, forwarded: str | None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    if forwarded is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    return client


def _try_receipt(client: FlaskClient) -> int:
    token = csrf_token(client.get("/followup").text)
    return client.post(
        "/followup", data={"csrf_token": token, "receipt": WRONG_RECEIPT}
    ).status_code


def _exhaust(app: Flask, client: FlaskClient) -> None:
    for _attempt in range(app.extensions["portal"].settings.followup_max_failures):
        assert _try_receipt(client) == 400


class TestWithOneProxy:
    @pytest.fixture
    def settings(self, database: DatabaseUnderTest, tmp_path: Path) -> Settings:
        return cheap_settings(tmp_path / "instance", database.url, proxy_hops=1)

    def test_clients_behind_the_proxy_have_their_own_counters(
        self, app: Flask, portal: Portal
    ) -> None:
        portal.staff("olivia")
        alice = _behind_proxy(app, ALICE)
        _exhaust(app, alice)
        assert _try_receipt(alice) == 429
        # Another client behind the same proxy is not blocked by Alice's mistakes.
        assert _try_receipt(_behind_proxy(app, BOB)) == 400
        # Only the entry the proxy appended counts: what a client wrote before it is ignored.
        assert _try_receipt(_behind_proxy(app, f"{BOB}, {ALICE}")) == 429
        assert database_bytes(app).count(ALICE.encode()) == 0
        assert database_bytes(app).count(BOB.encode()) == 0

    def test_only_the_address_is_taken_from_the_proxy(self, app: Flask, portal: Portal) -> None:
        client = _behind_proxy(app, ALICE)
        client.environ_base["HTTP_X_FORWARDED_HOST"] = "evil.example"
        client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
        response = client.get("/")
        assert response.status_code == 200
        # Not HTTPS to the portal (gunicorn decides that, not the portal): no HSTS here.
        assert "Strict-Transport-Security" not in response.headers
        assert "evil.example" not in response.text


class TestWithoutProxyHops:
    def test_the_header_is_ignored_and_everyone_shares_the_proxy_counter(
        self, app: Flask, portal: Portal
    ) -> None:
        portal.staff("olivia")
        _exhaust(app, _behind_proxy(app, ALICE))
        # proxy_hops = 0: X-Forwarded-For is not read, so Bob counts as the proxy too.
        assert _try_receipt(_behind_proxy(app, BOB)) == 429


@pytest.mark.parametrize("value", ["-1", "6"])
def test_proxy_hops_is_refused_outside_its_range(value: str) -> None:
    with pytest.raises(SettingsError, match="proxy_hops must be from 0 to 5"):
        load_settings({"PORTAL_PROXY_HOPS": value})
