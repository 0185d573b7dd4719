"""Attachment cleaning: metadata is gone from the output bytes, content survives, and every
bad input ends in one of the two declared errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable

import docx
import docx.opc.packuri
import docx.opc.part
import docx.shared
import openpyxl
import pikepdf
import pptx
import pptx.opc.package
import pptx.opc.packuri
import pptx.util
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.comments import Comment
from openpyxl.packaging.custom import StringProperty
from PIL import Image
from pptx.opc.constants import CONTENT_TYPE as PptxContentType
from pptx.opc.constants import RELATIONSHIP_TYPE as PptxRelType
from pptx.shapes.picture import Picture as PptxPicture

from portal.services.attachments import sanitize
from portal.services.attachments.sanitize import clean_attachment
from portal.services.attachments.sanitize import detect as sanitize_detect
from portal.services.attachments.sanitize import images as sanitize_images
from portal.services.attachments.sanitize import ooxml as sanitize_ooxml
from portal.services.attachments.sanitize.core import (
    CannotClean,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
)
from tests.support.samples import (
    AUTHOR,
    COMPANY,
    OFFICE_REL,
    OOXML_CT,
    docx_sample,
    exif_with_gps,
    gradient,
    jpeg_with_gps,
    pdf_with_author,
    png_with_text,
)


def _has_no_trace(data: bytes) -> None:
    for needle in (AUTHOR, COMPANY, "SpyCam"):
        assert needle.encode() not in data
        assert needle.encode("utf-16-le") not in data
        assert needle.encode("utf-16-be") not in data


# --- Images ---------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_and_comment_and_keeps_its_pixels() -> None:
    source = jpeg_with_gps()
    assert AUTHOR.encode() in source and b"SpyCam" in source
    cleaned = clean_attachment("IMG_0001.JPG", "image/jpeg", source)
    _has_no_trace(cleaned.data)
    assert b"Exif" not in cleaned.data and b"http://ns.adobe.com/xap" not in cleaned.data
    assert cleaned.kind is FileKind.JPEG
    assert cleaned.content_type == "image/jpeg"
    assert cleaned.filename == "IMG_0001.jpg"
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.size == (64, 48)
        assert not image.getexif()
        assert "comment" not in image.info and "icc_profile" not in image.info
        pixel = image.convert("RGB").getpixel((20, 20))
    assert isinstance(pixel, tuple)
    expected = (80, 100, 100)
    assert all(abs(a - b) < 12 for a, b in zip(pixel, expected, strict=True))


def test_exif_orientation_is_applied_before_it_is_dropped() -> None:
    cleaned = clean_attachment("rotated.jpg", "", jpeg_with_gps(orientation=6))
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.size == (48, 64)  # turned upright: width and height swapped
        assert not image.getexif()


def test_png_loses_text_chunks_xmp_and_exif() -> None:
    source = png_with_text()
    assert AUTHOR.encode() in source
    cleaned = clean_attachment("screen.png", "image/png", source)
    _has_no_trace(cleaned.data)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"):
        assert chunk not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.convert("RGB").tobytes() == gradient().tobytes()  # lossless


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
def test_webp_and_gif_are_reencoded_without_metadata(fmt: str) -> None:
    out = io.BytesIO()
    if fmt == "GIF":
        gradient().save(out, "GIF", comment=AUTHOR.encode())
    else:
        gradient().save(out, "WEBP", exif=exif_with_gps(), xmp=AUTHOR.encode())
    assert AUTHOR.encode() in out.getvalue()
    cleaned = clean_attachment(f"picture.{fmt.lower()}", f"image/{fmt.lower()}", out.getvalue())
    _has_no_trace(cleaned.data)
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.format == fmt and image.size == (64, 48)


def test_animated_gif_is_refused() -> None:
    out = io.BytesIO()
    frames = [gradient(), gradient().rotate(180)]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(CannotClean) as refused:
        clean_attachment("a.gif", "image/gif", out.getvalue())
    assert refused.value.reason is CleanFailure.ANIMATED


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanitize_images, "MAX_IMAGE_PIXELS", 1000)
    out = io.BytesIO()
    Image.new("L", (100, 100)).save(out, "PNG")
    with pytest.raises(CannotClean) as refused:
        clean_attachment("big.png", "image/png", out.getvalue())
    assert refused.value.reason is CleanFailure.TOO_MANY_PIXELS


def test_huge_dimensions_in_a_tiny_png_are_refused() -> None:
    # A valid header claiming 100000 x 100000 pixels: Pillow's own bomb error is mapped too.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(CannotClean) as refused:
        clean_attachment("bomb.png", "image/png", png)
    assert refused.value.reason is CleanFailure.TOO_MANY_PIXELS


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_loses_info_xmp_and_javascript_and_keeps_pages_and_text() -> None:
    source = pdf_with_author()
    assert AUTHOR.encode() in source and b"/JavaScript" in source
    with pikepdf.open(io.BytesIO(source)) as original:
        original_ids = [bytes(part) for part in original.trailer.ID]
    cleaned = clean_attachment("minutes.pdf", "application/pdf", source)
    _has_no_trace(cleaned.data)
    assert b"/Author" not in cleaned.data and b"xmpmeta" not in cleaned.data
    assert b"/JavaScript" not in cleaned.data
    assert not any(part in cleaned.data for part in original_ids)  # the file id is new
    with pikepdf.open(io.BytesIO(cleaned.data)) as pdf:
        assert len(pdf.pages) == 1
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root
        contents = pdf.pages[0].obj.Contents
        assert isinstance(contents, pikepdf.Stream)
        assert b"(Hello evidence) Tj" in contents.read_bytes()


def test_pdf_keeps_no_earlier_revision() -> None:
    # An incremental update appends; the old /Info stays in the file unless it is rewritten.
    source = pdf_with_author()
    with pikepdf.open(io.BytesIO(source)) as pdf:
        pdf.docinfo["/Author"] = "Someone Else"
        out = io.BytesIO()
        pdf.save(out)
    cleaned = clean_attachment("x.pdf", "", out.getvalue())
    _has_no_trace(cleaned.data)
    assert b"Someone Else" not in cleaned.data


def test_encrypted_pdf_is_refused() -> None:
    for user_password in ("secret", ""):
        out = io.BytesIO()
        with pikepdf.open(io.BytesIO(pdf_with_author())) as pdf:
            pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=user_password))
        with pytest.raises(CannotClean) as refused:
            clean_attachment("locked.pdf", "application/pdf", out.getvalue())
        assert refused.value.reason is CleanFailure.ENCRYPTED


# --- Office ---------------------------------------------------------------------------------


def test_docx_loses_creator_custom_properties_and_comment_authors() -> None:
    source = docx_sample()
    cleaned = clean_attachment("report.docx", OOXML_CT + "wordprocessingml.document", source)
    assert cleaned.kind is FileKind.DOCX
    with zipfile.ZipFile(io.BytesIO(cleaned.data)) as archive:
        names = archive.namelist()
        parts = {name: archive.read(name) for name in names}
        dates = {info.date_time for info in archive.infolist()}
    assert names[0] == "[Content_Types].xml"
    assert "docProps/custom.xml" not in names and "customXml/item1.xml" not in names
    for name, body in parts.items():
        _has_no_trace(body)
        assert b"2024-03-01" not in body, name
        assert b"rsid" not in body, name
    assert b"The evidence paragraph" in parts["word/document.xml"]
    assert b"added" in parts["word/document.xml"]  # the tracked change stays, its author goes
    assert b"A comment" in parts["word/comments.xml"]
    assert b"custom.xml" not in parts["[Content_Types].xml"]
    assert b"custom" not in parts["_rels/.rels"]
    assert b"customXml" not in parts["word/_rels/document.xml.rels"]
    assert b"comments.xml" in parts["word/_rels/document.xml.rels"]
    assert dates == {(1980, 1, 1, 0, 0, 0)}
    with Image.open(io.BytesIO(parts["word/media/image1.jpeg"])) as image:
        assert not image.getexif()


def test_macro_enabled_docm_is_refused() -> None:
    docm = docx_sample(main_type="application/vnd.ms-word.document.macroEnabled.main+xml")
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("report.docm", "", docm)
    assert refused.value.reason is TypeRefusal.MACROS


def test_vba_project_in_a_docx_is_refused() -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_sample(extra=False))) as source,
        zipfile.ZipFile(out, "w") as archive,
    ):
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr("word/vbaProject.bin", b"\x00" * 10)
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("report.docx", "", out.getvalue())
    assert refused.value.reason is TypeRefusal.MACROS


def test_zip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", b" " * (20 * 1024 * 1024))
    with pytest.raises(CannotClean) as refused:
        clean_attachment("bomb.docx", "", out.getvalue())
    assert refused.value.reason is CleanFailure.ARCHIVE_TOO_LARGE
    # Too many entries, each one small.
    monkeypatch.setattr(sanitize_ooxml, "MAX_ZIP_ENTRIES", 5)
    with pytest.raises(CannotClean) as refused:
        clean_attachment("many.docx", "", docx_sample())
    assert refused.value.reason is CleanFailure.ARCHIVE_TOO_LARGE


def test_plain_zip_and_legacy_office_are_not_allowed() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("notes.zip", "application/zip", out.getvalue())
    assert refused.value.reason is TypeRefusal.UNSUPPORTED
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("old.doc", "application/msword", ole)
    assert refused.value.reason is TypeRefusal.LEGACY_OFFICE


def test_office_xml_with_a_dtd_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><Types>&a;</Types>',
        )
    with pytest.raises(CannotClean):
        clean_attachment("x.docx", "", out.getvalue())


# --- Office files written by real producers ---------------------------------------------------
# openpyxl, python-docx and python-pptx write the parts their users' files really have (their
# templates come from Word and PowerPoint for the Mac): comments in their own folders, printer
# settings, thumbnails, custom XML, Word's document id. The hand-built zips above only have what
# their author thought of. Where a library has no API for a part Office writes (people lists,
# PowerPoint comments, Excel printer settings, the company), the test adds it to the library's
# own file the way Office lays it out.

_TITLE = "Secret Title Merger-Plan"
_SUBJECT = "Secret Subject Layoffs"
_KEYWORDS = "secret-keyword-hr-case"
_DESCRIPTION = "Secret description by the author"
_COMMENTER = "Carl Commenter-Secret"
_CUSTOM = "EmployeeId-4711-Secret"
_PRINTER = "HR-Floor3-Colour-Secret"
# Naive on purpose: Office core properties are UTC without an offset, and openpyxl, python-pptx
# and python-docx take them so.
_CREATED = dt.datetime(2023, 7, 14, 9, 26, 53)  # noqa: DTZ001
_MODIFIED = dt.datetime(2023, 8, 2, 17, 5, 11)  # noqa: DTZ001
_IDENTIFYING = (
    AUTHOR,
    COMPANY,
    "SpyCam",
    _TITLE,
    _SUBJECT,
    _KEYWORDS,
    _DESCRIPTION,
    _COMMENTER,
    _CUSTOM,
    _PRINTER,
    "2023-07-14",
    "2023-08-02",
)
_ISO_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _found(needle: str, data: bytes) -> bool:
    return any(needle.encode(codec) in data for codec in ("utf-8", "utf-16-le", "utf-16-be"))


def _carries(data: bytes, needle: str) -> bool:
    """Whether ``needle`` is in the file: its raw bytes, any part, or any image's EXIF."""
    if _found(needle, data):
        return True
    for body in _parts(data).values():
        if _found(needle, body):
            return True
        if body.startswith(b"\xff\xd8\xff"):
            with Image.open(io.BytesIO(body)) as image:
                if any(needle in str(value) for value in image.getexif().values()):
                    return True
    return False


