"""Which language a page is shown in, and the switch that changes it.

The order: the visitor's explicit choice, kept in the signed form cookie (Flask's session,
``portal_form``), else the browser's Accept-Language, else the ``default_locale`` setting. The
choice is never written to the database and never logged; "Leave this site quickly" forgets it
with the rest of the cookie.

The switch is a plain link (``GET /language/<locale>?next=<path>``), so it works without
JavaScript and needs no form token on every page. Changing a visitor's language is the whole
effect, so a forged link can do no harm. ``next`` must be a path on this site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from portal.i18n import labels as i18n
from portal.i18n import locales
from portal.web import state

SESSION_KEY = "lang"

bp = Blueprint("language", __name__)


def select_locale() -> str:
    """Flask-Babel's locale selector. Outside a request (commands, mails): the default."""
    default = state.settings().default_locale
    if not has_request_context():
        return default
    chosen = session.get(SESSION_KEY)
    if chosen in locales.LOCALES:
        return str(chosen)
    browser = [tag for tag, _quality in request.accept_languages]
    return locales.from_accept_language(browser) or default


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the front page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 or c == "\\" for c in target):
        return "/"
    return target


@bp.route("/language/<locale>")
def switch(locale: str) -> ResponseReturnValue:
    if locale not in locales.LOCALES:
        abort(404)
    session[SESSION_KEY] = locale
    response = redirect(safe_next(request.args.get("next")), code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def current() -> str:
    """The locale code of this page ("en" or "zh_CN"; Babel itself calls the latter
    "zh_Hans_CN", the script being implied)."""
    value = get_locale()
    return i18n.match_locale(str(value) if value else None) or state.settings().default_locale


def switch_links(to_start: bool = False) -> list[tuple[str, str, str]]:
    """(address, name in itself, BCP 47 tag) of every language but the current one. Each
    address brings the visitor back to this page, in the other language; error pages pass
    ``to_start`` so that a refused address (a case handle, say) is not repeated in them."""
    here = current()
    back = "/" if to_start else request.full_path.rstrip("?")
    return [
        (url_for("language.switch", locale=code, next=back), locales.NAMES[code], tag)
        for code, tag in locales.HTML_LANG.items()
        if code != here
    ]


def html_lang() -> str:
    return locales.HTML_LANG.get(current(), "en")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        language_links=switch_links, html_lang=html_lang, current_locale=current
    )
    # ``{{ category|shown }}``, ``{{ queue|shown("name") }}``: a taxonomy text in the page's
    # language, English where it has no translation (portal.i18n.labels.shown).
    app.jinja_env.filters["shown"] = i18n.shown
