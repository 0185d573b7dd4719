"""Attachment cleaning: detect a file's real type and remove the metadata that could identify
its author, before the file is encrypted (issue 5, "Attachments").

Pure functions, no Flask and no database. ``clean_attachment`` takes what an upload gives
(file name, declared content type, bytes) and returns cleaned bytes with a safe file name and
the type found in the content, or raises ``CannotClean`` / ``TypeNotAllowed``. The type comes
from the content alone (magic bytes, then parsing); the name's extension and the declared
type are only compared with it, and a mismatch is refused.

What is removed, and what is not, is written in docs/security-model.md ("Attachments: metadata
removal").
"""

from __future__ import annotations

import codecs
import enum
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element  # nosec B405  # only the type; parsing is defusedxml
from xml.sax.saxutils import quoteattr  # nosec B406  # escaping output, not parsing

from defusedxml import ElementTree as SafeET
from PIL import Image, ImageOps

from portal.services import sanitize_pdf
from portal.services.errors import PortalError

# --- Limits -------------------------------------------------------------------------------

MAX_BYTES = 10 * 1024 * 1024
"""Default largest upload accepted, in bytes (the caller may pass its configured limit)."""

MAX_IMAGE_PIXELS = 40_000_000
"""Largest image (width x height) decoded: a 10 MiB PNG can otherwise expand to gigabytes."""

MAX_ZIP_ENTRIES = 2_000
"""Most parts an Office file may have."""

MAX_ZIP_UNCOMPRESSED = 64 * 1024 * 1024
"""Largest total uncompressed size of an Office file's parts (zip bomb guard)."""

MAX_ZIP_RATIO = 200
"""Largest compression ratio of one part: ordinary XML compresses about 10:1, bombs 1000:1."""

MAX_FILENAME_STEM = 100
"""Characters kept of the name before the extension."""

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every rewritten zip entry: saved-at times are metadata


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


_MAIN_PARTS: dict[str, FileKind] = {
    _OOXML + "wordprocessingml.document.main+xml": FileKind.DOCX,
    _OOXML + "spreadsheetml.sheet.main+xml": FileKind.XLSX,
    _OOXML + "presentationml.presentation.main+xml": FileKind.PPTX,
}
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _detect_ooxml(data: bytes) -> FileKind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = _checked_entries(archive)
            names = {info.filename for info in infos}
            if "[Content_Types].xml" not in names:
                raise TypeNotAllowed(TypeRefusal.UNSUPPORTED, "a zip archive, not an Office file")
            types = _parse_xml(_read(archive, "[Content_Types].xml"))
    except PortalError:
        raise
    except Exception as exc:
        raise CannotClean(CleanFailure.CORRUPT, type(exc).__name__) from exc
    content_types = [el.get("ContentType", "") for el in types]
    lowered = [ct.lower() for ct in content_types]
    if any("macroenabled" in ct or "vbaproject" in ct for ct in lowered) or any(
        name.lower().endswith("vbaproject.bin") for name in names
    ):
        raise TypeNotAllowed(TypeRefusal.MACROS)
    kinds = {_MAIN_PARTS[ct] for ct in content_types if ct in _MAIN_PARTS}
    if len(kinds) != 1:
        raise TypeNotAllowed(TypeRefusal.UNSUPPORTED, "not a Word, Excel or PowerPoint document")
    return kinds.pop()


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


# --- Images -------------------------------------------------------------------------------

_PIL_FORMATS = {
    FileKind.JPEG: "JPEG",
    FileKind.PNG: "PNG",
    FileKind.WEBP: "WEBP",
    FileKind.GIF: "GIF",
}