def _assert_clean_office(source: bytes, cleaned: bytes, needles: tuple[str, ...]) -> None:
    for needle in needles:
        assert _carries(source, needle), f"the sample does not carry {needle!r}"
        assert not _found(needle, cleaned), f"{needle!r} left in the zip bytes"
    parts = _parts(cleaned)
    for name, body in parts.items():
        for needle in needles:
            assert not _found(needle, body), f"{needle!r} left in {name}"
        # Every time left in an XML part is the neutral one.
        for found in _ISO_TIME.finditer(body):
            assert body[found.start() : found.start() + 20] == b"1980-01-01T00:00:00Z", name
        if body.startswith((b"\xff\xd8\xff", b"\x89PNG")):
            assert b"Exif" not in body, name
            with Image.open(io.BytesIO(body)) as image:
                assert not image.getexif(), name
    with zipfile.ZipFile(io.BytesIO(cleaned)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.comment == b""
    assert parts["docProps/core.xml"] == sanitize_ooxml._BLANK_CORE
    assert parts["docProps/app.xml"] == sanitize_ooxml._BLANK_APP
    for name in parts:
        lowered = name.lower()
        assert "thumbnail" not in lowered and "printersettings" not in lowered, name
        assert not lowered.startswith("customxml/") and lowered != "docprops/custom.xml", name
        assert not lowered.endswith("people.xml"), name
    for name in ("[Content_Types].xml", *(n for n in parts if n.endswith(".rels"))):
        for gone in (b"thumbnail", b"printerSettings", b"custom.xml", b"customXml", b"people"):
            assert gone not in parts[name], (name, gone)


def _rezip(
    data: bytes, patches: dict[str, Callable[[bytes], bytes]], added: dict[str, bytes]
) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for name in source.namelist():
            body = source.read(name)
            archive.writestr(name, patches.get(name, lambda b: b)(body))
        for name, body in added.items():
            archive.writestr(name, body)
    return out.getvalue()


def _with_company(data: bytes) -> bytes:
    def fill(body: bytes) -> bytes:
        filled = re.sub(
            rb"<Company\s*/>|<Company></Company>", f"<Company>{COMPANY}</Company>".encode(), body
        )
        assert filled != body
        return filled.replace(b"<Manager/>", f"<Manager>{AUTHOR}</Manager>".encode())

    return _rezip(data, {"docProps/app.xml": fill}, {})


def _devmode(printer: str) -> bytes:
    """The start of a Windows DEVMODEW: the device name in 32 UTF-16 characters."""
    return printer.encode("utf-16-le").ljust(64, b"\x00") + b"\x01\x04\x00\x06" + b"\x00" * 148


_PERSON_ID = "{4E2B8C1A-3F6D-4A51-9B7E-2C9D0E1F2A3B}"
_EXCEL_2017 = "http://schemas.microsoft.com/office/2017/10/relationships/"
_EXCEL_2018 = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"


def _xlsx_as_excel_saves(data: bytes) -> bytes:
    """Add what Excel 365 writes and openpyxl cannot: printer settings after a page set-up
    (the sheet's <pageSetup> refers to them), and a threaded comment with its person list."""
    sheet_rels = (
        f'<Relationship Id="rIdPrinter" Type="{OFFICE_REL}printerSettings"'
        ' Target="../printerSettings/printerSettings1.bin"/>'
        f'<Relationship Id="rIdThreaded" Type="{_EXCEL_2017}threadedComment"'
        ' Target="../threadedComments/threadedComment1.xml"/></Relationships>'
    )
    workbook_rels = (
        f'<Relationship Id="rIdPerson" Type="{_EXCEL_2017}person"'
        ' Target="persons/person.xml"/></Relationships>'
    )
    types = (
        f'<Default Extension="bin" ContentType="{OOXML_CT}spreadsheetml.printerSettings"/>'
        '<Override PartName="/xl/persons/person.xml"'
        ' ContentType="application/vnd.ms-excel.person+xml"/>'
        '<Override PartName="/xl/threadedComments/threadedComment1.xml"'
        ' ContentType="application/vnd.ms-excel.threadedcomments+xml"/></Types>'
    )
    persons = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<personList xmlns="{_EXCEL_2018}"><person displayName="{_COMMENTER}"'
        f' id="{_PERSON_ID}" userId="{_COMMENTER}@example.org" providerId="AD"/></personList>'
    )
    threaded = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<ThreadedComments xmlns="{_EXCEL_2018}"><threadedComment ref="B1"'
        f' dT="2023-07-14T09:26:53.12" personId="{_PERSON_ID}"'
        ' id="{0A1B2C3D-0000-4000-8000-000000000001}"><text>Ask payroll</text>'
        "</threadedComment></ThreadedComments>"
    )
    namespace = f'xmlns:r="{OFFICE_REL.rstrip("/")}"'.encode()
    return _rezip(
        data,
        {
            "[Content_Types].xml": lambda b: b.replace(b"</Types>", types.encode()),
            "xl/_rels/workbook.xml.rels": lambda b: b.replace(
                b"</Relationships>", workbook_rels.encode()
            ),
            "xl/worksheets/_rels/sheet1.xml.rels": lambda b: b.replace(
                b"</Relationships>", sheet_rels.encode()
            ),
            "xl/worksheets/sheet1.xml": lambda b: b.replace(
                b"<worksheet ", b"<worksheet " + namespace + b" ", 1
            ).replace(b"<pageSetup ", b'<pageSetup r:id="rIdPrinter" '),
        },
        {
            "xl/printerSettings/printerSettings1.bin": _devmode(_PRINTER),
            "xl/persons/person.xml": persons.encode(),
            "xl/threadedComments/threadedComment1.xml": threaded.encode(),
        },
    )


