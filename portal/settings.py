"""Typed, frozen settings.

Settings come from, in increasing priority:

1. the defaults below (safe for production where that matters, e.g. Argon2 costs);
2. a TOML file named by the ``PORTAL_CONFIG`` environment variable
   (``config/portal.example.toml`` documents every key);
3. ``PORTAL_<NAME>`` environment variables, e.g. ``PORTAL_DATABASE_URL``.

Secrets (the Flask secret key and the receipt pepper) are *not* settings: they live in files in
the instance folder, created by ``portal init`` (see :mod:`portal.instance`), so that a copy of the
configuration never carries them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from portal import crypto
from portal.crypto import Argon2Cost as Argon2Cost  # re-exported: the costs' type
from portal.i18n.locales import LOCALES

#: The checkout (or installation) root: ``config/`` and ``static/`` sit beside ``portal/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENV_PREFIX = "PORTAL_"

#: The names of this machine a development server answers to whatever ``portal_url`` says
#: (``make run`` serves at http://127.0.0.1:5000; the test client sends ``localhost``). A Host
#: header cannot carry them to another machine, so trusting them lets no forger in. Not
#: ``[::1]``: Werkzeug 3.1 cannot match an IPv6 literal in its trusted list (docs/limits.md).
LOOPBACK_HOST_NAMES = ("localhost", "127.0.0.1")


#: The shortest staff password any setting may allow (NIST SP 800-63B-4 asks 15 of a
#: password used alone; here it alone guards the key it wraps against offline guessing).
STAFF_PASSWORD_MIN_CHARS_FLOOR = 15


class SettingsError(Exception):
    """A setting is missing, unknown or of the wrong type."""


#: RFC 9106, second recommended option: t=3, p=4, m=64 MiB.
PRODUCTION_ARGON2 = Argon2Cost(time_cost=3, memory_kib=64 * 1024, parallelism=4)
#: Cheapest parameters libargon2 accepts; for tests and benchmarks only.
TEST_ARGON2 = Argon2Cost(time_cost=1, memory_kib=8, parallelism=1)

#: What ``attachment_types`` may name: a group, or one type of ``services/sanitize.FileKind``
#: (each group expands to the types the portal can clean; a test keeps the two in step).
ATTACHMENT_TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "images": ("jpeg", "png", "webp", "gif"),
    "pdf": ("pdf",),
    "text": ("text",),
    "office": ("docx", "xlsx", "pptx"),
}
#: The largest ``attachment_max_bytes`` accepted: uploads are held in memory (never in a
#: temporary file), and cleaning an Office file may unpack up to 64 MiB.
ATTACHMENT_MAX_BYTES_CEILING = 64 * 1024 * 1024
#: The most files ``attachment_max_count`` may allow on one form.
ATTACHMENT_MAX_COUNT_CEILING = 20
#: The most forms with attachments one process may be allowed to clean at once.
ATTACHMENT_MAX_CONCURRENT_CEILING = 64
#: The longest a form with attachments may wait for a cleaning slot. A concern with files may
#: wait three times (an Argon2 slot for the access code, a cleaning slot, an Argon2 slot for
#: the receipt's key), as a password change may: 3 x 19 s stays under gunicorn's 60 s timeout.
ATTACHMENT_WAIT_SECONDS_CEILING = 19
#: What cleaning one file may hold on top of the files themselves, at worst
#: (``attachment_form_memory_bytes``). ``services/sanitize`` decodes a picture of at most 40
#: million pixels (``MAX_IMAGE_PIXELS``), which Pillow keeps at 4 bytes a pixel, and copies the
#: pixels once into a clean image; it unpacks an Office file to at most 64 MiB
#: (``MAX_ZIP_UNCOMPRESSED``) and writes it again, cleaning a picture inside it like an upload.
#: A test keeps these in step with sanitize's limits.
CLEANING_PICTURE_BYTES = 2 * 4 * 40_000_000
CLEANING_OFFICE_BYTES = 2 * 64 * 1024 * 1024


#: The most Argon2 computations one process may be allowed to run at once.
ARGON2_MAX_CONCURRENT_CEILING = 256
#: The longest a request may wait for an Argon2 slot. A password change runs Argon2 three times
#: and may wait each time: 3 x 19 s stays under gunicorn's 60 s worker timeout, past which the
#: request would be cut off and what was typed lost (``portal doctor`` checks the same).
ARGON2_WAIT_SECONDS_CEILING = 19


def attachment_form_memory_bytes(max_bytes: int, max_count: int) -> int:
    """An upper estimate of the memory one form's attachments hold while they are cleaned,
    encrypted and stored: every file as sent and as cleaned (2 x count x size; a cleaned file
    is about as large as the one sent) and the largest cleaning at work, an Office file
    unpacked and written again with a 40-megapixel picture inside. 0 when attachments are off.
    docs/benchmarks.md ("Attachments") compares it with what was measured."""
    if max_count == 0:
        return 0
    return 2 * max_count * max_bytes + CLEANING_OFFICE_BYTES + CLEANING_PICTURE_BYTES


@dataclass(frozen=True)
class Settings:
    # Where instance secrets (secret key, pepper) and the default SQLite database live.
    instance_path: Path = field(default_factory=lambda: Path.cwd() / "instance")
    # SQLAlchemy URL. Empty means SQLite in the instance folder.
    database_url: str = ""
    # Redis URL for rate-limit counters shared by several app servers; empty = in memory.
    redis_url: str = ""
    # How many reverse proxies in front of gunicorn each append the client's address to
    # X-Forwarded-For (invariant-ok: read for the HMAC-keyed rate limits only). They take the
    # address that many entries from the right; it is never stored or logged. 0 = ignore the
    # header: every
    # client then has the proxy's address. Set it only when nothing but the proxy can reach
    # gunicorn, or anyone can pick their own address.
    proxy_hops: int = 0
    # The taxonomy (queues, categories, sites, departments, routing rules).
    taxonomy_file: Path = field(default_factory=lambda: PROJECT_ROOT / "config" / "taxonomy.toml")
    static_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "static")
    # Shown in page titles and on the front page.
    organisation_name: str = "Example Ltd"
    # Where reporters learn about reporting to a competent authority outside the organisation
    # (EU 2019/1937 art. 9(1)(g)); shown on the front page. Empty: the page says to ask.
    external_reporting_url: str = ""
    # Where "Leave this site quickly" on every reporter page sends the reporter: a neutral page
    # that says nothing about speaking up.
    quick_exit_url: str = "https://www.wikipedia.org/"
    # The language of a page when the visitor chose none and their browser asks for none we
    # have, and the language of the staff mails: "en" or "zh_CN".
    default_locale: str = "en"

    # Argon2id costs: key derivation from receipts and staff passwords ...
    kdf_time_cost: int = PRODUCTION_ARGON2.time_cost
    kdf_memory_kib: int = PRODUCTION_ARGON2.memory_kib
    kdf_parallelism: int = PRODUCTION_ARGON2.parallelism
    # ... and staff password verification hashes.
    password_time_cost: int = PRODUCTION_ARGON2.time_cost
    password_memory_kib: int = PRODUCTION_ARGON2.memory_kib
    password_parallelism: int = PRODUCTION_ARGON2.parallelism

    # How many Argon2 computations (log-ins, receipts, password changes) one process runs at
    # once; each holds the Argon2 memory cost (64 MiB by default) while it runs. 0 = as many as
    # fit in a quarter of the memory (a container's limit when lower), at most one per CPU.
    # Per process: gunicorn's workers each have this many (docs/deploy.md says how to size
    # them together).
    argon2_max_concurrent: int = 0
    # How long a request waits for a free Argon2 slot before the page says "busy, try again in
    # a moment" (503, the typed text kept). 0 = do not wait.
    argon2_wait_seconds: int = 10

    # Limits on what a reporter may type (characters, after normalising line ends).
    description_max_chars: int = 20_000
    message_max_chars: int = 10_000
    contact_field_max_chars: int = 200
    # A staff password wraps the key that opens the cases its holder was given, and a copy of
    # the database lets anyone guess it offline (services/passwords.py): 15 at the least.
    staff_password_min_chars: int = STAFF_PASSWORD_MIN_CHARS_FLOOR

    # Attachments a reporter may send with a concern or a follow-up message: the largest file
    # in bytes, how many files on one form (0 turns attachments off), and which types, as a
    # comma-separated list of groups (images, pdf, text, office) or single types (jpeg, png,
    # webp, gif, pdf, docx, xlsx, pptx, text). Size and count also set the request body cap.
    # Whether a file that cannot be cleaned may be sent as it is is the organisation's policy
    # (admin console), not a setting.
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_max_count: int = 5
    attachment_types: str = "images,pdf,text,office"
    # How many forms with attachments one process cleans, encrypts and stores at once; cleaning
    # a large picture holds hundreds of MiB while it runs. 0 = as many as fit in a quarter of
    # the memory (a container's limit when lower) at the estimate of one maximal form (533 MiB
    # with the defaults above), at most one per CPU. Per process, like the Argon2 pool.
    attachment_max_concurrent: int = 0
    # How long a form with attachments waits for a free cleaning slot before the page says
    # "busy, try again in a moment" (503, the typed text kept). 0 = do not wait.
    attachment_wait_seconds: int = 10

    # Follow-up throttle: this many wrong receipts from one client within the window slows
    # that client down until the window has passed.
    followup_max_failures: int = 5
    followup_window_seconds: int = 900
    # Submission limits on new concerns and reporter follow-up messages (docs/limits.md): at most
    # this many from everybody together in a window (further ones get 429 until it ends) ...
    submit_max_total: int = 100
    submit_total_window_seconds: int = 3600
    # ... and at most this many from one client in a shorter window, refused attempts (a filled
    # honeypot, a wrong access code) included. The client is an HMAC of its address under a key
    # that lives one window, never the address. Everyone behind one office proxy is one client.
    submit_max_per_client: int = 5
    submit_client_window_seconds: int = 600
    # An optional access code the concern form asks for, as an Argon2id hash made by
    # ``portal access-code-hash`` (never the code itself). Empty: no code is asked.
    report_access_code_hash: str = field(default="", repr=False)
    # Staff login throttle, same shape: failures allowed per client (then 429), and per account
    # before a password is only accepted together with a current code (no lock-out: a correct
    # pair from a client that has not failed still gets in).
    login_max_failures: int = 5
    login_window_seconds: int = 900
    # Failures per account per window after which no password is checked at all, except from a
    # browser that logged in to that account before (its device cookie): the bound on guessing.
    login_account_max_failures: int = 50
    # Failed bearer tokens on the JSON API allowed per client in a window (same shape).
    api_max_failures: int = 10
    api_window_seconds: int = 900

    # Insights API tokens live at most this many days (the default the form offers, too).
    # At most 365: a forgotten token in a BI tool should not outlive a year.
    api_token_max_days: int = 90

    # A reporter's follow-up session (encrypted cookie) lasts this long.
    reporter_session_minutes: int = 30
    # A staff session expires after this much idle time.
    staff_session_idle_minutes: int = 30
    # A log-in that is between its steps (password given; the second-factor code, the enrolment
    # or a forced new password still to come) lapses this long after the step began.
    staff_login_step_minutes: int = 10
    # A form may sit open this long before its CSRF token expires (long concerns take time).
    form_token_hours: int = 6
    # Cookies get the Secure flag; turn off only for plain-HTTP development on loopback.
    secure_cookies: bool = True

    # Deadlines and the anonymity threshold are the organisation's policy, not deployment
    # settings: they live in the taxonomy file's [policy] table and the admin console.

    # Outgoing e-mail: batched new-case notifications and deadline reminders (``portal notify``,
    # ``portal sla-check``). An empty host means no SMTP: the commands print what they would send.
    smtp_host: str = ""
    smtp_port: int = 587
    # Refuse to send unless the server offers STARTTLS; turn off only for a relay on loopback.
    smtp_starttls: bool = True
    smtp_username: str = ""
    # Prefer PORTAL_SMTP_PASSWORD in the environment to a copy in the settings file. Kept out of
    # repr() so that a traceback or a debug print of the settings does not show it.
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""
    smtp_timeout_seconds: int = 30
    # New-case notifications go out at most once per this many hours, whatever the cron period,
    # so the time of a mail does not reveal the time of a submission.
    notify_interval_hours: int = 6
    # Base URL put in mails (e.g. https://ombuds.example.org); empty = mails carry no link.
    # Its host is also the only name, besides loopback, the portal answers to (trusted_hosts).
    portal_url: str = ""

    log_level: str = "INFO"

    # `portal doctor` warns when the newest `backup.created` audit event is older than
    # this many days (or there is none).
    doctor_backup_max_days: int = 7

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'portal.db'}"

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """The Host names a request may carry: the host of ``portal_url`` and loopback. Any
        other gets a 400, so no page, link or redirect is ever built from a forged Host."""
        host = urlsplit(self.portal_url).hostname if self.portal_url else None
        if host and ":" in host:  # an IPv6 address: the Host header writes it in brackets
            host = f"[{host}]"
        return tuple(dict.fromkeys([*([host] if host else []), *LOOPBACK_HOST_NAMES]))

    @property
    def kdf_cost(self) -> Argon2Cost:
        return Argon2Cost(self.kdf_time_cost, self.kdf_memory_kib, self.kdf_parallelism)

    @property
    def password_cost(self) -> Argon2Cost:
        return Argon2Cost(
            self.password_time_cost, self.password_memory_kib, self.password_parallelism
        )

    @property
    def attachment_form_bytes(self) -> int:
        """The memory estimate of one form's attachments (``attachment_form_memory_bytes``)."""
        return attachment_form_memory_bytes(self.attachment_max_bytes, self.attachment_max_count)

    @property
    def attachment_type_names(self) -> frozenset[str]:
        """The single types ``attachment_types`` allows, groups expanded."""
        names: set[str] = set()
        for item in self.attachment_types.split(","):
            item = item.strip().lower()
            names.update(ATTACHMENT_TYPE_GROUPS.get(item, (item,) if item else ()))
        return frozenset(names)

    @property
    def max_request_bytes(self) -> int:
        """The request body cap: the longest concern (up to 12 bytes a character once a browser
        has percent-encoded its UTF-8), 64 KiB for the other fields, and the attachments with
        4 KiB each for their multipart headers."""
        text = self.description_max_chars * 12 + 64 * 1024
        return text + self.attachment_max_count * (self.attachment_max_bytes + 4 * 1024)

    def with_argon2(self, cost: Argon2Cost) -> Settings:
        """The same settings with ``cost`` for both key derivation and password hashes."""
        return self.replace(
            kdf_time_cost=cost.time_cost,
            kdf_memory_kib=cost.memory_kib,
            kdf_parallelism=cost.parallelism,
            password_time_cost=cost.time_cost,
            password_memory_kib=cost.memory_kib,
            password_parallelism=cost.parallelism,
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: object, kind: type) -> object:
    """Turn a TOML or environment value into the field's type, or say clearly why not."""
    if isinstance(kind, types.UnionType):  # pragma: no cover - no optional fields yet
        raise SettingsError(f"setting {name!r} has an unsupported type")
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(raw, str) and raw.lower() in {"0", "false", "no", "off"}:
            return False
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                pass
    elif (kind is Path and isinstance(raw, str | Path)) or (kind is str and isinstance(raw, str)):
        return kind(raw)
    raise SettingsError(f"setting {name!r} must be of type {kind.__name__}, got {raw!r}")


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Build settings from the TOML file and the environment (see module docstring)."""
    env = os.environ if environ is None else environ
    kinds = _field_types()
    values: dict[str, object] = {}

    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG") else None
    )
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
        for key, raw in data.items():
            if key not in kinds:
                raise SettingsError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, raw, kinds[key])

    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name.startswith("test_"):
            continue  # PORTAL_TEST_* variables belong to the test suite
        if name not in kinds:
            raise SettingsError(f"unknown setting in environment variable {key}")
        values[name] = _coerce(name, raw, kinds[name])

    settings = Settings(**values)  # type: ignore[arg-type]
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse settings that would weaken the portal or break it in confusing ways."""
    for name in ("kdf", "password"):
        cost: Argon2Cost = getattr(settings, f"{name}_cost")
        if cost.time_cost < 1 or cost.parallelism < 1 or cost.memory_kib < 8 * cost.parallelism:
            raise SettingsError(
                f"{name}_* Argon2 costs are below what Argon2 accepts "
                "(time >= 1, parallelism >= 1, memory >= 8 KiB per lane)"
            )
    positive = (
        "description_max_chars",
        "message_max_chars",
        "contact_field_max_chars",
        "followup_max_failures",
        "followup_window_seconds",
        "login_max_failures",
        "login_window_seconds",
        "login_account_max_failures",
        "api_max_failures",
        "api_window_seconds",
        "submit_max_total",
        "submit_total_window_seconds",
        "submit_max_per_client",
        "submit_client_window_seconds",
        "reporter_session_minutes",
        "staff_session_idle_minutes",
        "staff_login_step_minutes",
        "form_token_hours",
        "smtp_timeout_seconds",
        "notify_interval_hours",
        "doctor_backup_max_days",
    )
    for name in positive:
        if getattr(settings, name) < 1:
            raise SettingsError(f"setting {name!r} must be at least 1")
    if settings.external_reporting_url and not settings.external_reporting_url.startswith(
        ("https://", "http://")
    ):
        raise SettingsError("external_reporting_url must start with https:// or http://")
    if not settings.quick_exit_url.startswith(("https://", "http://")):
        raise SettingsError("quick_exit_url must start with https:// or http://")
    if settings.default_locale not in LOCALES:
        raise SettingsError(f"default_locale must be one of {', '.join(LOCALES)}")
    if not 1 <= settings.api_token_max_days <= 365:
        raise SettingsError("api_token_max_days must be from 1 to 365")
    if settings.staff_password_min_chars < STAFF_PASSWORD_MIN_CHARS_FLOOR:
        raise SettingsError(
            f"staff_password_min_chars must be at least {STAFF_PASSWORD_MIN_CHARS_FLOOR}"
        )
    _validate_attachments(settings)
    _validate_mail(settings)
    _validate_argon2_pool(settings)
    _validate_submissions(settings)


