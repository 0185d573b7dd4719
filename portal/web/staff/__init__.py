"""Staff pages: deny by default. Every view must name the permission it needs with
``@requires``; a view without one, other than those in ``PUBLIC_ENDPOINTS``, answers 403
(the guard is ``portal.web.auth``)."""

from portal.web.admin import bp as admin_bp
from portal.web.staff import access, account, auth, hold, views  # noqa: F401
from portal.web.staff.blueprint import bp as bp

# The admin console is a child of the staff blueprint (/staff/admin/...): the staff guard, the
# staff cookie (path /staff) and deny-by-default apply to it unchanged.
bp.register_blueprint(admin_bp)
