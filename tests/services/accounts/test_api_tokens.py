"""Personal API tokens: made once, stored as a hash, revoked by their owner only, refused when
expired, when the owner is disabled or loses the management role; the account page section."""

from __future__ import annotations

import datetime as dt
import hashlib  # noqa: TID251  # an independent reference for the token hash crypto stores
import json

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import ApiTokenNotPermitted, InvalidApiToken, InvalidInput, UnknownApiToken
from portal.models import ApiToken, AuditEvent, Role
from portal.services.accounts import administration as admin
from portal.services.accounts import api_tokens
from portal.services.audit.chain import Action
from tests.support.api_helpers import manager
from tests.support.factories import Portal
from tests.support.pages import csrf_token, login

NOW = dt.datetime(2025, 5, 15, 10, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


def test_a_token_is_shown_once_and_only_its_sha256_is_stored(portal: Portal, db: Session) -> None:
    user = manager(portal)

    new = api_tokens.create(db, portal.settings, user, "  Power BI  ", 30, NOW)
    db.commit()

    assert new.value.startswith("pti_") and len(new.value) == 4 + 43
    row = db.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(new.value.encode()).digest()
    assert (row.name, row.created_on, row.expires_on) == ("Power BI", TODAY, dt.date(2025, 6, 14))
    stored = [str(v) for v in vars(row).values()]
    assert not any(new.value in v or new.value[4:] in v for v in stored)
    assert [t.name for t in api_tokens.tokens_of(db, user, TODAY)] == ["Power BI"]
    assert not hasattr(api_tokens.tokens_of(db, user, TODAY)[0], "value")


def test_creation_and_revocation_are_audited_without_the_token_or_its_name(
    portal: Portal, db: Session
) -> None:
    user = manager(portal)
    new = api_tokens.create(db, portal.settings, user, "Secret dashboard name", 30, NOW)
    api_tokens.revoke(db, user, new.id, NOW)
    db.commit()

    events = {e.action: e for e in db.scalars(select(AuditEvent))}
    created, revoked = events[Action.API_TOKEN_CREATED], events[Action.API_TOKEN_REVOKED]
    assert created.actor_id == revoked.actor_id == user.id
    assert json.loads(created.detail)["token_id"] == new.id
    for event in (created, revoked):
        dump = " ".join(str(v) for v in vars(event).values())
        assert new.value not in dump and new.value[4:] not in dump
        assert "Secret dashboard" not in dump


def test_authenticate_records_use_by_day_only(portal: Portal, db: Session) -> None:
    user = manager(portal)
    value = api_tokens.create(db, portal.settings, user, "BI", 30, NOW).value
    db.commit()

    assert api_tokens.authenticate(db, value, TODAY).id == user.id
    assert api_tokens.authenticate(db, value, TODAY + dt.timedelta(days=1)).id == user.id

    row = db.scalars(select(ApiToken)).one()
    assert row.last_used_on == TODAY + dt.timedelta(days=1)
    assert isinstance(row.last_used_on, dt.date) and not isinstance(row.last_used_on, dt.datetime)


@pytest.mark.parametrize("value", ["", "pti_", "pti_nope", "Bearer x", "pti_" + "A" * 43, "é" * 5])
def test_unknown_or_malformed_tokens_are_refused(portal: Portal, db: Session, value: str) -> None:
    manager(portal)
    with pytest.raises(InvalidApiToken):
        api_tokens.authenticate(db, value, TODAY)


def test_an_expired_token_is_refused(portal: Portal, db: Session) -> None:
    user = manager(portal)
    value = api_tokens.create(db, portal.settings, user, "BI", 1, NOW).value
    db.commit()

    assert api_tokens.authenticate(db, value, TODAY).id == user.id
    with pytest.raises(InvalidApiToken):
        api_tokens.authenticate(db, value, TODAY + dt.timedelta(days=1))
    assert api_tokens.tokens_of(db, user, TODAY + dt.timedelta(days=1))[0].expired


def test_a_revoked_token_is_refused(portal: Portal, db: Session) -> None:
    user = manager(portal)
    new = api_tokens.create(db, portal.settings, user, "BI", 30, NOW)
    api_tokens.revoke(db, user, new.id, NOW)
    db.commit()

    with pytest.raises(InvalidApiToken):
        api_tokens.authenticate(db, new.value, TODAY)
    assert db.scalars(select(ApiToken)).all() == []


def test_another_users_token_cannot_be_revoked(portal: Portal, db: Session) -> None:
    owner, other = manager(portal), manager(portal, "other")
    new = api_tokens.create(db, portal.settings, owner, "BI", 30, NOW)
    db.commit()

    with pytest.raises(UnknownApiToken):
        api_tokens.revoke(db, other, new.id, NOW)
    with pytest.raises(UnknownApiToken):
        api_tokens.revoke(db, other, new.id + 1000, NOW)
    assert api_tokens.authenticate(db, new.value, TODAY).id == owner.id


def test_a_disabled_users_token_is_refused(portal: Portal, db: Session) -> None:
    user = manager(portal)
    value = api_tokens.create(db, portal.settings, user, "BI", 30, NOW).value
    user.active = False
    db.commit()

    with pytest.raises(InvalidApiToken):
        api_tokens.authenticate(db, value, TODAY)


def test_a_token_stops_working_when_the_role_is_removed(portal: Portal, db: Session) -> None:
    user = manager(portal)
    boss_of_staff = portal.staff("admin", roles=(Role.ADMIN,), queues=())
    value = api_tokens.create(db, portal.settings, user, "BI", 30, NOW).value
    db.commit()

    admin.set_roles(db, user, (Role.CUSTODIAN,), actor=boss_of_staff, now=NOW)
    db.commit()

    with pytest.raises(ApiTokenNotPermitted):
        api_tokens.authenticate(db, value, TODAY)


@pytest.mark.parametrize(
    ("name", "days", "field"),
    [
        ("", 30, "name"),
        ("   ", 30, "name"),
        ("x" * 81, 30, "name"),
        ("bad\x00name", 30, "name"),
        ("BI", 0, "days"),
        ("BI", 91, "days"),  # the default setting: 90
    ],
)
def test_limits_on_name_and_lifetime(
    portal: Portal, db: Session, name: str, days: int, field: str
) -> None:
    user = manager(portal)
    with pytest.raises(InvalidInput) as raised:
        api_tokens.create(db, portal.settings, user, name, days, NOW)
    assert raised.value.field == field


def test_the_lifetime_setting_caps_tokens_at_365_days(portal: Portal, db: Session) -> None:
    user = manager(portal)
    settings = portal.settings.replace(api_token_max_days=365)
    assert api_tokens.create(db, settings, user, "BI", 365, NOW).expires_on == dt.date(2026, 5, 15)
    with pytest.raises(InvalidInput):
        api_tokens.create(db, settings, user, "BI", 366, NOW)


def test_at_most_ten_live_tokens(portal: Portal, db: Session) -> None:
    user = manager(portal)
    for i in range(api_tokens.MAX_ACTIVE):
        api_tokens.create(db, portal.settings, user, f"tool {i}", 1 if i == 0 else 30, NOW)
    with pytest.raises(InvalidInput) as raised:
        api_tokens.create(db, portal.settings, user, "one too many", 30, NOW)
    assert raised.value.field == ""
    # The first one has expired the next day: room for one more.
    later = NOW + dt.timedelta(days=1)
    api_tokens.create(db, portal.settings, user, "replacement", 30, later)


def test_only_management_may_make_tokens(portal: Portal, db: Session) -> None:
    ombuds = portal.staff("ombuds")
    with pytest.raises(ApiTokenNotPermitted):
        api_tokens.create(db, portal.settings, ombuds, "BI", 30, NOW)


# --- the account page -----------------------------------------------------------------------


def test_account_page_shows_the_section_to_management_only(app: Flask, portal: Portal) -> None:
    ombuds = portal.staff("ombuds")
    boss = manager(portal)
    as_ombuds, as_boss = app.test_client(), app.test_client()
    login(as_ombuds, ombuds)
    login(as_boss, boss)

    assert "API tokens" not in as_ombuds.get("/staff/account").text
    page = as_boss.get("/staff/account").text
    assert "API tokens" in page and "You have no API tokens." in page


def test_create_shows_the_token_once_then_lists_it_and_revokes(
    app: Flask, portal: Portal, db: Session
) -> None:
    boss = manager(portal)
    client = app.test_client()
    login(client, boss)
    token = csrf_token(client.get("/staff/account").text)

    created = client.post(
        "/staff/account/api-tokens", data={"csrf_token": token, "name": "Grafana", "days": "30"}
    )

    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    value = created.text.split('id="api-token">', 1)[1].split("<", 1)[0]
    assert value.startswith("pti_")
    assert "shown only this once" in created.text
    row = db.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(value.encode()).digest()
    again = client.get("/staff/account").text
    assert value not in again
    assert "Grafana" in again and "Never" in again

    revoked = client.post(f"/staff/account/api-tokens/{row.id}/revoke", data={"csrf_token": token})

    assert revoked.status_code == 302
    assert revoked.headers["Location"].endswith("/staff/account#api-tokens")
    db.expire_all()
    assert db.scalars(select(ApiToken)).all() == []


@pytest.mark.parametrize(
    ("name", "days", "message"),
    [
        ("", "30", "Give the token a name"),
        ("Grafana", "ninety", "whole number of days"),
        ("Grafana", "400", "1 to 90 days"),
    ],
)
def test_bad_input_keeps_what_was_typed(
    app: Flask, portal: Portal, db: Session, name: str, days: str, message: str
) -> None:
    boss = manager(portal)
    client = app.test_client()
    login(client, boss)
    token = csrf_token(client.get("/staff/account").text)

    response = client.post(
        "/staff/account/api-tokens", data={"csrf_token": token, "name": name, "days": days}
    )

    assert response.status_code == 400
    assert message in response.text
    assert f'value="{days}"' in response.text
    if name:
        assert f'value="{name}"' in response.text
    assert 'id="api-token"' not in response.text
    assert db.scalars(select(ApiToken)).all() == []


def test_another_users_token_is_404_on_the_page(app: Flask, portal: Portal, db: Session) -> None:
    owner, other = manager(portal), manager(portal, "other")
    new = api_tokens.create(db, portal.settings, owner, "BI", 30, NOW)
    db.commit()
    client = app.test_client()
    login(client, other)
    token = csrf_token(client.get("/staff/account").text)

    response = client.post(f"/staff/account/api-tokens/{new.id}/revoke", data={"csrf_token": token})

    assert response.status_code == 404
    assert db.scalars(select(ApiToken)).one().id == new.id
