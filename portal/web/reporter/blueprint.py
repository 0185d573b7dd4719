"""The reporter blueprint, apart from the package so the views can import it without importing
the package that imports them."""

from flask import Blueprint

bp = Blueprint("reporter", __name__)
