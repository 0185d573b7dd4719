"""Office files: the cleaner keeps only what is needed to show them (issue 13, HIGH 2).

The reporter's name and the folders of their computer (``C:\\Users\\<name>``) must be gone from
every byte of a cleaned docx, xlsx or pptx: from each part unpacked, in UTF-8, UTF-16 and with
XML's escapes undone. Two sources of files: hand-made parts, one for each place Office writes a
name or a path (each built the way a producer other than the usual one writes it, so that a
list of known names and prefixes would miss it), and files written by LibreOffice from flat ODF
documents carrying the name. After cleaning, every part is on the keep-list, the package is
consistent (content types and relationships) and LibreOffice still opens the file and shows
its text."""

from __future__ import annotations

import html
import io
import posixpath
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

import docx
import openpyxl
import pptx
import pytest
from defusedxml import ElementTree as SafeET
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.services.attachments.sanitize import clean_attachment
from portal.services.attachments.sanitize import ooxml as sanitize_ooxml
from portal.services.attachments.sanitize.core import FileKind

NAME = "Alice Reporter"
ACCOUNT = "AliceReporter"
HOME = f"C:\\Users\\{ACCOUNT}"
#: Searched for case-insensitively, in every reading of every part.
NEEDLES = ("alice reporter", "alicereporter", "alice.reporter", "alice%20reporter")

_CT = "application/vnd.openxmlformats-officedocument."
_OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_SML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PML = "http://schemas.openxmlformats.org/presentationml/2006/main"
_MIME = {kind: kind.info.mime for kind in (FileKind.DOCX, FileKind.XLSX, FileKind.PPTX)}
_PICTURE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


# --- Reading a cleaned file -------------------------------------------------------------------


def _parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _readings(body: bytes) -> Iterator[str]:
    """Every way the bytes may spell a name: as bytes, as UTF-16 of either order and alignment,
    and, for XML, its text and attribute values with the escapes undone and percent-decoded."""
    yield body.decode("latin-1")
    for start in (0, 1):
        for codec in ("utf-16-le", "utf-16-be"):
            yield body[start:].decode(codec, errors="ignore")
    try:
        root = SafeET.fromstring(body)
    except Exception:  # not XML: a picture, or a part in no known form
        return
    values = []
    for el in root.iter():
        values.extend([el.tag, el.text or "", el.tail or ""])
        values.extend(f"{key}={value}" for key, value in el.attrib.items())
    joined = "\n".join(values)
    yield joined
    yield unquote(joined)
    yield html.unescape(joined)


def _traces(data: bytes, needles: tuple[str, ...] = NEEDLES) -> list[str]:
    """Where any needle is found: the zip's own bytes (names, comments) or any part."""
    found: list[str] = []
    for where, body in [("<zip>", data), *_parts(data).items()]:
        for reading in _readings(body):
            lowered = reading.lower()
            found.extend(f"{needle!r} in {where}" for needle in needles if needle in lowered)
    return sorted(set(found))


def _assert_consistent(kind: FileKind, data: bytes) -> None:
    """The sweep: every part is on the keep-list for its kind, has exactly one content type,
    is the target of a relationship, and every relationship points to a part in the file."""
    parts = _parts(data)
    types_root = SafeET.fromstring(parts["[Content_Types].xml"])
    overrides = {}
    defaults = {}
    for el in types_root:
        if el.tag.endswith("}Override"):
            overrides[el.get("PartName", "").lstrip("/")] = el.get("ContentType", "")
        elif el.tag.endswith("}Default"):
            defaults[el.get("Extension", "")] = el.get("ContentType", "")
    assert set(defaults) <= {"rels"}, defaults
    assert set(overrides) <= set(parts), set(overrides) - set(parts)
    targets: set[str] = set()
    for name, body in parts.items():
        if not name.endswith(".rels"):
            continue
        folder, rels = name.rsplit("_rels/", 1)
        source = folder + rels.removesuffix(".rels")
        assert source == "" or source.rstrip("/") == "" or source in parts, name
        for el in SafeET.fromstring(body):
            assert el.get("TargetMode") is None, (name, el.attrib)  # nothing external
            joined = posixpath.join(folder.rstrip("/"), el.get("Target", ""))
            target = posixpath.normpath(joined).lstrip("/")
            assert target in parts, (name, el.get("Target"))
            targets.add(target)
    for name in parts:
        if name == "[Content_Types].xml" or name.endswith(".rels"):
            continue
        content_type = overrides[name].lower()
        assert content_type in sanitize_ooxml.KEPT_PART_TYPES[kind] | _PICTURE_TYPES, (
            name,
            content_type,
        )
        assert name in targets, f"{name} is reached by no relationship"


# --- Building files with hand-made parts ------------------------------------------------------


def _base(kind: FileKind) -> bytes:
    out = io.BytesIO()
    if kind is FileKind.DOCX:
        document = docx.Document()
        document.add_paragraph("The body text of the evidence.")
        document.save(out)
    elif kind is FileKind.XLSX:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet["A1"] = "Unpaid overtime hours"
        sheet["B1"] = 42
        workbook.save(out)
    else:
        presentation = pptx.Presentation()
        slide = presentation.slides.add_slide(presentation.slide_layouts[5])
        assert slide.shapes.title is not None
        slide.shapes.title.text = "Three near misses in March"
        presentation.save(out)
    return out.getvalue()


