"""Staff pages: deny by default. Every view must name the permission it needs with
``@requires``; a view without one, other than those in ``PUBLIC_ENDPOINTS``, answers 403."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")

from portal.web.staff import auth, views  # noqa: E402,F401