def _clean_image(kind: FileKind, data: bytes) -> bytes:
    """A new file holding the picture's pixels only, turned upright.

    Memory: the decoded pixels are the large part (Pillow keeps 4 bytes a pixel for RGB, 92 MiB
    for a 24-megapixel photo). They are turned in place and copied once into the clean image,
    then released before it is encoded, so at most two copies exist at once (docs/limits.md,
    "Attachment cleaning: memory"). The picture is decoded at its full size: ``Image.draft``
    would decode a JPEG at a fraction of it for less memory, but the file kept would then be
    smaller than the one sent, which nobody asked for."""
    pil_format = _PIL_FORMATS[kind]
    with warnings.catch_warnings():
        # Pillow warns (rather than raises) between its own limit and twice it; our own
        # limit below is stricter, but a warning must never turn into an unexpected error.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data), formats=[pil_format])
        except Image.DecompressionBombError as exc:
            raise CannotClean(CleanFailure.TOO_MANY_PIXELS) from exc
        try:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise CannotClean(CleanFailure.TOO_MANY_PIXELS, f"{width}x{height}")
            if getattr(opened, "is_animated", False):
                raise CannotClean(CleanFailure.ANIMATED)
            opened.load()
            # Turn the pixels as the EXIF orientation says, before the EXIF is dropped. In
            # place: the turned pixels replace the decoded ones (a copy is made only where
            # there is something to turn, and the decoded pixels are freed at once).
            ImageOps.exif_transpose(opened, in_place=True)
            fresh = _pixels_only(opened, kind)
        finally:
            opened.close()  # the decoded pixels, if _pixels_only has not released them yet
    out = io.BytesIO()
    if kind is FileKind.JPEG:
        fresh.save(out, "JPEG", quality=90)
    elif kind is FileKind.WEBP:
        fresh.save(out, "WEBP", quality=90)
    else:
        fresh.save(out, pil_format)
    return out.getvalue()  # the BytesIO's own buffer, not a copy of it


_KEPT_MODES = {
    FileKind.JPEG: {"L", "RGB", "CMYK"},
    FileKind.PNG: {"1", "L", "LA", "RGB", "RGBA", "I", "I;16", "P"},
    FileKind.WEBP: {"RGB", "RGBA"},
    FileKind.GIF: {"L", "P"},
}


def _pixels_only(image: Image.Image, kind: FileKind) -> Image.Image:
    """A new image holding only the pixels (and palette): no ``info``, hence no EXIF, XMP,
    ICC profile, text chunks or comments for the encoder to copy.

    ``image`` is closed (its pixels released) as soon as they are copied, and so is an image
    converted from it, so that no more than two copies of the pixels exist at any time."""
    if image.mode not in _KEPT_MODES[kind]:
        if kind is FileKind.GIF:
            converted = image.convert("P")
        else:
            alpha = "A" in image.mode or image.has_transparency_data
            target = "RGBA" if alpha and kind is not FileKind.JPEG else "RGB"
            converted = image.convert(target)
        image.close()
        image = converted
    # A new, blank image of the same mode and size, and the pixels pasted into it (a raw
    # copy, the modes being equal): nothing else of ``image`` comes along. This is what
    # ``Image.frombytes(image.tobytes())`` did, without the two intermediate byte strings.
    fresh = Image.new(image.mode, image.size)
    fresh.paste(image)
    if image.mode == "P" and image.palette is not None:
        palette_mode = image.palette.mode
        fresh.putpalette(image.getpalette(palette_mode) or [], palette_mode)
        transparency = image.info.get("transparency")
        if isinstance(transparency, int | bytes):
            fresh.info["transparency"] = transparency  # which colour is see-through: pixels
    elif image.mode in {"L", "RGB"} and "transparency" in image.info:
        fresh.info["transparency"] = image.info["transparency"]
    image.close()
    return fresh


# --- PDF ----------------------------------------------------------------------------------


def _clean_pdf(data: bytes) -> bytes:
    # Metadata and active content (actions, scripts, XFA, embedded files) are removed in
    # sanitize_pdf, by one walk over the whole object graph (issue 13, finding 3).
    try:
        return sanitize_pdf.clean_pdf(data)
    except sanitize_pdf.EncryptedPdf as exc:
        raise CannotClean(CleanFailure.ENCRYPTED) from exc


# --- Office Open XML ----------------------------------------------------------------------

_BLANK_CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b"<cp:coreProperties"
    b' xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
    b' xmlns:dcmitype="http://purl.org/dc/dcmitype/"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"></cp:coreProperties>'
)
_BLANK_APP = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b"<Properties"
    b' xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"'
    b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    b"</Properties>"
)
_CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"
_APP_TYPE = _OOXML + "extended-properties+xml"
_REPLACED_PATHS: dict[str, bytes] = {
    "docprops/core.xml": _BLANK_CORE,
    "docprops/app.xml": _BLANK_APP,
}
_REPLACED_TYPES: dict[str, bytes] = {_CORE_TYPE: _BLANK_CORE, _APP_TYPE: _BLANK_APP}

# Parts are recognised by the content type [Content_Types].xml gives them as well as by the
# path the usual producers use: openpyxl, for one, writes Excel comments to
# xl/comments/comment1.xml where Excel writes xl/comments1.xml.
_DROPPED_TYPES = frozenset(
    {
        _OOXML + "custom-properties+xml",
        _OOXML + "customxmlproperties+xml",
        _OOXML + "spreadsheetml.printersettings",
        _OOXML + "wordprocessingml.printersettings",
        _OOXML + "presentationml.printersettings",
        _OOXML + "wordprocessingml.people+xml",
    }
)


