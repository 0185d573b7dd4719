"""The plaintext shapes of a case's encrypted items, and their (de)serialisation.

Every item is JSON encrypted under the case key with associated data naming the case, the item
kind and (for messages) the message id, so ciphertext cannot be swapped between rows.
"""

from __future__ import annotations

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
    ad = crypto.case_item_ad(case_id, MESSAGE, message_id)
    return crypto.encrypt(case_key, _dump(body), ad)


def open_message(case_key: bytes, case_id: str, message_id: str, blob: bytes) -> MessageBody:
    ad = crypto.case_item_ad(case_id, MESSAGE, message_id)
    data = json.loads(crypto.decrypt(case_key, blob, ad))
    return MessageBody(int(data["seq"]), data["text"])
