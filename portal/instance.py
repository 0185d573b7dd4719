"""Instance secrets: the Flask secret key, the receipt pepper and the audit-chain key.

They live as files in the instance folder (mode 0600), are created by ``portal init`` and are
never in git or in the settings file. None of them decrypts case content: the pepper only turns
a receipt into its lookup id, the secret key signs cookies and encrypts the reporter's
short-lived follow-up cookie, and the audit key makes the audit log's hash chain a keyed one, so
someone with only the database cannot rewrite the log and recompute a chain that verifies.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from portal import crypto

SECRET_FILES = ("secret_key", "pepper", "audit_key")


class SecretsMissing(Exception):
    """The instance folder has no secrets yet: ``portal init`` has not run."""


@dataclass(frozen=True)
class InstanceSecrets:
    secret_key: bytes
    pepper: bytes
    audit_key: bytes

    @classmethod
    def generate(cls) -> InstanceSecrets:
        return cls(
            secret_key=crypto.random_bytes(32),
            pepper=crypto.random_bytes(32),
            audit_key=crypto.random_bytes(32),
        )


def load_secrets(instance_path: Path) -> InstanceSecrets:
    values: dict[str, bytes] = {}
    for name in SECRET_FILES:
        path = instance_path / name
        try:
            values[name] = base64.b64decode(path.read_text().strip(), validate=True)
        except FileNotFoundError as exc:
            raise SecretsMissing(
                f"instance secret {path} is missing: run `portal init` first"
            ) from exc
        if len(values[name]) < 32:
            raise SecretsMissing(f"instance secret {path} is too short: restore it from backup")
    return InstanceSecrets(**values)


def ensure_secrets(instance_path: Path) -> list[str]:
    """Create whichever secret files are missing; return the names created. Never overwrites:
    a new pepper would orphan every receipt."""
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    fresh = InstanceSecrets.generate()
    created = []
    for name in SECRET_FILES:
        path = instance_path / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(getattr(fresh, name)).decode() + "\n")
        created.append(name)
    return created
