"""The insights JSON API (``/api/v1/``), for BI tools.

Authenticated by ``Authorization: Bearer <token>`` only: cookies are never read here, so a
logged-in browser gets nothing it did not ask for with a token. Read-only (GET only), so CSRF
does not apply. Every answer is JSON with ``Cache-Control: no-store``. Requests with a bad
token count against the client in the API throttle (an HMAC of the address, as for log-ins).
"""

from portal.web.api import views  # noqa: F401  # registers the routes on bp
from portal.web.api.blueprint import bp as bp
