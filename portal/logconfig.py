"""Logging that cannot leak a reporter's metadata.

The application never formats client addresses, user agents or referrers. The only request log
that could print them is Werkzeug's development server's; ``StripClientAddress`` replaces the
address in those records with ``-`` (gunicorn's access log is off; see ``portal serve``).
"""

from __future__ import annotations

import logging

_WERKZEUG_REQUEST_FORMAT = "%s - - [%s] %s"


class StripClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.msg, str)
            and record.msg.startswith(_WERKZEUG_REQUEST_FORMAT)
            and isinstance(record.args, tuple)
            and record.args
        ):
            record.args = ("-", *record.args[1:])
        return True


def configure(level: str) -> None:
    portal_logger = logging.getLogger("portal")
    portal_logger.setLevel(level.upper())
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, StripClientAddress) for f in werkzeug.filters):
        werkzeug.addFilter(StripClientAddress())
