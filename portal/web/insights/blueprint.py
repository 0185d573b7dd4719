"""The insights blueprint and its guard, apart from the package so the views can import it
without importing the package that imports them."""

from flask import Blueprint

from portal.web.auth import guard

bp = Blueprint("insights", __name__, url_prefix="/insights")
bp.before_request(guard)
