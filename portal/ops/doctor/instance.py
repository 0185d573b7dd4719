"""The instance secrets: present, private to the portal's user, not a typed pattern."""

from __future__ import annotations

import base64
import binascii
import stat
from pathlib import Path

from portal.instance import SECRET_FILES
from portal.ops.doctor.core import CheckResult, _fail, _ok, _skip, _warn

#: A secret with fewer distinct byte values than this is a pattern someone typed (b"a" * 32,
#: b"\\0" * 32, a repeated word), never the output of ``portal init``: 32 random bytes have
#: about 30 distinct values, and fewer than 16 happens with probability below 10^-20.
MIN_DISTINCT_SECRET_BYTES = 16


def check_secrets_present(instance_path: Path) -> CheckResult:
    name = "secrets"
    problems = []
    for secret in SECRET_FILES:
        path = instance_path / secret
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except FileNotFoundError:
            problems.append(f"{secret} is missing")
            continue
        except PermissionError:
            problems.append(f"{secret} cannot be read by this user")
            continue
        except (binascii.Error, ValueError):
            problems.append(f"{secret} is not base64")
            continue
        if len(raw) < 32:
            problems.append(f"{secret} is shorter than 32 bytes")
    if problems:
        return _fail(
            name,
            f"instance secrets in {instance_path}: {'; '.join(problems)}",
            "run `portal init` as the portal's user on a new installation; on one that holds"
            " cases, restore the secret files from the backup (a new pepper orphans every"
            " receipt)",
        )
    return _ok(name, f"{', '.join(SECRET_FILES)} present in {instance_path}")


def check_secrets_mode(instance_path: Path) -> CheckResult:
    """Only the owner may read the secret files (mode 0600 or stricter); the folder, which also
    holds the SQLite database, should be closed to others too (0700)."""
    name = "secrets-mode"
    open_files = []
    for secret in SECRET_FILES:
        path = instance_path / secret
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # missing: the "secrets" check says so
        if mode & 0o077:
            open_files.append(f"{secret} is mode {mode:04o}")
    if open_files:
        paths = " ".join(str(instance_path / s.split()[0]) for s in open_files)
        return _fail(
            name,
            f"group or others may read instance secrets: {'; '.join(open_files)}",
            f"run `chmod 600 {paths}` (and check who could have copied them meanwhile)",
        )
    try:
        folder = stat.S_IMODE(instance_path.stat().st_mode)
    except OSError:
        return _skip(name, "the instance folder is missing")
    if folder & 0o077:
        return _warn(
            name,
            f"the instance folder {instance_path} is mode {folder:04o}: others can list it and"
            " read whatever else is kept there (such as the SQLite database)",
            f"run `chmod 700 {instance_path}`",
        )
    return _ok(name, "secret files readable by their owner only, instance folder closed to others")


def weak_secret_reason(raw: bytes) -> str | None:
    """Why ``raw`` is a known demo, test or hand-made value rather than 32 random bytes."""
    if len(set(raw)) < MIN_DISTINCT_SECRET_BYTES:
        return "is a repeated pattern (such as the same byte 32 times), not random bytes"
    if all(0x20 <= b < 0x7F for b in raw):
        return "is readable text (a typed password or placeholder), not random bytes"
    return None


def check_secrets_not_default(instance_path: Path) -> CheckResult:
    name = "secrets-default"
    values: dict[str, bytes] = {}
    for secret in SECRET_FILES:
        try:
            values[secret] = base64.b64decode(
                (instance_path / secret).read_text().strip(), validate=True
            )
        except (OSError, binascii.Error, ValueError):
            return _skip(name, "instance secrets missing or unreadable")
    problems = []
    for secret, raw in values.items():
        reason = weak_secret_reason(raw)
        if reason:
            problems.append(f"{secret} {reason}")
    seen: dict[bytes, str] = {}
    for secret, raw in values.items():
        if raw in seen:
            problems.append(f"{secret} is the same as {seen[raw]}")
        seen.setdefault(raw, secret)
    if problems:
        return _fail(
            name,
            "; ".join(problems),
            "before the portal holds any case, delete those files and run `portal init` to"
            " create random ones; if it already holds cases, keep the pepper (a new one orphans"
            " every receipt), replace only secret_key as docs/configuration.md describes, and"
            " plan a migration",
        )
    return _ok(name, "instance secrets are random (no repeated pattern, text or shared value)")