def _real_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Overtime"
    sheet["A1"] = "Unpaid overtime hours"
    sheet["B1"] = 42
    sheet["A2"] = "Total"
    sheet["B2"] = "=SUM(B1:B1)"
    sheet["A1"].comment = Comment("These were never paid", _COMMENTER)
    sheet.page_setup.orientation = "landscape"
    properties = workbook.properties
    properties.creator = AUTHOR
    properties.lastModifiedBy = AUTHOR
    properties.title = _TITLE
    properties.subject = _SUBJECT
    properties.keywords = _KEYWORDS
    properties.description = _DESCRIPTION
    properties.created = _CREATED
    properties.modified = _MODIFIED
    properties.lastPrinted = _MODIFIED
    workbook.custom_doc_props.append(StringProperty(name="EmployeeId", value=_CUSTOM))
    out = io.BytesIO()
    workbook.save(out)
    return _xlsx_as_excel_saves(out.getvalue())


def test_real_xlsx_loses_properties_comment_authors_custom_and_printer_settings() -> None:
    source = _real_xlsx()
    assert "xl/comments/comment1.xml" in _parts(source)  # openpyxl's path, not Excel's
    cleaned = clean_attachment("hours.xlsx", OOXML_CT + "spreadsheetml.sheet", source)
    assert cleaned.kind is FileKind.XLSX
    needles = (AUTHOR, _TITLE, _SUBJECT, _KEYWORDS, _DESCRIPTION, _COMMENTER, _CUSTOM, _PRINTER)
    _assert_clean_office(source, cleaned.data, (*needles, "2023-07-14", "2023-08-02"))
    sheet_xml = _parts(cleaned.data)["xl/worksheets/sheet1.xml"]
    assert b"rIdPrinter" not in sheet_xml  # the reference went with the part
    threaded = _parts(cleaned.data)["xl/threadedComments/threadedComment1.xml"]
    assert b'dT="1980-01-01T00:00:00Z"' in threaded and b"Ask payroll" in threaded
    assert _PERSON_ID.encode() in threaded  # which person, within this file only
    workbook = openpyxl.load_workbook(io.BytesIO(cleaned.data))
    sheet = workbook["Overtime"]
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["Unpaid overtime hours", 42],
        ["Total", "=SUM(B1:B1)"],
    ]
    comment = sheet["A1"].comment
    assert comment is not None and comment.text == "These were never paid"
    # The author is emptied (openpyxl reads an empty <author/> back as "None").
    assert b"<authors><author/></authors>" in _parts(cleaned.data)["xl/comments/comment1.xml"]
    assert sheet.page_setup.orientation == "landscape"
    assert len(workbook.custom_doc_props) == 0


