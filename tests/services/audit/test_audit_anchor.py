"""The sealed head of the audit chain and its published anchors (issue 13, finding 11).

With the database alone, an attacker can delete rows and rewrite any column, but cannot compute
an HMAC under the audit key, which lives in the instance secrets. So: cutting the tail is caught
by the sealed head; moving the head back without the key is caught by its seal; putting back an
older copy of rows and head together is caught only by an anchor kept outside the database, which
the portal publishes in the admins' digest and in every backup's manifest.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from portal.instance import InstanceSecrets
from portal.models import AuditEvent, AuditHead, Role, StaffUser
from portal.ops.backup import make, restore
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.notifications import notify
from portal.services.notifications.mail import Delivery, Mailer
from tests.support.factories import DatabaseUnderTest, Portal

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PASSPHRASE = "amber kettle quietly orbits the lighthouse"


def _olga(db: Session) -> StaffUser:
    return db.scalars(select(StaffUser).where(StaffUser.email == "olga@example.org")).one()


def _chain(portal: Portal, db: Session, n: int = 8, start: dt.datetime = T0) -> None:
    exists = db.scalar(select(StaffUser.id).where(StaffUser.email == "olga@example.org"))
    olga = _olga(db) if exists is not None else portal.staff("olga")
    for i in range(n):
        audit.record(db, Action.LOGIN, start + dt.timedelta(minutes=i), actor=olga)
    db.commit()


def _head(db: Session) -> AuditHead:
    db.expire_all()
    return db.get_one(AuditHead, audit.HEAD_ID)


def _cut_tail(db: Session, n: int) -> int:
    last = _head(db).seq
    db.execute(delete(AuditEvent).where(AuditEvent.seq > last - n))
    db.commit()
    return last - n


@pytest.mark.parametrize("n", [1, 3])
def test_rows_cut_from_the_tail_with_sql_are_reported_truncated(
    portal: Portal, db: Session, n: int
) -> None:
    _chain(portal, db)
    remaining = _cut_tail(db, n)
    result = audit.verify(db)
    assert not result.ok
    assert result.truncated
    assert result.broken_seq == remaining + 1
    assert "truncated" in result.reason


def test_a_head_rewritten_without_the_key_after_a_cut_fails(portal: Portal, db: Session) -> None:
    """The attack that passed before: cut the tail, move the head onto the last row left."""
    _chain(portal, db)
    remaining = _cut_tail(db, 3)
    last = db.get_one(AuditEvent, remaining)
    db.execute(update(AuditHead).values(seq=last.seq, hash=last.hash))
    db.commit()
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok and result.truncated, result
    # A seal made with any other key does not help either.
    from portal import crypto
    from portal.services.audit.chain import _head_fields

    head = _head(db)
    head.mac = crypto.audit_head_mac(b"k" * 32, _head_fields(head))
    db.commit()
    assert not audit.verify(db).ok


def test_the_next_append_does_not_launder_a_cut(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    remaining = _cut_tail(db, 2)
    last = db.get_one(AuditEvent, remaining)
    db.execute(update(AuditHead).values(seq=last.seq, hash=last.hash))
    db.commit()
    db.expire_all()
    # Staff keep working: the portal appends, and says in the chain that the head was wrong.
    audit.record(db, Action.LOGOUT, T0 + dt.timedelta(hours=1), actor=_olga(db))
    db.commit()
    mismatches = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.AUDIT_HEAD_MISMATCH.value)
    ).all()
    assert [audit.detail_of(e) for e in mismatches] == [{"head_seq": remaining}]
    result = audit.verify(db)
    assert not result.ok and result.truncated
    assert result.broken_seq == mismatches[0].seq


def test_every_append_moves_the_sealed_head_in_its_transaction(portal: Portal, db: Session) -> None:
    _chain(portal, db, n=2)
    before = _head(db).mac
    audit.record(db, Action.LOGOUT, T0 + dt.timedelta(hours=1), actor=_olga(db))
    db.rollback()  # the action was not committed: neither is its event nor the head's seal
    assert _head(db).mac == before
    audit.record(db, Action.LOGOUT, T0 + dt.timedelta(hours=1), actor=_olga(db))
    db.commit()
    assert _head(db).mac != before
    assert audit.verify(db).ok


def _snapshot(db: Session) -> tuple[list[dict[str, object]], dict[str, object]]:
    """What a thief keeps of an older copy: every row of the log and the head, as stored."""
    db.expire_all()
    columns = [c.key for c in AuditEvent.__table__.columns]
    rows = [{c: getattr(e, c) for c in columns} for e in db.scalars(select(AuditEvent))]
    head = _head(db)
    return rows, {
        "seq": head.seq,
        "hash": head.hash,
        "reporter_days_through": head.reporter_days_through,
        "mac": head.mac,
    }


def _put_back(db: Session, copy: tuple[list[dict[str, object]], dict[str, object]]) -> None:
    rows, head = copy
    db.execute(delete(AuditEvent))
    db.execute(cast(Table, AuditEvent.__table__).insert(), rows)
    db.execute(update(AuditHead).values(**head))
    db.commit()
    db.expire_all()


def test_an_older_copy_put_back_fails_against_the_latest_anchor(
    portal: Portal, db: Session
) -> None:
    _chain(portal, db, n=4)
    older = _snapshot(db)
    _chain(portal, db, n=5, start=T0 + dt.timedelta(days=1))
    latest = audit.current_anchor(db)
    assert audit.verify(db, latest).ok
    _put_back(db, older)
    # The database alone cannot tell: rows and sealed head are a genuine older state.
    assert audit.verify(db).ok
    result = audit.verify(db, latest)
    assert not result.ok and result.truncated, result
    assert result.broken_seq == latest.seq
    # An anchor older than the copy still verifies: the copy is a true prefix.
    assert audit.verify(db, audit.parse_anchor(audit.current_anchor(db).text())).ok


def test_a_forged_or_altered_anchor_is_refused(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    anchor = audit.current_anchor(db)
    assert anchor.day == (T0 + dt.timedelta(minutes=7)).date()
    assert audit.parse_anchor(anchor.text()) == anchor
    # A later count with the same hash, or another day: the MAC no longer matches.
    for forged in (anchor._replace(seq=anchor.seq + 5), anchor._replace(day=dt.date(2030, 1, 1))):
        result = audit.verify(db, forged)
        assert not result.ok and "audit key" in result.reason
    with pytest.raises(audit.AnchorMalformed):
        audit.parse_anchor(anchor.text() + "00")


def test_an_upgraded_head_without_a_seal_is_sealed_by_the_next_event(
    portal: Portal, db: Session
) -> None:
    _chain(portal, db, n=3)
    db.execute(update(AuditHead).values(mac=None))
    db.commit()
    db.expire_all()
    unsealed = audit.verify(db)
    assert not unsealed.ok and not unsealed.truncated and "not sealed" in unsealed.reason
    with pytest.raises(audit.HeadUnsealed):
        audit.current_anchor(db)
    audit.record(db, Action.LOGIN, T0 + dt.timedelta(hours=2), actor=_olga(db))
    db.commit()
    sealed = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.AUDIT_HEAD_SEALED.value)
    ).all()
    assert len(sealed) == 1
    assert audit.verify(db).ok


def test_cli_verify_says_truncated_and_takes_an_anchor(
    portal: Portal, db: Session, app: Flask
) -> None:
    _chain(portal, db)
    runner = app.test_cli_runner()
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    anchor = intact.output.split("anchor (note it down elsewhere): ")[1].strip()
    assert anchor == audit.current_anchor(db).text()
    assert runner.invoke(args=["audit", "verify", "--anchor", anchor]).exit_code == 0
    older = _snapshot(db)
    _chain(portal, db, n=2, start=T0 + dt.timedelta(days=1))
    latest = runner.invoke(args=["audit", "verify"]).output.split("elsewhere): ")[1].strip()
    _put_back(db, older)
    rolled = runner.invoke(args=["audit", "verify", "--anchor", latest])
    assert rolled.exit_code == 1
    assert "audit chain TRUNCATED" in rolled.output
    assert "older copy of the database" in rolled.output
    _cut_tail(db, 2)
    cut = runner.invoke(args=["audit", "verify"])
    assert cut.exit_code == 1 and "TRUNCATED" in cut.output
    bad = runner.invoke(args=["audit", "verify", "--anchor", "1:zz"])
    assert bad.exit_code == 2 and "SEQ:HASH:DAY:MAC" in bad.output


# --- publishing: the admins' digest and every backup ---------------------------------------------


class RecordingMailer(Mailer):
    description = "recorded"

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def deliver(self, messages: Sequence[Any]) -> list[Delivery]:
        self.messages.extend(messages)
        return [Delivery(m) for m in messages]


def test_the_admins_digest_carries_the_anchor_once_a_day(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    portal.staff("ada", roles=(Role.ADMIN,), queues=())
    portal.staff("bert", roles=(Role.ADMIN,), queues=())
    db.expire_all()
    expected = audit.current_anchor(db)
    mailer = RecordingMailer()
    now = T0 + dt.timedelta(days=1)
    run = notify.send_audit_digest(db, portal.settings, mailer, now)
    db.commit()
    assert run.due and len(run.sent) == 2
    assert sorted(str(m["To"]) for m in mailer.messages) == [
        "ada@example.org",
        "bert@example.org",
    ]
    for message in mailer.messages:
        body = message.get_content()
        assert expected.text() in body
        assert "portal audit verify --anchor" in body
    # The anchor verifies; the digest's own event came after it.
    assert audit.verify(db, expected).ok
    [event] = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.AUDIT_DIGEST_SENT.value)
    ).all()
    assert audit.detail_of(event) == {"recipients": 2, "failed": 0, "anchor_seq": expected.seq}
    # Once per UTC day.
    again = notify.send_audit_digest(db, portal.settings, mailer, now + dt.timedelta(hours=3))
    assert not again.due and len(mailer.messages) == 2


def test_the_digest_warns_instead_of_anchoring_a_cut_log(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    portal.staff("ada", roles=(Role.ADMIN,), queues=())
    remaining = _cut_tail(db, 2)
    last = db.get_one(AuditEvent, remaining)
    db.execute(update(AuditHead).values(seq=last.seq, hash=last.hash))
    db.commit()
    mailer = RecordingMailer()
    notify.send_audit_digest(db, portal.settings, mailer, T0 + dt.timedelta(days=1))
    [message] = mailer.messages
    assert "does not verify" in str(message["Subject"])
    assert last.hash.hex() not in message.get_content()


def test_roll_up_command_mails_the_digest(portal: Portal, db: Session, app: Flask) -> None:
    _chain(portal, db)
    portal.staff("ada", roles=(Role.ADMIN,), queues=())
    result = app.test_cli_runner().invoke(args=["audit", "roll-up"])
    assert result.exit_code == 0, result.output
    assert "admins' anchor digest: 1 sent" in result.output
    db.expire_all()
    assert "Audit log anchor" in result.output  # the print mailer shows the message
    again = app.test_cli_runner().invoke(args=["audit", "roll-up"])
    assert "went out today already" in again.output


def test_every_backup_manifest_holds_the_anchor(
    portal: Portal,
    db: Session,
    database: DatabaseUnderTest,
    secrets: InstanceSecrets,
    tmp_path: Path,
) -> None:
    if database.dialect == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    _chain(portal, db)
    expected = audit.current_anchor(db)
    path = tmp_path / "portal.pbk"
    made = make.create_backup(
        db, secrets, path, PASSPHRASE, portal.settings.kdf_cost, T0 + dt.timedelta(days=1)
    )
    db.commit()
    assert made.audit_anchor == expected.text()
    manifest = restore.read_manifest(path, PASSPHRASE)
    assert manifest["audit_anchor"] == expected.text()
    # A later rollback of the live database to before the backup fails against it.
    older = _snapshot(db)
    _chain(portal, db, n=2, start=T0 + dt.timedelta(days=2))
    second = tmp_path / "second.pbk"
    later = make.create_backup(
        db, secrets, second, PASSPHRASE, portal.settings.kdf_cost, T0 + dt.timedelta(days=3)
    )
    db.commit()
    _put_back(db, older)
    assert later.audit_anchor is not None
    result = audit.verify(db, audit.parse_anchor(later.audit_anchor))
    assert not result.ok and result.truncated
