"""Running under gunicorn from ``portal serve``.

The access log stays off: on a reporter-facing server it would record client addresses.
Each worker builds its own app (and so its own database engine) after the fork.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from portal.settings import Settings


class _PortalServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from portal import create_app

        return create_app(self._settings)


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "portal",
        "timeout": 60,
    }
    _PortalServer(settings, options).run()