def _real_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Minutes of the meeting", level=1)
    paragraph = document.add_paragraph("The manager asked us to delete the emails.")
    document.add_paragraph("Second paragraph of evidence.")
    document.add_comment(paragraph.runs, text="I was there too", author=_COMMENTER, initials="CC")
    document.add_picture(io.BytesIO(jpeg_with_gps()), width=docx.shared.Inches(1))
    properties = document.core_properties
    properties.author = AUTHOR
    properties.last_modified_by = AUTHOR
    properties.title = _TITLE
    properties.subject = _SUBJECT
    properties.keywords = _KEYWORDS
    properties.comments = _DESCRIPTION
    properties.created = _CREATED
    properties.modified = _MODIFIED
    properties.last_printed = _MODIFIED
    properties.revision = 17
    # Word's list of the people who commented; python-docx has no API for it, only for parts.
    people = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
        f'<w15:person w15:author="{_COMMENTER}"><w15:presenceInfo w15:providerId="AD"'
        f' w15:userId="S::{_COMMENTER}@example.org::0000"/></w15:person></w15:people>'
    )
    part = docx.opc.part.Part(
        docx.opc.packuri.PackURI("/word/people.xml"),
        OOXML_CT + "wordprocessingml.people+xml",
        people.encode(),
        document.part.package,
    )
    document.part.relate_to(part, "http://schemas.microsoft.com/office/2011/relationships/people")
    out = io.BytesIO()
    document.save(out)
    return _with_company(out.getvalue())


