"""The staff blueprint, apart from the package so the views can import it without importing the
package that imports them."""

from flask import Blueprint

from portal.web.auth import guard

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.before_request(guard)
