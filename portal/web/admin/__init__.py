"""The admin console (/staff/admin/...): staff accounts, queues, categories, routing rules,
workflow, policy, taxonomy import and export, and the audit log. Admins never see case content
here; every view names its permission with ``@requires`` like every staff view."""

# First: the views import portal.web.staff, whose package registers this blueprint (bp) under
# its own, so bp must be here before they are imported.
from portal.web.admin.blueprint import SECTIONS as SECTIONS  # noqa: I001
from portal.web.admin.blueprint import bp as bp
from portal.web.admin import views  # noqa: F401

# The console's parts, in menu order.
from portal.web.admin import staff_views  # noqa: F401
from portal.web.admin import config_views  # noqa: F401
from portal.web.admin import rule_test  # noqa: F401
from portal.web.admin import taxonomy_views  # noqa: F401
from portal.web.admin import audit_views  # noqa: F401
from portal.web.admin import reset  # noqa: F401