def _dropped(name: str, content_type: str) -> bool:
    """Parts left out: custom properties, the saved thumbnail, custom XML data (often document
    management ids), printer settings (a Windows DEVMODE names the printer, often after its
    room or department; a Mac print ticket names the printer queue) and Word's list of people
    who edited or commented."""
    lowered = name.lower()
    return (
        content_type in _DROPPED_TYPES
        or lowered == "docprops/custom.xml"
        or lowered.startswith(("docprops/thumbnail", "customxml/"))
        or "/printersettings/" in f"/{lowered}"
        or lowered in {"word/people.xml"}
    )


_Scrub = tuple[re.Pattern[bytes], bytes]
_NEUTRAL_TIME = b"1980-01-01T00:00:00Z"  # where a schema wants a time, the zip entries' date
_WORD_SCRUBS: list[_Scrub] = [
    # Authors, initials and times of comments and tracked changes.
    (re.compile(rb'\b(w:author|w:initials)="[^"]*"'), rb'\1=""'),
    (re.compile(rb'\sw:date="[^"]*"'), b""),
    # UTC times of comments and changes (w16du:, w16cex: and whatever prefix comes next).
    (re.compile(rb'\s[A-Za-z][\w.-]*:dateUtc="[^"]*"'), b""),
    # Revision session ids: shared by documents edited in the same session.
    (re.compile(rb'\sw:rsid[A-Za-z]*="[^"]*"'), b""),
    (re.compile(rb"<w:rsids>.*?</w:rsids>", re.DOTALL), b""),
    # Word's document id (settings.xml): kept by every copy and later version of a document,
    # so it links an upload to the copy its author still has. Optional; Word makes a new one.
    (re.compile(rb"<w1[45]:docId\b[^>]*/>"), b""),
]
_EXCEL_COMMENT_SCRUBS: list[_Scrub] = [(re.compile(rb"<author>[^<]*</author>"), b"<author/>")]
_PEOPLE_SCRUBS: list[_Scrub] = [
    (re.compile(rb'\b(displayName|userId|providerId|name|initials)="[^"]*"'), rb'\1=""'),
]
# PowerPoint comments: the author is an index or id into the authors part (scrubbed above);
# the time a comment was written (dt, or created in modern comments) is set to a neutral one.
_SLIDE_COMMENT_SCRUBS: list[_Scrub] = [
    (re.compile(rb'\b(dt|created)="[^"]*"'), rb'\1="' + _NEUTRAL_TIME + b'"'),
]
# Excel's threaded comments: the author is a person id (the persons part is scrubbed above);
# the time each comment was written (dT) is set to a neutral one.
_THREADED_COMMENT_SCRUBS: list[_Scrub] = [
    (re.compile(rb'\bdT="[^"]*"'), b'dT="' + _NEUTRAL_TIME + b'"'),
]
_EXCEL_COMMENT_TYPE = _OOXML + "spreadsheetml.comments+xml"
_THREADED_COMMENT_TYPE = "application/vnd.ms-excel.threadedcomments+xml"
_PEOPLE_TYPES = frozenset(
    {
        _OOXML + "presentationml.commentauthors+xml",
        "application/vnd.ms-powerpoint.authors+xml",
        "application/vnd.ms-excel.person+xml",
    }
)
_SLIDE_COMMENT_TYPES = frozenset(
    {_OOXML + "presentationml.comments+xml", "application/vnd.ms-powerpoint.comments+xml"}
)


def _scrubs_for(name: str, content_type: str) -> list[_Scrub]:
    lowered = name.lower()
    if content_type == _EXCEL_COMMENT_TYPE or re.fullmatch(
        r"xl/comments(/comment)?\d*\.xml", lowered
    ):
        return _EXCEL_COMMENT_SCRUBS
    if content_type == _THREADED_COMMENT_TYPE or lowered.startswith("xl/threadedcomments/"):
        return _THREADED_COMMENT_SCRUBS
    if (
        content_type in _PEOPLE_TYPES
        or lowered.startswith("xl/persons/")
        or lowered in {"ppt/commentauthors.xml", "ppt/authors.xml"}
    ):
        return _PEOPLE_SCRUBS
    if content_type in _SLIDE_COMMENT_TYPES or lowered.startswith("ppt/comments/"):
        return _SLIDE_COMMENT_SCRUBS
    if lowered.startswith("word/") and lowered.endswith(".xml"):
        return _WORD_SCRUBS
    return []


