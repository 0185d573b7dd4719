"""The guard of every page behind the staff log-in: the staff pages, the admin console (a child
of the staff blueprint) and the insights pages register it (deny by default).

The guard admits a request only with a live session whose stage the view accepts: a view takes
finished log-ins (stage FULL) unless it names other stages with ``@stages``. A session between
its steps reaches only its own page and log-out; anything else is answered as if there were no
session (GET: sent to its own page; POST: 401). A view that does not name its permission with
``@requires`` answers 403. The log-in pages themselves are in ``portal.web.staff.auth``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.models import SessionStage, StaffUser
from portal.services.accounts import sessions as staff_sessions
from portal.services.accounts.permissions import Permission, can
from portal.services.accounts.sessions import ActiveSession, SessionInvalid
from portal.web import state

COOKIE = "portal_staff"
PATH = "/staff"
#: The management insights pages (/insights/) sit behind the same log-in. A cookie has one path,
#: so the session cookie is set twice, for each path, and never for "/": reporter pages must
#: never receive a staff cookie.
PATHS = (PATH, "/insights")
PUBLIC_ENDPOINTS = frozenset({"staff.login"})

#: The one page each unfinished stage may reach (besides log-out).
STAGE_PAGES = {
    SessionStage.TOTP: "staff.login_code",
    SessionStage.ENROL: "staff.login_enrol",
    SessionStage.NEW_PASSWORD: "staff.password",
}

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def requires(permission: Permission) -> Callable[[F], F]:
    def mark(view: F) -> F:
        view.required_permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def stages(*allowed: SessionStage) -> Callable[[F], F]:
    """The session stages a view accepts (default: FULL only)."""

    def mark(view: F) -> F:
        view.session_stages = frozenset(allowed)  # type: ignore[attr-defined]
        return view

    return mark


def current_staff() -> StaffUser:
    user: StaffUser = g.staff
    return user


def current_private_key() -> bytes:
    key: bytes = g.staff_key
    return key


def current_session() -> ActiveSession:
    active: ActiveSession = g.staff_session
    return active


def _unauthenticated() -> ResponseReturnValue:
    if request.method == "GET":
        return redirect(url_for("staff.login"))
    # A reply or note, or a reason for reopening a case or for a legal hold, typed while the
    # session ended.
    unsent = (
        request.form.get("text", "")
        or request.form.get("reason", "")
        or request.form.get("hold_reason", "")
    )
    return render_template("errors/error.html", code=401, reason="login", unsent=unsent), 401


def guard() -> ResponseReturnValue | None:
    """The guard of every page behind the staff log-in (a ``before_request`` of the staff and
    the insights blueprints)."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    cookie = request.cookies.get(COOKIE)
    active = None
    if cookie:
        session = state.db()
        try:
            active = staff_sessions.resume(session, state.settings(), cookie, state.now())
        except SessionInvalid:
            active = None
        session.commit()  # keeps last_seen_at, or the deletion of an expired session
    if active is None:
        return _unauthenticated()
    g.staff = active.user
    g.staff_key = active.private_key
    g.staff_session = active
    g.staff_stage = active.stage
    view = current_app.view_functions.get(endpoint)
    allowed = getattr(view, "session_stages", frozenset({SessionStage.FULL}))
    if active.stage not in allowed:
        if active.stage == SessionStage.FULL:
            return redirect(home_for(active.user))  # a finished log-in at a log-in step page
        if request.method == "GET":
            return redirect(url_for(STAGE_PAGES[active.stage]))
        unsent = request.form.get("text", "")
        return render_template("errors/error.html", code=401, reason="stage", unsent=unsent), 401
    permission = getattr(view, "required_permission", None)
    if permission is None or not can(active.user, permission):
        return render_template("errors/error.html", code=403, reason=None), 403
    return None


def home_for(user: StaffUser) -> str:
    """Where a finished log-in lands: the first of the case list, insights, one's account."""
    if can(user, Permission.CASES_LIST):
        return url_for("staff.cases")
    if can(user, Permission.INSIGHTS_READ):
        return url_for("insights.overview")
    return url_for("staff.account")