def test_real_docx_loses_properties_comment_authors_people_ids_and_photo_gps() -> None:
    source = _real_docx()
    source_parts = _parts(source)
    # What python-docx's template brings along, beyond what the test set.
    assert "docProps/thumbnail.jpeg" in source_parts and "customXml/item1.xml" in source_parts
    assert b"w14:docId" in source_parts["word/settings.xml"]
    assert b"w:rsid" in source_parts["word/settings.xml"]
    cleaned = clean_attachment("minutes.docx", OOXML_CT + "wordprocessingml.document", source)
    assert cleaned.kind is FileKind.DOCX
    _assert_clean_office(
        source, cleaned.data, _IDENTIFYING[:2] + _IDENTIFYING[3:8] + _IDENTIFYING[-2:] + ("SpyCam",)
    )
    parts = _parts(cleaned.data)
    assert b"docId" not in parts["word/settings.xml"] and b"rsid" not in parts["word/settings.xml"]
    document = docx.Document(io.BytesIO(cleaned.data))
    assert [p.text for p in document.paragraphs][:3] == [
        "Minutes of the meeting",
        "The manager asked us to delete the emails.",
        "Second paragraph of evidence.",
    ]
    comments = list(document.comments)
    assert [comment.text for comment in comments] == ["I was there too"]
    assert comments[0].author == "" and comments[0].initials == ""
    assert document.core_properties.author == "" and document.core_properties.created is None
    (shape,) = document.inline_shapes
    blob = document.part.related_parts[
        shape._inline.graphic.graphicData.pic.blipFill.blip.embed
    ].blob
    with Image.open(io.BytesIO(blob)) as image:
        assert image.size == (64, 48) and not image.getexif()


