"""Running under gunicorn from ``portal serve``.

The access log stays off: on a reporter-facing server it would record client addresses. The
error log goes through ``PrivateLogger``, which never writes a client's address nor what it sent.
Each worker builds its own app (and so its own database engine) after the fork, with the
factory ``portal serve`` hands over (``PortalState.app_factory``): this module never imports the
app, which registers the command that runs it.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any, Protocol

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from portal.runtime.slots import WORKER_TIMEOUT_SECONDS
from portal.services.reporting import throttle
from portal.settings import Settings


class AppFactory(Protocol):
    """``create_app``, as the workers call it."""

    def __call__(
        self,
        settings: Settings | None = None,
        *,
        shared_counters: dict[str, throttle.SharedRegion] | None = None,
    ) -> Flask: ...


class _PortalServer(BaseApplication):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        app_factory: AppFactory,
        options: dict[str, Any],
        shared: dict[str, throttle.SharedRegion] | None = None,
    ) -> None:
        self._settings = settings
        self._app_factory = app_factory
        self._options = options
        self._shared = shared
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app_factory(self._settings, shared_counters=self._shared)


#: What the error log says instead of a message that may carry a client's address or (part of)
#: a request line: the class of message stays visible, none of what the client sent.
NEUTRAL_INVALID_REQUEST = "Invalid request refused (details withheld: they may identify the client)"
NEUTRAL_REQUEST_ERROR = "Error handling a request (details withheld: they may identify the client)"

# gunicorn's messages that carry a client's address, request line, URI or header: the invalid
# request family (``Invalid request from ip=...: Invalid HTTP request line: '...'``, ``Request
# Line is too large``, ``Invalid header``...) and ``Error handling request <method> <uri>``.
_INVALID_REQUEST = re.compile(
    r"^invalid request|request line|^invalid (http|method|header|chunk|proxy|scheme)|"
    r"^error parsing headers",
    re.IGNORECASE,
)
_REQUEST_ERROR = re.compile(r"^error handling (a )?request", re.IGNORECASE)
# A request line, or its method and target, anywhere in a message (the sync worker's debug
# line ``POST /path``, a future message quoting a request): the whole message goes.
_REQUEST_LINE = re.compile(
    r"\b(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|CONNECT|TRACE|PRI)\s+(/|\*|[a-z]+://)|HTTP/\d",
    re.IGNORECASE,
)
NEUTRAL_REQUEST_LINE = "A request (details withheld: they may identify the client)"
# Any IPv4 address, bracketed IPv6 address or ``ip=``/``addr`` field left in another message.
_ADDRESS = re.compile(
    r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\[[0-9a-fA-F:.]+\](:\d+)?|"
    r"\b[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}\b"
)


class _Scrub(logging.Filter):
    """Rewrites every record that reaches gunicorn's error log (through the Logger's methods
    or ``logging.getLogger("gunicorn.error")`` directly): messages of the request-error family
    become fixed text, tracebacks keep their frames but lose the exception's message (which
    may quote the request), and any other address left is masked, except the addresses the
    server itself listens on (``Listening at: http://127.0.0.1:8000``)."""

    def __init__(self, own_addresses: tuple[str, ...]) -> None:
        super().__init__()
        self._own = own_addresses

    def _mask(self, text: str) -> str:
        def keep_own(match: re.Match[str]) -> str:
            return match.group(0) if match.group(0) in self._own else "[address]"

        return _ADDRESS.sub(keep_own, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "portal_scrubbed", False):  # the logger's filter and the handler's
            return True
        record.portal_scrubbed = True
        try:
            message = record.getMessage()
        except Exception:  # a message that does not format is dropped whole, never shown raw
            message = NEUTRAL_REQUEST_ERROR
        if _REQUEST_ERROR.search(message):
            message = NEUTRAL_REQUEST_ERROR
        elif _INVALID_REQUEST.search(message):
            message = NEUTRAL_INVALID_REQUEST
        elif _REQUEST_LINE.search(message):
            message = NEUTRAL_REQUEST_LINE
        else:
            message = self._mask(message)
        if record.exc_info and record.exc_info[1] is not None:
            # The frames name our code only; the exception's own text may quote the request.
            error = record.exc_info[1]
            frames = "".join(traceback.format_tb(error.__traceback__))
            message = f"{message}\n{frames}{type(error).__name__} (message withheld)"
        record.msg, record.args = message, None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class PrivateLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger (its ``logger_class``) for a reporter-facing server: no access log
    whatever the configuration says, and an error log that never writes a client's address,
    request line, query string or header (DESIGN.md invariant 1)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        own = tuple(address for bind in cfg.bind for address in (bind, bind.rsplit(":", 1)[0]))
        scrub = _Scrub(own)
        for logger in (self.error_log, self.access_log):
            logger.filters = [f for f in logger.filters if not isinstance(f, _Scrub)]
            logger.addFilter(scrub)
            for handler in logger.handlers:
                handler.filters = [f for f in handler.filters if not isinstance(f, _Scrub)]
                handler.addFilter(scrub)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None  # an access line is a client address and a request line


def gunicorn_options(
    settings: Settings, *, host: str, port: int, workers: int, threads: int
) -> dict[str, Any]:
    """What ``portal serve`` hands gunicorn. ``threads`` above 1 makes the workers threaded
    (gunicorn's gthread worker): each serves that many requests at once, and the process's
    Argon2 pool (``argon2_max_concurrent``) bounds how many of them run Argon2 together.
    ``forwarded_allow_ips`` stays gunicorn's default (127.0.0.1 and ::1, or the
    ``FORWARDED_ALLOW_IPS`` environment variable): a proxy there may say a request came over
    HTTPS (``X-Forwarded-Proto``).

    gunicorn's control socket (``gunicornc``, gunicorn 25.1 and later) is off: its path is fixed
    per user ($XDG_RUNTIME_DIR or $HOME/.gunicorn/gunicorn.ctl), so the second of two servers
    on one host (the reporter-facing and the staff-facing one) took the first's over, and
    stopping either removed the other's. Nothing the portal documents uses it: gunicorn is
    managed with signals (HUP from the example unit's ``ExecReload``, TTIN/TTOU), and that
    unit's ``ProtectHome=true`` hides the home folder from the server anyway."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "logger_class": PrivateLogger,
        "loglevel": settings.log_level.lower(),
        "proc_name": "portal",
        "timeout": WORKER_TIMEOUT_SECONDS,
        "control_socket_disable": True,
    }


def run_gunicorn(
    settings: Settings,
    app_factory: AppFactory,
    *,
    host: str,
    port: int,
    workers: int,
    threads: int = 1,
) -> None:
    options = gunicorn_options(settings, host=host, port=port, workers=workers, threads=threads)
    _PortalServer(settings, app_factory, options, rate_limit_counters(settings)).run()


def rate_limit_counters(settings: Settings) -> dict[str, throttle.SharedRegion] | None:
    """Made here, in gunicorn's master before it forks: without Redis every worker then counts
    in the same shared memory. Says where the counters are, since it decides what a limit
    means."""
    if settings.redis_url:
        click.echo("Rate-limit counters: in Redis, shared by every app server using it.", err=True)
        return None
    shared = throttle.shared_regions()
    if shared is None:  # pragma: no cover - Linux has memfd_create
        click.echo(
            "Warning: rate-limit counters are per worker process (no shared memory on this"
            " system): each worker counts apart, so a limit is multiplied by --workers."
            " Set redis_url.",
            err=True,
        )
    else:
        click.echo(
            "Rate-limit counters: in memory shared by this server's workers (nothing on disk);"
            " a second app server would count apart: set redis_url for several.",
            err=True,
        )
    return shared
