"""The admin console (/staff/admin/...): staff accounts, queues, categories, routing rules,
workflow, policy, taxonomy import and export, and the audit log. Admins never see case content
here; every view names its permission with ``@requires`` like every staff view."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: (endpoint, label) of each part of the console, in menu order; each module adds its own.
SECTIONS: list[tuple[str, object]] = []


def section(endpoint: str, label: object) -> None:
    SECTIONS.append((endpoint, label))


from portal.web.admin import views  # noqa: E402,F401,I001

# The console's parts, in menu order.
from portal.web.admin import staff_views  # noqa: E402,F401
from portal.web.admin import config_views  # noqa: E402,F401
from portal.web.admin import rule_test  # noqa: E402,F401
from portal.web.admin import taxonomy_views  # noqa: E402,F401
from portal.web.admin import audit_views  # noqa: E402,F401
from portal.web.admin import reset  # noqa: E402,F401
