"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""

from portal.models.case import Case, CaseAccess, CaseStatus, Message, MessageAuthor, Visibility
from portal.models.staff import QueueMembership, Role, StaffRole, StaffSession, StaffUser
from portal.models.taxonomy import Category, OrgUnit, OrgUnitKind, Queue, RoutingRule

__all__ = [
    "Case",
    "CaseAccess",
    "CaseStatus",
    "Category",
    "Message",
    "MessageAuthor",
    "OrgUnit",
    "OrgUnitKind",
    "Queue",
    "QueueMembership",
    "Role",
    "RoutingRule",
    "StaffRole",
    "StaffSession",
    "StaffUser",
    "Visibility",
]
