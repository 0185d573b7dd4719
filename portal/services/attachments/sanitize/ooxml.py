"""Office Open XML (Word, Excel, PowerPoint): detect which one a zip is, and rebuild it from a
keep-list of parts, each re-serialised through a filter."""

from __future__ import annotations

import io
import posixpath
import re
import typing
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote
from xml.etree.ElementTree import Element  # nosec B405  # only the type; parsing is defusedxml
from xml.parsers import expat  # nosec B407  # DTDs and entities refused: _refuse_dtd
from xml.sax.saxutils import escape  # nosec B406  # escaping output, not parsing

from defusedxml import ElementTree as SafeET

from portal.errors import PortalError
from portal.services.attachments.sanitize.core import (
    _OOXML,
    CannotClean,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
)
from portal.services.attachments.sanitize.images import _clean_image

MAX_ZIP_ENTRIES = 2_000
"""Most parts an Office file may have."""

MAX_ZIP_UNCOMPRESSED = 64 * 1024 * 1024
"""Largest total uncompressed size of an Office file's parts (zip bomb guard)."""

MAX_ZIP_RATIO = 200
"""Largest compression ratio of one part: ordinary XML compresses about 10:1, bombs 1000:1."""


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every rewritten zip entry: saved-at times are metadata


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


# --- Office Open XML ----------------------------------------------------------------------
# A keep-list (issue 13, HIGH 2). The cleaned file is rebuilt from what is needed to show the
# document, walking the relationships from the package root: a part is kept only if a kept part
# points to it by an internal relationship and its content type is on the list below (pictures
# only if they are JPEG, PNG, GIF or WebP, which are re-encoded from their pixels). Everything
# else is left out: external relationships (links, linked pictures, Word's attached template,
# Excel's links to other workbooks), custom properties and custom XML, printer settings,
# thumbnails, embedded objects and fonts, people lists of Word, add-in data, revision logs, and
# any part not named here. Each kept XML part is re-serialised through a filter that removes
# the elements and attributes below; the package's content types and relationships are
# rebuilt to list exactly the parts that are kept, so that the file still opens.
# docs/security-model.md ("Attachments: metadata removal") says what is kept.

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
_REPLACED_TYPES: dict[str, bytes] = {_CORE_TYPE: _BLANK_CORE, _APP_TYPE: _BLANK_APP}

_EXCEL_PERSON_TYPE = "application/vnd.ms-excel.person+xml"
_PPT_AUTHORS_TYPE = _OOXML + "presentationml.commentauthors+xml"
_PPT_MODERN_AUTHORS_TYPE = "application/vnd.ms-powerpoint.authors+xml"
_PEOPLE_TYPES = frozenset({_EXCEL_PERSON_TYPE, _PPT_AUTHORS_TYPE, _PPT_MODERN_AUTHORS_TYPE})
_SLIDE_COMMENT_TYPES = frozenset(
    {_OOXML + "presentationml.comments+xml", "application/vnd.ms-powerpoint.comments+xml"}
)

