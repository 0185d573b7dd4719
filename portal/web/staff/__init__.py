"""Staff pages: deny by default. Every view must name the permission it needs with
``@requires``; a view without one, other than those in ``PUBLIC_ENDPOINTS``, answers 403
(the guard is ``portal.web.auth``)."""

from flask import Blueprint

from portal.web.auth import guard

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.before_request(guard)

# The admin console is a child of the staff blueprint (/staff/admin/...): the staff guard, the
# staff cookie (path /staff) and deny-by-default apply to it unchanged.
from portal.web.admin import bp as admin_bp  # noqa: E402
from portal.web.staff import access, account, auth, hold, views  # noqa: E402,F401

bp.register_blueprint(admin_bp)
