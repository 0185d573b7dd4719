"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""

from portal.models.attachment import Attachment, AttachmentChunk
from portal.models.audit import AuditEvent, AuditHead, JobRun
from portal.models.case import (
    Case,
    CaseAccess,
    CaseRecusal,
    CaseTag,
    Message,
    MessageAuthor,
    PendingRegrant,
    Priority,
    RetainedCase,
    Visibility,
)
from portal.models.insights import ApiToken, InsightRelease, SignalAlert
from portal.models.staff import (
    QueueMembership,
    Role,
    SessionStage,
    StaffRole,
    StaffSession,
    StaffUser,
)
from portal.models.taxonomy import (
    Category,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    Policy,
    Queue,
    RoutingRule,
    StatusKind,
    Tag,
    WorkflowStatus,
)

__all__ = [
    "ApiToken",
    "Attachment",
    "AttachmentChunk",
    "AuditEvent",
    "AuditHead",
    "Case",
    "CaseAccess",
    "CaseRecusal",
    "CaseTag",
    "Category",
    "InsightRelease",
    "JobRun",
    "Message",
    "MessageAuthor",
    "OrgUnit",
    "OrgUnitKind",
    "Outcome",
    "PendingRegrant",
    "Policy",
    "Priority",
    "Queue",
    "QueueMembership",
    "RetainedCase",
    "Role",
    "RoutingRule",
    "SessionStage",
    "SignalAlert",
    "StaffRole",
    "StaffSession",
    "StaffUser",
    "StatusKind",
    "Tag",
    "Visibility",
    "WorkflowStatus",
]