def _real_pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "Safety incidents"
    box = slide.shapes.add_textbox(
        pptx.util.Inches(1), pptx.util.Inches(2), pptx.util.Inches(4), pptx.util.Inches(1)
    )
    box.text_frame.text = "Three near misses in March"
    slide.shapes.add_picture(io.BytesIO(jpeg_with_gps()), pptx.util.Inches(1), pptx.util.Inches(4))
    properties = presentation.core_properties
    properties.author = AUTHOR
    properties.last_modified_by = AUTHOR
    properties.title = _TITLE
    properties.subject = _SUBJECT
    properties.keywords = _KEYWORDS
    properties.comments = _DESCRIPTION
    properties.created = _CREATED
    properties.modified = _MODIFIED
    # PowerPoint's comment authors and a comment on the slide; python-pptx has no API for
    # them, only for parts, and writes their content types and relationships itself.
    pml = "http://schemas.openxmlformats.org/presentationml/2006/main"
    authors = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:cmAuthorLst xmlns:p="{pml}">'
        f'<p:cmAuthor id="0" name="{_COMMENTER}" initials="CC" lastIdx="1" clrIdx="0"/>'
        "</p:cmAuthorLst>"
    )
    comments = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:cmLst xmlns:p="{pml}">'
        '<p:cm authorId="0" dt="2023-07-14T09:26:53.120" idx="1"><p:pos x="10" y="10"/>'
        "<p:text>Check the March figures</p:text></p:cm></p:cmLst>"
    )
    package = presentation.part.package
    authors_part = pptx.opc.package.Part(
        pptx.opc.packuri.PackURI("/ppt/commentAuthors.xml"),
        PptxContentType.PML_COMMENT_AUTHORS,
        package,
        authors.encode(),
    )
    presentation.part.relate_to(authors_part, PptxRelType.COMMENT_AUTHORS)
    comments_part = pptx.opc.package.Part(
        pptx.opc.packuri.PackURI("/ppt/comments/comment1.xml"),
        PptxContentType.PML_COMMENTS,
        package,
        comments.encode(),
    )
    slide.part.relate_to(comments_part, PptxRelType.COMMENTS)
    out = io.BytesIO()
    presentation.save(out)
    return _with_company(out.getvalue())


