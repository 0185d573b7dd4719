"""Settings: defaults, TOML file, environment overrides, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.settings import (
    PRODUCTION_ARGON2,
    PROJECT_ROOT,
    Argon2Cost,
    SettingsError,
    load_settings,
)


def test_defaults_use_production_argon2_and_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({"PORTAL_INSTANCE_PATH": str(tmp_path)})
    assert settings.kdf_cost == PRODUCTION_ARGON2
    assert settings.password_cost == PRODUCTION_ARGON2
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'portal.db'}"
    assert settings.secure_cookies is True


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "portal.toml"
    config.write_text(
        'organisation_name = "ACME"\ndescription_max_chars = 500\nsecure_cookies = false\n'
    )
    settings = load_settings({"PORTAL_CONFIG": str(config), "PORTAL_DESCRIPTION_MAX_CHARS": "600"})
    assert settings.organisation_name == "ACME"
    assert settings.description_max_chars == 600  # environment wins
    assert settings.secure_cookies is False


def test_example_config_is_valid_and_complete() -> None:
    settings = load_settings({}, config_file=PROJECT_ROOT / "config" / "portal.example.toml")
    assert settings.kdf_cost == PRODUCTION_ARGON2


def test_test_variables_are_ignored() -> None:
    assert load_settings({"PORTAL_TEST_DATABASE_URL": "postgresql://x"}).database_url == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORTAL_NO_SUCH": "1"}, "unknown setting"),
        ({"PORTAL_DESCRIPTION_MAX_CHARS": "many"}, "must be of type int"),
        ({"PORTAL_SECURE_COOKIES": "perhaps"}, "must be of type bool"),
        ({"PORTAL_DESCRIPTION_MAX_CHARS": "0"}, "at least 1"),
        ({"PORTAL_KDF_MEMORY_KIB": "4"}, "Argon2"),
        ({"PORTAL_STAFF_PASSWORD_MIN_CHARS": "4"}, "at least 15"),
        ({"PORTAL_EXTERNAL_REPORTING_URL": "javascript:alert(1)"}, "https://"),
        ({"PORTAL_QUICK_EXIT_URL": "/staff/"}, "quick_exit_url must start with https://"),
        ({"PORTAL_QUICK_EXIT_URL": ""}, "quick_exit_url must start with https://"),
        # Deadlines are policy now (taxonomy [policy]); the old names must not pass silently.
        ({"PORTAL_ACKNOWLEDGE_DAYS": "7"}, "unknown setting"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_bad_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "portal.toml"
    config.write_text("this is = not toml [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"PORTAL_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"PORTAL_CONFIG": str(tmp_path / "missing.toml")})
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings({"PORTAL_CONFIG": str(config)})


def test_argon2_cost_round_trips_through_its_stored_form() -> None:
    assert Argon2Cost.decode(PRODUCTION_ARGON2.encode()) == PRODUCTION_ARGON2
    with pytest.raises(ValueError):
        Argon2Cost.decode("scrypt:n=1")
