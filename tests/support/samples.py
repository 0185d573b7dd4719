"""Sample files with identifying metadata, as the attachment tests need them: a JPEG with GPS
and a comment, a PNG with text chunks, a PDF with an author, and a hand-built docx whose parts
name the author and the company. Real producers' files are made in the tests themselves."""

from __future__ import annotations

import io
import zipfile

import pikepdf
from PIL import Image

AUTHOR = "Jane Whistleblower-Secret"
COMPANY = "Acme Hidden Division"


# --- Samples --------------------------------------------------------------------------------


def gradient(size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size)
    image.putdata([(x * 4 % 256, y * 5 % 256, 100) for y in range(size[1]) for x in range(size[0])])
    return image


def exif_with_gps(orientation: int = 1) -> Image.Exif:
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


def jpeg_with_gps(orientation: int = 1) -> bytes:
    out = io.BytesIO()
    gradient().save(
        out, "JPEG", exif=exif_with_gps(orientation), comment=AUTHOR.encode(), quality=95
    )
    return out.getvalue()


def png_with_text() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", AUTHOR)
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{AUTHOR}</x:xmpmeta>")
    out = io.BytesIO()
    gradient().save(out, "PNG", pnginfo=info, exif=exif_with_gps())
    return out.getvalue()


def pdf_with_author(text: str = "Hello evidence") -> bytes:
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


OOXML_CT = "application/vnd.openxmlformats-officedocument."
OPC_CT = "application/vnd.openxmlformats-package."
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships/"


def relationship(rid: str, rel_type: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>'


DOCUMENT_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:body><w:p w:rsidR="00A1B2C3"><w:r><w:t>The evidence paragraph</w:t></w:r>'
    f'<w:ins w:id="1" w:author="{AUTHOR}" w:date="2024-03-01T10:00:00Z"><w:r><w:t>added</w:t>'
    "</w:r></w:ins></w:p></w:body></w:document>"
)


def docx_sample(
    main_type: str = OOXML_CT + "wordprocessingml.document.main+xml", extra: bool = True
) -> bytes:
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{OPC_CT}relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main_type}"/>'
        f'<Override PartName="/docProps/core.xml" ContentType="{OPC_CT}core-properties+xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{OOXML_CT}extended-properties+xml"/>'
        f'<Override PartName="/docProps/custom.xml" ContentType="{OOXML_CT}custom-properties+xml"/>'
        f'<Override PartName="/word/comments.xml" ContentType="{OOXML_CT}wordprocessingml.comments'
        '+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + relationship("rId1", f"{OFFICE_REL}officeDocument", "word/document.xml")
        + relationship("rId2", f"{PACKAGE_REL}metadata/core-properties", "docProps/core.xml")
        + relationship("rId3", f"{OFFICE_REL}extended-properties", "docProps/app.xml")
        + relationship("rId4", f"{OFFICE_REL}custom-properties", "docProps/custom.xml")
        + "</Relationships>"
    )
    document_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + relationship("rId1", f"{OFFICE_REL}comments", "comments.xml")
        + relationship("rId2", f"{OFFICE_REL}customXml", "../customXml/item1.xml")
        + relationship("rId3", f"{OFFICE_REL}image", "media/image1.jpeg")
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
        archive.writestr("word/document.xml", DOCUMENT_XML)
        archive.writestr("word/_rels/document.xml.rels", document_rels)
        archive.writestr("docProps/core.xml", core)
        archive.writestr("docProps/app.xml", app)
        archive.writestr("docProps/custom.xml", custom)
        archive.writestr("word/comments.xml", comments)
        if extra:
            archive.writestr("customXml/item1.xml", f"<dms><owner>{AUTHOR}</owner></dms>")
            archive.writestr("word/media/image1.jpeg", jpeg_with_gps())
    return out.getvalue()
