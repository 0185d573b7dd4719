"""Management insights (/insights/): aggregate figures only, from stored releases.

Behind the staff log-in: the same session cookie (also set for this path), the same guard with
its deny-by-default and log-in stages, and every view needs ``Permission.INSIGHTS_READ``.
"""

from flask import Blueprint

from portal.web.auth import guard

bp = Blueprint("insights", __name__, url_prefix="/insights")
bp.before_request(guard)

from portal.web.insights import views  # noqa: E402,F401