def _rel(rel_id: str, rel_type: str, target: str, external: bool = False) -> str:
    mode = ' TargetMode="External"' if external else ""
    return f'<Relationship Id="{rel_id}" Type="{rel_type}" Target="{target}"{mode}/>'


def _extend(
    data: bytes,
    *,
    parts: dict[str, bytes] | None = None,
    rels: dict[str, list[str]] | None = None,
    types: list[str] | None = None,
    patches: dict[str, Callable[[bytes], bytes]] | None = None,
) -> bytes:
    """``data`` with parts added, relationships appended to (or new) rels parts, content types
    added, and parts patched."""
    parts, rels, patches = parts or {}, rels or {}, patches or {}
    existing = _parts(data)
    for rels_name, lines in rels.items():
        body = existing.get(rels_name) or (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships'
            b' xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b"</Relationships>"
        )
        added = "".join(lines).encode()
        existing[rels_name] = body.replace(b"</Relationships>", added + b"</Relationships>")
    if types:
        existing["[Content_Types].xml"] = existing["[Content_Types].xml"].replace(
            b"</Types>", "".join(types).encode() + b"</Types>"
        )
    for name, patch in patches.items():
        patched = patch(existing[name])
        assert patched != existing[name], f"the patch of {name} changed nothing"
        existing[name] = patched
    existing.update(parts)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in existing.items():
            archive.writestr(name, body)
    return out.getvalue()


def _before(marker: bytes, added: str) -> Callable[[bytes], bytes]:
    def patch(body: bytes) -> bytes:
        return body.replace(marker, added.encode() + marker, 1)

    return patch


def _after(pattern: bytes, added: str) -> Callable[[bytes], bytes]:
    def patch(body: bytes) -> bytes:
        return re.sub(pattern, lambda found: found.group(0) + added.encode(), body, count=1)

    return patch


def _override(part: str, content_type: str) -> str:
    return f'<Override PartName="/{part}" ContentType="{content_type}"/>'


def _clean(kind: FileKind, data: bytes) -> bytes:
    cleaned = clean_attachment(f"evidence.{kind.value}", _MIME[kind], data)
    assert cleaned.kind is kind
    return cleaned.data


def _check(kind: FileKind, source: bytes, needles: tuple[str, ...] = NEEDLES) -> bytes:
    """Clean ``source`` (which must carry a needle), and check that no needle is left and the
    package is consistent. Returns the cleaned file."""
    assert _traces(source, needles), "the sample carries none of the needles"
    cleaned = _clean(kind, source)
    assert _traces(cleaned, needles) == []
    _assert_consistent(kind, cleaned)
    _open_in_library(kind, cleaned)
    return cleaned


# Each sample below is one place Office keeps a name or a path. They are gathered per kind in
# _SAMPLES, so that the LibreOffice test can open all of them once cleaned.

_ABS_PATH = (
    '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
    '<mc:Choice Requires="x15"><x15ac:absPath'
    ' xmlns:x15ac="http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac"'
    f' url="{HOME}\\Documents\\Payroll\\"/></mc:Choice></mc:AlternateContent>'
)


def _xlsx_abs_path_and_file_sharing() -> bytes:
    """What Excel writes in xl/workbook.xml: the folder it was saved in, and who reserved it."""
    sharing = _after(
        rb"<workbook [^>]*>", f'<fileSharing userName="{NAME}" readOnlyRecommended="1"/>'
    )
    abs_path = _after(rb"<workbookPr\s*/>", _ABS_PATH)
    return _extend(
        _base(FileKind.XLSX), patches={"xl/workbook.xml": lambda body: abs_path(sharing(body))}
    )


def test_excel_workbook_loses_its_absolute_path_and_file_sharing_user() -> None:
    cleaned = _check(FileKind.XLSX, _xlsx_abs_path_and_file_sharing())
    workbook = _parts(cleaned)["xl/workbook.xml"]
    assert b"absPath" not in workbook and b"AlternateContent" not in workbook
    assert (
        b"Users" not in workbook
        and b'<fileSharing userName="" readOnlyRecommended="1"/>' in workbook
    )
    sheet = openpyxl.load_workbook(io.BytesIO(cleaned)).active
    assert sheet is not None and sheet["A1"].value == "Unpaid overtime hours"


def _docx_attached_template_and_doc_vars() -> bytes:
    template = f"file:///{HOME}\\AppData\\Roaming\\Microsoft\\Templates\\Grievance.dotm"
    return _extend(
        _base(FileKind.DOCX),
        rels={
            "word/_rels/settings.xml.rels": [
                _rel("rIdTemplate", f"{_OD}/attachedTemplate", template, external=True)
            ]
        },
        patches={
            "word/settings.xml": _after(
                rb"<w:zoom [^>]*/>",
                f'<w:attachedTemplate xmlns:r="{_OD}" r:id="rIdTemplate"/>'
                f'<w:docVars><w:docVar w:name="Owner" w:val="{NAME}"/>'
                f'<w:docVar w:name="Path" w:val="{HOME}\\Desktop"/></w:docVars>',
            ),
        },
    )


def test_word_attached_template_and_document_variables_are_removed() -> None:
    source = _docx_attached_template_and_doc_vars()
    cleaned = _check(FileKind.DOCX, source)
    parts = _parts(cleaned)
    assert b"attachedTemplate" not in parts["word/settings.xml"]
    assert b"docVar" not in parts["word/settings.xml"]
    assert "word/_rels/settings.xml.rels" not in parts  # its only relationship went
    assert docx.Document(io.BytesIO(cleaned)).paragraphs[0].text == "The body text of the evidence."


