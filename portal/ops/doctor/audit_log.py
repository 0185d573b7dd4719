"""What the audit log tells: the newest backup, the head against its seal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from portal.db import AUDIT_KEY
from portal.instance import SecretsMissing, load_secrets
from portal.models import AuditHead
from portal.ops.backup import make
from portal.ops.doctor.core import CheckResult, _fail, _ok, _skip, _warn
from portal.services.audit import chain as audit


def check_backup(session: Session, now: dt.datetime, max_days: int) -> CheckResult:
    """The age of the last ``portal backup`` (its audit event)."""
    name = "backup"
    last = make.last_backup(session)
    fix = (
        f"run `portal backup` (and schedule it at least every {max_days} days), keeping the"
        " instance secrets with the copy"
    )
    if last is None:
        return _warn(name, "no backup is recorded in the audit log", fix)
    age = now - last
    when = last.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if age > dt.timedelta(days=max_days):
        return _warn(
            name, f"the last recorded backup is {age.days} days old ({when}), over {max_days}", fix
        )
    return _ok(name, f"last backup {when}")


def check_audit_head(session: Session, instance_path: Path) -> CheckResult:
    """The audit log's head against its seal (an HMAC under the audit key, which is not in the
    database): rows cut from the tail, or a head rewritten without the key, no longer match."""
    name = "audit-head"
    try:
        key = load_secrets(instance_path).audit_key
    except (SecretsMissing, OSError, ValueError):
        return _skip(name, "the audit key cannot be read (see the secrets check)")
    session.info[AUDIT_KEY] = key
    try:
        anchor = audit.current_anchor(session)
    except audit.HeadUnsealed:
        head = session.get(AuditHead, audit.HEAD_ID)
        if head is not None and head.mac is None:
            return _warn(
                name,
                "the audit head is not sealed yet (a database from before the seal)",
                "nothing to do: the next audit event seals it (`audit.head_sealed`)",
            )
        return _fail(
            name,
            "the audit head does not match its seal: events may have been cut from the log, or"
            " the head was rewritten without the audit key",
            "run `portal audit verify --anchor` with the anchor of the latest admins' digest or"
            " backup, and restore from the newest backup that verifies",
        )
    finally:
        session.info.pop(AUDIT_KEY, None)
    return _ok(name, f"the audit head matches its seal (event {anchor.seq})")