#: The most reverse proxies ``proxy_hops`` may name.
PROXY_HOPS_CEILING = 5


def _validate_argon2_pool(settings: Settings) -> None:
    if not 0 <= settings.argon2_max_concurrent <= ARGON2_MAX_CONCURRENT_CEILING:
        raise SettingsError(
            f"argon2_max_concurrent must be from 0 (automatic) to {ARGON2_MAX_CONCURRENT_CEILING}"
        )
    if not 0 <= settings.proxy_hops <= PROXY_HOPS_CEILING:
        raise SettingsError(f"proxy_hops must be from 0 to {PROXY_HOPS_CEILING}")
    if not 0 <= settings.argon2_wait_seconds <= ARGON2_WAIT_SECONDS_CEILING:
        raise SettingsError(f"argon2_wait_seconds must be from 0 to {ARGON2_WAIT_SECONDS_CEILING}")


def _validate_submissions(settings: Settings) -> None:
    if settings.submit_client_window_seconds > 86_400 or settings.submit_total_window_seconds > (
        86_400
    ):
        raise SettingsError("submission windows must be at most 86400 seconds (one day)")
    code_hash = settings.report_access_code_hash
    if code_hash and not crypto.is_password_hash(code_hash):
        raise SettingsError(
            "report_access_code_hash must be an Argon2id hash made by `portal access-code-hash`"
            " (never the code itself)"
        )