#: Parts of any of the three kinds: themes, charts, SmartArt, legacy (VML) shapes.
_KEPT_COMMON = frozenset(
    {
        _CORE_TYPE,
        _APP_TYPE,
        _OOXML + "theme+xml",
        _OOXML + "themeoverride+xml",
        _OOXML + "drawingml.chart+xml",
        _OOXML + "drawingml.chartshapes+xml",
        "application/vnd.ms-office.chartstyle+xml",
        "application/vnd.ms-office.chartcolorstyle+xml",
        _OOXML + "drawingml.diagramdata+xml",
        _OOXML + "drawingml.diagramlayout+xml",
        _OOXML + "drawingml.diagramstyle+xml",
        _OOXML + "drawingml.diagramcolors+xml",
        "application/vnd.ms-office.drawingml.diagramdrawing+xml",
        _OOXML + "vmldrawing",
    }
)
_WML = _OOXML + "wordprocessingml."
_SML = _OOXML + "spreadsheetml."
_PML = _OOXML + "presentationml."
#: The content types (lower case) of the parts kept, by kind of file.
KEPT_PART_TYPES: dict[FileKind, frozenset[str]] = {
    FileKind.DOCX: _KEPT_COMMON
    | {
        _WML + suffix
        for suffix in (
            "document.main+xml",
            "styles+xml",
            "settings+xml",
            "websettings+xml",
            "fonttable+xml",
            "numbering+xml",
            "footnotes+xml",
            "endnotes+xml",
            "header+xml",
            "footer+xml",
            "comments+xml",
            "commentsextended+xml",
            "commentsids+xml",
            "commentsextensible+xml",
        )
    }
    | {"application/vnd.ms-word.styleswitheffects+xml"},
    FileKind.XLSX: _KEPT_COMMON
    | {
        _SML + suffix
        for suffix in (
            "sheet.main+xml",
            "worksheet+xml",
            "chartsheet+xml",
            "styles+xml",
            "sharedstrings+xml",
            "calcchain+xml",
            "comments+xml",
            "table+xml",
            "pivottable+xml",
            "pivotcachedefinition+xml",
            "pivotcacherecords+xml",
            "sheetmetadata+xml",
        )
    }
    | {_OOXML + "drawing+xml", "application/vnd.ms-excel.threadedcomments+xml"}
    | {_EXCEL_PERSON_TYPE},
    FileKind.PPTX: _KEPT_COMMON
    | {
        _PML + suffix
        for suffix in (
            "presentation.main+xml",
            "slide+xml",
            "slidelayout+xml",
            "slidemaster+xml",
            "notesslide+xml",
            "notesmaster+xml",
            "handoutmaster+xml",
            "presprops+xml",
            "viewprops+xml",
            "tablestyles+xml",
            "comments+xml",
            "commentauthors+xml",
        )
    }
    | {"application/vnd.ms-powerpoint.comments+xml", _PPT_MODERN_AUTHORS_TYPE},
}

_IMAGE_MAGIC: list[tuple[Callable[[bytes], bool], FileKind]] = [
    (lambda b: b.startswith(b"\xff\xd8\xff"), FileKind.JPEG),
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), FileKind.PNG),
    (lambda b: b.startswith(b"RIFF") and b[8:12] == b"WEBP", FileKind.WEBP),
    (lambda b: b.startswith((b"GIF87a", b"GIF89a")), FileKind.GIF),
]


def _image_kind(body: bytes) -> FileKind | None:
    for matches, kind in _IMAGE_MAGIC:
        if matches(body):
            return kind
    return None


# What the filter removes from every kept XML part. Names are matched by their local name in
# any namespace (a tool may bind Word's namespace to any prefix, and Strict OOXML has other
# namespaces), attributes wherever they occur.

#: Elements removed with everything inside them.
_DROPPED_ELEMENTS = frozenset(
    {
        "attachedTemplate",  # Word: the template's path (an external relationship)
        "docVars",  # Word: document variables, set by add-ins and macros
        "rsids",  # Word: revision session ids, shared by documents edited in one session
        "rsid",  # Word: the session a style was last changed in (styles.xml)
        "docId",  # Word (w14:, w15:): kept by every copy of a document
        "mailMerge",  # Word: the data source's path and connection string
        "attachedSchema",
        "absPath",  # Excel (x15ac:): the folder the workbook was saved in
        "revisionPtr",  # Excel (xr:): the document id, kept by every copy
        "creationId",  # PowerPoint (p14:): a slide's id, kept by every copy
    }
)
#: Elements removed when the relationship they need is removed (their reference is required).
_DROPPED_WHEN_UNLINKED = frozenset(
    {
        "attachedTemplate",
        "subDoc",
        "altChunk",
        "dataSource",
        "headerSource",
        "recipientData",
        "externalData",
        "externalReference",
        "svgBlip",
        "OLEObject",
        "oleObj",
        "oleObject",
        "control",
        "tags",
        "embedRegular",
        "embedBold",
        "embedItalic",
        "embedBoldItalic",
        "snd",
        "wavAudioFile",
        "audioFile",
        "videoFile",
        "quickTimeFile",
        "media",
        "sheet",
        "pivotCache",
        "sldId",
    }
)
#: Elements removed once nothing is left in them (extension lists, markup-compatibility choices).
_COLLAPSED_WHEN_EMPTY = frozenset(
    {
        "AlternateContent",
        "Choice",
        "Fallback",
        "extLst",
        "externalReferences",
        "custDataLst",
        "oleObjects",
        "controls",
        "pivotCaches",
    }
)
#: Attributes whose value is a person's name or account: emptied (some are required).
_BLANKED_ATTRIBUTES = frozenset(
    {
        "author",
        "initials",
        "refreshedBy",
        "lastModifiedBy",
        "modifiedBy",
        "createdBy",
        "userName",
        "userId",
        "providerId",
    }
)
#: Attributes removed: times of comments, changes and refreshes, and persistent ids.
_DROPPED_ATTRIBUTES = frozenset({"dateUtc", "refreshedDate", "refreshedDateIso"})
_WORD_NAMESPACES = frozenset(
    {
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main",
    }
)
_NEUTRAL_TIME = "1980-01-01T00:00:00Z"  # where a schema wants a time, the zip entries' date
_RELATIONSHIP_NAMESPACES = frozenset(
    {
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "http://purl.oclc.org/ooxml/officeDocument/relationships",
    }
)
_VML_OFFICE = "urn:schemas-microsoft-com:office:office"
_SHEET_TYPES = frozenset({_OOXML + "spreadsheetml.worksheet+xml"})
_EXTERNAL_FORMULA = re.compile(r"\[\d+\]")
#: A value that names a place on someone's computer or network: a drive letter, a UNC share,
#: a file URL, or a home folder.
_LOCAL_PATH = re.compile(
    r"(?i)(?:\b[a-z]:[\\/]|\\\\[^\\\s]+\\|\bfile:/|(?:^|[\s\"'=(])/(?:home|users)/)"
)


