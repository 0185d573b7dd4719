"""The plaintext shapes of a case's encrypted items, and their (de)serialisation.

Every item is JSON encrypted under the case key with associated data naming the case, the item
kind and (for messages) the message id, so ciphertext cannot be swapped between rows. A message
in the bound format (``MESSAGE_BOUND``) also binds every clear column that gives it meaning
(``MessageColumns``), and an internal note is under the case's staff-only key instead.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from portal import crypto

REPORT = "report"
CONTACT = "contact"
MESSAGE = "message"


@dataclass(frozen=True)
class Report:
    description: str
    happened: str  # "YYYY-MM" or "ongoing"
    excluded_staff_ids: tuple[int, ...]  # kept so that later grants can honour the exclusion


@dataclass(frozen=True)
class Contact:
    name: str
    details: str


@dataclass(frozen=True)
class MessageBody:
    seq: int  # place in the thread; inside the ciphertext so the database does not show it
    text: str


def _dump(value: Any) -> bytes:
    return json.dumps(asdict(value), ensure_ascii=False, separators=(",", ":")).encode()


def seal_report(case_key: bytes, case_id: str, report: Report) -> bytes:
    return crypto.encrypt(case_key, _dump(report), crypto.case_item_ad(case_id, REPORT))


def open_report(case_key: bytes, case_id: str, blob: bytes) -> Report:
    data = json.loads(crypto.decrypt(case_key, blob, crypto.case_item_ad(case_id, REPORT)))
    return Report(data["description"], data["happened"], tuple(data["excluded_staff_ids"]))


def seal_contact(case_key: bytes, case_id: str, contact: Contact) -> bytes:
    return crypto.encrypt(case_key, _dump(contact), crypto.case_item_ad(case_id, CONTACT))


def open_contact(case_key: bytes, case_id: str, blob: bytes) -> Contact:
    data = json.loads(crypto.decrypt(case_key, blob, crypto.case_item_ad(case_id, CONTACT)))
    return Contact(data["name"], data["details"])


def seal_message(case_key: bytes, case_id: str, message_id: str, body: MessageBody) -> bytes:
    """A message in the legacy format (``MESSAGE_LEGACY``): read until its case is migrated,
    and written only to build such rows in tests of the migration."""
    ad = crypto.case_item_ad(case_id, MESSAGE, message_id)
    return crypto.encrypt(case_key, _dump(body), ad)


def open_message(case_key: bytes, case_id: str, message_id: str, blob: bytes) -> MessageBody:
    ad = crypto.case_item_ad(case_id, MESSAGE, message_id)
    data = json.loads(crypto.decrypt(case_key, blob, ad))
    return MessageBody(int(data["seq"]), data["text"])


#: Formats of a message ciphertext (the ``ad_version`` column).
MESSAGE_LEGACY = 0  # bound to the case and the row only (written before issue 13, finding 8)
MESSAGE_BOUND = 1  # bound to every column of ``MessageColumns``


@dataclass(frozen=True)
class MessageColumns:
    """The clear columns of a message row that change what it means: who may see it, who wrote
    it and when. Bound to its ciphertext, so changing any of them makes the row refuse."""

    case_id: str
    message_id: str
    visibility: str
    author: str
    author_staff_id: int | None
    created_on: dt.date
    created_at: dt.datetime | None


def message_ad(columns: MessageColumns) -> bytes:
    return crypto.bound_ad(
        MESSAGE,
        MESSAGE_BOUND,
        [
            columns.case_id,
            columns.message_id,
            columns.visibility,
            columns.author,
            None if columns.author_staff_id is None else str(columns.author_staff_id),
            columns.created_on.isoformat(),
            (
                None
                if columns.created_at is None
                else columns.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
            ),
        ],
    )


def seal_bound_message(key: bytes, columns: MessageColumns, body: MessageBody) -> bytes:
    """A message in the bound format, under ``key``: the case key for a reporter-visible
    message, the staff-only key for an internal note."""
    return crypto.encrypt(key, _dump(body), message_ad(columns))


def open_bound_message(key: bytes, columns: MessageColumns, blob: bytes) -> MessageBody:
    data = json.loads(crypto.decrypt(key, blob, message_ad(columns)))
    return MessageBody(int(data["seq"]), data["text"])
