"""PDF cleaning: remove what identifies the author, and everything a viewer would run or open
by itself (issue 5, "Attachments"; issue 13, finding 3).

Called by ``sanitize.clean_attachment``, which turns ``EncryptedPdf`` and any parser exception
into ``CannotClean``. What is removed and kept is written in docs/security-model.md
("Attachments: metadata removal", "PDF: actions, scripts and forms").

Active content is removed by one walk over the whole object graph from the trailer, not by a
list of places: a JavaScript action on a bookmark and an ``/AcroForm /XFA`` script came through
a cleaner that knew the catalogue, the names and the pages' annotations only (issue 13). The
walk looks at every slot of every dictionary, stream dictionary and array, direct or indirect,
follows every reference once (so cycles, shared objects and long ``/Next`` chains end), and cuts
from its slot any action other than GoTo, any embedded file, and any annotation that plays or
opens something. What is cut is no longer referenced, and qpdf writes only referenced objects.
"""

from __future__ import annotations

import io

import pikepdf

ALLOWED_ACTIONS = frozenset({"/GoTo"})
"""The only action kept: a jump inside the document (bookmarks, internal links, the table of
contents). URI actions are removed too: a click anywhere inside a link's rectangle, which can
be invisible and as large as the page, makes the viewer fetch an address the sender chose (in
browsers' viewers without asking), and that tells the sender when and from where the file was
opened, as a script would. A link's address that the page text shows is kept with the text."""

ACTION_TYPES = frozenset(
    {
        "/GoTo",
        "/GoToR",
        "/GoToE",
        "/GoToDp",
        "/Launch",
        "/Thread",
        "/URI",
        "/Sound",
        "/Movie",
        "/Hide",
        "/Named",
        "/SubmitForm",
        "/ResetForm",
        "/ImportData",
        "/JavaScript",
        "/SetOCGState",
        "/Rendition",
        "/Trans",
        "/GoTo3DView",
        "/RichMediaExecute",
    }
)
"""Every action type of PDF 2.0 (ISO 32000-2, table 201). A dictionary whose ``/S`` is one of
these is an action wherever it hangs, and so is one of ``/Type /Action`` with any other ``/S``
(a viewer may know types the standard does not)."""

DROPPED_ANNOTATIONS = frozenset(
    {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
)
"""Annotations that carry a file, a sound, a film, Flash or a 3D model (whose stream may hold a
script in ``/OnInstantiate``): they are removed whole, wherever they are referenced."""

DROPPED_KEYS = (
    # Triggers: additional actions (page open and close, field keystroke, focus, calculate,
    # document will-close...) and the catalogue's open action run without a click, so they
    # go whatever their type.
    "/AA",
    "/OpenAction",
    # Scripts: a JavaScript action's text, the document-level scripts' name tree, XFA forms
    # (their XML carries scripts) and the flag that tells a viewer to render from XFA.
    "/JS",
    "/JavaScript",
    "/XFA",
    "/NeedsRendering",
    "/OnInstantiate",
    # Embedded and associated files, their name tree, and the portfolio view of them.
    "/EmbeddedFiles",
    "/EF",
    "/RF",
    "/AF",
    "/Collection",
    # Name trees of slide shows and of media renditions (what Rendition actions play).
    "/AlternatePresentations",
    "/Renditions",
    # Metadata: XMP on any object, and application data (/PieceInfo).
    "/Metadata",
    "/PieceInfo",
)
"""Keys removed from every dictionary and stream dictionary of the file."""

# Markup annotations (comments, highlights...) carry their author in /T; widgets use /T for
# the form field's name, which is content.
_ANNOTATION_AUTHOR_KEYS = ("/T", "/M", "/CreationDate")


class EncryptedPdf(Exception):
    """The file is encrypted (even with an empty password): its objects cannot be rewritten."""


def clean_pdf(data: bytes) -> bytes:
    """The file rewritten without its metadata and without its active content."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as exc:
        raise EncryptedPdf from exc
    with pdf:
        if pdf.is_encrypted:  # opened with an empty user password, still encrypted
            raise EncryptedPdf
        for key in ("/Info", "/ID"):
            if key in pdf.trailer:
                del pdf.trailer[key]
        remove_active_content(pdf)
        _remove_annotation_authors(pdf)
        out = io.BytesIO()
        # Streams are copied as they are (never decompressed), so a flate bomb inside costs
        # nothing; qpdf writes only objects reachable from the trailer, so whatever was
        # removed, and any earlier revision of the file, is left out.
        pdf.save(
            out,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
            compress_streams=False,
            deterministic_id=True,
        )
    return out.getvalue()


def remove_active_content(pdf: pikepdf.Pdf) -> None:
    """Walk every object reachable from the trailer once: remove ``DROPPED_KEYS`` from each
    dictionary, and cut from its dictionary slot or array each object ``is_dropped`` says."""
    seen: set[tuple[int, int]] = set()
    # An explicit stack: outline chains and nested direct objects can be deeper than Python's
    # recursion limit.
    stack: list[pikepdf.Object] = [pdf.trailer]
    while stack:
        obj = stack.pop()
        if isinstance(obj, pikepdf.Array):
            for index in reversed(range(len(obj))):
                child = obj[index]
                if is_dropped(child):
                    del obj[index]
                elif _first_visit(child, seen):
                    stack.append(child)
            continue
        for key in DROPPED_KEYS:
            if key in obj:
                del obj[key]
        for key in list(obj.keys()):
            child = obj[key]
            if is_dropped(child):
                del obj[key]
            elif _first_visit(child, seen):
                stack.append(child)


def _first_visit(obj: pikepdf.Object, seen: set[tuple[int, int]]) -> bool:
    """Whether ``obj`` is a container not walked yet. A direct object belongs to exactly one
    container, so only indirect ones can be met twice (shared, or in a cycle)."""
    if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream | pikepdf.Array):
        return False
    if obj.is_indirect:
        if obj.objgen in seen:
            return False
        seen.add(obj.objgen)
    return True


def is_dropped(obj: pikepdf.Object) -> bool:
    """An action other than GoTo, an embedded file stream, or an annotation that carries a
    file or media (``DROPPED_ANNOTATIONS``)."""
    if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
        return False
    kind = obj.get("/Type")
    action = obj.get("/S")
    if isinstance(action, pikepdf.Name) and str(action) in ACTION_TYPES:
        return str(action) not in ALLOWED_ACTIONS
    if kind == pikepdf.Name.Action:
        return not (isinstance(action, pikepdf.Name) and str(action) in ALLOWED_ACTIONS)
    if kind == pikepdf.Name.EmbeddedFile:
        return True
    subtype = obj.get("/Subtype")
    return isinstance(subtype, pikepdf.Name) and str(subtype) in DROPPED_ANNOTATIONS


def _remove_annotation_authors(pdf: pikepdf.Pdf) -> None:
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if not isinstance(annots, pikepdf.Array):
            continue
        kept = pikepdf.Array()
        for annot in annots:
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            if annot.get("/Subtype") != pikepdf.Name.Widget:
                for key in _ANNOTATION_AUTHOR_KEYS:
                    if key in annot:
                        del annot[key]
            kept.append(annot)
        page.obj["/Annots"] = kept