def _xlsx_pivot_cache() -> bytes:
    definition = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<pivotCacheDefinition xmlns="{_SML}" xmlns:r="{_OD}" r:id="rId1"'
        f' refreshedBy="{NAME}" refreshedDate="45352.4379" refreshedDateIso="2024-03-01T10:30:35"'
        ' createdVersion="8" refreshedVersion="8" minRefreshableVersion="3" recordCount="1">'
        '<cacheSource type="worksheet"><worksheetSource ref="A1:B1" sheet="Sheet"/></cacheSource>'
        '<cacheFields count="1"><cacheField name="Hours" numFmtId="0"><sharedItems'
        ' containsSemiMixedTypes="0" containsString="0" containsNumber="1" containsInteger="1"'
        ' minValue="42" maxValue="42"/></cacheField></cacheFields></pivotCacheDefinition>'
    )
    records = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<pivotCacheRecords xmlns="{_SML}" count="1"><r><n v="42"/></r></pivotCacheRecords>'
    )
    return _extend(
        _base(FileKind.XLSX),
        parts={
            "xl/pivotCache/pivotCacheDefinition1.xml": definition.encode(),
            "xl/pivotCache/pivotCacheRecords1.xml": records.encode(),
        },
        rels={
            "xl/_rels/workbook.xml.rels": [
                _rel(
                    "rIdPivot",
                    f"{_OD}/pivotCacheDefinition",
                    "pivotCache/pivotCacheDefinition1.xml",
                )
            ],
            "xl/pivotCache/_rels/pivotCacheDefinition1.xml.rels": [
                _rel("rId1", f"{_OD}/pivotCacheRecords", "pivotCacheRecords1.xml")
            ],
        },
        types=[
            _override(
                "xl/pivotCache/pivotCacheDefinition1.xml",
                _CT + "spreadsheetml.pivotCacheDefinition+xml",
            ),
            _override(
                "xl/pivotCache/pivotCacheRecords1.xml", _CT + "spreadsheetml.pivotCacheRecords+xml"
            ),
        ],
        patches={
            "xl/workbook.xml": _before(
                b"</workbook>",
                f'<pivotCaches xmlns:r="{_OD}"><pivotCache cacheId="1" r:id="rIdPivot"/>'
                "</pivotCaches>",
            )
        },
    )


def test_pivot_cache_loses_who_refreshed_it_and_when() -> None:
    cleaned = _check(FileKind.XLSX, _xlsx_pivot_cache())
    definition = _parts(cleaned)["xl/pivotCache/pivotCacheDefinition1.xml"]
    assert b'refreshedBy=""' in definition
    assert b"refreshedDate" not in definition and b"2024-03-01" not in definition
    assert b'<cacheField name="Hours"' in definition  # what the pivot shows stays
    assert "xl/pivotCache/pivotCacheRecords1.xml" in _parts(cleaned)


_W15 = "http://schemas.microsoft.com/office/word/2012/wordml"
_PEOPLE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<w15:people xmlns:w15="{_W15}"><w15:person w15:author="{NAME}">'
    f'<w15:presenceInfo w15:providerId="AD" w15:userId="S::{ACCOUNT}@example.org::1"/>'
    "</w15:person></w15:people>"
)


def _docx_people() -> bytes:
    """Word's list of people, where Word writes it, and a second one under another name whose
    type is only the generic XML one (a tool that does not know the part)."""
    people_rel = "http://schemas.microsoft.com/office/2011/relationships/people"
    return _extend(
        _base(FileKind.DOCX),
        parts={"word/people.xml": _PEOPLE.encode(), "word/people1.xml": _PEOPLE.encode()},
        rels={
            "word/_rels/document.xml.rels": [
                _rel("rIdPeople", people_rel, "people.xml"),
                _rel("rIdPeople1", people_rel, "people1.xml"),
            ]
        },
        types=[_override("word/people.xml", _CT + "wordprocessingml.people+xml")],
    )


def test_word_people_parts_are_dropped_whatever_their_name() -> None:
    source = _docx_people()
    cleaned = _check(FileKind.DOCX, source)
    assert not any("people" in name for name in _parts(cleaned))


_X18 = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"
_PERSON_ID = "{5B0B1E44-2A4C-4F0B-8E38-6B2D8F7C1A90}"


def _xlsx_threaded_comment_persons() -> bytes:
    """Excel's persons of threaded comments, written with single quotes (valid XML, and what a
    regular expression for ``displayName="..."`` does not see)."""
    persons = (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
        f"<personList xmlns='{_X18}'><person displayName='{NAME}' id='{_PERSON_ID}'"
        f" userId='{ACCOUNT}@example.org' providerId='AD'/></personList>"
    )
    threaded = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<ThreadedComments xmlns="{_X18}"><threadedComment ref="A1" dT="2024-03-01T10:00:00.00"'
        f' personId="{_PERSON_ID}" id="{{0A1B2C3D-0000-4000-8000-000000000001}}">'
        "<text>Ask payroll</text></threadedComment></ThreadedComments>"
    )
    rel = "http://schemas.microsoft.com/office/2017/10/relationships/"
    return _extend(
        _base(FileKind.XLSX),
        parts={
            "xl/persons/person.xml": persons.encode(),
            "xl/threadedComments/threadedComment1.xml": threaded.encode(),
        },
        rels={
            "xl/_rels/workbook.xml.rels": [_rel("rIdPerson", rel + "person", "persons/person.xml")],
            "xl/worksheets/_rels/sheet1.xml.rels": [
                _rel(
                    "rIdThread", rel + "threadedComment", "../threadedComments/threadedComment1.xml"
                )
            ],
        },
        types=[
            _override("xl/persons/person.xml", "application/vnd.ms-excel.person+xml"),
            _override(
                "xl/threadedComments/threadedComment1.xml",
                "application/vnd.ms-excel.threadedcomments+xml",
            ),
        ],
    )