def test_real_pptx_loses_properties_comment_authors_printer_settings_and_photo_gps() -> None:
    source = _real_pptx()
    source_parts = _parts(source)
    assert "ppt/printerSettings/printerSettings1.bin" in source_parts  # from the template
    assert "docProps/thumbnail.jpeg" in source_parts
    cleaned = clean_attachment("safety.pptx", OOXML_CT + "presentationml.presentation", source)
    assert cleaned.kind is FileKind.PPTX
    needles = (AUTHOR, COMPANY, "SpyCam", _TITLE, _SUBJECT, _KEYWORDS, _DESCRIPTION, _COMMENTER)
    _assert_clean_office(source, cleaned.data, (*needles, "2023-07-14", "2023-08-02"))
    parts = _parts(cleaned.data)
    assert b"Check the March figures" in parts["ppt/comments/comment1.xml"]
    assert b'dt="1980-01-01T00:00:00Z"' in parts["ppt/comments/comment1.xml"]
    assert b'name=""' in parts["ppt/commentAuthors.xml"]
    presentation = pptx.Presentation(io.BytesIO(cleaned.data))
    (slide,) = presentation.slides
    texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
    assert texts == ["Safety incidents", "Three near misses in March"]
    (picture,) = [shape for shape in slide.shapes if isinstance(shape, PptxPicture)]
    with Image.open(io.BytesIO(picture.image.blob)) as image:
        assert image.size == (64, 48) and not image.getexif()
    assert presentation.core_properties.author == ""
    assert presentation.core_properties.created is None


# --- Text, names, types, limits ---------------------------------------------------------------


def test_utf8_text_is_kept_as_is_and_invalid_utf8_is_refused() -> None:
    text = "Zeuge: 张三 saw it.\r\n\tSecond line\n".encode()
    cleaned = clean_attachment("notes.txt", "text/plain; charset=utf-8", text)
    assert cleaned.data == text and cleaned.kind is FileKind.TEXT
    with pytest.raises(CannotClean) as refused:
        clean_attachment("notes.txt", "text/plain", "café".encode("latin-1"))
    assert refused.value.reason is CleanFailure.NOT_UTF8


