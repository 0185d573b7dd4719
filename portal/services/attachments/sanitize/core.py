"""What the cleaners share: the file kinds, what a cleaned file is, and the two refusals."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from portal.errors import PortalError

# --- Errors -------------------------------------------------------------------------------


class CleanFailure(enum.StrEnum):
    """Why a file of an accepted type could not be cleaned (the views word it)."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    CORRUPT = "corrupt"  # the content could not be read as the type it claims to be
    ENCRYPTED = "encrypted"  # password-protected: its metadata cannot be reached
    TOO_MANY_PIXELS = "too_many_pixels"
    ANIMATED = "animated"
    ARCHIVE_TOO_LARGE = "archive_too_large"  # too many parts or too much when unpacked
    NOT_UTF8 = "not_utf8"


class TypeRefusal(enum.StrEnum):
    """Why a file's type is refused (the views word it)."""

    UNSUPPORTED = "unsupported"  # not a type the portal can clean
    NOT_ENABLED = "not_enabled"  # a type the portal can clean, but not allowed here
    MISMATCH = "mismatch"  # the name or declared type says something else than the content
    MACROS = "macros"  # macro-enabled Office file
    LEGACY_OFFICE = "legacy_office"  # .doc/.xls/.ppt, or an encrypted Office file


class CannotClean(PortalError):
    """The file is of an accepted type but could not be cleaned; nothing of it is kept."""

    def __init__(self, reason: CleanFailure, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class TypeNotAllowed(PortalError):
    """The file's real type is not accepted, or does not match its name or declared type."""

    def __init__(self, reason: TypeRefusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


# --- Types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TypeInfo:
    mime: str
    extensions: tuple[str, ...]  # the first is the one a cleaned name gets
    declared: frozenset[str]  # content types a browser may declare for it


_GENERIC = frozenset({"", "application/octet-stream"})
_ZIP_DECLARED = frozenset({"application/zip", "application/x-zip-compressed"})


class FileKind(enum.StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    PDF = "pdf"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    TEXT = "text"

    @property
    def info(self) -> _TypeInfo:
        return _TYPES[self]


_OOXML = "application/vnd.openxmlformats-officedocument."
_TYPES: dict[FileKind, _TypeInfo] = {
    FileKind.JPEG: _TypeInfo(
        "image/jpeg", ("jpg", "jpeg", "jpe"), frozenset({"image/jpeg", "image/pjpeg", "image/jpg"})
    ),
    FileKind.PNG: _TypeInfo("image/png", ("png",), frozenset({"image/png", "image/x-png"})),
    FileKind.WEBP: _TypeInfo("image/webp", ("webp",), frozenset({"image/webp"})),
    FileKind.GIF: _TypeInfo("image/gif", ("gif",), frozenset({"image/gif"})),
    FileKind.PDF: _TypeInfo(
        "application/pdf", ("pdf",), frozenset({"application/pdf", "application/x-pdf"})
    ),
    FileKind.DOCX: _TypeInfo(
        _OOXML + "wordprocessingml.document",
        ("docx",),
        frozenset({_OOXML + "wordprocessingml.document"}) | _ZIP_DECLARED,
    ),
    FileKind.XLSX: _TypeInfo(
        _OOXML + "spreadsheetml.sheet",
        ("xlsx",),
        frozenset({_OOXML + "spreadsheetml.sheet"}) | _ZIP_DECLARED,
    ),
    FileKind.PPTX: _TypeInfo(
        _OOXML + "presentationml.presentation",
        ("pptx",),
        frozenset({_OOXML + "presentationml.presentation"}) | _ZIP_DECLARED,
    ),
    FileKind.TEXT: _TypeInfo("text/plain", ("txt", "text"), frozenset({"text/plain"})),
}

DEFAULT_ALLOWED: frozenset[FileKind] = frozenset(FileKind)
"""Every type this module can clean (issue 5's default: images, PDF, plain text, Office)."""


@dataclass(frozen=True)
class CleanedFile:
    filename: str  # safe to show and to put in a Content-Disposition (after the usual quoting)
    content_type: str  # of the detected type, never the declared one
    kind: FileKind
    data: bytes
