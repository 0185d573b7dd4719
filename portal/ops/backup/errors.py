"""What can go wrong with a backup, each a ``BackupError``."""

from __future__ import annotations

from portal.errors import PortalError


class BackupError(PortalError):
    """Base of the backup errors; ``str()`` is a sentence for the operator."""


class WeakPassphrase(BackupError):
    pass


class BackupExists(BackupError):
    pass


class NotABackup(BackupError):
    pass


class WrongPassphrase(BackupError):
    pass


class BackupDamaged(BackupError):
    """A chunk does not authenticate, the file ends early, or it has bytes after its end."""


class TargetNotEmpty(BackupError):
    pass


class WrongDatabaseKind(BackupError):
    pass


class UnknownRevision(BackupError):
    pass


class ToolMissing(BackupError):
    """``pg_dump`` or ``pg_restore`` is not installed."""


class ToolFailed(BackupError):
    pass