def test_threaded_comment_persons_keep_only_their_ids() -> None:
    cleaned = _check(FileKind.XLSX, _xlsx_threaded_comment_persons())
    parts = _parts(cleaned)
    persons = SafeET.fromstring(parts["xl/persons/person.xml"])
    assert [dict(person.attrib) for person in persons] == [{"id": _PERSON_ID, "displayName": ""}]
    threaded = parts["xl/threadedComments/threadedComment1.xml"]
    assert b"Ask payroll" in threaded and b'dT="1980-01-01T00:00:00Z"' in threaded


_RSID = "00C0FFEE"


def _docx_rsids_under_another_prefix() -> bytes:
    """Word's revision ids, in a document written by a tool that names Word's namespace ns0
    (as Python's ElementTree does), and in settings, with the rsid values."""
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<ns0:document xmlns:ns0="{_W}"><ns0:body>'
        f'<ns0:p ns0:rsidR="{_RSID}" ns0:rsidRDefault="{_RSID}"><ns0:r ns0:rsidRPr="{_RSID}">'
        "<ns0:t>The body text of the evidence.</ns0:t></ns0:r>"
        f'<ns0:ins ns0:id="1" ns0:author="{NAME}" ns0:date="2024-03-01T10:00:00Z"><ns0:r>'
        "<ns0:t> Added later.</ns0:t></ns0:r></ns0:ins></ns0:p>"
        f'<ns0:sectPr ns0:rsidR="{_RSID}"/></ns0:body></ns0:document>'
    )
    return _extend(
        _base(FileKind.DOCX),
        parts={"word/document.xml": document.encode()},
        patches={
            "word/settings.xml": _before(
                b"</w:settings>",
                f'<w:rsids><w:rsidRoot w:val="{_RSID}"/><w:rsid w:val="{_RSID}"/></w:rsids>',
            )
        },
    )


def test_rsids_and_change_authors_are_removed_under_any_prefix() -> None:
    cleaned = _check(FileKind.DOCX, _docx_rsids_under_another_prefix(), (*NEEDLES, _RSID.lower()))
    parts = _parts(cleaned)
    for name, body in parts.items():
        assert b"rsid" not in body, name
    assert b"2024-03-01" not in parts["word/document.xml"]
    text = [p.text for p in docx.Document(io.BytesIO(cleaned)).paragraphs]
    assert text[0].startswith("The body text of the evidence.")


def _docx_tracked_change_in_utf16() -> bytes:
    """A part in UTF-16 (which XML allows, with its byte order mark): a byte pattern written
    for UTF-8 finds nothing in it."""
    document = (
        '<?xml version="1.0" encoding="UTF-16" standalone="yes"?>'
        f'<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>The body text of the evidence.'
        f'</w:t></w:r><w:del w:id="1" w:author="{NAME}" w:date="2024-03-01T10:00:00Z"><w:r>'
        "<w:delText> An earlier sentence.</w:delText></w:r></w:del></w:p></w:body></w:document>"
    )
    return _extend(
        _base(FileKind.DOCX),
        parts={"word/document.xml": b"\xff\xfe" + document.encode("utf-16-le")},
    )


def test_a_part_in_utf16_loses_its_change_authors() -> None:
    cleaned = _check(FileKind.DOCX, _docx_tracked_change_in_utf16())
    document = _parts(cleaned)["word/document.xml"]
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"')
    assert b'w:author=""' in document and b"2024" not in document
    assert b"An earlier sentence." in document  # what was deleted is content: it stays


def _docx_paths_in_attributes_and_comments() -> bytes:
    """What older Word versions write for an inserted picture (its full path as the
    description, here with a character reference), and an XML comment and a processing
    instruction naming the author."""
    drawing = (
        '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/'
        'drawingml/2006/wordprocessingDrawing"><wp:extent cx="9525" cy="9525"/>'
        f'<wp:docPr id="1" name="Picture 1" descr="C&#58;\\Users\\{ACCOUNT}\\Pictures\\x.jpg"/>'
        "</wp:inline></w:drawing></w:r></w:p>"
    )
    note = f"<!-- saved by {NAME} --><?author {NAME}?>"
    return _extend(
        _base(FileKind.DOCX),
        patches={"word/document.xml": _after(rb"<w:body>", note + drawing)},
    )


def test_paths_in_attribute_values_comments_and_instructions_are_removed() -> None:
    cleaned = _check(FileKind.DOCX, _docx_paths_in_attributes_and_comments())
    document = _parts(cleaned)["word/document.xml"]
    assert b'descr=""' in document and b'name="Picture 1"' in document
    assert b"<!--" not in document and b"<?author" not in document


_DEVMODE = f"{ACCOUNT}-HR-Printer".encode("utf-16-le").ljust(64, b"\x00") + b"\x01\x04" + bytes(150)


