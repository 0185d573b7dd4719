"""One permission vocabulary and one check (deny by default)."""

from __future__ import annotations

import enum

from portal.models import Role, StaffUser


class Permission(enum.StrEnum):
    ACCOUNT_READ = "account:read"  # one's own account page and sessions
    ACCOUNT_WRITE = "account:write"  # one's own password, second factor, sessions
    CASES_LIST = "cases:list"
    CASE_READ = "case:read"
    CASE_WRITE = "case:write"  # includes grant, transfer and recusal (re-sealing the case key)
    ROUTING_TEST = "routing:test"  # the rule test page
    ADMIN_STAFF = "admin:staff"  # staff accounts, roles, queue membership, password resets
    ADMIN_CONFIG = "admin:config"  # queues, categories, rules, workflow, policy, import/export
    AUDIT_READ = "audit:read"  # the whole audit log (a case's own history is CASE_READ)
    # Aggregate insights (pages, CSV, API tokens and the API). Management only: an organisation
    # that wants an ombudsperson or admin to read them gives that person the management role too.
    INSIGHTS_READ = "insights:read"


_EVERY_ACCOUNT = frozenset({Permission.ACCOUNT_READ, Permission.ACCOUNT_WRITE})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OMBUDSPERSON: _EVERY_ACCOUNT
    | {
        Permission.CASES_LIST,
        Permission.CASE_READ,
        Permission.CASE_WRITE,
        Permission.ROUTING_TEST,
    },
    # Admins configure the portal and read the audit log; they never see case content unless
    # they are also ombudspersons holding a sealed key (DESIGN.md section 1).
    Role.ADMIN: _EVERY_ACCOUNT
    | {
        Permission.ROUTING_TEST,
        Permission.ADMIN_STAFF,
        Permission.ADMIN_CONFIG,
        Permission.AUDIT_READ,
    },
    Role.MANAGEMENT: _EVERY_ACCOUNT | {Permission.INSIGHTS_READ},
    Role.CUSTODIAN: _EVERY_ACCOUNT,
}


def can(user: StaffUser | None, permission: Permission) -> bool:
    """Role-level check. Case-level access is, in addition, holding a sealed key for the case:
    the services refuse a case without one whatever the role."""
    if user is None or not user.active:
        return False
    if permission in _EVERY_ACCOUNT:
        # Every role has these; an account whose roles still wait for a second admin's approval
        # (four eyes) needs them too, to choose its password and set up its second factor.
        return True
    return any(permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in user.roles)
