"""The one place that reads the client address, for rate limits only.

The address is turned into an HMAC under a rotating key that never reaches the database or a log
(DESIGN.md invariant 1); the raw value is dropped at once.
"""

from __future__ import annotations

from flask import request

from portal.services.reporting.throttle import Throttle, client_key


def throttle_key(throttle: Throttle) -> str:
    address = request.remote_addr or "unknown"  # invariant-ok: HMAC-keyed for a rate limit only
    return client_key(throttle, address)
