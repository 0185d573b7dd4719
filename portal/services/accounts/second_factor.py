"""The second factor: the TOTP secret, sealed to the user's own key."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal import crypto
from portal.models import StaffUser


def seal_totp_secret(user: StaffUser, secret: str) -> bytes:
    """The TOTP secret sealed to the user's own public key: only their unlocked private key
    reads it, so a copy of the database and the instance secrets cannot mint codes."""
    return crypto.seal(user.public_key, crypto.normalise_totp_secret(secret).encode())


def open_totp_secret(private_key: bytes, sealed: bytes) -> str:
    return crypto.unseal(private_key, sealed).decode()


def assign_totp_secret(session: Session, user: StaffUser, secret: str | None = None) -> str:
    """Enrol ``user`` with ``secret`` (a new one if None) without the confirmation step; for
    ``portal demo`` and tests, where the secret is printed or known. Returns the secret."""
    secret = crypto.normalise_totp_secret(secret) if secret else crypto.new_totp_secret()
    user.totp_sealed = seal_totp_secret(user, secret)
    session.flush()
    return secret