def _xlsx_printer_settings_under_another_name() -> bytes:
    """Printer settings outside Excel's printerSettings folder, with the generic binary type."""
    return _extend(
        _base(FileKind.XLSX),
        parts={"xl/printer1.bin": _DEVMODE},
        rels={
            "xl/worksheets/_rels/sheet1.xml.rels": [
                _rel("rIdPrinter", f"{_OD}/printerSettings", "../printer1.bin")
            ]
        },
        types=['<Default Extension="bin" ContentType="application/octet-stream"/>'],
        patches={
            "xl/worksheets/sheet1.xml": _before(
                b"</worksheet>",
                f'<pageSetup xmlns:r="{_OD}" orientation="landscape" r:id="rIdPrinter"/>',
            )
        },
    )


def test_printer_settings_are_dropped_whatever_their_name() -> None:
    cleaned = _check(FileKind.XLSX, _xlsx_printer_settings_under_another_name())
    parts = _parts(cleaned)
    assert not any(name.endswith(".bin") for name in parts)
    sheet = parts["xl/worksheets/sheet1.xml"]
    assert b"rIdPrinter" not in sheet and b'orientation="landscape"' in sheet


def _docx_custom_xml_in_another_folder() -> bytes:
    """Custom XML data (a document management system's owner) outside the customXml folder."""
    item = f'<?xml version="1.0"?><dms><owner>{NAME}</owner><path>{HOME}</path></dms>'
    return _extend(
        _base(FileKind.DOCX),
        parts={"customXmlData/item1.xml": item.encode()},
        rels={
            "word/_rels/document.xml.rels": [
                _rel("rIdDms", f"{_OD}/customXml", "../customXmlData/item1.xml")
            ]
        },
    )


def test_custom_xml_is_dropped_whatever_its_folder() -> None:
    cleaned = _check(FileKind.DOCX, _docx_custom_xml_in_another_folder())
    assert not any("custom" in name.lower() for name in _parts(cleaned))


def _xlsx_comment_author_with_a_prefix() -> bytes:
    """An Excel comment whose parts name SpreadsheetML's namespace with a prefix."""
    comments = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<x:comments xmlns:x="{_SML}"><x:authors><x:author>{NAME}</x:author></x:authors>'
        '<x:commentList><x:comment ref="A1" authorId="0"><x:text><x:t>Never paid</x:t>'
        "</x:text></x:comment></x:commentList></x:comments>"
    )
    return _extend(
        _base(FileKind.XLSX),
        parts={"xl/comments1.xml": comments.encode()},
        rels={
            "xl/worksheets/_rels/sheet1.xml.rels": [
                _rel("rIdComments", f"{_OD}/comments", "../comments1.xml")
            ]
        },
        types=[_override("xl/comments1.xml", _CT + "spreadsheetml.comments+xml")],
    )


def test_excel_comment_authors_are_emptied_under_any_prefix() -> None:
    cleaned = _check(FileKind.XLSX, _xlsx_comment_author_with_a_prefix())
    comments = _parts(cleaned)["xl/comments1.xml"]
    assert b"<x:authors><x:author/></x:authors>" in comments and b"Never paid" in comments


def _pptx_comment_authors_in_single_quotes() -> bytes:
    """PowerPoint's comment authors, single-quoted, with the account in an extension."""
    authors = (
        f"<?xml version='1.0' encoding='UTF-8' standalone='yes'?><p:cmAuthorLst xmlns:p='{_PML}'>"
        f"<p:cmAuthor id='1' name='{NAME}' initials='AR' lastIdx='1' clrIdx='0'><p:extLst>"
        "<p:ext uri='{19B8F6BF-5375-455C-9EA6-DF929625EA0E}'><p15:presenceInfo"
        " xmlns:p15='http://schemas.microsoft.com/office/powerpoint/2012/main'"
        f" userId='{ACCOUNT}@example.org' providerId='AD'/></p:ext></p:extLst></p:cmAuthor>"
        "</p:cmAuthorLst>"
    )
    comments = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:cmLst xmlns:p="{_PML}">'
        '<p:cm authorId="1" dt="2024-03-01T10:00:00.000" idx="1"><p:pos x="10" y="10"/>'
        "<p:text>Check the March figures</p:text></p:cm></p:cmLst>"
    )
    return _extend(
        _base(FileKind.PPTX),
        parts={
            "ppt/commentAuthors.xml": authors.encode(),
            "ppt/comments/comment1.xml": comments.encode(),
        },
        rels={
            "ppt/_rels/presentation.xml.rels": [
                _rel("rIdAuthors", f"{_OD}/commentAuthors", "commentAuthors.xml")
            ],
            "ppt/slides/_rels/slide1.xml.rels": [
                _rel("rIdComments", f"{_OD}/comments", "../comments/comment1.xml")
            ],
        },
        types=[
            _override("ppt/commentAuthors.xml", _CT + "presentationml.commentAuthors+xml"),
            _override("ppt/comments/comment1.xml", _CT + "presentationml.comments+xml"),
        ],
    )


def test_powerpoint_comment_authors_keep_only_their_ids() -> None:
    cleaned = _check(FileKind.PPTX, _pptx_comment_authors_in_single_quotes())
    parts = _parts(cleaned)
    (author,) = SafeET.fromstring(parts["ppt/commentAuthors.xml"])
    assert dict(author.attrib) == {
        "id": "1",
        "lastIdx": "1",
        "clrIdx": "0",
        "name": "",
        "initials": "",
    }
    assert len(author) == 0  # no extension, no presence information
    assert b"Check the March figures" in parts["ppt/comments/comment1.xml"]


