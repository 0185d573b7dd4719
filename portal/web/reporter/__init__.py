"""Reporter pages: no account, no JavaScript needed, nothing identifying stored or logged."""

from portal.web.reporter import views  # noqa: F401  # registers the routes on bp
from portal.web.reporter.blueprint import bp as bp
