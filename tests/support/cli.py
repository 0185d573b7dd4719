"""Running `portal` commands in-process, as the operator would from a shell."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from portal.app import create_app
from portal.settings import Settings
from tests.support.factories import cheap_settings


def cli_app(tmp_path: Path) -> tuple[Flask, Settings]:
    settings = cheap_settings(tmp_path / "instance")
    return create_app(settings), settings


def run_command(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args), input=stdin)
    return result.exit_code, result.output