def _with_external_links(kind: FileKind, data: bytes) -> bytes:
    """A link to a file on the reporter's disk and a picture linked from it (not embedded)."""
    hyperlink = f"{_OD}/hyperlink"
    target = f"file:///C:/Users/{ACCOUNT}/Documents/notes.docx"
    picture = f"file:///home/{ACCOUNT.lower()}/Pictures/badge.png"
    rels = {
        FileKind.DOCX: "word/_rels/document.xml.rels",
        FileKind.XLSX: "xl/worksheets/_rels/sheet1.xml.rels",
        FileKind.PPTX: "ppt/slides/_rels/slide1.xml.rels",
    }[kind]
    return _extend(
        data,
        rels={
            rels: [
                _rel("rIdLink", hyperlink, target, external=True),
                _rel("rIdPicture", f"{_OD}/image", picture, external=True),
            ]
        },
    )


@pytest.mark.parametrize("kind", [FileKind.DOCX, FileKind.XLSX, FileKind.PPTX])
def test_every_external_relationship_is_removed(kind: FileKind) -> None:
    _check(kind, _with_external_links(kind, _base(kind)))


def _with_unknown_part(kind: FileKind, data: bytes) -> bytes:
    """A part of a type the cleaner does not know (an add-in's data), and custom properties."""
    main = {
        FileKind.DOCX: "word/_rels/document.xml.rels",
        FileKind.XLSX: "xl/_rels/workbook.xml.rels",
        FileKind.PPTX: "ppt/_rels/presentation.xml.rels",
    }[kind]
    folder = main.split("/", 1)[0]
    custom = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Properties'
        ' xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
        ' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Owner">'
        f"<vt:lpwstr>{NAME}</vt:lpwstr></property></Properties>"
    )
    return _extend(
        data,
        parts={
            f"{folder}/addin/state.xml": f"<state user='{ACCOUNT}'/>".encode(),
            "docProps/custom.xml": custom.encode(),
        },
        rels={
            main: [_rel("rIdAddin", "http://example.org/addin/state", "addin/state.xml")],
            "_rels/.rels": [_rel("rIdCustom", f"{_OD}/custom-properties", "docProps/custom.xml")],
        },
        types=[
            _override(f"{folder}/addin/state.xml", "application/vnd.example.addin-state+xml"),
            _override("docProps/custom.xml", _CT + "custom-properties+xml"),
        ],
    )


@pytest.mark.parametrize("kind", [FileKind.DOCX, FileKind.XLSX, FileKind.PPTX])
def test_unknown_parts_and_custom_properties_are_dropped(kind: FileKind) -> None:
    cleaned = _check(kind, _with_unknown_part(kind, _base(kind)))
    parts = _parts(cleaned)
    assert not any("addin" in name or "custom" in name for name in parts)
    assert parts["docProps/core.xml"] == sanitize_ooxml._BLANK_CORE
    assert parts["docProps/app.xml"] == sanitize_ooxml._BLANK_APP


#: Every sample above, by kind, and one file of each kind carrying all of them at once.
_SAMPLES: dict[FileKind, list[Callable[[], bytes]]] = {
    FileKind.DOCX: [
        _docx_attached_template_and_doc_vars,
        _docx_people,
        _docx_rsids_under_another_prefix,
        _docx_tracked_change_in_utf16,
        _docx_custom_xml_in_another_folder,
        _docx_paths_in_attributes_and_comments,
    ],
    FileKind.XLSX: [
        _xlsx_abs_path_and_file_sharing,
        _xlsx_pivot_cache,
        _xlsx_threaded_comment_persons,
        _xlsx_printer_settings_under_another_name,
        _xlsx_comment_author_with_a_prefix,
    ],
    FileKind.PPTX: [_pptx_comment_authors_in_single_quotes],
}


# --- Files written by LibreOffice -------------------------------------------------------------

