"""Reporter pages: no account, no JavaScript needed, nothing identifying stored or logged."""

from flask import Blueprint

bp = Blueprint("reporter", __name__)

from portal.web.reporter import views  # noqa: E402,F401
