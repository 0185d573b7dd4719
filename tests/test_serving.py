"""`portal serve`: what it hands gunicorn (no access log; workers and threads as asked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from portal import create_app, serving
from tests.conftest import cheap_settings


def _config(options: dict[str, Any]) -> Config:
    """The options as gunicorn reads them: an unknown name or a bad value raises here."""
    config = Config()
    for key, value in options.items():
        config.set(key, value)
    return config


def test_threads_above_one_make_threaded_workers(tmp_path: Path) -> None:
    settings = cheap_settings(tmp_path)
    config = _config(
        serving.gunicorn_options(settings, host="127.0.0.1", port=8000, workers=3, threads=4)
    )
    assert config.workers == 3 and config.threads == 4
    assert config.worker_class is ThreadWorker
    assert config.accesslog is None  # no access log: it would record client addresses
    assert config.bind == ["127.0.0.1:8000"]
    assert config.timeout == serving.WORKER_TIMEOUT_SECONDS
    # A proxy on this host may mark requests as HTTPS; nobody else may.
    assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]


def test_one_thread_keeps_sync_workers(tmp_path: Path) -> None:
    config = _config(
        serving.gunicorn_options(
            cheap_settings(tmp_path), host="127.0.0.1", port=8000, workers=2, threads=1
        )
    )
    assert config.worker_class is SyncWorker


def test_serve_passes_workers_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(serving, "run_gunicorn", lambda settings, **kw: seen.update(kw))
    app = create_app(cheap_settings(tmp_path / "instance"))
    result = app.test_cli_runner().invoke(
        args=["serve", "--port", "8123", "--workers", "3", "--threads", "4"]
    )
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "port": 8123, "workers": 3, "threads": 4}
    refused = app.test_cli_runner().invoke(args=["serve", "--threads", "0"])
    assert refused.exit_code != 0 and "--threads" in refused.output
