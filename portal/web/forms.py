"""Form pieces shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from werkzeug.datastructures import CombinedMultiDict
from wtforms import SelectMultipleField, widgets

from portal.errors import InvalidInput
from portal.web.labels import translated


class CheckboxListField(SelectMultipleField):  # type: ignore[misc]
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class PortalForm(FlaskForm):  # type: ignore[misc]
    """A form that knows whether its CSRF token failed, and takes domain errors onto fields."""

    class Meta(FlaskForm.Meta):  # type: ignore[misc]
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            # Flask-WTF would read a JSON body as the form (``ImmutableMultiDict(get_json())``),
            # which raises on ``1``, ``"x"`` or a broken body: a 500 for a client's mistake.
            # Our forms are HTML forms: only the form body (and its files) count; any other
            # body reads as no form, which the validators then refuse with field errors.
            if formdata is _Auto:
                if request.method not in {"POST", "PUT", "PATCH", "DELETE"}:
                    return None
                if request.files:
                    return CombinedMultiDict((request.files, request.form))
                return request.form if request.form else None
            return formdata

    @property
    def expired(self) -> bool:
        return bool(g.get("csrf_failed")) or bool(self.meta.csrf and self.csrf_token.errors)

    def field_error(self, error: InvalidInput) -> None:
        field: Any = getattr(self, error.field, None)
        message = translated(error.message)
        if field is None:
            self.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]
