"""The console's front page: links to each part the admin may use."""

from __future__ import annotations

from flask import current_app, g, render_template
from flask.typing import ResponseReturnValue

from portal.services.accounts.permissions import Permission, can
from portal.web.admin.blueprint import SECTIONS, bp
from portal.web.auth import requires
from portal.web.staff.forms import ActionForm


def _visible_sections() -> list[tuple[str, object]]:
    """The parts of the console the current user may open (each view names its permission)."""
    user = g.get("staff")
    visible = []
    for endpoint, label in SECTIONS:
        view = current_app.view_functions.get(endpoint)
        permission = getattr(view, "required_permission", None)
        if permission is not None and can(user, permission):
            visible.append((endpoint, label))
    return visible


@bp.app_context_processor
def _sections() -> dict[str, object]:
    return {"admin_sections": _visible_sections}


@bp.get("/")
@requires(Permission.ADMIN_CONFIG)
def index() -> ResponseReturnValue:
    return render_template("admin/index.html", logout_form=ActionForm())