_IMAGE_MAGIC: list[tuple[Callable[[bytes], bool], FileKind]] = [
    (lambda b: b.startswith(b"\xff\xd8\xff"), FileKind.JPEG),
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), FileKind.PNG),
    (lambda b: b.startswith(b"RIFF") and b[8:12] == b"WEBP", FileKind.WEBP),
    (lambda b: b.startswith((b"GIF87a", b"GIF89a")), FileKind.GIF),
]


def _clean_ooxml(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = _checked_entries(archive)
        parts = {info.filename: _read(archive, info.filename) for info in infos}
    types = _part_types(parts)
    dropped = {name for name in parts if _dropped(name, types.get(name, ""))}
    kept = set(parts) - dropped
    unlinked = _unlinked_ids(parts, dropped)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rewritten:
        order = ["[Content_Types].xml"] + [n for n in parts if n != "[Content_Types].xml"]
        for name in order:
            # Each part is let go once written: the unpacked parts (up to 64 MiB) and the
            # rewritten file are not both held whole.
            original = parts.pop(name)
            if name in dropped:
                continue
            body = _clean_part(
                name, original, types.get(name, ""), kept, dropped, unlinked.get(name, set())
            )
            del original
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            rewritten.writestr(entry, body)
    return out.getvalue()


def _part_types(parts: dict[str, bytes]) -> dict[str, str]:
    """Each part's content type, lower-cased: its Override, else the Default of its extension."""
    root = _parse_xml(parts["[Content_Types].xml"])
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for el in root:
        if el.tag == _CT_NS + "Default":
            defaults[el.get("Extension", "").lower()] = el.get("ContentType", "").lower()
        elif el.tag == _CT_NS + "Override":
            overrides[el.get("PartName", "").lstrip("/")] = el.get("ContentType", "").lower()
    types = {}
    for name in parts:
        extension = name.rsplit(".", 1)[1].lower() if "." in name.rsplit("/", 1)[-1] else ""
        types[name] = overrides.get(name, defaults.get(extension, ""))
    return types


def _unlinked_ids(parts: dict[str, bytes], dropped: set[str]) -> dict[str, set[str]]:
    """For each part, the ids of its relationships to dropped parts: a reference by such an id
    left in the part (Excel's <pageSetup r:id> to its printer settings) would point nowhere."""
    unlinked: dict[str, set[str]] = {}
    for name, body in parts.items():
        if not name.lower().endswith(".rels") or "_rels/" not in name:
            continue
        folder, rels_name = name.rsplit("_rels/", 1)
        folder = folder.rstrip("/")
        source = f"{folder}/{rels_name.removesuffix('.rels')}".lstrip("/")
        for el in _parse_xml(body):
            if el.tag != _REL_NS + "Relationship" or el.get("TargetMode") == "External":
                continue
            if _resolve(folder, el.get("Target", "")) in dropped:
                unlinked.setdefault(source, set()).add(el.get("Id", ""))
    return unlinked


_RELATIONSHIPS_NS = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _without_references(body: bytes, ids: set[str]) -> bytes:
    """Remove attributes in the relationships namespace (r:id and the like) whose value is one
    of ``ids``. Only optional references point to the parts that are dropped."""
    prefixes = re.findall(
        rb'xmlns:([A-Za-z_][\w.-]*)="' + re.escape(_RELATIONSHIPS_NS) + b'"', body
    )
    for prefix in prefixes:
        for rel_id in ids:
            pattern = rb"\s" + re.escape(prefix) + rb':[A-Za-z]+="' + re.escape(rel_id.encode())
            body = re.sub(pattern + rb'"', b"", body)
    return body


def _clean_part(
    name: str,
    body: bytes,
    content_type: str,
    kept: set[str],
    dropped: set[str],
    unlinked: set[str],
) -> bytes:
    if name == "[Content_Types].xml":
        return _content_types_without(body, kept, dropped)
    if name.lower().endswith(".rels"):
        return _relationships_without(name, body, dropped)
    replacement = _REPLACED_PATHS.get(name.lower()) or _REPLACED_TYPES.get(content_type)
    if replacement is not None:
        return replacement
    scrubs = _scrubs_for(name, content_type)
    if scrubs or unlinked:
        _parse_xml(body)  # refuse a part that is not well-formed, or has a DTD
        for pattern, substitute in scrubs:
            body = pattern.sub(substitute, body)
        if unlinked:
            body = _without_references(body, unlinked)
        _parse_xml(body)
        return body
    if "/media/" in name.lower():
        # Photos pasted into a document keep their EXIF: clean them like uploaded images.
        for matches, kind in _IMAGE_MAGIC:
            if matches(body):
                return _clean_image(kind, body)
    return body


def _content_types_without(body: bytes, kept: set[str], dropped: set[str]) -> bytes:
    # A default no kept part uses (printer settings' "bin") would tell what was removed.
    extensions = {name.rsplit(".", 1)[1].lower() for name in kept if "." in name.rsplit("/", 1)[-1]}
    root = _parse_xml(body)
    lines = []
    for el in root:
        if el.tag == _CT_NS + "Default":
            if el.get("Extension", "").lower() not in extensions:
                continue
            attributes = ("Extension", "ContentType")
        elif el.tag == _CT_NS + "Override":
            if el.get("PartName", "").lstrip("/") in dropped:
                continue
            attributes = ("PartName", "ContentType")
        else:
            continue
        lines.append(_element(el.tag.removeprefix(_CT_NS), el, attributes))
    return _document("Types", "http://schemas.openxmlformats.org/package/2006/content-types", lines)


def _relationships_without(name: str, body: bytes, dropped: set[str]) -> bytes:
    # A part's relationships live in <folder>/_rels/<part>.rels; targets are relative to
    # <folder> (the package root for _rels/.rels), or absolute from the root.
    folder = name.rsplit("_rels/", 1)[0].rstrip("/")
    root = _parse_xml(body)
    lines = []
    for el in root:
        if el.tag != _REL_NS + "Relationship":
            continue
        internal = el.get("TargetMode") != "External"
        if internal and _resolve(folder, el.get("Target", "")) in dropped:
            continue
        attributes = ("Id", "Type", "Target", "TargetMode")
        lines.append(_element("Relationship", el, attributes))
    return _document(
        "Relationships", "http://schemas.openxmlformats.org/package/2006/relationships", lines
    )


def _resolve(folder: str, target: str) -> str:
    path = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}".lstrip("/")
    resolved: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in {"", "."}:
            resolved.append(segment)
    return "/".join(resolved)


