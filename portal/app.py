"""The application: ``create_app`` and the state every request and command shares (``PortalState``:
settings, secrets, the engine and sessions, throttles, the clock, the mailer)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask
from flask_babel import Babel
from flask_babel import get_locale as babel_locale
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import crypto
from portal.cli.main import register as register_commands
from portal.clock import utc_now
from portal.db import make_engine, make_sessionmaker
from portal.instance import InstanceSecrets, SecretsMissing, load_secrets
from portal.runtime import capacity as runtime_capacity
from portal.runtime import logconfig, memory
from portal.runtime.capacity import Capacity
from portal.services.attachments import store as attachments
from portal.services.notifications import mail
from portal.services.notifications.mail import Mailer
from portal.services.reporting.throttle import (
    SharedRegion,
    SubmissionLimits,
    Throttle,
    make_submission_limits,
    make_throttle,
)
from portal.settings import Settings, load_settings
from portal.web import errors, hidden_chars, labels, language, security, uploads
from portal.web.api import bp as api_bp
from portal.web.insights import bp as insights_bp
from portal.web.reporter import bp as reporter_bp
from portal.web.staff import bp as staff_bp
from portal.web.state import close_db

if TYPE_CHECKING:
    from portal.runtime.serving import AppFactory


@dataclass
class PortalState:
    settings: Settings
    secrets: InstanceSecrets | None
    engine: Engine
    sessions: sessionmaker[Session]
    followup_throttle: Throttle
    login_throttle: Throttle
    api_throttle: Throttle  # failed bearer tokens on the insights API, per client
    submission_limits: SubmissionLimits  # concerns and reporter messages, total and per client
    # The CPUs and memory this process may use (probed once per process), which the automatic
    # pool bounds were sized from.
    capacity: Capacity
    # How to build another app like this one: ``portal serve`` hands it to gunicorn, whose
    # workers each build their own after the fork (so the commands never import this module).
    app_factory: AppFactory
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Sends mail from a request (a reset's one-time password to its owner); None when no SMTP
    # server is configured, and then what needs it is refused rather than shown to an admin.
    mailer: Mailer | None = None


@dataclass(frozen=True)
class Counters:
    """The rate-limit counters of one app."""

    followup_throttle: Throttle
    login_throttle: Throttle
    api_throttle: Throttle
    submission_limits: SubmissionLimits


def make_counters(
    settings: Settings, shared_counters: dict[str, SharedRegion] | None = None
) -> Counters:
    """The rate-limit counters of one app: in Redis when it is configured, else in this process
    or in the regions ``portal serve`` shares between its workers."""
    return Counters(
        followup_throttle=make_throttle(
            settings.redis_url,
            settings.followup_window_seconds,
            "portal:followup",
            shared=shared_counters,
        ),
        login_throttle=make_throttle(
            settings.redis_url,
            settings.login_window_seconds,
            "portal:login",
            shared=shared_counters,
        ),
        api_throttle=make_throttle(
            settings.redis_url, settings.api_window_seconds, "portal:api", shared=shared_counters
        ),
        submission_limits=make_submission_limits(
            settings.redis_url,
            settings.submit_max_total,
            settings.submit_total_window_seconds,
            settings.submit_max_per_client,
            settings.submit_client_window_seconds,
            shared=shared_counters,
        ),
    )


def create_app(
    settings: Settings | None = None,
    *,
    secrets: InstanceSecrets | None = None,
    shared_counters: dict[str, SharedRegion] | None = None,
    capacity: Capacity | None = None,
) -> Flask:
    """Build the application. Without ``secrets`` they are read from the instance folder; if they
    are missing the app still starts (so ``portal init`` can run through it) but every request
    answers 503 until they exist. ``shared_counters`` (made by ``portal serve`` before the
    fork) holds the rate-limit counters every worker of the server shares when there is no
    Redis. ``capacity`` (what this process may use, probed once per process when not given)
    sizes the pools whose settings say 0 (automatic)."""
    settings = settings or load_settings()
    capacity = capacity or runtime_capacity.this_process()
    logconfig.configure(settings.log_level)
    # One bound per process on the memory Argon2 may hold (several apps in one process, as in
    # the tests, share it; the last one built sets it).
    crypto.configure_argon2_pool(capacity.argon2_pool_size(settings), settings.argon2_wait_seconds)
    # The same for cleaning attachments, which holds hundreds of MiB for a large picture; and
    # large blocks given back when freed, else each thread of a worker keeps a cleaning's peak.
    attachments.configure_cleaning_pool(
        capacity.attachment_pool_size(settings), settings.attachment_wait_seconds
    )
    memory.map_large_blocks()
    if secrets is None:
        try:
            secrets = load_secrets(settings.instance_path)
        except SecretsMissing:
            secrets = None

    app = Flask(
        __name__,
        instance_path=str(settings.instance_path.resolve()),
        static_folder=str(settings.static_dir),
        static_url_path="/static",
    )
    app.request_class = uploads.InMemoryRequest
    if settings.proxy_hops:
        # invariant-ok: the X-Forwarded-For entries the trusted proxies appended give the client
        # address, which feeds only the HMAC-keyed rate-limit key (portal/web/client.py) and is
        # never stored or logged; nothing else is taken from them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=0)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=secrets.secret_key if secrets else None,
        SESSION_COOKIE_NAME="portal_form",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=settings.form_token_hours * 3600,
        # Limit the whole request body: the longest concern (up to 4 UTF-8 bytes a character,
        # each percent-encoded as 3 bytes by the browser), the other fields, and the
        # attachments (count x size). Uploads are held in memory up to this cap, never in a
        # temporary file (``portal.web.uploads``). Text fields alone stay under the old cap.
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.description_max_chars * 12 + 64 * 1024,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        TEMPLATES_AUTO_RELOAD=False,
    )
    engine = make_engine(settings.effective_database_url)
    counters = make_counters(settings, shared_counters)
    app.extensions["portal"] = PortalState(
        settings=settings,
        secrets=secrets,
        engine=engine,
        sessions=make_sessionmaker(engine, secrets.audit_key if secrets else None),
        mailer=mail.SmtpMailer(settings) if settings.smtp_host else None,
        followup_throttle=counters.followup_throttle,
        login_throttle=counters.login_throttle,
        api_throttle=counters.api_throttle,
        submission_limits=counters.submission_limits,
        capacity=capacity,
        app_factory=create_app,
    )
    app.teardown_appcontext(close_db)
    Babel(app, locale_selector=language.select_locale)
    app.jinja_env.globals["get_locale"] = babel_locale
    # First of the request hooks: a request to a name that is not the portal's is refused
    # before the CSRF check or any page can read its Host header.
    security.init_host_check(app, settings)
    csrf = CSRFProtect(app)
    security.init_app(app)
    errors.init_app(app)
    labels.register(app)
    hidden_chars.init_app(app)
    language.init_app(app)

    app.register_blueprint(reporter_bp)
    app.register_blueprint(staff_bp)
    # The API is read-only (GET only; any other method is 405) and authenticated by a bearer
    # header that a browser never adds by itself, so there is nothing for CSRF to forge.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(insights_bp)

    register_commands(app)

    @app.template_filter("day")
    def format_day(value: dt.date) -> str:
        return value.isoformat()

    return app
