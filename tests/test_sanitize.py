"""Attachment cleaning: metadata is gone from the output bytes, content survives, and every
bad input ends in one of the two declared errors."""

from __future__ import annotations

import contextlib
import io
import zipfile

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from portal.services import sanitize
from portal.services.sanitize import (
    CannotClean,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
    clean_attachment,
)

AUTHOR = "Jane Whistleblower-Secret"
COMPANY = "Acme Hidden Division"


# --- Samples --------------------------------------------------------------------------------


def _gradient(size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size)
    image.putdata([(x * 4 % 256, y * 5 % 256, 100) for y in range(size[1]) for x in range(size[0])])
    return image


def _exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Maker"  # Make
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[0x013B] = AUTHOR  # Artist
    exif[0x0112] = orientation
    exif[0x8825] = {  # GPS IFD
        1: "N",
        2: (51.0, 30.0, 12.0),
        3: "E",
        4: (0.0, 7.0, 39.0),
    }
    return exif


def _jpeg_with_gps(orientation: int = 1) -> bytes:
    out = io.BytesIO()
    _gradient().save(
        out, "JPEG", exif=_exif_with_gps(orientation), comment=AUTHOR.encode(), quality=95
    )
    return out.getvalue()


def _png_with_text() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", AUTHOR)
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{AUTHOR}</x:xmpmeta>")
    out = io.BytesIO()
    _gradient().save(out, "PNG", pnginfo=info, exif=_exif_with_gps())
    return out.getvalue()


def _pdf_with_author(text: str = "Hello evidence") -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(612, 792))
    page = pdf.pages[0]
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont="/Helvetica"
        )
    )
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.obj.Contents = pdf.make_stream(f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode())
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = [AUTHOR]
        meta["xmp:CreatorTool"] = COMPANY
    pdf.docinfo["/Author"] = AUTHOR
    pdf.docinfo["/Producer"] = COMPANY
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(
            Names=pikepdf.Array(
                ["js", pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)")]
            )
        )
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


_CT = "application/vnd.openxmlformats-officedocument."
_PKG = "application/vnd.openxmlformats-package."
_OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_PR = "http://schemas.openxmlformats.org/package/2006/relationships/"


def _rel(rid: str, rel_type: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>'


_DOCUMENT_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:body><w:p w:rsidR="00A1B2C3"><w:r><w:t>The evidence paragraph</w:t></w:r>'
    f'<w:ins w:id="1" w:author="{AUTHOR}" w:date="2024-03-01T10:00:00Z"><w:r><w:t>added</w:t>'
    "</w:r></w:ins></w:p></w:body></w:document>"
)


def _docx(main_type: str = _CT + "wordprocessingml.document.main+xml", extra: bool = True) -> bytes:
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{_PKG}relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main_type}"/>'
        f'<Override PartName="/docProps/core.xml" ContentType="{_PKG}core-properties+xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{_CT}extended-properties+xml"/>'
        f'<Override PartName="/docProps/custom.xml" ContentType="{_CT}custom-properties+xml"/>'
        f'<Override PartName="/word/comments.xml" ContentType="{_CT}wordprocessingml.comments'
        '+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + _rel("rId1", f"{_OD}officeDocument", "word/document.xml")
        + _rel("rId2", f"{_PR}metadata/core-properties", "docProps/core.xml")
        + _rel("rId3", f"{_OD}extended-properties", "docProps/app.xml")
        + _rel("rId4", f"{_OD}custom-properties", "docProps/custom.xml")
        + "</Relationships>"
    )
    document_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + _rel("rId1", f"{_OD}comments", "comments.xml")
        + _rel("rId2", f"{_OD}customXml", "../customXml/item1.xml")
        + _rel("rId3", f"{_OD}image", "media/image1.jpeg")
        + "</Relationships>"
    )
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:creator>{AUTHOR}</dc:creator><cp:lastModifiedBy>{AUTHOR}</cp:lastModifiedBy>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-03-01T10:00:00Z</dcterms:created>'
        "</cp:coreProperties>"
    )
    app = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        f"<Company>{COMPANY}</Company><Manager>{AUTHOR}</Manager></Properties>"
    )
    custom = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
        ' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="EmployeeId">'
        f"<vt:lpwstr>{AUTHOR}</vt:lpwstr></property></Properties>"
    )
    comments = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:comments xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f'<w:comment w:id="0" w:author="{AUTHOR}" w:initials="JW" w:date="2024-03-01T10:00:00Z">'
        "<w:p><w:r><w:t>A comment</w:t></w:r></w:p></w:comment></w:comments>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("word/document.xml", _DOCUMENT_XML)
        archive.writestr("word/_rels/document.xml.rels", document_rels)
        archive.writestr("docProps/core.xml", core)
        archive.writestr("docProps/app.xml", app)
        archive.writestr("docProps/custom.xml", custom)
        archive.writestr("word/comments.xml", comments)
        if extra:
            archive.writestr("customXml/item1.xml", f"<dms><owner>{AUTHOR}</owner></dms>")
            archive.writestr("word/media/image1.jpeg", _jpeg_with_gps())
    return out.getvalue()


