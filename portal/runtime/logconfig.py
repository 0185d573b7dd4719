"""Logging that cannot leak a reporter's metadata.

The application never formats client addresses, user agents or referrers. The only request log
that could print them is Werkzeug's development server's, whose lines start with the client
address (``203.0.113.9 - - [date] "GET / HTTP/1.1" 200 -``); ``StripClientAddress`` replaces
that address with ``-``. gunicorn's access log is off (see ``portal serve``).
"""

from __future__ import annotations

import logging
import re

# Werkzeug formats the address into the message itself; older releases passed it as an argument.
_PREFIX = re.compile(r"^\S+ - - \[")


class StripClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            if record.msg.startswith("%s - - [") and isinstance(record.args, tuple) and record.args:
                record.args = ("-", *record.args[1:])
            else:
                record.msg = _PREFIX.sub("- - - [", record.msg, count=1)
        return True


def configure(level: str) -> None:
    portal_logger = logging.getLogger("portal")
    portal_logger.setLevel(level.upper())
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, StripClientAddress) for f in werkzeug.filters):
        werkzeug.addFilter(StripClientAddress())
