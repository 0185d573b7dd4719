"""Form pieces shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, widgets

from portal.services.errors import InvalidInput
from portal.web.labels import translated


class CheckboxListField(SelectMultipleField):  # type: ignore[misc]
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class PortalForm(FlaskForm):  # type: ignore[misc]
    """A form that knows whether its CSRF token failed, and takes domain errors onto fields."""

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
