"""One permission vocabulary and one check (deny by default)."""

from __future__ import annotations

import enum

from portal.models import Role, StaffUser


class Permission(enum.StrEnum):
    ACCOUNT_READ = "account:read"
    CASES_LIST = "cases:list"
    CASE_READ = "case:read"
    CASE_WRITE = "case:write"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OMBUDSPERSON: frozenset(
        {
            Permission.ACCOUNT_READ,
            Permission.CASES_LIST,
            Permission.CASE_READ,
            Permission.CASE_WRITE,
        }
    ),
    Role.ADMIN: frozenset({Permission.ACCOUNT_READ}),
    Role.MANAGEMENT: frozenset({Permission.ACCOUNT_READ}),
    Role.CUSTODIAN: frozenset({Permission.ACCOUNT_READ}),
}


def can(user: StaffUser | None, permission: Permission) -> bool:
    """Role-level check. Case-level access is, in addition, holding a sealed key for the case:
    the services refuse a case without one whatever the role."""
    if user is None or not user.active:
        return False
    return any(permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in user.roles)