def _element(tag: str, el: Element, attributes: tuple[str, ...]) -> str:
    pairs = "".join(
        f" {key}={quoteattr(value)}" for key in attributes if (value := el.get(key)) is not None
    )
    return f"<{tag}{pairs}/>"


def _document(tag: str, namespace: str, lines: list[str]) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    return f'{head}<{tag} xmlns="{namespace}">{"".join(lines)}</{tag}>'.encode()


def _parse_xml(body: bytes) -> Element:
    # forbid_dtd: no Office part has a DTD; defusedxml also refuses entities of any kind.
    root: Element = SafeET.fromstring(body, forbid_dtd=True)
    return root


def _checked_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise CannotClean(CleanFailure.ARCHIVE_TOO_LARGE, f"{len(infos)} parts")
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_UNCOMPRESSED:
        raise CannotClean(CleanFailure.ARCHIVE_TOO_LARGE, f"{total} bytes unpacked")
    names = set()
    for info in infos:
        if info.flag_bits & 0x1:
            raise CannotClean(CleanFailure.ENCRYPTED)
        if info.filename in names:
            raise CannotClean(CleanFailure.CORRUPT, "a part name appears twice")
        names.add(info.filename)
        if info.file_size > max(info.compress_size, 1) * MAX_ZIP_RATIO:
            raise CannotClean(CleanFailure.ARCHIVE_TOO_LARGE, f"{info.filename} expands too much")
    return infos


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    with archive.open(info) as member:
        # zipfile stops at the declared size and checks the CRC: the bound above holds.
        body = member.read(info.file_size + 1)
    if len(body) != info.file_size:
        raise CannotClean(CleanFailure.CORRUPT, f"{name} has the wrong size")
    return body


# --- Plain text ---------------------------------------------------------------------------


def _clean_text(data: bytes) -> bytes:
    # Detection already decoded it as UTF-8 without control characters; text has no
    # metadata of its own, and its content is what the reporter chose to send.
    return data


_CLEANERS: dict[FileKind, Callable[[bytes], bytes]] = {
    FileKind.JPEG: lambda data: _clean_image(FileKind.JPEG, data),
    FileKind.PNG: lambda data: _clean_image(FileKind.PNG, data),
    FileKind.WEBP: lambda data: _clean_image(FileKind.WEBP, data),
    FileKind.GIF: lambda data: _clean_image(FileKind.GIF, data),
    FileKind.PDF: _clean_pdf,
    FileKind.DOCX: _clean_ooxml,
    FileKind.XLSX: _clean_ooxml,
    FileKind.PPTX: _clean_ooxml,
    FileKind.TEXT: _clean_text,
}
