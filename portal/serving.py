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


#: gunicorn's worker timeout: a request still running after this long has its worker restarted.
WORKER_TIMEOUT_SECONDS = 60


def gunicorn_options(
    settings: Settings, *, host: str, port: int, workers: int, threads: int
) -> dict[str, Any]:
    """What ``portal serve`` hands gunicorn. ``threads`` above 1 makes the workers threaded
    (gunicorn's gthread worker): each serves that many requests at once, and the process's
    Argon2 pool (``argon2_max_concurrent``) bounds how many of them run Argon2 together.
    ``forwarded_allow_ips`` stays gunicorn's default (127.0.0.1 and ::1, or the
    ``FORWARDED_ALLOW_IPS`` environment variable): a proxy there may say a request came over
    HTTPS (``X-Forwarded-Proto``)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "portal",
        "timeout": WORKER_TIMEOUT_SECONDS,
    }


def run_gunicorn(
    settings: Settings, *, host: str, port: int, workers: int, threads: int = 1
) -> None:
    options = gunicorn_options(settings, host=host, port=port, workers=workers, threads=threads)
    _PortalServer(settings, options).run()
