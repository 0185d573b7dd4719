"""Plain text: detection already checked it; it has no metadata of its own."""

from __future__ import annotations


def _clean_text(data: bytes) -> bytes:
    # Detection already decoded it as UTF-8 without control characters; text has no
    # metadata of its own, and its content is what the reporter chose to send.
    return data