def _drops_attribute(uri: str, local: str, content_type: str) -> bool:
    if local.startswith("rsid") or local in _DROPPED_ATTRIBUTES:
        return True
    if local == "date" and uri in _WORD_NAMESPACES:  # tracked changes and comments
        return True
    # Excel's xr:uid, xr3:uid...: ids kept by every copy of a workbook.
    return local == "uid" and uri.startswith("http://schemas.microsoft.com/office/spreadsheetml/")


def _neutral_time(local: str, content_type: str) -> bool:
    if local == "dT":  # Excel's threaded comments
        return True
    return local in {"dt", "created"} and content_type in _SLIDE_COMMENT_TYPES


# What the filter does with an attribute, found once per (namespace scope, attribute name).
_KEEP, _DROP, _BLANK, _NEUTRAL, _REFERENCE, _DECLARATION = range(6)


def _refuse_dtd(*_args: object) -> typing.NoReturn:
    # No Office part has a DTD; refusing it also refuses entities of any kind (they can only
    # be declared in one), and with them entity expansion and external entities: what
    # defusedxml refuses (forbid_dtd=True), done here on expat itself for speed.
    raise CannotClean(CleanFailure.CORRUPT, "an XML part with a DTD or an entity")


class _PartFilter:
    """Re-serialises a part as expat reads it, leaving out what the rules above remove.

    Prefixes, namespace declarations, text and attribute order are written as they came, so
    markup-compatibility (mc:Ignorable names prefixes) keeps working; comments, processing
    instructions and the DTD (refused) are not written. Output is UTF-8 whatever the input's
    encoding was."""

    def __init__(self, content_type: str, unlinked: set[str]) -> None:
        self.content_type = content_type
        self.unlinked = unlinked
        self.out: list[list[str]] = [[]]
        self.sink = io.BytesIO()
        # One frame per open element: qname, whether its start tag still needs closing,
        # how it may be left out (None, "when empty", "formula"), whether anything was kept.
        self.frames: list[list[typing.Any]] = []
        root_scope = {"xml": "http://www.w3.org/XML/1998/namespace"}
        self.scopes: list[dict[str, str]] = [root_scope]
        self.kept_scopes = [root_scope]  # alive, so that their id() in the cache stays theirs
        self.actions: dict[tuple[int, str], int] = {}
        self.skipping = 0
        self.blank_text = 0
        parser = expat.ParserCreate()
        parser.ordered_attributes = True
        parser.buffer_text = True
        parser.buffer_size = 1 << 16
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        parser.UnparsedEntityDeclHandler = _refuse_dtd
        parser.ExternalEntityRefHandler = _refuse_dtd
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.characters
        self.parser = parser

    def run(self, body: bytes) -> bytes:
        self.sink.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n')
        self.parser.Parse(body, True)
        self._flush()
        return self.sink.getvalue()

    def _flush(self) -> None:
        # The pieces written so far, as bytes: a list of small strings costs about 60 bytes a
        # piece, several times the text itself.
        self.sink.write("".join(self.out[0]).encode())
        self.out[0].clear()

    def _open_parent(self) -> None:
        if self.frames:
            frame = self.frames[-1]
            frame[3] = True
            if frame[1]:
                self.out[-1].append(">")
                frame[1] = False

    def _action(self, scope: dict[str, str], key: str) -> int:
        cached = self.actions.get((id(scope), key))
        if cached is not None:
            return cached
        prefix, _, local = key.rpartition(":")
        uri = scope.get(prefix, "") if prefix else ""
        if key == "xmlns" or prefix == "xmlns":
            action = _DECLARATION
        elif uri in _RELATIONSHIP_NAMESPACES or (uri == _VML_OFFICE and local == "relid"):
            action = _REFERENCE
        elif _drops_attribute(uri, local, self.content_type):
            action = _DROP
        elif local in _BLANKED_ATTRIBUTES or (uri == _VML_OFFICE and local == "title"):
            action = _BLANK  # o:title: the file name of an inserted picture
        elif _neutral_time(local, self.content_type):
            action = _NEUTRAL
        else:
            action = _KEEP
        self.actions[(id(scope), key)] = action
        return action

    def start(self, name: str, attributes: list[str]) -> None:
        if self.skipping:
            self.skipping += 1
            return
        scope = self.scopes[-1]
        keys = attributes[::2]
        if any(key == "xmlns" or key.startswith("xmlns:") for key in keys):
            scope = dict(scope)
            for key, value in zip(keys, attributes[1::2], strict=True):
                if key == "xmlns":
                    scope[""] = value
                elif key.startswith("xmlns:"):
                    scope[key[6:]] = value
            self.kept_scopes.append(scope)
        local = name.rpartition(":")[2]
        if local in _DROPPED_ELEMENTS:
            self.skipping = 1
            return
        pairs = ["<", name]
        for index in range(0, len(attributes), 2):
            key, value = attributes[index], attributes[index + 1]
            action = self._action(scope, key)
            if action == _REFERENCE and value in self.unlinked:
                if local in _DROPPED_WHEN_UNLINKED:
                    self.skipping = 1
                    return
                continue
            if action == _DROP:
                continue
            if action == _BLANK or (action != _DECLARATION and _LOCAL_PATH.search(value)):
                value = ""
            elif action == _NEUTRAL:
                value = _NEUTRAL_TIME
            pairs.append(f' {key}="{_escape_attribute(value)}"')
        collapsible: str | None = None
        if local in _COLLAPSED_WHEN_EMPTY or (local == "ext" and "uri" in keys):
            collapsible = "when empty"
        elif local == "f" and self.content_type in _SHEET_TYPES:
            collapsible = "formula"
        if collapsible:
            self.out.append([])
        else:
            self._open_parent()
        self.scopes.append(scope)
        self.frames.append([name, True, collapsible, False])
        # Excel's comment authors are element text: <authors><author>Name</author></authors>.
        if local == "author" and len(self.frames) > 1 and self.frames[-2][0].endswith("authors"):
            self.blank_text += 1
        self.out[-1].append("".join(pairs))

    def end(self, name: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        frame = self.frames.pop()
        self.scopes.pop()
        if (
            self.blank_text
            and name.rpartition(":")[2] == "author"
            and (not self.frames or self.frames[-1][0].endswith("authors"))
        ):
            self.blank_text -= 1
        self.out[-1].append("/>" if frame[1] else f"</{name}>")
        if frame[2]:
            body = "".join(self.out.pop())
            # A formula that refers to another workbook ([1]Sheet1!A1) goes with the link to
            # it, and the cell keeps the value last computed; other collapsible elements stay
            # if something was kept inside them.
            keep = not _EXTERNAL_FORMULA.search(body) if frame[2] == "formula" else frame[3]
            if keep:
                self._open_parent()
                self.out[-1].append(body)
        if len(self.out) == 1 and len(self.out[0]) > 8192:
            self._flush()

    def characters(self, content: str) -> None:
        if self.skipping or self.blank_text or not self.frames:
            return
        frame = self.frames[-1]
        if frame[1]:
            self.out[-1].append(">")
            frame[1] = False
        if not frame[3] and not content.isspace():
            frame[3] = True
        self.out[-1].append(_escape_text(content))


_ATTRIBUTE_SPECIAL = re.compile(r'[&<>"\n\r\t]')
_TEXT_SPECIAL = re.compile(r"[&<>\r]")
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _escape_attribute(value: str) -> str:
    return escape(value, _ATTRIBUTE_ESCAPES) if _ATTRIBUTE_SPECIAL.search(value) else value


def _quote(value: str) -> str:
    return f'"{_escape_attribute(value)}"'


def _escape_text(text: str) -> str:
    return escape(text, {"\r": "&#13;"}) if _TEXT_SPECIAL.search(text) else text


def _filtered_part(body: bytes, content_type: str, unlinked: set[str]) -> bytes:
    return _PartFilter(content_type, unlinked).run(body)


#: People lists: which attributes of an entry are kept as they are (ids that comments refer
#: to) and which are written empty (they are required). Nothing else of them is kept.
_PEOPLE_ENTRIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "person": (("id",), ("displayName",)),  # Excel's threaded-comment persons
    "cmAuthor": (("id", "lastIdx", "clrIdx"), ("name", "initials")),  # PowerPoint
    "author": (("id",), ("name", "initials", "userId", "providerId")),  # PowerPoint's modern
}