def _validate_attachments(settings: Settings) -> None:
    if not 1 <= settings.attachment_max_bytes <= ATTACHMENT_MAX_BYTES_CEILING:
        raise SettingsError(
            f"attachment_max_bytes must be from 1 to {ATTACHMENT_MAX_BYTES_CEILING}"
        )
    if not 0 <= settings.attachment_max_count <= ATTACHMENT_MAX_COUNT_CEILING:
        raise SettingsError(
            f"attachment_max_count must be from 0 to {ATTACHMENT_MAX_COUNT_CEILING}"
        )
    known = {name for group in ATTACHMENT_TYPE_GROUPS.values() for name in group}
    unknown = sorted(settings.attachment_type_names - known)
    if unknown:
        raise SettingsError(
            f"attachment_types names unknown types {unknown}; use groups "
            f"({', '.join(ATTACHMENT_TYPE_GROUPS)}) or types ({', '.join(sorted(known))})"
        )
    if not settings.attachment_type_names and settings.attachment_max_count:
        raise SettingsError("attachment_types is empty; set attachment_max_count = 0 instead")
    if not 0 <= settings.attachment_max_concurrent <= ATTACHMENT_MAX_CONCURRENT_CEILING:
        raise SettingsError(
            "attachment_max_concurrent must be from 0 (automatic) to "
            f"{ATTACHMENT_MAX_CONCURRENT_CEILING}"
        )
    if not 0 <= settings.attachment_wait_seconds <= ATTACHMENT_WAIT_SECONDS_CEILING:
        raise SettingsError(
            f"attachment_wait_seconds must be from 0 to {ATTACHMENT_WAIT_SECONDS_CEILING}"
        )


def _validate_mail(settings: Settings) -> None:
    if not 1 <= settings.smtp_port <= 65535:
        raise SettingsError("smtp_port must be from 1 to 65535")
    if settings.smtp_host and "@" not in settings.smtp_from:
        raise SettingsError("smtp_from must be set to an e-mail address when smtp_host is set")
    if any(c.isspace() or c in "<>" for c in settings.smtp_from):
        raise SettingsError("smtp_from must be a bare e-mail address (no name, no spaces)")
    if settings.smtp_password and not settings.smtp_username:
        raise SettingsError("smtp_password is set but smtp_username is not")
    url = settings.portal_url
    if url and (
        not url.startswith(("https://", "http://"))
        or len(url) > 200
        or any(c.isspace() for c in url)
        or "?" in url
        or "#" in url
    ):
        raise SettingsError(
            "portal_url must be the portal's base address, e.g. https://ombuds.example.org"
            " (http or https, at most 200 characters, no spaces, query or fragment)"
        )
