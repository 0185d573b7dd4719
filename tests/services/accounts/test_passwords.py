"""Staff passwords: at least 15 characters, and not a common password or one built on it.

A staff password wraps the private key that opens the cases its holder was given, so a copy of
the database lets anyone guess it offline (portal/services/accounts/passwords.py). These tests hold
the rule where passwords are chosen: `portal create-staff` (the service) and the password page.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.models import Role, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.accounts import passwords
from portal.settings import STAFF_PASSWORD_MIN_CHARS_FLOOR, Settings, SettingsError, load_settings
from tests.support.factories import PASSWORD, Portal, cheap_settings
from tests.support.pages import csrf_token, login

COMMON = "one of the most common ones"
#: Each is at least 15 characters, so only the list refuses it; the comment says how it is
#: built on a listed password.
BUILT_ON_COMMON = [
    "qwertyuiop12345",  # listed as it is
    "1QAZ2WSX3EDC4RFV",  # listed, in capitals
    "Password123456789",  # digits after
    "2024!!Sunshine!!",  # digits and symbols around
    "P@ssw0rd12345678",  # look-alike symbols and digits
    "PasswordPassword",  # repeated
    "monkey monkey monkey",  # repeated, with spaces
    "123456789012345",  # a listed number run on
    "Dragon__________",  # symbols after
]
ALLOWED = [
    "i-love-my-kayak-2024",  # "iloveyou" is listed, not "ilovemykayak"
    "violet-kayak-42",  # 15
    "correct horse battery staple",
    "4839201748392017",  # random digits whose first four are a listed number
]


def test_the_shipped_list_is_zxcvbns_password_list() -> None:
    """The file in the package is what `python -m portal.services.accounts.passwords` writes from
    the pinned zxcvbn (its source and MIT licence in the file's header)."""
    shipped = passwords.LIST_PATH.read_text(encoding="utf-8")
    assert shipped == passwords.build_list()
    assert "MIT License" in shipped and "Dan Wheeler and Dropbox" in shipped
    known = passwords.common_passwords()
    assert len(known) == 30_000
    assert {"123456", "password", "iloveyou", "qwertyuiop"} <= known
    assert all(word == word.lower().strip() and word for word in known)


@pytest.mark.parametrize("password", BUILT_ON_COMMON)
def test_a_common_password_or_one_built_on_it_is_refused(password: str) -> None:
    assert len(password) >= STAFF_PASSWORD_MIN_CHARS_FLOOR
    assert passwords.is_common(password)
    with pytest.raises(InvalidInput) as refused:
        passwords.check_new_password(Settings(), password, "new")
    assert refused.value.field == "new" and COMMON in str(refused.value.message)


@pytest.mark.parametrize("password", ALLOWED)
def test_unrelated_words_and_random_strings_are_allowed(password: str) -> None:
    passwords.check_new_password(Settings(), password, "new")


def test_fourteen_characters_are_refused_and_fifteen_allowed() -> None:
    settings = Settings()
    assert settings.staff_password_min_chars == 15
    with pytest.raises(InvalidInput) as refused:
        passwords.check_new_password(settings, "violet-kayak-4", "password")
    assert "at least 15 characters" in str(refused.value.message)
    passwords.check_new_password(settings, "violet-kayak-42", "password")


def test_the_minimum_cannot_be_set_below_fifteen() -> None:
    with pytest.raises(SettingsError, match="at least 15"):
        load_settings({"PORTAL_STAFF_PASSWORD_MIN_CHARS": "14"})
    assert load_settings({"PORTAL_STAFF_PASSWORD_MIN_CHARS": "20"}).staff_password_min_chars == 20


@pytest.mark.parametrize("password", ["Password123456789", "violet-kayak-4"])
def test_create_staff_refuses_and_stores_nothing(
    portal: Portal, db: Session, password: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        staff.create_staff(
            db,
            portal.settings,
            email="new@example.org",
            display_name="New",
            roles=[Role.OMBUDSPERSON],
            queue_slugs=["general"],
            password=password,
            now=dt.datetime.now(dt.UTC),
        )
    assert refused.value.field == "password"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(StaffUser)) == 0


@pytest.mark.parametrize(
    ("new", "words"),
    [
        ("ILoveYou2024!!!!", COMMON),
        ("qwertyuiop12345", COMMON),
        ("violet-kayak-4", "The password needs at least 15 characters."),
    ],
)
def test_the_password_page_refuses_with_words_and_changes_nothing(
    app: Flask, portal: Portal, db: Session, new: str, words: str
) -> None:
    alice = portal.staff("alice")
    client = app.test_client()
    login(client, alice)
    db.expire_all()
    before = db.get_one(StaffUser, alice.id).password_hash
    token = csrf_token(client.get("/staff/account/password").text)

    response = client.post(
        "/staff/account/password",
        data={"csrf_token": token, "current": PASSWORD, "new": new, "confirm": new},
    )

    assert response.status_code == 400
    assert words in response.text.replace("\n", " ")
    assert new not in response.text  # passwords are never written back into the form
    db.expire_all()
    assert db.get_one(StaffUser, alice.id).password_hash == before


def test_the_shared_test_passwords_pass_the_rule(tmp_path: Path) -> None:
    """The helpers' passwords are long and uncommon, so no test needs a weaker rule."""
    from portal.ops.demo import DEMO_PASSWORD
    from tests.invariants.matrix.test_authorization import NEW_PASSWORD

    for password in (PASSWORD, NEW_PASSWORD, DEMO_PASSWORD):
        passwords.check_new_password(cheap_settings(tmp_path), password, "password")