def _rebuilt_people(body: bytes) -> bytes:
    """A people part written anew: for each entry its id and empty names, nothing else."""
    root = _parse_xml(body)
    namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    root_local = root.tag.rpartition("}")[2]
    entries = []
    for child in root:
        local = child.tag.rpartition("}")[2]
        if local not in _PEOPLE_ENTRIES or not child.tag.startswith("{" + namespace + "}"):
            continue
        kept, blanked = _PEOPLE_ENTRIES[local]
        pairs = "".join(
            f" {key}={_quote(value)}" for key in kept if (value := child.get(key)) is not None
        )
        pairs += "".join(f' {key}=""' for key in blanked)
        entries.append(f"<p:{local}{pairs}/>")
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    text = f"{head}<p:{root_local} xmlns:p={_quote(namespace)}>{''.join(entries)}</p:{root_local}>"
    return text.encode()


@dataclass
class _Package:
    parts: dict[str, bytes]
    types: dict[str, str]  # each part's content type, lower case
    declared: dict[str, str]  # as written (Office may compare them case-sensitively)
    by_lower: dict[str, str]  # part names are case-insensitive


def _clean_ooxml(kind: FileKind, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = _checked_entries(archive)
        parts = {info.filename: _read(archive, info.filename) for info in infos}
    declared = _part_types(parts)
    types = {name: content_type.lower() for name, content_type in declared.items()}
    package = _Package(parts, types, declared, {name.lower(): name for name in parts})
    kept, relationships, unlinked = _walk(package, KEPT_PART_TYPES[kind])
    main = [name for name in kept if package.types[name] in _MAIN_PARTS]
    if len(main) != 1:
        raise CannotClean(CleanFailure.CORRUPT, "no main part reached from the package root")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rewritten:

        def write(name: str, body: bytes) -> None:
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            rewritten.writestr(entry, body)

        write("[Content_Types].xml", _content_types(package, kept))
        write("_rels/.rels", _relationships_part(relationships.pop("")))
        for name in [n for n in package.parts if n in kept]:
            # Each part is let go once written: the unpacked parts (up to 64 MiB) and the
            # rewritten file are not both held whole.
            body = _clean_part(package.parts.pop(name), package.types[name], unlinked.get(name))
            write(name, body)
            if name in relationships:
                folder, _, base = name.rpartition("/")
                rels_name = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
                write(rels_name, _relationships_part(relationships.pop(name)))
    return out.getvalue()


def _part_types(parts: dict[str, bytes]) -> dict[str, str]:
    """Each part's content type as written: its Override, else the Default of its extension."""
    root = _parse_xml(parts["[Content_Types].xml"])
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for el in root:
        if el.tag == _CT_NS + "Default":
            defaults[el.get("Extension", "").lower()] = el.get("ContentType", "")
        elif el.tag == _CT_NS + "Override":
            overrides[el.get("PartName", "").lstrip("/").lower()] = el.get("ContentType", "")
    types = {}
    for name in parts:
        types[name] = overrides.get(name.lower(), defaults.get(_part_extension(name), ""))
    return types


def _part_extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


_Relationship = tuple[str, str, str]  # Id, Type, Target
#: What the package root may point to (the last segment of the relationship type, which is
#: the same in Transitional and Strict OOXML).
_KEPT_FROM_ROOT = frozenset({"officeDocument", "core-properties", "extended-properties"})


def _walk(
    package: _Package, kept_types: frozenset[str]
) -> tuple[set[str], dict[str, list[_Relationship]], dict[str, set[str]]]:
    """The parts reached from the package root by kept relationships; for each source (""
    for the root) the relationships kept; for each part the ids of those removed."""
    kept: set[str] = set()
    relationships: dict[str, list[_Relationship]] = {}
    unlinked: dict[str, set[str]] = {}
    queue = [""]
    while queue:
        source = queue.pop()
        folder, _, base = source.rpartition("/")
        rels_name = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
        actual = package.by_lower.get(rels_name.lower())
        if actual is None:
            continue
        kept_here: list[_Relationship] = []
        for el in _parse_xml(package.parts[actual]):
            if el.tag != _REL_NS + "Relationship":
                continue
            rel_id, rel_type, target = el.get("Id", ""), el.get("Type", ""), el.get("Target", "")
            name = None
            if el.get("TargetMode", "Internal") != "External":
                resolved = _resolve(folder, target).lower()
                name = package.by_lower.get(resolved) or package.by_lower.get(unquote(resolved))
            if source == "" and rel_type.rpartition("/")[2] not in _KEPT_FROM_ROOT:
                name = None  # a thumbnail, custom properties, a signature...
            if name is None or not _keeps(package, name, kept_types):
                unlinked.setdefault(source, set()).add(rel_id)
                continue
            kept_here.append((rel_id, rel_type, _relative(folder, name)))
            if name not in kept:
                kept.add(name)
                queue.append(name)
        relationships[source] = kept_here
    relationships.setdefault("", [])
    # A relationship kept by one source may have been removed by another with the same id:
    # ids are per source, so only the source's own removals count.
    for source, rels in relationships.items():
        ids = {rel_id for rel_id, _, _ in rels}
        if source in unlinked:
            unlinked[source] -= ids
    return kept, {s: r for s, r in relationships.items() if r or s == ""}, unlinked


def _keeps(package: _Package, name: str, kept_types: frozenset[str]) -> bool:
    if name.lower().endswith(".rels") or name == "[Content_Types].xml":
        return False
    content_type = package.types[name]
    if _is_picture(content_type):
        return _image_kind(package.parts[name]) is not None
    return content_type in kept_types


def _is_picture(content_type: str) -> bool:
    # A picture whose type is missing (the package is then invalid) is given its real one.
    return content_type.startswith("image/") or not content_type


def _relative(folder: str, name: str) -> str:
    """The target of ``name`` from ``folder``, written anew: the original may have taken a
    detour (``../../Users/name/../../word/x.xml``) that names something."""
    return posixpath.relpath(name, folder) if folder else name


def _clean_part(body: bytes, content_type: str, unlinked: set[str] | None) -> bytes:
    replacement = _REPLACED_TYPES.get(content_type)
    if replacement is not None:
        return replacement
    if _is_picture(content_type):
        # Photos pasted into a document keep their EXIF: clean them like uploaded images.
        kind = _image_kind(body)
        if kind is None:  # _keeps keeps pictures of these kinds only
            raise CannotClean(CleanFailure.CORRUPT, "a picture of an unknown kind")
        return _clean_image(kind, body)
    if content_type in _PEOPLE_TYPES:
        return _rebuilt_people(body)
    return _filtered_part(body, content_type, unlinked or set())


def _content_types(package: _Package, kept: set[str]) -> bytes:
    """[Content_Types].xml listing the kept parts only: a Default for each extension a kept part
    uses (the rels and the pictures), an Override for every other kept part."""
    lines = [f'<Default Extension="rels" ContentType="{_REL_TYPE}"/>']
    for name in sorted(kept):
        content_type = package.declared[name]
        image_kind = _image_kind(package.parts[name]) if _is_picture(package.types[name]) else None
        if image_kind is not None:  # the type the re-encoded picture really has
            content_type = image_kind.info.mime
        lines.append(
            f"<Override PartName={_quote('/' + name)} ContentType={_quote(content_type)}/>"
        )
    return _document("Types", "http://schemas.openxmlformats.org/package/2006/content-types", lines)


_REL_TYPE = "application/vnd.openxmlformats-package.relationships+xml"


def _relationships_part(relationships: list[_Relationship]) -> bytes:
    lines = [
        f"<Relationship Id={_quote(rel_id)} Type={_quote(rel_type)} Target={_quote(target)}/>"
        for rel_id, rel_type, target in relationships
    ]
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