_OFFICE_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
    ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
    ' xmlns:xlink="http://www.w3.org/1999/xlink"'
    ' xmlns:officeooo="http://openoffice.org/2009/office" office:version="1.3"'
)
_META = (
    f"<office:meta><meta:initial-creator>{NAME}</meta:initial-creator>"
    f"<dc:creator>{NAME}</dc:creator><dc:title>Notes of {NAME}</dc:title>"
    '<meta:template xlink:type="simple"'
    f' xlink:href="file:///home/{ACCOUNT.lower()}/Templates/Grievance.ott" xlink:title="{NAME}"/>'
    f'<meta:user-defined meta:name="Owner">{NAME}</meta:user-defined></office:meta>'
)
_ANNOTATION = (
    f"<dc:creator>{NAME}</dc:creator><dc:date>2024-03-01T10:00:00</dc:date>"
    "<text:p>A note on the side</text:p>"
)
_LINK = (
    f'<text:a xlink:type="simple" xlink:href="file:///C:/Users/{ACCOUNT}/Documents/pay.docx">'
    "a link</text:a>"
)
_FLAT_ODF = {
    FileKind.DOCX: (
        "fodt",
        f'<office:document {_OFFICE_NS} office:mimetype="application/vnd.oasis.opendocument.text">'
        f"{_META}<office:body><office:text><text:tracked-changes>"
        '<text:changed-region text:id="c1"><text:insertion><office:change-info>'
        f"<dc:creator>{NAME}</dc:creator><dc:date>2024-03-01T10:00:00</dc:date>"
        "</office:change-info></text:insertion></text:changed-region></text:tracked-changes>"
        '<text:p>The body text of the evidence. <text:change-start text:change-id="c1"/>Added'
        f' later.<text:change-end text:change-id="c1"/><office:annotation>{_ANNOTATION}'
        f"</office:annotation></text:p><text:p>{_LINK}</text:p>"
        '<text:p><draw:frame draw:name="badge" svg:width="2cm" svg:height="2cm"><draw:image'
        f' xlink:href="file:///home/{ACCOUNT.lower()}/Pictures/badge.png" xlink:type="simple"/>'
        "</draw:frame></text:p></office:text></office:body></office:document>",
    ),
    FileKind.XLSX: (
        "fods",
        f'<office:document {_OFFICE_NS} xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"'
        ' office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
        f'{_META}<office:body><office:spreadsheet><table:table table:name="Hours">'
        '<table:table-row><table:table-cell office:value-type="string">'
        f"<text:p>Unpaid overtime hours</text:p><office:annotation>{_ANNOTATION}"
        '</office:annotation></table:table-cell><table:table-cell office:value-type="float"'
        ' office:value="42"><text:p>42</text:p></table:table-cell></table:table-row>'
        f'<table:table-row><table:table-cell office:value-type="string"><text:p>{_LINK}'
        "</text:p></table:table-cell><table:table-cell"
        f" table:formula=\"of:=['file:///home/{ACCOUNT.lower()}/Secret.ods'#$Sheet1.A1]\""
        ' office:value-type="float" office:value="7"><text:p>7</text:p></table:table-cell>'
        "</table:table-row></table:table></office:spreadsheet></office:body></office:document>",
    ),
    FileKind.PPTX: (
        "fodp",
        f"<office:document {_OFFICE_NS}"
        ' office:mimetype="application/vnd.oasis.opendocument.presentation">'
        f'{_META}<office:body><office:presentation><draw:page draw:name="one">'
        '<draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box>'
        f"<text:p>Three near misses in March</text:p><text:p>{_LINK}</text:p></draw:text-box>"
        '</draw:frame><officeooo:annotation svg:x="1cm" svg:y="1cm" svg:width="1cm"'
        f' svg:height="1cm">{_ANNOTATION}</officeooo:annotation></draw:page>'
        "</office:presentation></office:body></office:document>",
    ),
}
#: The user profile's name: LibreOffice writes it as the last modifier and as comment authors.
_PROFILE = (
    '<?xml version="1.0" encoding="UTF-8"?><oor:items xmlns:oor="http://openoffice.org/2001/registry"'
    ' xmlns:xs="http://www.w3.org/2001/XMLSchema">'
    + "".join(
        '<item oor:path="/org.openoffice.UserProfile/Data">'
        f'<prop oor:name="{key}" oor:op="fuse"><value>{value}</value></prop></item>'
        for key, value in (("givenname", "Alice"), ("sn", "Reporter"), ("initials", "AR"))
    )
    + "</oor:items>"
)
_BODY_TEXT = {
    FileKind.DOCX: ["The body text of the evidence.", "Added later.", "A note on the side"],
    FileKind.XLSX: ["Unpaid overtime hours", "42", "A note on the side"],
    FileKind.PPTX: ["Three near misses in March"],
}

needs_soffice = pytest.mark.skipif(
    shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed"
)


