"""Detection: the type from the content alone, compared with the name and the declared type;
the safe file name."""

from __future__ import annotations

import codecs
import re
import unicodedata

from portal.services.attachments.sanitize.core import (
    _GENERIC,
    CannotClean,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
)
from portal.services.attachments.sanitize.ooxml import _detect_ooxml

MAX_FILENAME_STEM = 100
"""Characters kept of the name before the extension."""


# --- Detection ----------------------------------------------------------------------------


def _detect(filename: str, declared_type: str, data: bytes) -> FileKind:
    if data.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.PNG
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return FileKind.WEBP
    if data.startswith((b"GIF87a", b"GIF89a")):
        return FileKind.GIF
    if data.startswith(b"%PDF-"):
        return FileKind.PDF
    if data.startswith(b"PK\x03\x04"):
        return _detect_ooxml(data)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # OLE compound file: .doc/.xls/.ppt, and also every password-protected Office file.
        raise TypeNotAllowed(TypeRefusal.LEGACY_OFFICE)
    if _is_text(data):
        return FileKind.TEXT
    if _extension(filename) in FileKind.TEXT.info.extensions or _media_type(declared_type) in (
        FileKind.TEXT.info.declared
    ):
        raise CannotClean(CleanFailure.NOT_UTF8)
    raise TypeNotAllowed(TypeRefusal.UNSUPPORTED)


#: Control characters other than tab, line feed, form feed and carriage return, and DEL: their
#: presence means binary. In UTF-8 these bytes never occur inside a multi-byte character, so the
#: raw bytes can be checked (a per-character loop took seconds on a 10 MiB file; deleting them
#: with bytes.translate and comparing lengths runs at memory speed).
_BINARY_BYTES = bytes(range(0x00, 0x09)) + b"\x0b" + bytes(range(0x0E, 0x20)) + b"\x7f"


#: How much of a file ``_is_text`` looks at in one go: decoding or translating it whole would
#: hold a copy of it as large as the file (or, decoded, up to four times as large).
_TEXT_STEP = 1024 * 1024


def _is_text(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character may span two steps
    view = memoryview(data)
    try:
        for start in range(0, len(data), _TEXT_STEP):
            decoder.decode(view[start : start + _TEXT_STEP])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    for start in range(0, len(data), _TEXT_STEP):
        step = data[start : start + _TEXT_STEP]
        if len(step.translate(None, _BINARY_BYTES)) != len(step):
            return False
    return True


def _extension(filename: str) -> str:
    base = _basename(filename)
    return base.rsplit(".", 1)[1].lower() if "." in base.strip(".") else ""


def _basename(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _media_type(declared_type: str) -> str:
    return declared_type.split(";", 1)[0].strip().lower()


def _check_claims(kind: FileKind, filename: str, declared_type: str) -> None:
    extension = _extension(filename)
    if extension and extension not in kind.info.extensions:
        raise TypeNotAllowed(
            TypeRefusal.MISMATCH, f"named .{extension} but the content is {kind.value}"
        )
    declared = _media_type(declared_type)
    if declared not in _GENERIC and declared not in kind.info.declared:
        raise TypeNotAllowed(
            TypeRefusal.MISMATCH, f"declared {declared} but the content is {kind.value}"
        )


def safe_filename(filename: str, kind: FileKind) -> str:
    """The name's last path component without its extension, in NFKC, with anything but
    letters, digits, space and ``-_.()`` replaced, shortened, and the type's extension."""
    base = unicodedata.normalize("NFKC", _basename(filename))
    stem = base.rsplit(".", 1)[0] if _extension(base) else base
    stem = "".join(ch if ch.isalnum() or ch in " -_.()" else "_" for ch in stem)
    stem = re.sub(r"\s+", " ", stem).strip(" ._")[:MAX_FILENAME_STEM].strip(" ._")
    return f"{stem or 'attachment'}.{kind.info.extensions[0]}"


def safe_filename_as_is(filename: str) -> str:
    """For a file kept uncleaned (its type unknown): the same normalising as ``safe_filename``,
    keeping the name's own extension (letters and digits only, at most 10), or none."""
    base = unicodedata.normalize("NFKC", _basename(filename))
    extension = _extension(base)
    stem = base.rsplit(".", 1)[0] if extension else base
    stem = "".join(ch if ch.isalnum() or ch in " -_.()" else "_" for ch in stem)
    stem = re.sub(r"\s+", " ", stem).strip(" ._")[:MAX_FILENAME_STEM].strip(" ._")
    extension = "".join(ch for ch in extension if ch.isascii() and ch.isalnum())[:10]
    return f"{stem or 'attachment'}.{extension}" if extension else stem or "attachment"
