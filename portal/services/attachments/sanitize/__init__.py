"""Attachment cleaning: detect a file's real type and remove the metadata that could identify
its author, before the file is encrypted (issue 5, "Attachments").

Pure functions, no Flask and no database. ``clean_attachment`` takes what an upload gives
(file name, declared content type, bytes) and returns cleaned bytes with a safe file name and
the type found in the content, or raises ``CannotClean`` / ``TypeNotAllowed``. The type comes
from the content alone (magic bytes, then parsing); the name's extension and the declared
type are only compared with it, and a mismatch is refused.

What is removed, and what is not, is written in docs/security-model.md ("Attachments: metadata
removal").

This package's ``__init__`` is the entry point and the dispatch by type; each format has its
module: ``detect`` (the type from the content, the safe file name), ``images``, ``pdf``,
``ooxml`` (Word, Excel, PowerPoint) and ``text``. ``core`` holds the types and errors they share.
Each limit lives in the module that enforces it.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.errors import PortalError
from portal.services.attachments.sanitize.core import (
    DEFAULT_ALLOWED,
    CannotClean,
    CleanedFile,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
)
from portal.services.attachments.sanitize.detect import _check_claims, _detect, safe_filename
from portal.services.attachments.sanitize.images import _clean_image
from portal.services.attachments.sanitize.ooxml import _clean_ooxml
from portal.services.attachments.sanitize.pdf import _clean_pdf
from portal.services.attachments.sanitize.text import _clean_text

MAX_BYTES = 10 * 1024 * 1024
"""Default largest upload accepted, in bytes (the caller may pass its configured limit)."""


# --- Entry point --------------------------------------------------------------------------


def clean_attachment(
    filename: str,
    declared_type: str,
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    allowed: frozenset[FileKind] = DEFAULT_ALLOWED,
) -> CleanedFile:
    """Detect the type of ``data`` from its content, check it against ``filename`` and
    ``declared_type``, and return it with identifying metadata removed.

    Raises ``CannotClean`` or ``TypeNotAllowed``; no other exception escapes for any input."""
    if not data:
        raise CannotClean(CleanFailure.EMPTY)
    if len(data) > max_bytes:
        raise CannotClean(CleanFailure.TOO_LARGE, f"{len(data)} bytes, at most {max_bytes}")
    kind = _detect(filename, declared_type, data)
    if kind not in allowed:
        raise TypeNotAllowed(TypeRefusal.NOT_ENABLED, kind.value)
    _check_claims(kind, filename, declared_type)
    try:
        cleaned = _CLEANERS[kind](data)
    except PortalError:
        raise
    except Exception as exc:
        # The parsers raise many kinds of exception on hostile input (OSError, ValueError,
        # SyntaxError, struct.error, zipfile.BadZipFile, pikepdf.PdfError...): each means the
        # content cannot be read, and nothing of it is kept.
        raise CannotClean(CleanFailure.CORRUPT, type(exc).__name__) from exc
    return CleanedFile(
        filename=safe_filename(filename, kind),
        content_type=kind.info.mime,
        kind=kind,
        data=cleaned,
    )


_CLEANERS: dict[FileKind, Callable[[bytes], bytes]] = {
    FileKind.JPEG: lambda data: _clean_image(FileKind.JPEG, data),
    FileKind.PNG: lambda data: _clean_image(FileKind.PNG, data),
    FileKind.WEBP: lambda data: _clean_image(FileKind.WEBP, data),
    FileKind.GIF: lambda data: _clean_image(FileKind.GIF, data),
    FileKind.PDF: _clean_pdf,
    FileKind.DOCX: lambda data: _clean_ooxml(FileKind.DOCX, data),
    FileKind.XLSX: lambda data: _clean_ooxml(FileKind.XLSX, data),
    FileKind.PPTX: lambda data: _clean_ooxml(FileKind.PPTX, data),
    FileKind.TEXT: _clean_text,
}