@pytest.mark.parametrize(
    ("name", "declared", "data"),
    [
        ("photo.png", "image/png", jpeg_with_gps()),  # a JPEG named and declared as PNG
        ("photo.jpg", "image/png", jpeg_with_gps()),  # declared type lies
        ("invoice.pdf", "application/pdf", b"MZ\x90\x00 an executable"),
        ("run.exe", "", b"plain words"),  # text content, executable name
        ("page.html", "text/html", b"<script>alert(1)</script>"),
        ("doc.docx", "", pdf_with_author()),
    ],
)
def test_type_spoofing_is_refused(name: str, declared: str, data: bytes) -> None:
    with pytest.raises(TypeNotAllowed):
        clean_attachment(name, declared, data)


def test_a_type_can_be_disabled() -> None:
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("a.txt", "", b"x", allowed=frozenset({FileKind.PDF}))
    assert refused.value.reason is TypeRefusal.NOT_ENABLED


def test_oversize_and_empty_files_are_refused() -> None:
    with pytest.raises(CannotClean) as refused:
        clean_attachment("a.txt", "text/plain", b"x" * 101, max_bytes=100)
    assert refused.value.reason is CleanFailure.TOO_LARGE
    with pytest.raises(CannotClean) as refused:
        clean_attachment("a.txt", "text/plain", b"x" * (sanitize.MAX_BYTES + 1))
    assert refused.value.reason is CleanFailure.TOO_LARGE
    with pytest.raises(CannotClean) as refused:
        clean_attachment("a.txt", "text/plain", b"")
    assert refused.value.reason is CleanFailure.EMPTY


@pytest.mark.parametrize(
    ("name", "declared", "data"),
    [
        ("a.jpg", "image/jpeg", jpeg_with_gps()[:200]),
        ("a.png", "image/png", png_with_text()[:100]),
        ("a.pdf", "application/pdf", b"%PDF-1.7\n garbage"),
        ("a.docx", "", docx_sample()[:300]),
        ("a.gif", "", b"GIF89a\x00\x00"),
    ],
)
def test_corrupt_files_are_refused(name: str, declared: str, data: bytes) -> None:
    with pytest.raises(CannotClean):
        clean_attachment(name, declared, data)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("C:\\Users\\jane\\Desktop\\IMG 0001.JPG", "IMG 0001.jpg"),
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("evil\u202egpj.exe.jpg", "evil_gpj.exe.jpg"),
        ("照片.jpeg", "照片.jpg"),
        ("...", "attachment.jpg"),
        ("", "attachment.jpg"),
    ],
)
def test_file_names_are_normalised(name: str, expected: str) -> None:
    assert sanitize_detect.safe_filename(name, FileKind.JPEG) == expected


# --- Never crashes ----------------------------------------------------------------------------

_PREFIXES = [
    b"",
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"GIF89a",
    b"%PDF-1.7\n",
    b"PK\x03\x04",
]
_SAMPLES = [jpeg_with_gps(), png_with_text(), pdf_with_author(), docx_sample(extra=False)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.tuples(st.sampled_from(_PREFIXES), st.binary(max_size=2000)).map(lambda t: t[0] + t[1]),
        st.tuples(
            st.sampled_from(_SAMPLES),
            st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
        ).map(lambda t: _mutate(*t)),
    ),
    st.sampled_from(["a.jpg", "a.png", "a.pdf", "a.docx", "a.txt", "a", "a.webp"]),
)
def test_random_bytes_never_crash(data: bytes, name: str) -> None:
    with contextlib.suppress(CannotClean, TypeNotAllowed):  # anything else fails the test
        clean_attachment(name, "", data)


def _mutate(sample: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(sample)
    for position, value in flips:
        mutable[position % len(mutable)] = value
    return bytes(mutable)


@pytest.mark.parametrize("byte", [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
def test_a_control_character_makes_text_binary(byte: int) -> None:
    assert not sanitize_detect._is_text(b"plain words " + bytes([byte]) + b" more")


@pytest.mark.parametrize("sample", ["tab\there", "lines\r\nand\nfeeds\f", "中文与 English ✓"])
def test_text_with_layout_characters_and_any_script_is_text(sample: str) -> None:
    assert sanitize_detect._is_text(sample.encode())
