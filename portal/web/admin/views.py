"""The console's front page: links to each part the admin may use."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from portal.services.permissions import Permission
from portal.web.admin import SECTIONS, bp
from portal.web.staff.auth import requires
from portal.web.staff.forms import ActionForm


@bp.app_context_processor
def _sections() -> dict[str, object]:
    return {"admin_sections": lambda: list(SECTIONS)}


@bp.get("/")
@requires(Permission.ADMIN_CONFIG)
def index() -> ResponseReturnValue:
    return render_template("admin/index.html", logout_form=ActionForm())
