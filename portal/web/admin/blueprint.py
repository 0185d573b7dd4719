"""The admin blueprint and its menu, apart from the package so the views can import it without
importing the package that imports them."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: (endpoint, label) of each part of the console, in menu order; each module adds its own when
#: it is imported (portal/web/admin/__init__.py imports them in that order).
SECTIONS: list[tuple[str, object]] = []


def section(endpoint: str, label: object) -> None:
    SECTIONS.append((endpoint, label))
