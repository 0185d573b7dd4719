"""The `portal` command: one click module per command family (``main`` registers them on the
app); ``main`` here is the console script's entry point, the one place outside the tests that
builds the app for a command."""

from __future__ import annotations


def main() -> None:
    # Imported here: portal.app imports portal.cli.main, and so runs this package's __init__.
    from flask.cli import FlaskGroup

    from portal.app import create_app
    from portal.settings import SettingsError, load_settings

    try:
        load_settings()
    except SettingsError as error:
        raise SystemExit(f"portal: {error}") from error
    cli = FlaskGroup(create_app=lambda: create_app(), add_default_commands=False)
    cli(prog_name="portal")
