"""Management insights (/insights/): aggregate figures only, from stored releases.

Behind the staff log-in: the same session cookie (also set for this path), the same guard with
its deny-by-default and log-in stages, and every view needs ``Permission.INSIGHTS_READ``.
"""

from portal.web.insights import views  # noqa: F401  # registers the routes on bp
from portal.web.insights.blueprint import bp as bp