class _LibreOffice:
    def __init__(self, root: Path) -> None:
        self.root = root
        profile = root / f"profile-{ACCOUNT}"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE)
        self.profile = profile.as_uri()

    def convert(self, target: str, sources: list[Path], outdir: Path) -> None:
        outdir.mkdir(exist_ok=True)
        command = [
            "soffice",
            f"-env:UserInstallation={self.profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            target,
            "--outdir",
            str(outdir),
            *map(str, sources),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def libreoffice(tmp_path_factory: pytest.TempPathFactory) -> _LibreOffice:
    return _LibreOffice(tmp_path_factory.mktemp("lo"))


@pytest.fixture(scope="module")
def written_by_libreoffice(libreoffice: _LibreOffice) -> dict[FileKind, bytes]:
    """A docx, an xlsx and a pptx that LibreOffice wrote from flat ODF carrying the name: as
    author, last modifier, title, template path, custom property, comment and change author,
    with a link to a file in the user's folder and a picture linked from the home folder."""
    folder = libreoffice.root / "Users" / ACCOUNT / "Documents"
    folder.mkdir(parents=True)
    written = {}
    for kind, (extension, body) in _FLAT_ODF.items():
        source = folder / f"evidence-{kind.value}.{extension}"
        source.write_text('<?xml version="1.0" encoding="UTF-8"?>' + body)
        libreoffice.convert(kind.value, [source], folder)
        written[kind] = (folder / f"evidence-{kind.value}.{kind.value}").read_bytes()
    return written


@needs_soffice
@pytest.mark.parametrize("kind", [FileKind.DOCX, FileKind.XLSX, FileKind.PPTX])
def test_files_written_by_libreoffice_lose_the_name_and_the_paths(
    kind: FileKind, written_by_libreoffice: dict[FileKind, bytes]
) -> None:
    source = written_by_libreoffice[kind]
    parts = _parts(source)
    # What LibreOffice wrote that carries the name: a meaningful sample, not an empty one.
    assert NAME.encode() in parts["docProps/core.xml"] and "docProps/custom.xml" in parts
    assert any(b'TargetMode="External"' in body for name, body in parts.items() if ".rels" in name)
    cleaned = _check(kind, source)
    for text in _BODY_TEXT[kind]:
        assert any(text.encode() in body for body in _parts(cleaned).values()), text
    # Content types are written as they came (openpyxl, for one, compares them exactly).
    assert _content_types(cleaned).items() <= _content_types(source).items()
    _open_in_library(kind, cleaned)


def _content_types(data: bytes) -> dict[str, str]:
    """Each part's content type as [Content_Types].xml writes it (rels parts aside)."""
    parts = _parts(data)
    root = SafeET.fromstring(parts["[Content_Types].xml"])
    defaults = {
        el.get("Extension", ""): el.get("ContentType", "") for el in root if "Default" in el.tag
    }
    overrides = {
        el.get("PartName", "").lstrip("/"): el.get("ContentType", "")
        for el in root
        if "Override" in el.tag
    }
    return {
        name: overrides.get(name, defaults.get(name.rsplit(".", 1)[-1], ""))
        for name in parts
        if name != "[Content_Types].xml" and not name.endswith(".rels")
    }


def _open_in_library(kind: FileKind, data: bytes) -> None:
    """The cleaned file opens in python-docx, openpyxl or python-pptx with its text."""
    if kind is FileKind.DOCX:
        texts = [p.text for p in docx.Document(io.BytesIO(data)).paragraphs]
        assert any(text.startswith(_BODY_TEXT[kind][0]) for text in texts), texts
    elif kind is FileKind.XLSX:
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        assert sheet is not None
        assert sheet["A1"].value == _BODY_TEXT[kind][0] and sheet["B1"].value == 42
    else:
        (slide,) = pptx.Presentation(io.BytesIO(data)).slides
        texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
        assert any(text.startswith(_BODY_TEXT[kind][0]) for text in texts), texts


@needs_soffice
def test_cleaned_files_still_open_in_libreoffice_with_their_text(
    libreoffice: _LibreOffice, written_by_libreoffice: dict[FileKind, bytes]
) -> None:
    """LibreOffice opens every cleaned file (those it wrote, and the hand-made samples, one
    file per kind carrying all of them) and shows the text; one soffice run for all."""
    folder = libreoffice.root / "cleaned"
    folder.mkdir()
    sources = []
    for kind, data in written_by_libreoffice.items():
        path = folder / f"libreoffice-{kind.value}.{kind.value}"
        path.write_bytes(_clean(kind, data))
        sources.append((kind, path))
    for kind, samples in _SAMPLES.items():
        for index, sample in enumerate(samples):
            path = folder / f"{kind.value}-sample{index}.{kind.value}"
            path.write_bytes(
                _clean(kind, _with_unknown_part(kind, _with_external_links(kind, sample())))
            )
            sources.append((kind, path))
    # Impress's HTML export leaves out text boxes: presentations are read back as flat ODF.
    shown_as = {FileKind.DOCX: "html", FileKind.XLSX: "html", FileKind.PPTX: "fodp"}
    for target in sorted(set(shown_as.values())):
        group = [path for kind, path in sources if shown_as[kind] == target]
        libreoffice.convert(target, group, folder / target)
    for kind, path in sources:
        shown_path = folder / shown_as[kind] / f"{path.stem}.{shown_as[kind]}"
        shown = html.unescape(shown_path.read_text(errors="replace"))
        expected = _BODY_TEXT[kind] if path.stem.startswith("libreoffice") else _BODY_TEXT[kind][:1]
        for text in expected:
            assert text in shown, (path.name, text)
        assert not [needle for needle in NEEDLES if needle in shown.lower()], path.name


# --- The filter writes back what it reads -----------------------------------------------------

_XML_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters=":/\\", min_codepoint=0x20
    )
    | st.sampled_from(["\n", "\t", "\r", "&", "<", ">", '"', "'", "]"]),
    max_size=12,
)


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(["t:a", "t:b", "c"]))
    attributes = draw(st.dictionaries(st.sampled_from(["t:v", "k", "t:w"]), _XML_TEXT, max_size=3))
    pairs = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    children = draw(st.lists(_trees(depth + 1), max_size=3)) if depth < 3 else []
    texts = draw(st.lists(_XML_TEXT, min_size=len(children) + 1, max_size=len(children) + 1))
    inner = escape(texts[0]) + "".join(
        c + escape(t) for c, t in zip(children, texts[1:], strict=True)
    )
    return f"<{tag}{pairs}>{inner}</{tag}>"


def _shape(el: Element) -> tuple[object, ...]:
    return (
        el.tag,
        sorted(el.attrib.items()),
        el.text or "",
        [(_shape(child), child.tail or "") for child in el],
    )


@settings(max_examples=100, deadline=None)
@given(_trees())
def test_the_part_filter_writes_back_exactly_what_it_read(tree: str) -> None:
    """Any text and attribute value, with quotes, ampersands, brackets, tabs, line feeds and
    carriage returns, comes out of the filter as it went in, under the same prefixes."""
    body = f'<?xml version="1.0" encoding="UTF-8"?><r xmlns:t="urn:test">{tree}</r>'.encode()
    for encoded in (
        body,
        b"\xff\xfe" + body.decode().replace("UTF-8", "UTF-16").encode("utf-16-le"),
    ):
        written = sanitize_ooxml._filtered_part(encoded, "application/xml", set())
        assert _shape(SafeET.fromstring(written)) == _shape(SafeET.fromstring(body))
        prefixes = set(re.findall(rb"</?(\w+):", written))
        assert prefixes <= {b"t"}, prefixes
