"""Taxonomy as code in the console (Permission.ADMIN_CONFIG): download the configuration as the
TOML file ``portal load-taxonomy`` reads, and load such a file. An import is checked completely
before anything changes; a refused file changes nothing and the message says where it is wrong.
Both are recorded in the audit log."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.errors import TaxonomyError
from portal.services.accounts.permissions import Permission
from portal.services.configuration import export as taxonomy_export
from portal.web import state
from portal.web.admin.blueprint import bp, section
from portal.web.admin.forms import ImportForm
from portal.web.auth import current_staff, requires
from portal.web.staff.forms import ActionForm
from portal.web.transactions import unit_of_work

section("staff.admin.taxonomy", _l("Taxonomy file"))


def _render(form: ImportForm | None = None, code: int = 200) -> ResponseReturnValue:
    return render_template(
        "admin/taxonomy.html",
        form=form or ImportForm(formdata=None),
        export_form=ActionForm(formdata=None),
        max_bytes=taxonomy_export.IMPORT_MAX_BYTES,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.get("/taxonomy")
@requires(Permission.ADMIN_CONFIG)
def taxonomy() -> ResponseReturnValue:
    return _render()


@bp.post("/taxonomy/export")
@requires(Permission.ADMIN_CONFIG)
def taxonomy_download() -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    exported = taxonomy_export.export(
        session, actor=current_staff(), now=state.now(), via="console"
    )
    session.commit()
    return Response(
        exported.text,
        mimetype="application/toml",
        headers={"Content-Disposition": 'attachment; filename="taxonomy.toml"'},
    )


@bp.post("/taxonomy/import")
@requires(Permission.ADMIN_CONFIG)
def taxonomy_upload() -> ResponseReturnValue:
    form = ImportForm()
    if not form.validate_on_submit():
        return _render(form, 400)
    # One byte more than the limit is enough to know the file is too large.
    raw = request.files["file"].stream.read(taxonomy_export.IMPORT_MAX_BYTES + 1)
    try:
        with unit_of_work():  # nothing of a refused file is kept
            imported = taxonomy_export.import_taxonomy(
                state.db(), raw, actor=current_staff(), now=state.now(), via="console"
            )
    except TaxonomyError as error:
        form.file.errors = [_("Nothing was changed: %(problem)s.", problem=str(error))]
        return _render(form, 400)
    report = imported.report
    flash(
        _(
            "Taxonomy loaded: %(queues)d queues, %(categories)d categories, %(rules)d routing"
            " rules, %(statuses)d statuses, %(outcomes)d outcomes.",
            queues=report.queues,
            categories=report.categories,
            rules=report.rules,
            statuses=report.statuses,
            outcomes=report.outcomes,
        ),
        "success",
    )
    return redirect(url_for("staff.admin.taxonomy"))