def _has_no_trace(data: bytes) -> None:
    for needle in (AUTHOR, COMPANY, "SpyCam"):
        assert needle.encode() not in data
        assert needle.encode("utf-16-le") not in data
        assert needle.encode("utf-16-be") not in data


# --- Images ---------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_and_comment_and_keeps_its_pixels() -> None:
    source = _jpeg_with_gps()
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
    cleaned = clean_attachment("rotated.jpg", "", _jpeg_with_gps(orientation=6))
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.size == (48, 64)  # turned upright: width and height swapped
        assert not image.getexif()


def test_png_loses_text_chunks_xmp_and_exif() -> None:
    source = _png_with_text()
    assert AUTHOR.encode() in source
    cleaned = clean_attachment("screen.png", "image/png", source)
    _has_no_trace(cleaned.data)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"):
        assert chunk not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.convert("RGB").tobytes() == _gradient().tobytes()  # lossless


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
def test_webp_and_gif_are_reencoded_without_metadata(fmt: str) -> None:
    out = io.BytesIO()
    if fmt == "GIF":
        _gradient().save(out, "GIF", comment=AUTHOR.encode())
    else:
        _gradient().save(out, "WEBP", exif=_exif_with_gps(), xmp=AUTHOR.encode())
    assert AUTHOR.encode() in out.getvalue()
    cleaned = clean_attachment(f"picture.{fmt.lower()}", f"image/{fmt.lower()}", out.getvalue())
    _has_no_trace(cleaned.data)
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.format == fmt and image.size == (64, 48)


def test_animated_gif_is_refused() -> None:
    out = io.BytesIO()
    frames = [_gradient(), _gradient().rotate(180)]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(CannotClean) as refused:
        clean_attachment("a.gif", "image/gif", out.getvalue())
    assert refused.value.reason is CleanFailure.ANIMATED


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanitize, "MAX_IMAGE_PIXELS", 1000)
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
    source = _pdf_with_author()
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
    source = _pdf_with_author()
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
        with pikepdf.open(io.BytesIO(_pdf_with_author())) as pdf:
            pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=user_password))
        with pytest.raises(CannotClean) as refused:
            clean_attachment("locked.pdf", "application/pdf", out.getvalue())
        assert refused.value.reason is CleanFailure.ENCRYPTED


# --- Office ---------------------------------------------------------------------------------


def test_docx_loses_creator_custom_properties_and_comment_authors() -> None:
    source = _docx()
    cleaned = clean_attachment("report.docx", _CT + "wordprocessingml.document", source)
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
    docm = _docx(main_type="application/vnd.ms-word.document.macroEnabled.main+xml")
    with pytest.raises(TypeNotAllowed) as refused:
        clean_attachment("report.docm", "", docm)
    assert refused.value.reason is TypeRefusal.MACROS


def test_vba_project_in_a_docx_is_refused() -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_docx(extra=False))) as source,
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
    monkeypatch.setattr(sanitize, "MAX_ZIP_ENTRIES", 5)
    with pytest.raises(CannotClean) as refused:
        clean_attachment("many.docx", "", _docx())
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
        ("photo.png", "image/png", _jpeg_with_gps()),  # a JPEG named and declared as PNG
        ("photo.jpg", "image/png", _jpeg_with_gps()),  # declared type lies
        ("invoice.pdf", "application/pdf", b"MZ\x90\x00 an executable"),
        ("run.exe", "", b"plain words"),  # text content, executable name
        ("page.html", "text/html", b"<script>alert(1)</script>"),
        ("doc.docx", "", _pdf_with_author()),
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
        ("a.jpg", "image/jpeg", _jpeg_with_gps()[:200]),
        ("a.png", "image/png", _png_with_text()[:100]),
        ("a.pdf", "application/pdf", b"%PDF-1.7\n garbage"),
        ("a.docx", "", _docx()[:300]),
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
    assert sanitize.safe_filename(name, FileKind.JPEG) == expected


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
_SAMPLES = [_jpeg_with_gps(), _png_with_text(), _pdf_with_author(), _docx(extra=False)]


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
