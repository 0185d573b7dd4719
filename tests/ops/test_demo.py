"""`portal demo`'s seeding lives in portal/ops/demo.py (operator tooling, issue 14): the click
command only calls ``demo.load``, prints what it returns and commits."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal import crypto
from portal.app import create_app
from portal.cli import main as cli_main
from portal.instance import InstanceSecrets
from portal.models import Case, Role, StaffUser
from portal.ops import demo, demo_history
from portal.services.accounts import accounts as staff
from portal.services.accounts import second_factor
from portal.settings import PROJECT_ROOT, Argon2Cost, Settings
from tests.support.factories import cheap_settings


def _initialised(tmp_path: Path) -> tuple[Flask, Settings]:
    settings = cheap_settings(tmp_path / "instance")
    result = create_app(settings).test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    return create_app(settings), settings  # a new process reads the secrets init created


def test_the_cli_command_calls_ops_and_holds_no_demo_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = _initialised(tmp_path)
    calls: list[tuple[Settings, InstanceSecrets]] = []

    def fake_load(
        session: object, given: Settings, secrets: InstanceSecrets, now: dt.datetime
    ) -> demo.Loaded:
        calls.append((given, secrets))
        return demo.Loaded(receipts=[("feedback", "RCPT-FAKE")], history=3)

    monkeypatch.setattr(demo, "load", fake_load)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert calls == [(app.extensions["portal"].settings, app.extensions["portal"].secrets)]
    assert "Loaded 3 made-up concerns" in result.output
    assert "RCPT-FAKE  (feedback)" in result.output
    for name in ("DEMO_STAFF", "DEMO_CASES", "DEMO_PASSWORD", "DEMO_TOTP_SECRET", "DEMO_DOMAIN"):
        assert not hasattr(cli_main, name), name


@pytest.mark.parametrize("module", ["demo.py", "demo_history.py"])
def test_the_demo_seeding_needs_neither_flask_nor_click(module: str) -> None:
    tree = ast.parse((PROJECT_ROOT / "portal" / "ops" / module).read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not imported & {"flask", "click"}, imported


def test_load_seeds_once_then_adds_nothing(tmp_path: Path) -> None:
    app, settings = _initialised(tmp_path)
    state = app.extensions["portal"]
    assert state.secrets is not None
    now = dt.datetime.now(dt.UTC)
    with state.sessions() as session:
        first = demo.load(session, settings, state.secrets, now)
        session.commit()
    with state.sessions() as session:
        again = demo.load(session, settings, state.secrets, now)
    assert [category for category, _ in first.receipts] == [c["category"] for c in demo.DEMO_CASES]
    assert first.history > 100
    assert again == demo.Loaded()


#: Costs no other settings use, so each computation at them is the demo's (full cost in
#: production); the made-up history uses ``demo_history.CHEAP``.
FULL = Argon2Cost(time_cost=2, memory_kib=16, parallelism=1)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Argon2Cost]:
    """The cost of every Argon2 computation from now on (derivations, hashes, verifications)."""
    seen: list[Argon2Cost] = []
    for name, cost_at in (("_argon2_key", 2), ("hash_password", 1), ("verify_password", 2)):
        original = getattr(crypto, name)

        def counted(*args: Any, _original: Any = original, _at: int = cost_at) -> Any:
            seen.append(args[_at])
            return _original(*args)

        monkeypatch.setattr(crypto, name, counted)
    return seen


def test_the_demo_accounts_keep_the_full_argon2_cost_and_it_is_paid_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: `portal demo` ran 23 Argon2 computations at the portal's full cost (two per
    account, one per printed receipt, two per log-in to work on a case). The accounts someone
    logs into still have the full cost; the hash and wrapping key of their published password
    are computed once, Alice's key is not derived again, and only the printed receipts pay the
    full cost for their cases (docs/security-model.md)."""
    settings = cheap_settings(tmp_path / "instance").with_argon2(FULL)
    assert demo_history.CHEAP != FULL
    create_app(settings).test_cli_runner().invoke(args=["init"])
    app = create_app(settings)
    seen = _counting(monkeypatch)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert seen.count(FULL) <= len(demo.DEMO_CASES) + 2, seen.count(FULL)
    assert set(seen) == {FULL, demo_history.CHEAP}
    monkeypatch.undo()

    with app.extensions["portal"].sessions() as session:
        accounts = list(session.scalars(select(StaffUser)))
        assert len(accounts) == len(demo.DEMO_STAFF)
        for account in accounts:
            assert account.password_kdf == FULL.encode()
            assert account.password_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")
            user, key = staff.authenticate(session, settings, account.email, demo.DEMO_PASSWORD)
            assert second_factor.open_totp_secret(key, user.totp_sealed or b"")
        by_cost = sorted(session.scalars(select(Case.reporter_kdf)))
        # Accounts an earlier run made: Alice logs in, the keys of this run do not open hers.
        other_run = crypto.SharedPasswordKeys(demo.DEMO_PASSWORD, FULL, FULL)
        by_email = {account.email: account for account in accounts}
        alice, key = demo._alice(session, settings, by_email, other_run)
        assert second_factor.open_totp_secret(key, alice.totp_sealed or b"")
        with pytest.raises(ValueError, match="another password"):
            staff.create_staff(
                session,
                settings,
                email="eve@demo.invalid",
                display_name="Eve",
                roles=[Role.ADMIN],
                queue_slugs=[],
                password="not the demo password at all",
                now=dt.datetime.now(dt.UTC),
                shared_password=other_run,
            )
    assert by_cost.count(FULL.encode()) == len(demo.DEMO_CASES)
    assert set(by_cost) == {FULL.encode(), demo_history.CHEAP.encode()}
