"""The `portal` command: init, create-staff, load-taxonomy, demo; and the 503 before init."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sqlalchemy import func, select

from portal.app import create_app
from portal.instance import SECRET_FILES, load_secrets
from portal.models import Case, CaseAccess, Queue, StaffUser
from portal.ops import demo_history
from portal.ops.demo import DEMO_PASSWORD, DEMO_STAFF
from portal.services.insights import store as insights_store
from portal.services.reporting import followup
from tests.support.cli import cli_app, run_command


def test_before_init_every_page_says_so(tmp_path: Path) -> None:
    app, _ = cli_app(tmp_path)
    response = app.test_client().get("/")
    assert response.status_code == 503 and "portal init" in response.text


def test_init_creates_secrets_schema_and_taxonomy_and_warns(tmp_path: Path) -> None:
    app, settings = cli_app(tmp_path)
    code, output = run_command(app, "init")
    assert code == 0, output
    for name in SECRET_FILES:
        mode = (settings.instance_path / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert "5 queues" in output and "no ombudsperson" in output
    secrets_before = load_secrets(settings.instance_path)
    code, output = run_command(app, "init")  # idempotent, never replaces secrets
    assert code == 0 and "already loaded" in output
    assert load_secrets(settings.instance_path) == secrets_before
    with app.extensions["portal"].sessions() as session:
        fallback = session.scalars(select(Queue).where(Queue.is_fallback)).one()
        assert fallback.slug == "general"


def test_create_staff_prints_recovery_key_once_and_validates(tmp_path: Path) -> None:
    app, _ = cli_app(tmp_path)
    run_command(app, "init")
    code, output = run_command(
        app,
        "create-staff",
        "ana@example.org",
        "--role",
        "ombudsperson",
        "--name",
        "Ana",
        "--queue",
        "general",
        "--password-stdin",
        stdin="a very long password\n",
    )
    assert code == 0, output
    recovery = re.search(r"^\s+([0-9A-Z]{4}(?:-[0-9A-Z]{4}){7})$", output, re.M)
    assert recovery, output
    assert "warning" not in output
    with app.extensions["portal"].sessions() as session:
        user = session.scalars(select(StaffUser)).one()
        assert user.display_name == "Ana" and recovery.group(1).encode() not in user.key_by_recovery
    code, output = run_command(
        app,
        "create-staff",
        "ana@example.org",
        "--role",
        "ombudsperson",
        "--password-stdin",
        stdin="a very long password\n",
    )
    assert code != 0 and "StaffExists" in output
    code, output = run_command(
        app, "create-staff", "b@example.org", "--role", "admin", "--password-stdin", stdin="short\n"
    )
    assert code != 0 and "at least 15" in output
    code, output = run_command(
        app,
        "create-staff",
        "c@example.org",
        "--role",
        "ombudsperson",
        "--queue",
        "nope",
        "--password-stdin",
        stdin="a very long password\n",
    )
    assert code != 0 and "nope" in output


def test_create_staff_warns_when_fallback_is_unstaffed(tmp_path: Path) -> None:
    app, _ = cli_app(tmp_path)
    run_command(app, "init")
    code, output = run_command(
        app,
        "create-staff",
        "h@example.org",
        "--role",
        "ombudsperson",
        "--queue",
        "hr",
        "--password-stdin",
        stdin="a very long password\n",
    )
    assert code == 0 and "fallback queue has no ombudsperson" in output


def test_load_taxonomy_reports_errors(tmp_path: Path) -> None:
    app, _ = cli_app(tmp_path)
    run_command(app, "init")
    bad = tmp_path / "bad.toml"
    bad.write_text('fallback_queue = "x"\n[[queues]]\nslug = "y"\nname = "Y"\n')
    code, output = run_command(app, "load-taxonomy", str(bad))
    assert code != 0 and "fallback queue 'x'" in output


def test_demo_loads_encrypted_cases_through_intake(tmp_path: Path) -> None:
    app, settings = cli_app(tmp_path)
    run_command(app, "init")
    app = create_app(settings)  # a new process would read the secrets init created
    code, output = run_command(app, "demo")
    assert code == 0, output
    assert DEMO_PASSWORD in output
    receipts = re.findall(r"^\s+([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})\s", output, re.M)
    assert len(receipts) >= 3
    state = app.extensions["portal"]
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StaffUser)) == len(DEMO_STAFF)
        history = int(re.search(r"Loaded (\d+) made-up concerns", output).group(1))  # type: ignore[union-attr]
        assert history > 100
        assert session.scalar(select(func.count()).select_from(Case)) == len(receipts) + history
        assert session.scalar(select(func.count()).select_from(CaseAccess)) > 0
        # The insights pages have figures: every one of the past quarters was released.
        assert len(insights_store.periods(session)) == demo_history.QUARTERS
        key = followup.unlock(session, settings, state.secrets.pepper, receipts[0])
        assert followup.view(session, key).description
    code, output = run_command(app, "demo")  # idempotent
    assert code == 0 and "already loaded" in output


def test_demo_refuses_a_portal_with_real_staff(tmp_path: Path) -> None:
    app, settings = cli_app(tmp_path)
    run_command(app, "init")
    run_command(
        app,
        "create-staff",
        "real@example.org",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a very long password\n",
    )
    code, output = run_command(create_app(settings), "demo")
    assert code != 0 and "real staff" in output


def test_init_refuses_new_secrets_for_a_database_with_cases(tmp_path: Path) -> None:
    app, settings = cli_app(tmp_path)
    run_command(app, "init")
    app = create_app(settings)
    run_command(app, "demo")
    (settings.instance_path / "pepper").unlink()
    code, output = run_command(create_app(settings), "init")
    assert code != 0 and "restore the secrets from your backup" in output
    assert not (settings.instance_path / "pepper").exists()
